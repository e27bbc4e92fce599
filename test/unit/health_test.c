/* Unit tests for lib/health.c: failure streaks, the three health states and
 * their boundaries, the /healthz JSON (parsed back with jansson) and the
 * exact lines of the Prometheus exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "health.h"

/* 2026-11-25T07:00:00Z */
#define T0     ((usec_t)1795590000ULL * USEC_PER_SEC)
#define PERIOD (6 * USEC_PER_HOUR)

static Health new_health(void) {
        Health h;
        memset(&h, 0, sizeof(h));
        h.instance = "host-a";
        h.version = "1.2.3";
        h.ready = true;
        h.started_at = T0;
        return h;
}

static RunRecord new_run(RunStatus status, usec_t started, usec_t duration) {
        RunRecord r;
        memset(&r, 0, sizeof(r));
        snprintf(r.run_id, sizeof(r.run_id), "0f8fad5b-d9cb-469f-a165-70867728950e");
        r.trigger = "schedule";
        r.status = status;
        r.started_at = started;
        r.finished_at = started + duration;
        return r;
}

static void record(Health *h, RunStatus status, usec_t started, usec_t duration) {
        RunRecord r = new_run(status, started, duration);
        health_record_run(h, &r);
}

static void test_names(void **state) {
        (void)state;
        assert_string_equal(run_status_to_string(RUN_STATUS_SUCCESS), "success");
        assert_string_equal(run_status_to_string(RUN_STATUS_FAILED), "failed");
        assert_string_equal(run_status_to_string(RUN_STATUS_SKIPPED), "skipped");
        assert_string_equal(health_state_to_string(HEALTH_OK), "ok");
        assert_string_equal(health_state_to_string(HEALTH_STANDBY), "standby");
        assert_string_equal(health_state_to_string(HEALTH_FAILING), "failing");
}

