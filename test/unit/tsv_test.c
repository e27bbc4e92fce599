/* TabSeparated escaping and splitting: what salesd writes must come back
 * field for field, and what ClickHouse escapes must be undone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsv.h"

static void test_escape(void **state) {
        (void)state;
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain", "plain" },
                { "a\tb", "a\\tb" },
                { "line1\nline2", "line1\\nline2" },
                { "back\\slash", "back\\\\slash" },
                { "it's", "it\\'s" },
                { "cr\r", "cr\\r" },
                { "", "" },
                { "\b\f", "\\b\\f" },
                { "naïve ünïcödé", "naïve ünïcödé" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Buf b = { 0 };
                assert_int_equal(tsv_append_escaped(&b, cases[i].in), 0);
                assert_string_equal(b.data ? b.data : "", cases[i].out);
                buf_free(&b);
        }
}

static void test_round_trip(void **state) {
        (void)state;
        const char *fields[] = { "id-1", "tab\there", "new\nline", "slash\\", "quote'", "", "end" };
        size_t n = sizeof(fields) / sizeof(fields[0]);
        Buf b = { 0 };
        for (size_t i = 0; i < n; i++) {
                if (i)
                        buf_puts(&b, "\t");
                tsv_append_escaped(&b, fields[i]);
        }
        buf_puts(&b, "\n");
        char *cursor = b.data, *line = tsv_next_line(&cursor);
        assert_non_null(line);
        char *out[16];
        assert_int_equal(tsv_split(line, out, 16), (int)n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(out[i], fields[i]);
        assert_null(tsv_next_line(&cursor));
        buf_free(&b);
}

static void test_lines(void **state) {
        (void)state;
        char body[] = "a\tb\nc\td\n\ne";
        char *cursor = body;
        assert_string_equal(tsv_next_line(&cursor), "a\tb");
        assert_string_equal(tsv_next_line(&cursor), "c\td");
        assert_string_equal(tsv_next_line(&cursor), "");  /* an empty line is a line */
        assert_string_equal(tsv_next_line(&cursor), "e"); /* last line without newline */
        assert_null(tsv_next_line(&cursor));
        char empty[] = "";
        cursor = empty;
        assert_null(tsv_next_line(&cursor));
}

static void test_split_errors(void **state) {
        (void)state;
        char three[] = "a\tb\tc";
        char *out[2];
        assert_int_equal(tsv_split(three, out, 2), -E2BIG);
        char dangling[] = "abc\\";
        char *one[2];
        assert_int_equal(tsv_split(dangling, one, 2), -EINVAL);
        /* ClickHouse 18.16 prints DateTime('UTC') as DateTime(\'UTC\') */
        char type[] = "DateTime(\\'UTC\\')";
        assert_int_equal(tsv_split(type, one, 2), 1);
        assert_string_equal(one[0], "DateTime('UTC')");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_split_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
