/* One-line messages and whole unsigned numbers, table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

static void test_one_line(void **state) {
        (void)state;
        static const struct {
                const char *in;
                size_t len;
                const char *out;
        } cases[] = {
                { "FATAL:  password authentication failed\n", 100, "FATAL: password authentication failed" },
                { "  a\tb\n\nc  \n", 100, "a b c" },
                { "", 10, "" },
                { NULL, 10, "" },
                { "abcdefghij", 11, "abcdefghij" },    /* exactly fits */
                { "abcdefghijk", 11, "abcdefg..." },   /* cut, marked */
                { "abcdefghij   ", 11, "abcdefghij" }, /* trailing space is not a cut */
                { "abc", 3, ".." },
                { "abcdef", 4, "..." },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[128];
                memset(buf, 'x', sizeof(buf));
                assert_string_equal(text_one_line(cases[i].in, buf, cases[i].len), cases[i].out);
        }
}

static void test_parse_u64(void **state) {
        (void)state;
        static const struct {
                const char *in;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "42", 0, 42 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1.0", -EINVAL, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 7;
                assert_int_equal(text_parse_u64(cases[i].in, &v), cases[i].r);
                assert_true(v == (cases[i].r == 0 ? cases[i].v : 7));
        }
}

static void test_utf8_sanitize(void **state) {
        (void)state;
        static const struct {
                const char *in;
                size_t len;
                const char *out;
        } cases[] = {
                { "plain", 32, "plain" },
                { "h\xc3\xb6st \xe2\x82\xac \xf0\x9f\x98\x80", 32, "h\xc3\xb6st \xe2\x82\xac \xf0\x9f\x98\x80" },
                { "cut \xe2\x82", 32, "cut ??" },   /* a character cut by bytes */
                { "\xc0\x80", 32, "??" },           /* overlong NUL */
                { "\xed\xa0\x80", 32, "???" },      /* a surrogate */
                { "\xf4\x90\x80\x80", 32, "????" }, /* above U+10FFFF */
                { "\xff ok", 32, "? ok" },
                { "ab\xe2\x82\xac", 5, "ab" }, /* no room for the whole character */
                { NULL, 8, "" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[64];
                assert_string_equal(text_utf8_sanitize(cases[i].in, buf, cases[i].len), cases[i].out);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_line),
                cmocka_unit_test(test_parse_u64),
                cmocka_unit_test(test_utf8_sanitize),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