static void test_format_time(void **state) {
        char buf[64];
        (void)state;
        assert_string_equal(health_format_time(T0, buf, sizeof(buf)), "2026-11-25T07:00:00Z");
        /* Sub-second parts are cut, not rounded. */
        assert_string_equal(health_format_time(T0 + 999999, buf, sizeof(buf)), "2026-11-25T07:00:00Z");
        assert_string_equal(health_format_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
}

static void test_record_counters(void **state) {
        Health h = new_health();
        (void)state;

        RunRecord r = new_run(RUN_STATUS_SUCCESS, T0, 2 * USEC_PER_SEC);
        r.days_recomputed = 3;
        r.days_written = 2;
        health_record_run(&h, &r);
        assert_true(h.has_last_run);
        assert_int_equal(h.runs_total[RUN_STATUS_SUCCESS], 1);
        assert_int_equal(h.days_recomputed_total, 3);
        assert_int_equal(h.days_written_total, 2);
        assert_int_equal(h.last_success, T0 + 2 * USEC_PER_SEC);
        assert_int_equal(h.last_ok_or_skipped, T0 + 2 * USEC_PER_SEC);

        r = new_run(RUN_STATUS_FAILED, T0 + USEC_PER_HOUR, USEC_PER_SEC);
        r.days_written = 5; /* a run that wrote some days and then failed */
        snprintf(r.error, sizeof(r.error), "clickhouse down");
        health_record_run(&h, &r);
        assert_int_equal(h.runs_total[RUN_STATUS_FAILED], 1);
        assert_int_equal(h.days_written_total, 7);
        assert_int_equal(h.last_success, T0 + 2 * USEC_PER_SEC);
        assert_int_equal(h.last_run.status, RUN_STATUS_FAILED);
        assert_string_equal(h.last_run.error, "clickhouse down");

        record(&h, RUN_STATUS_SKIPPED, T0 + 2 * USEC_PER_HOUR, 10 * USEC_PER_MSEC);
        assert_int_equal(h.runs_total[RUN_STATUS_SKIPPED], 1);
        assert_int_equal(h.last_success, T0 + 2 * USEC_PER_SEC);
        assert_int_equal(h.last_ok_or_skipped, T0 + 2 * USEC_PER_HOUR + 10 * USEC_PER_MSEC);
        assert_int_equal(h.duration[HEALTH_TRIGGER_SCHEDULE].count, 3);
        assert_int_equal(h.duration[HEALTH_TRIGGER_SCHEDULE].sum, 3 * USEC_PER_SEC + 10 * USEC_PER_MSEC);
}

static void test_streaks(void **state) {
        Health h = new_health();
        (void)state;

        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        assert_int_equal(h.consecutive_failures, 2);
        record(&h, RUN_STATUS_SUCCESS, T0, USEC_PER_SEC);
        assert_int_equal(h.consecutive_failures, 0);
        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        /* A skip is not a failure, and it ends the run of failures. */
        record(&h, RUN_STATUS_SKIPPED, T0, USEC_PER_SEC);
        assert_int_equal(h.consecutive_failures, 0);
        for (int i = 1; i <= 4; i++) {
                record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
                assert_int_equal(h.consecutive_failures, i);
        }
}

static void test_state_fresh_daemon(void **state) {
        Health h = new_health();
        (void)state;

        assert_int_equal(health_state(&h, T0, PERIOD), HEALTH_OK);
        /* No run yet: measured from the daemon's start; exactly 2 periods is
         * still fine, one microsecond more is not. */
        assert_int_equal(health_state(&h, T0 + 2 * PERIOD, PERIOD), HEALTH_OK);
        assert_int_equal(health_state(&h, T0 + 2 * PERIOD + 1, PERIOD), HEALTH_FAILING);
        /* Unknown period: no staleness rule. */
        assert_int_equal(health_state(&h, T0 + 100 * PERIOD, 0), HEALTH_OK);
        /* A clock that stepped back never makes it stale. */
        assert_int_equal(health_state(&h, T0 - USEC_PER_DAY, PERIOD), HEALTH_OK);
}

static void test_state_failures(void **state) {
        Health h = new_health();
        usec_t now = T0 + USEC_PER_HOUR;
        (void)state;

        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        assert_int_equal(health_state(&h, now, PERIOD), HEALTH_OK);
        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        assert_int_equal(health_state(&h, now, PERIOD), HEALTH_OK);
        record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        assert_int_equal(health_state(&h, now, PERIOD), HEALTH_FAILING);
        record(&h, RUN_STATUS_SUCCESS, T0 + 2 * USEC_PER_HOUR, USEC_PER_SEC);
        assert_int_equal(health_state(&h, T0 + 3 * USEC_PER_HOUR, PERIOD), HEALTH_OK);
}

static void test_state_standby(void **state) {
        Health h = new_health();
        (void)state;

        record(&h, RUN_STATUS_SUCCESS, T0, USEC_PER_SEC);
        record(&h, RUN_STATUS_SKIPPED, T0 + PERIOD, USEC_PER_SEC);
        assert_int_equal(health_state(&h, T0 + PERIOD + USEC_PER_MINUTE, PERIOD), HEALTH_STANDBY);
        /* Skips keep a standby instance fresh: measured from the last skip,
         * not from the last success. */
        usec_t skip_end = T0 + PERIOD + USEC_PER_SEC;
        assert_int_equal(health_state(&h, skip_end + 2 * PERIOD, PERIOD), HEALTH_STANDBY);
        assert_int_equal(health_state(&h, skip_end + 2 * PERIOD + 1, PERIOD), HEALTH_FAILING);
        /* The next run got the lock and failed: not standby any more. */
        record(&h, RUN_STATUS_FAILED, T0 + 2 * PERIOD, USEC_PER_SEC);
        assert_int_equal(health_state(&h, T0 + 2 * PERIOD + USEC_PER_MINUTE, PERIOD), HEALTH_OK);
}

static void test_state_stale_after_success(void **state) {
        Health h = new_health();
        (void)state;

        record(&h, RUN_STATUS_SUCCESS, T0 + USEC_PER_HOUR, 30 * USEC_PER_SEC);
        usec_t end = T0 + USEC_PER_HOUR + 30 * USEC_PER_SEC;
        /* Failures do not refresh the reference time. */
        record(&h, RUN_STATUS_FAILED, end + PERIOD, USEC_PER_SEC);
        assert_int_equal(health_state(&h, end + 2 * PERIOD, PERIOD), HEALTH_OK);
        assert_int_equal(health_state(&h, end + 2 * PERIOD + 1, PERIOD), HEALTH_FAILING);
        /* Even long after the daemon's start, a recent success keeps it OK. */
        assert_int_equal(health_state(&h, end + PERIOD, PERIOD), HEALTH_OK);
}

static json_t *parse(const char *s) {
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        if (!j)
                fail_msg("invalid JSON (%s): %s", e.text, s);
        return j;
}

static void test_json_no_run(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;

        h.ready = false;
        char *s = health_render_json(&h, T0 + 60 * USEC_PER_SEC, PERIOD, &status);
        assert_non_null(s);
        assert_int_equal(status, 200);
        json_t *j = parse(s);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
        assert_string_equal(json_string_value(json_object_get(j, "instance")), "host-a");
        assert_string_equal(json_string_value(json_object_get(j, "version")), "1.2.3");
        assert_true(json_is_null(json_object_get(j, "last_run")));
        assert_true(json_is_null(json_object_get(j, "last_success")));
        assert_true(json_is_null(json_object_get(j, "next_run")));
        assert_true(json_is_null(json_object_get(j, "watermark")));
        assert_true(json_is_null(json_object_get(j, "complete_as_of")));
        assert_true(json_is_null(json_object_get(j, "running")));
        assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 0);
        assert_true(json_is_false(json_object_get(j, "ready")));
        json_decref(j);
        free(s);
}

