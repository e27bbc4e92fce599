/* Calendar days as a count of days since 1970-01-01 (proleptic Gregorian),
 * the way ClickHouse's Date and Postgres's date both think of them.  The day
 * an order belongs to is decided in Postgres (in the configured time zone);
 * salesd only carries days around and prints them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef int32_t Day;

#define DAY_STRLEN 16 /* "YYYY-MM-DD" + NUL, with room for any year */

/* Parses exactly "YYYY-MM-DD" (a real date, year 1900..9999). 0 or -EINVAL. */
int day_parse(const char *s, Day *ret);

/* Writes "YYYY-MM-DD" into buf (at least DAY_STRLEN bytes); returns buf. */
char *day_format(Day d, char *buf);

Day day_from_civil(int year, unsigned month, unsigned mday);
void day_to_civil(Day d, int *ret_year, unsigned *ret_month, unsigned *ret_mday);

/* Today in the process's local time zone (TZ; salesd sets it to the
 * configured timezone), by the machine's clock. */
Day day_today(void);

/* The number of days (28..31) of month 1..12 in year. */
unsigned day_days_in_month(int year, unsigned month);

/* The day of the week, 0 = Sunday .. 6 = Saturday. */
unsigned day_weekday(Day d);

/* Sorts days ascending and removes duplicates; returns the new count. */
size_t day_sort_unique(Day *days, size_t n);
