/* Unit tests for the comparison of lib/verify.c (SPEC §10): which days
 * differ and in which columns, values compared as numbers, rows from a
 * newer snapshot left alone, days without sales and without rows not
 * missing; and the audit's random pick of days. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "verify.h"

#define SNAPSHOT 1000

static DayStats stats(Day day, uint64_t orders, Money revenue, Money cost) {
        DayStats s = { .day = day,
                       .total_orders = orders,
                       .total_items_sold = orders,
                       .total_revenue = revenue,
                       .total_cost = cost };
        metrics_finish(&s);
        return s;
}

static StoredDay stored(DayStats s, uint64_t version) {
        return (StoredDay){ .stats = s, .version = version };
}

static void test_equal_days_match(void **state) {
        (void)state;
        DayStats computed[] = { stats(10, 2, 310, 100), stats(11, 0, 0, 0) };
        StoredDay rows[] = { stored(computed[0], 900), stored(computed[1], 900) };
        VerifyResult r;
        assert_int_equal(verify_compare(computed, 2, rows, 2, SNAPSHOT, &r), 0);
        assert_int_equal(r.days_checked, 2);
        assert_int_equal(r.n_diffs, 0);
        verify_result_done(&r);
}

static void test_one_column_off_is_named(void **state) {
        (void)state;
        DayStats computed[] = { stats(10, 2, 310, 100) };
        DayStats wrong = computed[0];
        wrong.total_revenue += 1; /* 3.11 */
        /* the older, right row and a newer, wrong one: the latest counts */
        StoredDay rows[] = { stored(computed[0], 900), stored(wrong, 901) };
        VerifyResult r;
        char text[128], v[MONEY_STRLEN];
        assert_int_equal(verify_compare(computed, 1, rows, 2, SNAPSHOT, &r), 0);
        assert_int_equal(r.n_diffs, 1);
        assert_false(r.diffs[0].missing);
        assert_int_equal(r.diffs[0].columns, 1u << 2);
        assert_int_equal(r.diffs[0].stored_version, 901);
        assert_string_equal(verify_columns_text(&r.diffs[0], text, sizeof(text)), "total_revenue");
        assert_string_equal(verify_column_value(&r.diffs[0].stored, 2, v, sizeof(v)), "3.11");
        assert_string_equal(verify_column_value(&r.diffs[0].computed, 2, v, sizeof(v)), "3.10");
        verify_result_done(&r);
}

static void test_several_columns(void **state) {
        (void)state;
        DayStats computed[] = { stats(10, 2, 310, 100) };
        DayStats wrong = stats(10, 3, 310, 100); /* orders, items and AOV differ */
        StoredDay rows[] = { stored(wrong, 5) };
        VerifyResult r;
        char text[128], v[MONEY_STRLEN];
        assert_int_equal(verify_compare(computed, 1, rows, 1, SNAPSHOT, &r), 0);
        assert_int_equal(r.n_diffs, 1);
        assert_string_equal(verify_columns_text(&r.diffs[0], text, sizeof(text)),
                            "total_orders, total_items_sold, average_order_value");
        assert_string_equal(verify_column_value(&r.diffs[0].stored, 0, v, sizeof(v)), "3");
        verify_result_done(&r);
}

static void test_missing_days(void **state) {
        (void)state;
        /* day 10 has sales and no row: missing; day 11 has neither: fine */
        DayStats computed[] = { stats(10, 1, 5, 1), stats(11, 0, 0, 0) };
        VerifyResult r;
        char text[32];
        assert_int_equal(verify_compare(computed, 2, NULL, 0, SNAPSHOT, &r), 0);
        assert_int_equal(r.days_checked, 2);
        assert_int_equal(r.n_diffs, 1);
        assert_true(r.diffs[0].missing);
        assert_int_equal(r.diffs[0].day, 10);
        assert_string_equal(verify_columns_text(&r.diffs[0], text, sizeof(text)), "missing");
        verify_result_done(&r);
}

static void test_newer_rows_are_not_compared(void **state) {
        (void)state;
        DayStats computed[] = { stats(10, 1, 5, 1), stats(11, 1, 5, 1) };
        StoredDay rows[] = { stored(stats(10, 9, 9, 9), SNAPSHOT + 1), stored(computed[1], SNAPSHOT) };
        VerifyResult r;
        assert_int_equal(verify_compare(computed, 2, rows, 2, SNAPSHOT, &r), 0);
        assert_int_equal(r.days_checked, 1);
        assert_int_equal(r.days_newer, 1);
        assert_int_equal(r.n_diffs, 0);
        verify_result_done(&r);
}

static uint64_t counter_rand(void *userdata) {
        uint64_t *x = userdata;
        *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
        return *x >> 11;
}

static void test_pick_days(void **state) {
        (void)state;
        const Day excluded[] = { 3, 5, 100 };
        Day got[16];
        uint64_t seed = 42;
        /* more asked than available: every candidate, in order */
        size_t n = verify_pick_days(1, 6, excluded, 3, 10, counter_rand, &seed, got);
        assert_int_equal(n, 4);
        assert_int_equal(got[0], 1);
        assert_int_equal(got[1], 2);
        assert_int_equal(got[2], 4);
        assert_int_equal(got[3], 6);
        /* k of them, distinct, sorted, never excluded */
        for (int round = 0; round < 50; round++) {
                n = verify_pick_days(1, 400, excluded, 3, 3, counter_rand, &seed, got);
                assert_int_equal(n, 3);
                for (size_t i = 0; i < n; i++) {
                        assert_true(got[i] >= 1 && got[i] <= 400 && got[i] != 3 && got[i] != 5);
                        if (i)
                                assert_true(got[i] > got[i - 1]);
                }
        }
        assert_int_equal(verify_pick_days(5, 4, NULL, 0, 3, counter_rand, &seed, got), 0);
        assert_int_equal(verify_pick_days(1, 10, NULL, 0, 0, counter_rand, &seed, got), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_equal_days_match),
                cmocka_unit_test(test_one_column_off_is_named),
                cmocka_unit_test(test_several_columns),
                cmocka_unit_test(test_missing_days),
                cmocka_unit_test(test_newer_rows_are_not_compared),
                cmocka_unit_test(test_pick_days),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