/* A run in progress is reported; once past its deadline it is overdue and
 * the daemon is failing (503) until the run ends. */
static void test_json_running_and_overdue(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;

        h.running = true;
        h.running_trigger = "notify";
        h.running_started_at = T0;
        h.running_deadline = T0 + 30 * USEC_PER_MINUTE;
        for (int overdue = 0; overdue <= 1; overdue++) {
                h.running_overdue = overdue;
                assert_int_equal(health_state(&h, T0 + USEC_PER_HOUR, PERIOD), overdue ? HEALTH_FAILING : HEALTH_OK);
                char *s = health_render_json(&h, T0 + USEC_PER_HOUR, PERIOD, &status);
                assert_non_null(s);
                assert_int_equal(status, overdue ? 503 : 200);
                json_t *j = parse(s);
                json_t *r = json_object_get(j, "running");
                assert_string_equal(json_string_value(json_object_get(j, "status")), overdue ? "failing" : "ok");
                assert_string_equal(json_string_value(json_object_get(r, "trigger")), "notify");
                assert_string_equal(json_string_value(json_object_get(r, "started_at")), "2026-11-25T07:00:00Z");
                assert_string_equal(json_string_value(json_object_get(r, "deadline")), "2026-11-25T07:30:00Z");
                assert_true(json_is_boolean(json_object_get(r, "overdue")));
                assert_int_equal(json_is_true(json_object_get(r, "overdue")), overdue);
                json_decref(j);
                free(s);
        }
        /* the flag alone, without a run, means nothing */
        h.running = false;
        assert_int_equal(health_state(&h, T0 + USEC_PER_HOUR, PERIOD), HEALTH_OK);
}

