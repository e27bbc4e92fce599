/* Calendar arithmetic: parsing, formatting and the civil conversions, checked
 * against dates whose day numbers are known, leap rules, and a round trip
 * over four centuries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "day.h"

static const struct {
        const char *text;
        Day day;
} known[] = {
        { "1970-01-01", 0 },     { "1970-01-02", 1 },       { "1969-12-31", -1 },     { "2000-02-29", 11016 },
        { "2000-03-01", 11017 }, { "2026-11-25", 20782 },   { "1900-01-01", -25567 }, { "2100-02-28", 47540 },
        { "2100-03-01", 47541 }, { "9999-12-31", 2932896 },
};

static const char *const bad[] = {
        "",           "2026-1-01",  "2026-13-01", "2026-00-10",  "2026-02-29",
        "1900-02-29", "2100-02-29", "2026-04-31", "2026-11-25T", " 2026-11-25",
        "2026/11/25", "20261125",   "1899-12-31", "2026-11-2x",  "abcd-ef-gh",
};

static void test_known(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                Day d = 12345;
                char buf[DAY_STRLEN];
                assert_int_equal(day_parse(known[i].text, &d), 0);
                assert_int_equal(d, known[i].day);
                assert_string_equal(day_format(known[i].day, buf), known[i].text);
        }
}

static void test_bad(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                Day d = 777;
                assert_int_equal(day_parse(bad[i], &d), -EINVAL);
                assert_int_equal(d, 777); /* untouched */
        }
        assert_int_equal(day_parse(NULL, NULL), -EINVAL);
}

static void test_round_trip(void **state) {
        (void)state;
        /* 1900-01-01 .. 2300-01-01: every day formats and parses back, and
         * consecutive days are consecutive dates */
        Day prev = 0;
        for (Day d = -25567; d < 120530; d++) {
                char buf[DAY_STRLEN];
                Day back;
                assert_int_equal(day_parse(day_format(d, buf), &back), 0);
                assert_int_equal(back, d);
                if (d > -25567)
                        assert_int_equal(d - prev, 1);
                prev = d;
        }
}

static void test_month_and_weekday(void **state) {
        (void)state;
        assert_int_equal(day_days_in_month(2024, 2), 29);
        assert_int_equal(day_days_in_month(2023, 2), 28);
        assert_int_equal(day_days_in_month(2000, 2), 29);
        assert_int_equal(day_days_in_month(2100, 2), 28);
        assert_int_equal(day_days_in_month(2024, 4), 30);
        assert_int_equal(day_days_in_month(2024, 12), 31);
        assert_int_equal(day_weekday(0), 4);  /* 1970-01-01, a Thursday */
        assert_int_equal(day_weekday(-1), 3); /* 1969-12-31, a Wednesday */
        assert_int_equal(day_weekday(-4), 0); /* 1969-12-28, a Sunday */
        Day d;
        assert_int_equal(day_parse("2024-06-02", &d), 0);
        assert_int_equal(day_weekday(d), 0);
        assert_int_equal(day_parse("1900-01-01", &d), 0);
        assert_int_equal(day_weekday(d), 1);
        /* every month has its days: the 1st after its last is the next month's */
        for (int y = 1900; y < 2300; y++)
                for (unsigned m = 1; m <= 12; m++)
                        assert_int_equal(day_from_civil(y, m, day_days_in_month(y, m)) + 1,
                                         m == 12 ? day_from_civil(y + 1, 1, 1) : day_from_civil(y, m + 1, 1));
}

/* The days every supported ClickHouse stores and prints back. */
static void test_storable(void **state) {
        (void)state;
        char buf[DAY_STRLEN];
        assert_string_equal(day_format(DAY_STORABLE_FIRST, buf), "1970-01-01");
        assert_string_equal(day_format(DAY_STORABLE_LAST, buf), "2105-12-31");
        assert_true(day_storable(DAY_STORABLE_FIRST) && day_storable(DAY_STORABLE_LAST));
        assert_false(day_storable(DAY_STORABLE_FIRST - 1) || day_storable(DAY_STORABLE_LAST + 1));
}

static void test_sort_unique(void **state) {
        (void)state;
        Day days[] = { 5, 3, 5, -1, 3, 9, 0 };
        size_t n = day_sort_unique(days, 7);
        assert_int_equal(n, 5);
        Day want[] = { -1, 0, 3, 5, 9 };
        assert_memory_equal(days, want, sizeof(want));
        assert_int_equal(day_sort_unique(days, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known),       cmocka_unit_test(test_bad),
                cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_month_and_weekday),
                cmocka_unit_test(test_sort_unique), cmocka_unit_test(test_storable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
