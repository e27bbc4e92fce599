/* The metric definitions of SPEC §2 that live in C (profit, AOV rounding,
 * column ranges) and the change check of SPEC §3 (which days get a row, with
 * which version), table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static DayStats stats(Day day, uint64_t orders, uint64_t items, Money revenue, Money cost) {
        DayStats s = { .day = day,
                       .total_orders = orders,
                       .total_items_sold = items,
                       .total_revenue = revenue,
                       .total_cost = cost };
        metrics_finish(&s);
        return s;
}

static void test_finish(void **state) {
        (void)state;
        DayStats s = stats(1, 2, 6, 3029, 1215);
        assert_true(s.total_profit == 1814);
        assert_true(s.average_order_value == 1515); /* 15.145 → 15.15 */
        s = stats(1, 0, 0, 0, 0);
        assert_true(s.average_order_value == 0); /* no orders: 0, not a division by zero */
        s = stats(1, 2, 1, 5, 9);
        assert_true(s.total_profit == -4);
        assert_true(s.average_order_value == 3); /* 0.025 → 0.03 */
        s = stats(1, 3, 0, 0, 0);                /* orders without items */
        assert_true(s.average_order_value == 0);
}

static void test_range(void **state) {
        (void)state;
        char err[256];
        DayStats ok = stats(0, UINT32_MAX, UINT32_MAX, 999999999999999, -999999999999999);
        ok.total_profit = 0; /* keep the derived value in range for this case */
        assert_int_equal(metrics_check_range(&ok, err, sizeof(err)), 0);

        DayStats s = stats(0, (uint64_t)UINT32_MAX + 1, 0, 0, 0);
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "1970-01-01"));
        assert_non_null(strstr(err, "total_orders 4294967296"));
        assert_non_null(strstr(err, "UInt32"));

        s = stats(20782, 1, 1, 1000000000000000, 0);
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "day 2026-11-25"));
        assert_non_null(strstr(err, "total_revenue 10000000000000.00"));
        assert_non_null(strstr(err, "Decimal(15, 2)"));

        /* the largest sums money_parse accepts, of opposite signs: the
         * profit is exact; beyond them it saturates, and fails the range
         * check instead of overflowing (issue 11 item 14, UBSan) */
        s = stats(20782, 1, 1, MONEY_MAX, MONEY_MIN);
        assert_true(s.total_profit == (Money)(((unsigned __int128)1 << 127) - 2));
        s = stats(20782, 1, 1, (Money)((unsigned __int128)1 << 126), -(Money)((unsigned __int128)1 << 126));
        assert_true(s.total_profit == MONEY_MAX);
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "total_revenue"));
        s.total_revenue = 0;
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "total_cost"));
        s.total_cost = 0;
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "total_profit 850705917302346158658436518579420528.63"));
        s = stats(20782, 1, 1, -(Money)((unsigned __int128)1 << 126) - 1, (Money)((unsigned __int128)1 << 126));
        assert_true(s.total_profit == MONEY_MIN);

        /* revenue and cost fit but their difference does not */
        s = stats(20782, 1, 1, 999999999999999, -999999999999999);
        assert_int_equal(metrics_check_range(&s, err, sizeof(err)), -ERANGE);
        assert_non_null(strstr(err, "total_profit"));
}

static void test_plan_writes(void **state) {
        (void)state;
        DayStats computed[4] = {
                stats(10, 1, 1, 310, 100), /* same as stored (stored printed as 3.1 or 3.10: same value) */
                stats(11, 2, 2, 500, 100), /* changed */
                stats(12, 0, 0, 0, 0),     /* never stored: zero row */
                stats(13, 1, 1, 100, 0),   /* stored from a newer snapshot than ours: it stands */
        };
        StoredDay stored[] = {
                { stats(10, 1, 1, 310, 100), 50 }, { stats(11, 2, 2, 400, 100), 60 },
                { stats(11, 2, 2, 500, 100), 40 }, /* older row of day 11: the newest decides */
                { stats(13, 1, 1, 999, 0), 5000 }, { stats(99, 1, 1, 1, 1), 1 }, /* a day not computed */
        };
        uint64_t versions[4];
        size_t n = metrics_plan_writes(computed, 4, stored, 5, 1000, 1000, versions, NULL);
        assert_int_equal(n, 2);
        assert_true(versions[0] == 0);
        assert_true(versions[1] == 1000);
        assert_true(versions[2] == 1000);
        assert_true(versions[3] == 0); /* never overwritten with older numbers */

        /* a second attempt of the same run takes a greater version than the first */
        assert_int_equal(metrics_plan_writes(computed, 4, stored, 5, 1000, 1002, versions, NULL), 2);
        assert_true(versions[1] == 1002 && versions[2] == 1002);
        /* and stays above a stored row of the run's own snapshot time */
        StoredDay same_time[] = { { stats(11, 2, 2, 400, 100), 1002 } };
        assert_int_equal(metrics_plan_writes(&computed[1], 1, same_time, 1, 1002, 1002, versions, NULL), 1);
        assert_true(versions[0] == 1003);

        /* a second plan against what the first wrote writes nothing */
        StoredDay after[] = {
                { computed[0], 50 }, { computed[1], 1000 }, { computed[2], 1000 }, { stats(13, 1, 1, 999, 0), 5000 }
        };
        assert_int_equal(metrics_plan_writes(computed, 4, after, 4, 1000, 1001, versions, NULL), 0);
        for (size_t i = 0; i < 4; i++)
                assert_true(versions[i] == 0);

        /* nothing stored at all: everything is written at the run version */
        assert_int_equal(metrics_plan_writes(computed, 4, NULL, 0, 7, 7, versions, NULL), 4);
        for (size_t i = 0; i < 4; i++)
                assert_true(versions[i] == 7);

        /* a version beyond the source clock is corruption, reported (the
         * largest one: version + 1 would wrap to 0); up to a day ahead is a
         * newer snapshot, which stands */
        uint64_t corrupt[4];
        StoredDay broken[] = {
                { stats(10, 9, 9, 9, 9), UINT64_MAX },
                { stats(11, 9, 9, 9, 9), 1000 + METRICS_VERSION_AHEAD_MAX + 1 },
                { stats(12, 9, 9, 9, 9), 1000 + METRICS_VERSION_AHEAD_MAX },
                { computed[3], UINT64_MAX }, /* even with equal values: no change could ever replace it */
        };
        assert_int_equal(metrics_plan_writes(computed, 4, broken, 4, 1000, 1000, versions, corrupt), 0);
        assert_true(corrupt[0] == UINT64_MAX && corrupt[1] == 1000 + METRICS_VERSION_AHEAD_MAX + 1);
        assert_true(corrupt[2] == 0 && corrupt[3] == UINT64_MAX);
        for (size_t i = 0; i < 4; i++)
                assert_true(versions[i] == 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_finish),
                cmocka_unit_test(test_range),
                cmocka_unit_test(test_plan_writes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