static void test_json_with_an_error_cut_inside_a_character(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;
        /* a server's message in another language, cut by bytes: /healthz must still answer */
        RunRecord r = new_run(RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        snprintf(r.error, sizeof(r.error), "clickhouse: Ошибка \xd0");
        health_record_run(&h, &r);
        char *s = health_render_json(&h, T0 + USEC_PER_MINUTE, PERIOD, &status);
        assert_non_null(s);
        assert_int_equal(status, 200);
        json_t *j = parse(s);
        const char *err = json_string_value(json_object_get(json_object_get(j, "last_run"), "error"));
        assert_string_equal(err, "clickhouse: Ошибка ?");
        json_decref(j);
        free(s);
}

static void test_json_with_run(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;

        RunRecord r = new_run(RUN_STATUS_SUCCESS, T0, 12 * USEC_PER_SEC + 345678);
        r.trigger = "http";
        r.days_recomputed = 2;
        r.days_written = 1;
        health_record_run(&h, &r);
        h.next_run = T0 + PERIOD;
        h.watermark = T0 - 5 * USEC_PER_MINUTE + 123;
        h.complete_as_of = T0 + 11 * USEC_PER_SEC;

        char *s = health_render_json(&h, T0 + USEC_PER_MINUTE, PERIOD, &status);
        assert_non_null(s);
        assert_int_equal(status, 200);
        json_t *j = parse(s);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
        assert_string_equal(json_string_value(json_object_get(j, "last_success")), "2026-11-25T07:00:12Z");
        assert_string_equal(json_string_value(json_object_get(j, "next_run")), "2026-11-25T13:00:00Z");
        assert_string_equal(json_string_value(json_object_get(j, "watermark")), "2026-11-25T06:55:00Z");
        assert_string_equal(json_string_value(json_object_get(j, "complete_as_of")), "2026-11-25T07:00:11Z");
        assert_true(json_is_true(json_object_get(j, "ready")));
        json_t *lr = json_object_get(j, "last_run");
        assert_true(json_is_object(lr));
        assert_string_equal(json_string_value(json_object_get(lr, "run_id")), "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert_string_equal(json_string_value(json_object_get(lr, "trigger")), "http");
        assert_string_equal(json_string_value(json_object_get(lr, "status")), "success");
        assert_string_equal(json_string_value(json_object_get(lr, "started_at")), "2026-11-25T07:00:00Z");
        assert_string_equal(json_string_value(json_object_get(lr, "finished_at")), "2026-11-25T07:00:12Z");
        assert_string_equal(json_string_value(json_object_get(lr, "duration_seconds")), "12.345");
        assert_int_equal(json_integer_value(json_object_get(lr, "days_recomputed")), 2);
        assert_int_equal(json_integer_value(json_object_get(lr, "days_written")), 1);
        assert_string_equal(json_string_value(json_object_get(lr, "error")), "");
        json_decref(j);
        free(s);
}

static void test_json_failing_and_standby(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;

        record(&h, RUN_STATUS_SKIPPED, T0, 20 * USEC_PER_MSEC);
        snprintf(h.last_run.error, sizeof(h.last_run.error), "lock held by another instance");
        char *s = health_render_json(&h, T0 + USEC_PER_MINUTE, PERIOD, &status);
        assert_non_null(s);
        assert_int_equal(status, 200);
        json_t *j = parse(s);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "standby");
        json_t *lr = json_object_get(j, "last_run");
        assert_string_equal(json_string_value(json_object_get(lr, "status")), "skipped");
        assert_string_equal(json_string_value(json_object_get(lr, "duration_seconds")), "0.020");
        assert_string_equal(json_string_value(json_object_get(lr, "error")), "lock held by another instance");
        json_decref(j);
        free(s);

        for (int i = 0; i < 3; i++) {
                RunRecord r = new_run(RUN_STATUS_FAILED, T0 + USEC_PER_HOUR, USEC_PER_SEC);
                snprintf(r.error, sizeof(r.error), "cannot connect to \"pg\"\n");
                health_record_run(&h, &r);
        }
        s = health_render_json(&h, T0 + 2 * USEC_PER_HOUR, PERIOD, &status);
        assert_non_null(s);
        assert_int_equal(status, 503);
        j = parse(s);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "failing");
        assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 3);
        lr = json_object_get(j, "last_run");
        assert_string_equal(json_string_value(json_object_get(lr, "error")), "cannot connect to \"pg\"\n");
        assert_true(json_is_null(json_object_get(j, "last_success")));
        json_decref(j);
        free(s);
}

static void assert_has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return;
        fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

static void assert_no_line_prefix(const char *text, const char *prefix) {
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, prefix, strlen(prefix)) == 0)
                        fail_msg("unexpected line starting with %s", prefix);
}

