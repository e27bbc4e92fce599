/* The watermark rules of SPEC §4 that live in C: the stored text shape, the
 * scan's lower bound (watermark − overlap) and the next watermark (the
 * smaller of the newest change and the late-commit guard, never backwards). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "watermark.h"

static void test_parse_format(void **state) {
        (void)state;
        static const struct {
                const char *text;
                usec_t usec;
        } good[] = {
                { "1970-01-01T00:00:00.000000Z", 0 },
                { "1970-01-01T00:00:00.000001Z", 1 },
                { "2026-11-25T07:00:00.123456Z", 1795590000123456ULL },
                { "2024-02-29T23:59:59.999999Z", 1709251199999999ULL },
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                usec_t t = 42;
                char buf[WATERMARK_STRLEN];
                assert_int_equal(watermark_parse(good[i].text, &t), 0);
                assert_true(t == good[i].usec);
                assert_string_equal(watermark_format(t, buf), good[i].text);
        }
        static const char *const bad[] = {
                "",
                "2026-11-25T07:00:00Z",          /* no microseconds */
                "2026-11-25 07:00:00.123456Z",   /* blank instead of T */
                "2026-11-25T07:00:00.123456+00", /* Postgres's own spelling */
                "2026-11-25T24:00:00.000000Z",
                "2026-11-25T07:60:00.000000Z",
                "2026-02-30T07:00:00.000000Z",
                "2026-11-25T07:00:00.12345xZ",
                "1969-12-31T23:59:59.999999Z", /* before the epoch */
                "2026-11-25T07:00:00.123456Z ",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                usec_t t = 42;
                if (watermark_parse(bad[i], &t) != -EINVAL)
                        fail_msg("watermark_parse accepted '%s'", bad[i]);
                assert_true(t == 42);
        }
        assert_int_equal(watermark_parse(NULL, NULL), -EINVAL);
}

static void test_since(void **state) {
        (void)state;
        static const struct {
                const char *watermark;
                usec_t overlap;
                const char *since;
        } cases[] = {
                { "", 15 * USEC_PER_MINUTE, "-infinity" }, /* no watermark: everything */
                { NULL, 0, "-infinity" },
                { "2026-11-25T07:00:00.000000Z", 15 * USEC_PER_MINUTE, "2026-11-25T06:45:00.000000Z" },
                { "2026-11-25T00:10:00.000001Z", 15 * USEC_PER_MINUTE, "2026-11-24T23:55:00.000001Z" },
                { "2026-03-01T00:00:00.000000Z", USEC_PER_DAY, "2026-02-28T00:00:00.000000Z" },
                { "2024-03-01T00:00:00.000000Z", USEC_PER_DAY, "2024-02-29T00:00:00.000000Z" },
                { "2026-11-25T07:00:00.000000Z", 0, "2026-11-25T07:00:00.000000Z" },
                { "1970-01-01T00:05:00.000000Z", 15 * USEC_PER_MINUTE, "-infinity" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char since[WATERMARK_STRLEN];
                assert_int_equal(watermark_since(cases[i].watermark, cases[i].overlap, since), 0);
                assert_string_equal(since, cases[i].since);
        }
        char since[WATERMARK_STRLEN];
        assert_int_equal(watermark_since("garbage", 0, since), -EINVAL);
}

static void test_next(void **state) {
        (void)state;
        static const struct {
                const char *current, *max_changed, *guard;
                const char *next; /* NULL: does not advance */
        } cases[] = {
                /* first run: the newest change */
                { "", "2026-11-25T07:00:00.000000Z", "", "2026-11-25T07:00:00.000000Z" },
                /* an older open transaction holds it back, to just before its start */
                { "", "2026-11-25T07:00:00.000000Z", "2026-11-25T06:00:00.000000Z", "2026-11-25T05:59:59.999999Z" },
                /* a transaction that started exactly at the newest change */
                { "", "2026-11-25T07:00:00.000000Z", "2026-11-25T07:00:00.000000Z", "2026-11-25T06:59:59.999999Z" },
                /* a younger open transaction does not matter */
                { "", "2026-11-25T07:00:00.000000Z", "2026-11-25T08:00:00.000000Z", "2026-11-25T07:00:00.000000Z" },
                /* advances past the current one */
                { "2026-11-25T06:00:00.000000Z", "2026-11-25T07:00:00.000000Z", "", "2026-11-25T07:00:00.000000Z" },
                /* never backwards: guard older than the current watermark */
                { "2026-11-25T06:00:00.000000Z", "2026-11-25T07:00:00.000000Z", "2026-11-25T05:00:00.000000Z", NULL },
                /* nothing new */
                { "2026-11-25T07:00:00.000000Z", "2026-11-25T07:00:00.000000Z", "", NULL },
                /* rows deleted: the newest change is older than the watermark */
                { "2026-11-25T07:00:00.000000Z", "2026-11-25T06:59:59.999999Z", "", NULL },
                /* empty source */
                { "", "", "2026-11-25T06:00:00.000000Z", NULL },
                /* microsecond resolution */
                { "2026-11-25T07:00:00.000000Z", "2026-11-25T07:00:00.000001Z", "", "2026-11-25T07:00:00.000001Z" },
                /* never a watermark that cannot be read back (issue 11 item 4; the
                 * source caps the newest change at its clock, this is the last
                 * line): year 10000 (to_char's 5-digit year), before 1970, BC
                 * (to_char prints no era) do not advance it */
                { "", "10000-01-01T00:00:00.000000Z", "2026-11-25T06:00:00.000000Z", NULL },
                { "", "10000-01-01T00:00:00.000000Z", "", NULL },
                { "2026-11-25T06:00:00.000000Z", "10000-01-01T00:00:00.000000Z", "", NULL },
                { "", "0044-03-15T12:00:00.000000Z", "2026-11-25T06:00:00.000000Z", NULL },
                { "", "1850-03-15T12:00:00.000000Z", "2026-11-25T06:00:00.000000Z", NULL },
                { "", "infinity", "2026-11-25T06:00:00.000000Z", NULL },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char next[WATERMARK_STRLEN] = "untouched";
                bool advanced = watermark_next(cases[i].current, cases[i].max_changed, cases[i].guard, next);
                if (cases[i].next) {
                        assert_true(advanced);
                        assert_string_equal(next, cases[i].next);
                } else {
                        assert_false(advanced);
                        assert_string_equal(next, "untouched");
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_format),
                cmocka_unit_test(test_since),
                cmocka_unit_test(test_next),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
