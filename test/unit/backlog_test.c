/* The salesd_runs backlog against a fake sink: the cap of 1000 with its
 * dropped counter, rows already stored are not sent twice, a failed write
 * keeps everything for the next one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backlog.h"
#include "fake_sink.h"

static RunRecord record(unsigned i) {
        RunRecord r = { .trigger = "schedule", .status = RUN_STATUS_FAILED };
        snprintf(r.run_id, sizeof(r.run_id), "00000000-0000-4000-8000-%012u", i);
        return r;
}

static int flush(RunBacklog *b, FakeSink *f, unsigned id) {
        char err[256] = "";
        RunRecord r = record(id);
        return run_backlog_flush(b, f ? &f->base : NULL, &r, "host-a", err, sizeof(err));
}

static void test_cap_and_dropped_counter(void **state) {
        (void)state;
        RunBacklog *b;
        uint64_t dropped = 99;
        assert_int_equal(run_backlog_new(&b), 0);
        assert_int_equal(run_backlog_pending(b, &dropped), 0);
        assert_true(dropped == 0);
        for (unsigned i = 0; i < RUN_BACKLOG_MAX + 5; i++)
                run_backlog_push(b, &(RunRecord){ 0 });
        assert_int_equal(run_backlog_pending(b, &dropped), RUN_BACKLOG_MAX);
        assert_true(dropped == 5);
        run_backlog_free(b);
}

static void test_oldest_rows_are_dropped(void **state) {
        (void)state;
        RunBacklog *b;
        FakeSink *f = fake_sink_new();
        assert_int_equal(run_backlog_new(&b), 0);
        /* ClickHouse down: every run's row waits (no sink could be opened) */
        for (unsigned i = 0; i < RUN_BACKLOG_MAX + 3; i++)
                assert_int_equal(flush(b, NULL, i), -ENOTCONN);
        uint64_t dropped;
        assert_int_equal(run_backlog_pending(b, &dropped), RUN_BACKLOG_MAX);
        assert_true(dropped == 3);
        /* back up: the waiting rows and the new one go out in one insert, oldest first */
        assert_int_equal(flush(b, f, 5000), 0);
        assert_int_equal(f->run_inserts, 1);
        assert_int_equal(f->n_runs, RUN_BACKLOG_MAX + 1);
        assert_string_equal(f->runs[0].run_id, record(3).run_id);
        assert_string_equal(f->runs[RUN_BACKLOG_MAX].run_id, record(5000).run_id);
        assert_int_equal(run_backlog_pending(b, &dropped), 0);
        assert_true(dropped == 3); /* the counter is a total */
        run_backlog_free(b);
        free(f);
}

static void test_failed_write_keeps_rows(void **state) {
        (void)state;
        RunBacklog *b;
        FakeSink *f = fake_sink_new();
        assert_int_equal(run_backlog_new(&b), 0);
        f->fail_inserts = 2, f->fail_error = -ECONNREFUSED;
        assert_int_equal(flush(b, f, 1), -ECONNREFUSED);
        assert_int_equal(flush(b, f, 2), -ECONNREFUSED);
        assert_int_equal(run_backlog_pending(b, NULL), 2);
        assert_int_equal(flush(b, f, 3), 0);
        assert_int_equal(run_backlog_pending(b, NULL), 0);
        assert_int_equal(f->n_runs, 3);
        run_backlog_free(b);
        free(f);
}

static void test_stored_rows_are_not_sent_twice(void **state) {
        (void)state;
        RunBacklog *b;
        FakeSink *f = fake_sink_new();
        assert_int_equal(run_backlog_new(&b), 0);
        /* the insert landed but its answer was lost: the row waits, yet it is stored */
        f->fail_inserts = 1, f->fail_landed = true, f->fail_error = -ETIMEDOUT;
        assert_int_equal(flush(b, f, 1), -ETIMEDOUT);
        assert_int_equal(f->n_runs, 1);
        assert_int_equal(run_backlog_pending(b, NULL), 1);
        assert_int_equal(flush(b, f, 2), 0);
        assert_int_equal(f->n_runs, 2); /* run 1 once, run 2 once */
        assert_string_equal(f->runs[1].run_id, record(2).run_id);
        assert_int_equal(run_backlog_pending(b, NULL), 0);
        run_backlog_free(b);
        free(f);
}

static void test_lookup_failure_keeps_rows(void **state) {
        (void)state;
        RunBacklog *b;
        FakeSink *f = fake_sink_new();
        assert_int_equal(run_backlog_new(&b), 0);
        assert_int_equal(flush(b, NULL, 1), -ENOTCONN);
        f->fail_reads = 1, f->fail_error = -ECONNRESET;
        assert_int_equal(flush(b, f, 2), -ECONNRESET);
        assert_int_equal(f->run_inserts, 0); /* nothing sent without knowing what is stored */
        assert_int_equal(run_backlog_pending(b, NULL), 2);
        run_backlog_free(b);
        free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cap_and_dropped_counter),   cmocka_unit_test(test_oldest_rows_are_dropped),
                cmocka_unit_test(test_failed_write_keeps_rows),   cmocka_unit_test(test_stored_rows_are_not_sent_twice),
                cmocka_unit_test(test_lookup_failure_keeps_rows),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