static void test_metrics_empty(void **state) {
        Health h = new_health();
        (void)state;

        h.ready = false;
        char *m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "# TYPE salesd_runs_total counter");
        assert_has_line(m, "salesd_runs_total{status=\"success\"} 0");
        assert_has_line(m, "salesd_runs_total{status=\"failed\"} 0");
        assert_has_line(m, "salesd_runs_total{status=\"skipped\"} 0");
        for (size_t i = 0; i < 6; i++) {
                static const char *const triggers[] = { "start", "schedule", "signal", "http", "notify", "other" };
                char line[128];
                snprintf(line, sizeof(line), "salesd_run_duration_seconds_bucket{trigger=\"%s\",le=\"+Inf\"} 0",
                         triggers[i]);
                assert_has_line(m, line);
                snprintf(line, sizeof(line), "salesd_run_duration_seconds_sum{trigger=\"%s\"} 0", triggers[i]);
                assert_has_line(m, line);
                snprintf(line, sizeof(line), "salesd_run_duration_seconds_count{trigger=\"%s\"} 0", triggers[i]);
                assert_has_line(m, line);
        }
        assert_has_line(m, "salesd_last_success_timestamp_seconds 0");
        assert_has_line(m, "salesd_watermark_timestamp_seconds 0");
        assert_has_line(m, "salesd_complete_as_of_timestamp_seconds 0");
        assert_has_line(m, "salesd_next_run_timestamp_seconds 0");
        assert_no_line_prefix(m, "salesd_up");
        assert_no_line_prefix(m, "salesd_start_time_seconds");
        /* no process stats passed: no process_* metrics */
        assert_no_line_prefix(m, "process_");
        assert_has_line(m, "salesd_days_recomputed_total 0");
        assert_has_line(m, "salesd_config_last_reload_successful 1");
        assert_has_line(m, "salesd_config_last_reload_success_timestamp_seconds 1795590000");
        assert_has_line(m, "salesd_ready 0");
        assert_has_line(m, "salesd_health_state{state=\"ok\"} 1");
        assert_has_line(m, "salesd_health_state{state=\"standby\"} 0");
        assert_has_line(m, "salesd_health_state{state=\"failing\"} 0");
        assert_has_line(m, "salesd_build_info{version=\"1.2.3\",instance=\"host-a\"} 1");
        assert_int_equal(m[strlen(m) - 1], '\n');
        free(m);
}

