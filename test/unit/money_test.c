/* Exact money: parsing what Postgres and both ClickHouse versions print,
 * formatting with two places, half-away-from-zero division and the
 * Decimal(15,2) range check.  Table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "money.h"

#define M(x) ((Money)(x))

static const struct {
        const char *text;
        Money cents;
        const char *formatted;
} good[] = {
        { "0", 0, "0.00" },
        { "0.00", 0, "0.00" },
        { "-0.00", 0, "0.00" },
        { "3.1", 310, "3.10" },  /* a current ClickHouse drops trailing zeros */
        { "3.10", 310, "3.10" }, /* 18.16 keeps them */
        { "-0.03", -3, "-0.03" },
        { "-0.3", -30, "-0.30" },
        { "7", 700, "7.00" },
        { "+7.5", 750, "7.50" },
        { "1.2300", 123, "1.23" }, /* zeros beyond the scale are exact */
        { "9999999999999.99", M(999999999999999), "9999999999999.99" },
        { "-9999999999999.99", -M(999999999999999), "-9999999999999.99" },
        { "123456789012345678901234567890.12",
          (Money)1234567890123456789ULL * M(10000000000000ULL) + M(123456789012ULL), NULL },
};

static const struct {
        const char *text;
        int error;
} bad[] = {
        { "", -EINVAL },     { "-", -EINVAL },
        { ".5", -EINVAL },   { "5.", -EINVAL },
        { "1e2", -EINVAL },  { "1,5", -EINVAL },
        { " 1", -EINVAL },   { "1 ", -EINVAL },
        { "0x10", -EINVAL }, { "NaN", -EINVAL },
        { "1.234", -EDOM }, /* cannot be stored in cents */
        { "0.001", -EDOM },  { "99999999999999999999999999999999999999999", -ERANGE },
};

static void test_parse_format(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                Money m = 42;
                char buf[MONEY_STRLEN];
                assert_int_equal(money_parse(good[i].text, &m), 0);
                assert_true(m == good[i].cents);
                if (good[i].formatted)
                        assert_string_equal(money_format(m, buf, sizeof(buf)), good[i].formatted);
        }
}

static void test_bad(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                Money m = 42;
                int r = money_parse(bad[i].text, &m);
                if (r != bad[i].error)
                        fail_msg("money_parse('%s') = %d, expected %d", bad[i].text, r, bad[i].error);
                assert_true(m == 42);
        }
}

static void test_div_round(void **state) {
        (void)state;
        static const struct {
                Money num;
                uint64_t den;
                Money want;
        } cases[] = {
                { 5, 2, 3 },       /* 0.025 → 0.03: half away from zero, not to even */
                { -5, 2, -3 },     /* -0.025 → -0.03 */
                { 15, 2, 8 },      /* 0.075 → 0.08 */
                { 25, 2, 13 },     /* 0.125 → 0.13 (banker's rounding would give 0.12) */
                { 3029, 2, 1515 }, /* 30.29 / 2 = 15.145 → 15.15 */
                { 10, 3, 3 },      /* 0.0333 → 0.03 */
                { 20, 3, 7 },      /* 0.0666 → 0.07 */
                { -20, 3, -7 },
                { 100, 1, 100 },
                { 0, 7, 0 },
                { 1, 3, 0 }, /* 0.00333 → 0.00 */
                { 999999999999999, 1, 999999999999999 },
                { 1000000000000001, 1000000000, 1000000 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_true(money_div_round(cases[i].num, cases[i].den) == cases[i].want);
}

static void test_fits(void **state) {
        (void)state;
        assert_true(money_fits_decimal(M(999999999999999), 15));
        assert_true(money_fits_decimal(-M(999999999999999), 15));
        assert_false(money_fits_decimal(M(1000000000000000), 15));
        assert_false(money_fits_decimal(-M(1000000000000000), 15));
        assert_true(money_fits_decimal(0, 15));
}

/* The edges of the 128-bit range (issue 11 item 14, found by UBSan): parsing
 * stops at MONEY_MAX so a difference of two parsed sums cannot overflow;
 * money_sub saturates; formatting and dividing the most negative __int128
 * are defined. */
#define INT128_MIN_ ((Money)((unsigned __int128)1 << 127))
#define INT128_MAX_ ((Money)(((unsigned __int128)1 << 127) - 1))

static void test_extremes(void **state) {
        (void)state;
        char buf[MONEY_STRLEN];
        Money m = 42;
        /* MONEY_MAX = 2^126 - 1 hundredths */
        assert_int_equal(money_parse("850705917302346158658436518579420528.63", &m), 0);
        assert_true(m == MONEY_MAX);
        assert_int_equal(money_parse("-850705917302346158658436518579420528.63", &m), 0);
        assert_true(m == MONEY_MIN);
        m = 42;
        assert_int_equal(money_parse("850705917302346158658436518579420528.64", &m), -ERANGE);
        assert_int_equal(money_parse("-850705917302346158658436518579420528.99", &m), -ERANGE);
        assert_true(m == 42);

        assert_true(money_sub(MONEY_MAX, MONEY_MIN) == INT128_MAX_ - 1); /* exact */
        assert_true(money_sub(MONEY_MIN, MONEY_MAX) == INT128_MIN_ + 2);
        assert_true(money_sub(INT128_MAX_, INT128_MIN_) == MONEY_MAX);
        assert_true(money_sub(INT128_MIN_, 1) == MONEY_MIN);
        assert_true(money_sub(M(500), M(-250)) == M(750));
        assert_true(money_sub(M(-500), M(250)) == M(-750));

        assert_string_equal(money_format(INT128_MIN_, buf, sizeof(buf)), "-1701411834604692317316873037158841057.28");
        assert_string_equal(money_format(INT128_MAX_, buf, sizeof(buf)), "1701411834604692317316873037158841057.27");
        assert_true(money_div_round(INT128_MIN_, 2) == (Money)((unsigned __int128)0 - ((unsigned __int128)1 << 126)));
        assert_true(money_div_round(MONEY_MIN, UINT64_MAX) == -money_div_round(MONEY_MAX, UINT64_MAX));
        assert_true(money_fits_decimal(INT128_MIN_ + 1, 39));
        assert_false(money_fits_decimal(INT128_MIN_ + 1, 38));
}

static void test_format_truncates_safely(void **state) {
        (void)state;
        char small[5];
        money_format(M(123456), small, sizeof(small));
        assert_int_equal(strlen(small), 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_format), cmocka_unit_test(test_bad),
                cmocka_unit_test(test_div_round),    cmocka_unit_test(test_fits),
                cmocka_unit_test(test_extremes),     cmocka_unit_test(test_format_truncates_safely),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
