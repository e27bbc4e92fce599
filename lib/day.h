/* Calendar days as a count of days since 1970-01-01 (proleptic Gregorian),
 * the way ClickHouse's Date and Postgres's date both think of them.  The day
 * an order belongs to is decided in Postgres (in the configured time zone);
 * salesd only carries days around and prints them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t Day;

#define DAY_STRLEN 16 /* "YYYY-MM-DD" + NUL, with room for any year */

/* The days a ClickHouse Date column stores and gives back on every supported
 * server: 18.16 parses a text date after 2105-12-31 as day 0 (current
 * releases clamp after 2149-06-06), and every release clamps or wraps
 * before 1970-01-01.  A day outside is never written (it would land on
 * another day). */
#define DAY_STORABLE_FIRST 0     /* 1970-01-01 (18.16 prints it as 0000-00-00) */
#define DAY_STORABLE_LAST  49672 /* 2105-12-31 */
#define DAY_STORABLE_RANGE "1970-01-01..2105-12-31"

static inline bool day_storable(Day d) {
        return d >= DAY_STORABLE_FIRST && d <= DAY_STORABLE_LAST;
}

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