static void test_metrics_values(void **state) {
        Health h = new_health();
        (void)state;

        /* Durations: 0.05 s, exactly 0.1 s (le is inclusive), 0.3 s, 7 s,
         * 45 min (beyond the last bucket). */
        RunRecord r = new_run(RUN_STATUS_SUCCESS, T0, 50 * USEC_PER_MSEC);
        r.days_written = 4;
        r.days_recomputed = 6;
        health_record_run(&h, &r);
        record(&h, RUN_STATUS_SKIPPED, T0, 100 * USEC_PER_MSEC);
        record(&h, RUN_STATUS_FAILED, T0, 300 * USEC_PER_MSEC);
        /* other triggers get series of their own; an unknown one counts as "other" */
        r = new_run(RUN_STATUS_SUCCESS, T0, 2 * USEC_PER_SEC);
        r.trigger = "http";
        health_record_run(&h, &r);
        r.trigger = "cli";
        health_record_run(&h, &r);
        r = new_run(RUN_STATUS_SUCCESS, T0 + USEC_PER_HOUR, 7 * USEC_PER_SEC);
        r.days_written = 3;
        r.days_recomputed = 3;
        health_record_run(&h, &r);
        HealthProcess proc = {
                .start_time = T0 - 1500000,
                .cpu = 1250 * USEC_PER_MSEC,
                .resident_memory_bytes = 12345678,
                .open_fds = 17,
                .max_fds = 1024,
        };
        record(&h, RUN_STATUS_FAILED, T0 + 2 * USEC_PER_HOUR, 45 * USEC_PER_MINUTE + 1);
        h.watermark = T0 + 123456;
        h.complete_as_of = T0 + 2 * USEC_PER_SEC + 500000;
        h.next_run = T0 + PERIOD;
        h.heartbeat_failures_total = 2;
        h.run_rows_pending = 5;
        h.run_rows_dropped_total = 1;

        health_record_reload(&h, false, T0 + USEC_PER_HOUR);
        char *m = health_render_metrics(&h, &proc, T0 + 3 * USEC_PER_HOUR, PERIOD);
        assert_non_null(m);
        assert_has_line(
                m, "# HELP salesd_run_duration_seconds Wall-clock duration of finished runs by trigger, skipped ones "
                   "included.");
        assert_has_line(m, "# TYPE salesd_run_duration_seconds histogram");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"0.1\"} 2");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"0.5\"} 3");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"1\"} 3");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"2.5\"} 3");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"5\"} 3");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"10\"} 4");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"30\"} 4");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"60\"} 4");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"300\"} 4");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"1800\"} 4");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"+Inf\"} 5");
        /* 0.05 + 0.1 + 0.3 + 7 + 2700.000001 */
        assert_has_line(m, "salesd_run_duration_seconds_sum{trigger=\"schedule\"} 2707.450001");
        assert_has_line(m, "salesd_run_duration_seconds_count{trigger=\"schedule\"} 5");
        assert_has_line(m, "salesd_run_duration_seconds_count{trigger=\"http\"} 1");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"http\",le=\"1\"} 0");
        assert_has_line(m, "salesd_run_duration_seconds_bucket{trigger=\"http\",le=\"2.5\"} 1");
        assert_has_line(m, "salesd_run_duration_seconds_sum{trigger=\"other\"} 2");
        assert_has_line(m, "salesd_run_duration_seconds_count{trigger=\"start\"} 0");
        assert_has_line(m, "salesd_runs_total{status=\"success\"} 4");
        assert_has_line(m, "salesd_runs_total{status=\"failed\"} 2");
        assert_has_line(m, "salesd_runs_total{status=\"skipped\"} 1");
        assert_has_line(m, "salesd_days_written_total 7");
        assert_has_line(m, "salesd_days_recomputed_total 9");
        assert_has_line(m, "# TYPE salesd_days_recomputed_total counter");
        /* a rejected reload keeps the last success's time (the start here) */
        assert_has_line(m, "salesd_config_last_reload_successful 0");
        assert_has_line(m, "salesd_config_last_reload_success_timestamp_seconds 1795590000");
        assert_has_line(m, "# TYPE process_start_time_seconds gauge");
        assert_has_line(m, "process_start_time_seconds 1795589998.5");
        assert_has_line(m, "# TYPE process_cpu_seconds_total counter");
        assert_has_line(m, "process_cpu_seconds_total 1.25");
        assert_has_line(m, "process_resident_memory_bytes 12345678");
        assert_has_line(m, "process_open_fds 17");
        assert_has_line(m, "process_max_fds 1024");
        assert_has_line(m, "# TYPE salesd_days_written_total counter");
        assert_has_line(m, "salesd_last_success_timestamp_seconds 1795593607");
        assert_has_line(m, "salesd_watermark_timestamp_seconds 1795590000.123456");
        assert_has_line(m, "salesd_complete_as_of_timestamp_seconds 1795590002.5");
        assert_has_line(m, "salesd_next_run_timestamp_seconds 1795611600");
        assert_has_line(m, "# TYPE salesd_last_success_timestamp_seconds gauge");
        assert_has_line(m, "salesd_heartbeat_failures_total 2");
        assert_has_line(m, "salesd_run_rows_pending 5");
        assert_has_line(m, "salesd_run_rows_dropped_total 1");
        assert_has_line(m, "salesd_consecutive_failures 1");
        assert_has_line(m, "salesd_ready 1");
        /* The label set of a histogram bucket ends at +Inf; no le beyond it. */
        assert_no_line_prefix(m, "salesd_run_duration_seconds_bucket{trigger=\"schedule\",le=\"3600\"}");
        free(m);
}

/* salesd_stage_duration_seconds: one series per stage, fed only by the
 * stages a run reached; a skipped run (no stage) adds nothing. */
