/* The ClickHouse sink's row formats: what is written and what is read back,
 * in both servers' spellings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sink.h"

static void test_day_round_trip(void **state) {
        (void)state;
        DayStats s = {
                .day = 20782, .total_orders = 3, .total_items_sold = 30, .total_revenue = 1234567890123, .total_cost = 3
        };
        metrics_finish(&s);
        Buf b = { 0 };
        assert_int_equal(sink_format_day(&b, &s, 1795593600 * USEC_PER_SEC + 999999, 77), 0);
        assert_string_equal(b.data,
                            "2026-11-25\t3\t30\t12345678901.23\t0.03\t12345678901.20\t4115226300.41\t1795593600\t77\n");

        /* read back as the sink selects it (no computed_at), in the current
         * server's spelling without trailing zeros */
        char row[] = "2026-11-25\t3\t30\t12345678901.23\t0.03\t12345678901.2\t4115226300.41\t77";
        char err[200];
        StoredDay d;
        assert_int_equal(sink_parse_day(row, &d, err, sizeof(err)), 0);
        assert_true(metrics_equal(&d.stats, &s));
        assert_true(d.version == 77);
        buf_free(&b);
}

static void test_small_timestamps_are_padded(void **state) {
        (void)state;
        /* 18.16 reads fewer than 10 digits as a malformed date */
        DayStats s = { .day = 0 };
        Buf b = { 0 };
        assert_int_equal(sink_format_day(&b, &s, 5 * USEC_PER_SEC, 1), 0);
        assert_string_equal(b.data, "1970-01-01\t0\t0\t0.00\t0.00\t0.00\t0.00\t0000000005\t1\n");
        buf_free(&b);
}

/* 18.16 prints day 0 as 0000-00-00: it is 1970-01-01, the first storable day. */
static void test_parse_day_zero(void **state) {
        (void)state;
        char err[200];
        StoredDay d;
        char row[] = "0000-00-00\t1\t1\t1.00\t0.50\t0.50\t1.00\t7";
        assert_int_equal(sink_parse_day(row, &d, err, sizeof(err)), 0);
        assert_int_equal(d.stats.day, 0);
        char text[] = "1970-01-01\t1\t1\t1.00\t0.50\t0.50\t1.00\t7";
        assert_int_equal(sink_parse_day(text, &d, err, sizeof(err)), 0);
        assert_int_equal(d.stats.day, 0);
}

static void test_parse_day_errors(void **state) {
        (void)state;
        char err[200];
        StoredDay d;
        char short_row[] = "2026-11-25\t3";
        assert_int_equal(sink_parse_day(short_row, &d, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "expected 8 columns"));

        char bad_money[] = "2026-11-25\t3\t30\t12.345\t0\t0\t0\t1";
        assert_int_equal(sink_parse_day(bad_money, &d, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "total_revenue"));

        char negative_count[] = "2026-11-25\t-3\t30\t1\t0\t0\t0\t1";
        assert_int_equal(sink_parse_day(negative_count, &d, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "total_orders"));

        char bad_version[] = "2026-11-25\t3\t30\t1\t0\t0\t0\t18446744073709551616";
        assert_int_equal(sink_parse_day(bad_version, &d, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "version"));
}

static void test_run_row(void **state) {
        (void)state;
        RunRecord r = { .run_id = "0b5c5a4e-8d1e-4c39-9a4e-0d3b1f6a2c11",
                        .trigger = "http",
                        .status = RUN_STATUS_FAILED,
                        .started_at = 1795593600 * USEC_PER_SEC,
                        .finished_at = 1795593601 * USEC_PER_SEC + 5,
                        .days_recomputed = 2,
                        .days_written = 1,
                        .error = "clickhouse down\tline\nnext" };
        Buf b = { 0 };
        assert_int_equal(sink_format_run(&b, &r, "host\ta"), 0);
        assert_string_equal(b.data,
                            "0b5c5a4e-8d1e-4c39-9a4e-0d3b1f6a2c11\thost\\ta\thttp\t1795593600\t1795593601\tfailed"
                            "\t2\t1\tclickhouse down\\tline\\nnext\n");
        buf_free(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_day_round_trip), cmocka_unit_test(test_small_timestamps_are_padded),
                cmocka_unit_test(test_parse_day_zero), cmocka_unit_test(test_parse_day_errors),
                cmocka_unit_test(test_run_row),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
