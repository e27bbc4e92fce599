/* See day.h.  The civil-date conversions are Howard Hinnant's well-known
 * days-from-civil arithmetic (era of 400 years), exact for all dates. */
#include "day.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Day day_from_civil(int year, unsigned month, unsigned mday) {
        year -= month <= 2;
        const int era = (year >= 0 ? year : year - 399) / 400;
        const unsigned yoe = (unsigned)(year - era * 400);
        const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + mday - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return (Day)(era * 146097 + (int)doe - 719468);
}

void day_to_civil(Day d, int *ret_year, unsigned *ret_month, unsigned *ret_mday) {
        const int z = d + 719468;
        const int era = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned)(z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        const unsigned mday = doy - (153 * mp + 2) / 5 + 1;
        const unsigned month = mp < 10 ? mp + 3 : mp - 9;
        *ret_year = (int)yoe + era * 400 + (month <= 2);
        *ret_month = month;
        *ret_mday = mday;
}

unsigned day_days_in_month(int year, unsigned month) {
        static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
                return 29;
        return days[month - 1];
}

unsigned day_weekday(Day d) {
        int w = (d + 4) % 7; /* 1970-01-01 was a Thursday */
        return (unsigned)(w < 0 ? w + 7 : w);
}

int day_parse(const char *s, Day *ret) {
        if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return -EINVAL;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        unsigned month = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
        unsigned mday = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
        if (year < 1900 || month < 1 || month > 12 || mday < 1 || mday > day_days_in_month(year, month))
                return -EINVAL;
        *ret = day_from_civil(year, month, mday);
        return 0;
}

char *day_format(Day d, char *buf) {
        int year;
        unsigned month, mday;
        day_to_civil(d, &year, &month, &mday);
        snprintf(buf, DAY_STRLEN, "%04d-%02u-%02u", year, month, mday);
        return buf;
}

static int day_compare(const void *a, const void *b) {
        Day x = *(const Day *)a, y = *(const Day *)b;
        return (x > y) - (x < y);
}

size_t day_sort_unique(Day *days, size_t n) {
        if (n == 0)
                return 0;
        qsort(days, n, sizeof(Day), day_compare);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
                if (days[i] != days[k - 1])
                        days[k++] = days[i];
        return k;
}

Day day_today(void) {
        time_t now = time(NULL);
        struct tm tm;
        if (!localtime_r(&now, &tm))
                gmtime_r(&now, &tm);
        return day_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
}