static void test_metrics_stage_durations(void **state) {
        Health h = new_health();
        (void)state;

        char *m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "# TYPE salesd_stage_duration_seconds histogram");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"postgres\",le=\"+Inf\"} 0");
        assert_has_line(m, "salesd_stage_duration_seconds_count{stage=\"clickhouse\"} 0");
        assert_has_line(m, "salesd_stage_duration_seconds_sum{stage=\"clickhouse\"} 0");
        free(m);

        /* a success: postgres exactly 0.01 s (le is inclusive), clickhouse 0.2 s */
        RunRecord r = new_run(RUN_STATUS_SUCCESS, T0, USEC_PER_SEC);
        r.stage_ran[RUN_STAGE_POSTGRES] = r.stage_ran[RUN_STAGE_CLICKHOUSE] = true;
        r.stage_usec[RUN_STAGE_POSTGRES] = 10 * USEC_PER_MSEC;
        r.stage_usec[RUN_STAGE_CLICKHOUSE] = 200 * USEC_PER_MSEC;
        health_record_run(&h, &r);
        /* a failure in the snapshot after 2 s: clickhouse never reached */
        r = new_run(RUN_STATUS_FAILED, T0, 3 * USEC_PER_SEC);
        r.stage_ran[RUN_STAGE_POSTGRES] = true;
        r.stage_usec[RUN_STAGE_POSTGRES] = 2 * USEC_PER_SEC;
        health_record_run(&h, &r);
        /* a skip: no stage at all, whatever the (zero) durations say */
        record(&h, RUN_STATUS_SKIPPED, T0, 5 * USEC_PER_MSEC);
        /* an hour in ClickHouse: beyond the last bucket */
        r = new_run(RUN_STATUS_SUCCESS, T0, USEC_PER_HOUR + 1);
        r.stage_ran[RUN_STAGE_CLICKHOUSE] = true;
        r.stage_usec[RUN_STAGE_CLICKHOUSE] = USEC_PER_HOUR;
        health_record_run(&h, &r);

        m = health_render_metrics(&h, NULL, T0 + USEC_PER_HOUR, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"postgres\",le=\"0.01\"} 1");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"postgres\",le=\"1\"} 1");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"postgres\",le=\"5\"} 2");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"postgres\",le=\"+Inf\"} 2");
        assert_has_line(m, "salesd_stage_duration_seconds_sum{stage=\"postgres\"} 2.01");
        assert_has_line(m, "salesd_stage_duration_seconds_count{stage=\"postgres\"} 2");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"clickhouse\",le=\"0.1\"} 0");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"clickhouse\",le=\"0.5\"} 1");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"clickhouse\",le=\"1800\"} 1");
        assert_has_line(m, "salesd_stage_duration_seconds_bucket{stage=\"clickhouse\",le=\"+Inf\"} 2");
        assert_has_line(m, "salesd_stage_duration_seconds_sum{stage=\"clickhouse\"} 3600.2");
        assert_has_line(m, "salesd_stage_duration_seconds_count{stage=\"clickhouse\"} 2");
        /* the skip still counts as a run */
        assert_has_line(m, "salesd_run_duration_seconds_count{trigger=\"schedule\"} 4");
        free(m);
}

static void test_metrics_health_state(void **state) {
        Health h = new_health();
        (void)state;

        for (int i = 0; i < 3; i++)
                record(&h, RUN_STATUS_FAILED, T0, USEC_PER_SEC);
        char *m = health_render_metrics(&h, NULL, T0 + USEC_PER_MINUTE, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "salesd_health_state{state=\"ok\"} 0");
        assert_has_line(m, "salesd_health_state{state=\"failing\"} 1");
        assert_has_line(m, "salesd_consecutive_failures 3");
        free(m);

        record(&h, RUN_STATUS_SKIPPED, T0 + USEC_PER_HOUR, USEC_PER_SEC);
        m = health_render_metrics(&h, NULL, T0 + USEC_PER_HOUR + USEC_PER_MINUTE, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "salesd_health_state{state=\"standby\"} 1");
        assert_has_line(m, "salesd_health_state{state=\"failing\"} 0");
        free(m);
}

static void test_metrics_escaping(void **state) {
        Health h = new_health();
        (void)state;

        h.instance = "a\"b\\c\nd";
        h.version = "1.0 \"beta\"";
        char *m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_non_null(m);
        assert_has_line(m, "salesd_build_info{version=\"1.0 \\\"beta\\\"\",instance=\"a\\\"b\\\\c\\nd\"} 1");
        free(m);

        /* JSON escapes the same values its own way and stays parseable. */
        int status = 0;
        char *s = health_render_json(&h, T0, PERIOD, &status);
        assert_non_null(s);
        json_t *j = parse(s);
        assert_string_equal(json_string_value(json_object_get(j, "instance")), "a\"b\\c\nd");
        json_decref(j);
        free(s);
}

/* The current ClickHouse endpoint (SPEC §9): an object in /healthz, an
 * info gauge in /metrics with the label escaped; empty when unknown. */
