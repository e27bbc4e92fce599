/* Table-driven tests of duration_parse / duration_format: what operators may
 * write in salesd.yaml, what must be rejected, overflow, and that formatting
 * gives back a string that parses to the same value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"

static const struct {
        const char *text;
        usec_t usec;
} good[] = {
        { "0s", 0 },
        { "0ms", 0 },
        { "1ms", USEC_PER_MSEC },
        { "250ms", 250 * USEC_PER_MSEC },
        { "1s", USEC_PER_SEC },
        { "60s", USEC_PER_MINUTE },
        { "15m", 15 * USEC_PER_MINUTE },
        { "2h", 2 * USEC_PER_HOUR },
        { "1d", USEC_PER_DAY },
        { "1h30m", USEC_PER_HOUR + 30 * USEC_PER_MINUTE },
        { "1d2h3m4s5ms",
          USEC_PER_DAY + 2 * USEC_PER_HOUR + 3 * USEC_PER_MINUTE + 4 * USEC_PER_SEC + 5 * USEC_PER_MSEC },
        { "90m", 90 * USEC_PER_MINUTE },
        { "007s", 7 * USEC_PER_SEC },
        { "1500ms", 1500 * USEC_PER_MSEC },
        /* The largest whole number of days that fits in 64-bit microseconds. */
        { "213503982d", 213503982ULL * USEC_PER_DAY },
        { "18446744073709551ms", 18446744073709551ULL * USEC_PER_MSEC },
};

static const struct {
        const char *text;
        int error;
} bad[] = {
        { "", -EINVAL },
        { "5", -EINVAL },   /* no unit */
        { "5x", -EINVAL },  /* unknown unit */
        { "5M", -EINVAL },  /* units are lower case */
        { "5 m", -EINVAL }, /* no blanks */
        { " 5m", -EINVAL },
        { "5m ", -EINVAL },
        { "-5m", -EINVAL }, /* no sign */
        { "+5m", -EINVAL },
        { "m", -EINVAL },    /* unit without number */
        { "1h30", -EINVAL }, /* trailing number without unit */
        { "5mx", -EINVAL },
        { "5mss", -EINVAL },
        { "1.5h", -EINVAL }, /* no fractions */
        { "5us", -EINVAL },  /* not an accepted unit in the file */
        { "1h-30m", -EINVAL },
        { "213503983d", -ERANGE }, /* one day too many */
        { "18446744073709552ms", -ERANGE },
        { "99999999999999999999999s", -ERANGE }, /* the number alone overflows */
        { "213503982d1d", -ERANGE },             /* the sum overflows */
};

static void test_parse_good(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                usec_t d = 12345;
                int r = duration_parse(good[i].text, &d);
                if (r != 0 || d != good[i].usec)
                        fail_msg("'%s': r=%d d=%llu, want %llu", good[i].text, r, (unsigned long long)d,
                                 (unsigned long long)good[i].usec);
        }
}

static void test_parse_bad(void **state) {
        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                usec_t d = 12345;
                int r = duration_parse(bad[i].text, &d);
                if (r != bad[i].error)
                        fail_msg("'%s': r=%d, want %d", bad[i].text, r, bad[i].error);
                /* The out-parameter is untouched on failure. */
                assert_int_equal(d, 12345);
        }
        usec_t d;
        assert_int_equal(duration_parse(NULL, &d), -EINVAL);
}

static const struct {
        usec_t usec;
        const char *text;
} formats[] = {
        { 0, "0s" },
        { 250 * USEC_PER_MSEC, "250ms" },
        { USEC_PER_SEC, "1s" },
        { 60 * USEC_PER_SEC, "1m" },
        { 15 * USEC_PER_MINUTE, "15m" },
        { 90 * USEC_PER_MINUTE, "1h30m" },
        { USEC_PER_DAY + USEC_PER_SEC, "1d1s" },
        { 1500 * USEC_PER_MSEC, "1s500ms" },
        { 7 * USEC_PER_DAY, "7d" },
        { 1, "1us" }, /* sub-millisecond values still show exactly */
};

static void test_format(void **state) {
        char buf[64];
        (void)state;
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                assert_string_equal(duration_format(formats[i].usec, buf, sizeof(buf)), formats[i].text);
}

static void test_format_truncates_safely(void **state) {
        char buf[4];
        (void)state;
        duration_format(USEC_PER_DAY + USEC_PER_HOUR + USEC_PER_MINUTE, buf, sizeof(buf));
        assert_true(strlen(buf) < sizeof(buf));
        assert_string_equal(buf, "1d1");
}

static void test_round_trip(void **state) {
        (void)state;
        char buf[64];
        /* Every parsed value formats back to a string that parses to the same value. */
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                usec_t d, again;
                assert_int_equal(duration_parse(good[i].text, &d), 0);
                duration_format(d, buf, sizeof(buf));
                if (duration_parse(buf, &again) != 0 || again != d)
                        fail_msg("'%s' -> '%s' does not round-trip", good[i].text, buf);
        }
        /* And a sweep over awkward millisecond values. */
        for (usec_t ms = 0; ms < 200000000ULL; ms = ms * 3 + 7) {
                usec_t d = ms * USEC_PER_MSEC, again;
                duration_format(d, buf, sizeof(buf));
                assert_int_equal(duration_parse(buf, &again), 0);
                assert_true(again == d);
        }
        usec_t max = UINT64_MAX / USEC_PER_MSEC * USEC_PER_MSEC, again;
        duration_format(max, buf, sizeof(buf));
        assert_int_equal(duration_parse(buf, &again), 0);
        assert_true(again == max);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_format),     cmocka_unit_test(test_format_truncates_safely),
                cmocka_unit_test(test_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
