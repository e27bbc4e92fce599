/* Exact money: a signed 128-bit count of hundredths.  Postgres sums of
 * numeric(12,2) × integer have scale 2 and, over any realistic history, fit
 * 128 bits with room to spare; ClickHouse's Decimal(15,2) is checked
 * explicitly before a write.  No float or double is ever involved. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef __int128 Money;

/* The largest magnitude money_parse() accepts: 2^126 - 1 hundredths, so the
 * sum or difference of two parsed values never overflows 128 bits. */
#define MONEY_MAX ((Money)(((unsigned __int128)1 << 126) - 1))
#define MONEY_MIN (-MONEY_MAX)

#define MONEY_STRLEN 48

/* Parses a decimal such as "123", "-0.05", "3.1", "3.10", "1e2" is rejected.
 * Digits beyond the second fractional place must be zero ("1.2300" is fine,
 * "1.234" is -EDOM: it cannot be stored exactly).  -EINVAL for syntax,
 * -ERANGE beyond MONEY_MIN..MONEY_MAX. */
int money_parse(const char *s, Money *ret);

/* Always two fractional digits: "-0.03", "1234.50". Returns buf. */
char *money_format(Money m, char *buf, size_t len);

/* num ÷ den rounded to the cent, half away from zero.  den > 0. */
Money money_div_round(Money num, uint64_t den);

/* a - b; when that overflows 128 bits (never for two values money_parse
 * returned), MONEY_MAX or MONEY_MIN instead of wrapping (undefined for a
 * signed __int128): beyond any Decimal column, so a range check fails. */
Money money_sub(Money a, Money b);

/* Whether m fits Decimal(precision, 2): |m| < 10^precision hundredths. */
bool money_fits_decimal(Money m, unsigned precision);