static void test_clickhouse_endpoint(void **state) {
        Health h = new_health();
        int status = 0;
        (void)state;

        char *m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_has_line(m, "salesd_clickhouse_endpoint_info{url=\"\"} 1");
        free(m);
        h.clickhouse_endpoint = "http://ch2.example:8123/a\"b";
        m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_has_line(m, "# TYPE salesd_clickhouse_endpoint_info gauge");
        assert_has_line(m, "salesd_clickhouse_endpoint_info{url=\"http://ch2.example:8123/a\\\"b\"} 1");
        free(m);
        char *s = health_render_json(&h, T0, PERIOD, &status);
        json_t *j = parse(s);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "clickhouse"), "endpoint")),
                            "http://ch2.example:8123/a\"b");
        json_decref(j);
        free(s);
}

/* The continuous audit (SPEC §10): counters in /metrics, the "audit"
 * object of /healthz with its last mismatch. */
static void test_audit(void **state) {
        Health h = new_health();
        (void)state;

        char *body = health_render_json(&h, T0, PERIOD, NULL);
        json_t *j = parse(body);
        json_t *a = json_object_get(j, "audit");
        assert_int_equal(json_integer_value(json_object_get(a, "days_checked")), 0);
        assert_true(json_is_null(json_object_get(a, "last_mismatch")));
        assert_true(json_is_null(json_object_get(a, "last_audit")));
        json_decref(j);
        free(body);

        health_record_audit(&h, 3, 0, 0, "", T0);
        health_record_audit(&h, 3, 1, day_from_civil(2026, 11, 2), "total_revenue, total_profit",
                            T0 + 60 * USEC_PER_SEC);
        health_record_audit(&h, 2, 0, 0, "", T0 + 120 * USEC_PER_SEC);
        body = health_render_json(&h, T0 + 120 * USEC_PER_SEC, PERIOD, NULL);
        j = parse(body);
        a = json_object_get(j, "audit");
        assert_int_equal(json_integer_value(json_object_get(a, "days_checked")), 8);
        assert_int_equal(json_integer_value(json_object_get(a, "mismatches")), 1);
        assert_string_equal(json_string_value(json_object_get(a, "last_audit")), "2026-11-25T07:02:00Z");
        json_t *last = json_object_get(a, "last_mismatch");
        assert_string_equal(json_string_value(json_object_get(last, "day")), "2026-11-02");
        assert_string_equal(json_string_value(json_object_get(last, "at")), "2026-11-25T07:01:00Z");
        json_t *cols = json_object_get(last, "columns");
        assert_int_equal(json_array_size(cols), 2);
        assert_string_equal(json_string_value(json_array_get(cols, 0)), "total_revenue");
        assert_string_equal(json_string_value(json_array_get(cols, 1)), "total_profit");
        json_decref(j);
        free(body);

        char *m = health_render_metrics(&h, NULL, T0, PERIOD);
        assert_has_line(m, "# TYPE salesd_audit_checked_days_total counter");
        assert_has_line(m, "salesd_audit_checked_days_total 8");
        assert_has_line(m, "salesd_audit_mismatched_days_total 1");
        free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_format_time),
                cmocka_unit_test(test_record_counters),
                cmocka_unit_test(test_streaks),
                cmocka_unit_test(test_state_fresh_daemon),
                cmocka_unit_test(test_state_failures),
                cmocka_unit_test(test_state_standby),
                cmocka_unit_test(test_state_stale_after_success),
                cmocka_unit_test(test_json_no_run),
                cmocka_unit_test(test_json_with_run),
                cmocka_unit_test(test_json_with_an_error_cut_inside_a_character),
                cmocka_unit_test(test_json_failing_and_standby),
                cmocka_unit_test(test_metrics_empty),
                cmocka_unit_test(test_json_running_and_overdue),
                cmocka_unit_test(test_metrics_values),
                cmocka_unit_test(test_metrics_stage_durations),
                cmocka_unit_test(test_metrics_health_state),
                cmocka_unit_test(test_metrics_escaping),
                cmocka_unit_test(test_clickhouse_endpoint),
                cmocka_unit_test(test_audit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
