/* The daemon's picture of its own runs (see health.h).  Everything here is a
 * pure function of the Health record and the `now` the caller passes, so the
 * rules that decide whether Airflow sees "failing" are exercised by unit
 * tests without a clock or a server.
 *
 * Output choices worth knowing:
 * - /healthz gives last_run.duration_seconds as a decimal string with
 *   millisecond precision ("12.345"): JSON numbers would need a double.
 * - /metrics prints seconds as exact decimal text built from integer
 *   microseconds (trailing zeros trimmed), never through a float.
 * - A skipped run counts in the duration histogram (it is a run, it has a
 *   salesd_runs row) and breaks a failure streak, because the rule is "the
 *   last 3 runs failed". */
#include "health.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

#define HEALTH_FAILING_STREAK 3

/* Bucket bounds in microseconds and as printed in the le label. */
typedef struct HealthBucket {
        usec_t bound;
        const char *le;
} HealthBucket;

/* Runs range from tens of milliseconds (nothing changed) to half an hour
 * (backfill). */
static const HealthBucket duration_buckets[HEALTH_DURATION_BUCKETS] = {
        { 100 * USEC_PER_MSEC, "0.1" },  { 500 * USEC_PER_MSEC, "0.5" }, { 1 * USEC_PER_SEC, "1" },
        { 2500 * USEC_PER_MSEC, "2.5" }, { 5 * USEC_PER_SEC, "5" },      { 10 * USEC_PER_SEC, "10" },
        { 30 * USEC_PER_SEC, "30" },     { 60 * USEC_PER_SEC, "60" },    { 300 * USEC_PER_SEC, "300" },
        { 1800 * USEC_PER_SEC, "1800" },
};

/* A stage of a small run takes milliseconds (one query), of a backfill
 * minutes. */
static const HealthBucket stage_buckets[HEALTH_DURATION_BUCKETS] = {
        { 10 * USEC_PER_MSEC, "0.01" },  { 50 * USEC_PER_MSEC, "0.05" }, { 100 * USEC_PER_MSEC, "0.1" },
        { 500 * USEC_PER_MSEC, "0.5" },  { 1 * USEC_PER_SEC, "1" },      { 5 * USEC_PER_SEC, "5" },
        { 10 * USEC_PER_SEC, "10" },     { 60 * USEC_PER_SEC, "60" },    { 300 * USEC_PER_SEC, "300" },
        { 1800 * USEC_PER_SEC, "1800" },
};

static const char *const health_trigger_names[_HEALTH_TRIGGER_MAX] = {
        [HEALTH_TRIGGER_START] = "start", [HEALTH_TRIGGER_SCHEDULE] = "schedule", [HEALTH_TRIGGER_SIGNAL] = "signal",
        [HEALTH_TRIGGER_HTTP] = "http",   [HEALTH_TRIGGER_NOTIFY] = "notify",     [HEALTH_TRIGGER_OTHER] = "other",
};

static HealthTrigger health_trigger_from_string(const char *s) {
        for (size_t i = 0; s && i < HEALTH_TRIGGER_OTHER; i++)
                if (strcmp(s, health_trigger_names[i]) == 0)
                        return (HealthTrigger)i;
        return HEALTH_TRIGGER_OTHER;
}

static const char *const health_state_names[] = {
        [HEALTH_OK] = "ok",
        [HEALTH_STANDBY] = "standby",
        [HEALTH_FAILING] = "failing",
};

#define N_HEALTH_STATES (sizeof(health_state_names) / sizeof(health_state_names[0]))

const char *health_state_to_string(HealthState s) {
        if ((unsigned)s >= N_HEALTH_STATES)
                return "unknown";
        return health_state_names[s];
}

static usec_t run_duration(const RunRecord *r) {
        return r->finished_at > r->started_at ? r->finished_at - r->started_at : 0;
}

static void health_observe(HealthDuration *hd, const HealthBucket buckets[HEALTH_DURATION_BUCKETS], usec_t d) {
        for (size_t i = 0; i < HEALTH_DURATION_BUCKETS; i++)
                if (d <= buckets[i].bound) {
                        hd->bucket_counts[i]++;
                        break;
                }
        hd->count++;
        hd->sum += d;
}

void health_record_run(Health *h, const RunRecord *r) {
        usec_t d = run_duration(r);

        h->last_run = *r;
        h->has_last_run = true;
        if ((unsigned)r->status < _RUN_STATUS_MAX)
                h->runs_total[r->status]++;
        h->days_recomputed_total += r->days_recomputed;
        h->days_written_total += r->days_written;

        switch (r->status) {
        case RUN_STATUS_SUCCESS:
                h->consecutive_failures = 0;
                h->last_success = r->finished_at;
                h->last_ok_or_skipped = r->finished_at;
                break;
        case RUN_STATUS_SKIPPED:
                h->consecutive_failures = 0;
                h->last_ok_or_skipped = r->finished_at;
                break;
        default:
                h->consecutive_failures++;
                break;
        }

        health_observe(&h->duration[health_trigger_from_string(r->trigger)], duration_buckets, d);
        for (size_t i = 0; i < _RUN_STAGE_MAX; i++)
                if (r->stage_ran[i])
                        health_observe(&h->stage_duration[i], stage_buckets, r->stage_usec[i]);
}

void health_record_reload(Health *h, bool ok, usec_t now) {
        h->config_last_reload_failed = !ok;
        if (ok)
                h->config_last_reload_success_at = now;
}

void health_record_audit(Health *h, uint64_t checked, uint64_t mismatched, Day last_day, const char *columns,
                         usec_t now) {
        h->audit_checked_days_total += checked;
        h->audit_mismatched_days_total += mismatched;
        h->audit_last_at = now;
        if (mismatched == 0)
                return;
        h->audit_last_mismatch_at = now;
        h->audit_last_mismatch_day = last_day;
        snprintf(h->audit_last_mismatch_columns, sizeof(h->audit_last_mismatch_columns), "%s", columns ? columns : "");
}

HealthState health_state(const Health *h, usec_t now, usec_t schedule_period) {
        if (h->consecutive_failures >= HEALTH_FAILING_STREAK || (h->running && h->running_overdue))
                return HEALTH_FAILING;

        /* Staleness: a daemon that never gets a run through (hung run, dead
         * timer) must turn failing even though no run ever failed.  Without
         * a known period there is no yardstick, so the rule is off. */
        usec_t since = h->last_ok_or_skipped ? h->last_ok_or_skipped : h->started_at;
        if (schedule_period > 0 && now > since) {
                usec_t limit = schedule_period > UINT64_MAX / 2 ? UINT64_MAX : 2 * schedule_period;
                if (now - since > limit)
                        return HEALTH_FAILING;
        }

        if (h->has_last_run && h->last_run.status == RUN_STATUS_SKIPPED)
                return HEALTH_STANDBY;
        return HEALTH_OK;
}

char *health_format_time(usec_t t, char *buf, size_t len) {
        time_t sec = (time_t)(t / USEC_PER_SEC);
        struct tm tm;

        if (len == 0)
                return buf;
        buf[0] = '\0';
        if (!gmtime_r(&sec, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                buf[0] = '\0';
        return buf;
}

/* NULL (JSON null) for "never"/"unknown" timestamps. */
static json_t *json_time_or_null(usec_t t) {
        char buf[64];

        if (t == 0)
                return json_null();
        return json_string(health_format_time(t, buf, sizeof(buf)));
}

/* Exact decimal seconds from microseconds: "12", "0.5", "1764054000.123456". */
static char *format_seconds(usec_t t, char *buf, size_t len) {
        usec_t frac = t % USEC_PER_SEC;

        if (frac == 0) {
                snprintf(buf, len, "%" PRIu64, t / USEC_PER_SEC);
                return buf;
        }
        int n = 6;
        while (frac % 10 == 0) {
                frac /= 10;
                n--;
        }
        snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, t / USEC_PER_SEC, n, frac);
        return buf;
}

/* A JSON string of text that may not be valid UTF-8 (an error message cut
 * by bytes, a server's message in another encoding): JSON must be. */
static json_t *json_text(const char *text) {
        char buf[1024];
        return json_string(text_utf8_sanitize(text, buf, sizeof(buf)));
}

static json_t *last_run_to_json(const RunRecord *r) {
        char ms[64];
        usec_t d = run_duration(r);

        snprintf(ms, sizeof(ms), "%" PRIu64 ".%03" PRIu64, d / USEC_PER_SEC, (d % USEC_PER_SEC) / USEC_PER_MSEC);
        return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:I, s:o}", "run_id", r->run_id, "trigger",
                         r->trigger ? r->trigger : "", "status", run_status_to_string(r->status), "started_at",
                         json_time_or_null(r->started_at), "finished_at", json_time_or_null(r->finished_at),
                         "duration_seconds", ms, "days_recomputed", (json_int_t)r->days_recomputed, "days_written",
                         (json_int_t)r->days_written, "error", json_text(r->error));
}

/* The run in progress: null when idle. */
static json_t *running_to_json(const Health *h) {
        if (!h->running)
                return json_null();
        return json_pack("{s:s, s:o, s:o, s:b}", "trigger", h->running_trigger ? h->running_trigger : "", "started_at",
                         json_time_or_null(h->running_started_at), "deadline", json_time_or_null(h->running_deadline),
                         "overdue", (int)h->running_overdue);
}

/* "total_revenue, total_profit" as ["total_revenue", "total_profit"]. */
static json_t *columns_to_json(const char *text) {
        json_t *a = json_array();
        const char *p = text;
        while (a && *p) {
                size_t n = strcspn(p, ",");
                json_array_append_new(a, json_stringn(p, n));
                p += n;
                p += strspn(p, ", ");
        }
        return a;
}

/* The continuous audit: totals, and the last mismatch (null when none). */
static json_t *audit_to_json(const Health *h) {
        char day[DAY_STRLEN];
        json_t *last = h->audit_last_mismatch_at == 0
                               ? json_null()
                               : json_pack("{s:s, s:o, s:o}", "day", day_format(h->audit_last_mismatch_day, day),
                                           "columns", columns_to_json(h->audit_last_mismatch_columns), "at",
                                           json_time_or_null(h->audit_last_mismatch_at));
        if (!last)
                return NULL;
        return json_pack("{s:I, s:I, s:o, s:o}", "days_checked", (json_int_t)h->audit_checked_days_total, "mismatches",
                         (json_int_t)h->audit_mismatched_days_total, "last_audit", json_time_or_null(h->audit_last_at),
                         "last_mismatch", last);
}

char *health_render_json(const Health *h, usec_t now, usec_t schedule_period, int *ret_http_status) {
        HealthState st = health_state(h, now, schedule_period);
        json_t *last_run = h->has_last_run ? last_run_to_json(&h->last_run) : json_null();
        json_t *running = running_to_json(h);
        json_t *audit = audit_to_json(h);
        json_t *clickhouse =
                json_pack("{s:o}", "endpoint", json_text(h->clickhouse_endpoint ? h->clickhouse_endpoint : ""));

        if (!last_run || !running || !audit || !clickhouse) {
                json_decref(last_run);
                json_decref(running);
                json_decref(audit);
                json_decref(clickhouse);
                return NULL;
        }
        /* "o" steals the references, also when json_pack fails. */
        json_t *doc = json_pack(
                "{s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:b, s:o, s:o}", "status",
                health_state_to_string(st), "instance", json_text(h->instance), "version", h->version ? h->version : "",
                "last_run", last_run, "running", running, "last_success", json_time_or_null(h->last_success),
                "next_run", json_time_or_null(h->next_run), "watermark", json_time_or_null(h->watermark),
                "complete_as_of", json_time_or_null(h->complete_as_of), "consecutive_failures",
                (json_int_t)h->consecutive_failures, "ready", (int)h->ready, "audit", audit, "clickhouse", clickhouse);
        if (!doc)
                return NULL;
        char *s = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (s && ret_http_status)
                *ret_http_status = st == HEALTH_FAILING ? 503 : 200;
        return s;
}

/* Label values in the text format escape exactly backslash, quote, newline. */
static void put_label_value(FILE *f, const char *v) {
        for (const char *p = v ? v : ""; *p; p++) {
                if (*p == '\\')
                        fputs("\\\\", f);
                else if (*p == '"')
                        fputs("\\\"", f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        }
}

static void put_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_u64(FILE *f, const char *name, const char *type, const char *help, uint64_t v) {
        put_header(f, name, type, help);
        fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void put_seconds(FILE *f, const char *name, const char *help, usec_t t) {
        char s[64];

        put_header(f, name, "gauge", help);
        fprintf(f, "%s %s\n", name, format_seconds(t, s, sizeof(s)));
}

/* The series of one histogram with one label (the caller prints the header). */
static void put_histogram(FILE *f, const char *name, const char *label, const char *value,
                          const HealthBucket buckets[HEALTH_DURATION_BUCKETS], const HealthDuration *hd) {
        char s[64];
        uint64_t cumulative = 0;
        for (size_t i = 0; i < HEALTH_DURATION_BUCKETS; i++) {
                cumulative += hd->bucket_counts[i];
                fprintf(f, "%s_bucket{%s=\"%s\",le=\"%s\"} %" PRIu64 "\n", name, label, value, buckets[i].le,
                        cumulative);
        }
        fprintf(f, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, label, value, hd->count);
        fprintf(f, "%s_sum{%s=\"%s\"} %s\n", name, label, value, format_seconds(hd->sum, s, sizeof(s)));
        fprintf(f, "%s_count{%s=\"%s\"} %" PRIu64 "\n", name, label, value, hd->count);
}

/* Runs by outcome, their durations by trigger, and the stages' durations. */
static void put_run_metrics(FILE *f, const Health *h) {
        put_header(f, "salesd_runs_total", "counter", "Finished runs by outcome.");
        for (size_t i = 0; i < _RUN_STATUS_MAX; i++)
                fprintf(f, "salesd_runs_total{status=\"%s\"} %" PRIu64 "\n", run_status_to_string((RunStatus)i),
                        h->runs_total[i]);

        put_header(f, "salesd_run_duration_seconds", "histogram",
                   "Wall-clock duration of finished runs by trigger, skipped ones included.");
        for (size_t t = 0; t < _HEALTH_TRIGGER_MAX; t++)
                put_histogram(f, "salesd_run_duration_seconds", "trigger", health_trigger_names[t], duration_buckets,
                              &h->duration[t]);

        put_header(f, "salesd_stage_duration_seconds", "histogram",
                   "Time finished runs spent in a stage: postgres = the snapshot and aggregate, clickhouse = "
                   "compare, insert and watermark.");
        for (size_t i = 0; i < _RUN_STAGE_MAX; i++)
                put_histogram(f, "salesd_stage_duration_seconds", "stage", run_stage_to_string((RunStage)i),
                              stage_buckets, &h->stage_duration[i]);
}

/* Counters and gauges of the daemon's state. */
static void put_state_metrics(FILE *f, const Health *h) {
        put_u64(f, "salesd_run_in_progress", "gauge", "1 while a run is in progress.", h->running);
        put_u64(f, "salesd_run_overdue", "gauge", "1 while the run in progress is past its deadline (run_timeout).",
                h->running && h->running_overdue);
        put_u64(f, "salesd_days_recomputed_total", "counter", "Days recomputed from the source by finished runs.",
                h->days_recomputed_total);
        put_u64(f, "salesd_days_written_total", "counter", "Daily rows written to ClickHouse.", h->days_written_total);
        put_u64(f, "salesd_consecutive_failures", "gauge", "Failed runs in a row since the last success or skip.",
                h->consecutive_failures);
        put_u64(f, "salesd_config_last_reload_successful", "gauge",
                "1 when the last configuration load (start or SIGHUP) succeeded, 0 when it was rejected.",
                !h->config_last_reload_failed);
        put_seconds(f, "salesd_config_last_reload_success_timestamp_seconds",
                    "Unix time of the last successful configuration load (start or SIGHUP).",
                    h->config_last_reload_success_at ? h->config_last_reload_success_at : h->started_at);
        put_seconds(f, "salesd_last_success_timestamp_seconds",
                    "Unix time the last successful run finished; 0 = never.", h->last_success);
        put_seconds(f, "salesd_watermark_timestamp_seconds",
                    "Source change time up to which everything is in ClickHouse (Postgres clock); 0 = none yet.",
                    h->watermark);
        put_seconds(f, "salesd_complete_as_of_timestamp_seconds",
                    "Source time before which every committed change is in ClickHouse (Postgres clock); 0 = unknown.",
                    h->complete_as_of);
        put_seconds(f, "salesd_next_run_timestamp_seconds", "Unix time of the next scheduled run; 0 = unknown.",
                    h->next_run);
        put_u64(f, "salesd_heartbeat_failures_total", "counter", "Heartbeat rows that could not be written.",
                h->heartbeat_failures_total);
        put_u64(f, "salesd_run_rows_pending", "gauge", "salesd_runs rows kept in memory until ClickHouse takes them.",
                h->run_rows_pending);
        put_u64(f, "salesd_run_rows_dropped_total", "counter",
                "salesd_runs rows dropped because the in-memory queue was full.", h->run_rows_dropped_total);

        put_header(f, "salesd_clickhouse_endpoint_info", "gauge",
                   "The ClickHouse URL requests go to (clickhouse.url; changes on failover).");
        fputs("salesd_clickhouse_endpoint_info{url=\"", f);
        put_label_value(f, h->clickhouse_endpoint);
        fputs("\"} 1\n", f);

        put_u64(f, "salesd_audit_checked_days_total", "counter", "Days the continuous audit compared with the source.",
                h->audit_checked_days_total);
        put_u64(f, "salesd_audit_mismatched_days_total", "counter",
                "Audited days whose stored row differed from the source (recomputed by the next run).",
                h->audit_mismatched_days_total);
}

/* The standard process_* metrics of the Prometheus client libraries. */
static void put_process_metrics(FILE *f, const HealthProcess *proc) {
        char s[64];
        put_seconds(f, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                    proc->start_time);
        put_header(f, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        fprintf(f, "process_cpu_seconds_total %s\n", format_seconds(proc->cpu, s, sizeof(s)));
        put_u64(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                proc->resident_memory_bytes);
        put_u64(f, "process_open_fds", "gauge", "Number of open file descriptors.", proc->open_fds);
        put_u64(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.", proc->max_fds);
}

char *health_render_metrics(const Health *h, const HealthProcess *proc, usec_t now, usec_t schedule_period) {
        HealthState st = health_state(h, now, schedule_period);
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return NULL;

        put_header(f, "salesd_build_info", "gauge", "Build and instance of this salesd; the value is always 1.");
        fputs("salesd_build_info{version=\"", f);
        put_label_value(f, h->version);
        fputs("\",instance=\"", f);
        put_label_value(f, h->instance);
        fputs("\"} 1\n", f);

        put_u64(f, "salesd_ready", "gauge", "1 once configuration and ClickHouse schema are verified.", h->ready);

        put_header(f, "salesd_health_state", "gauge", "Health as served by /healthz: 1 for the current state.");
        for (size_t i = 0; i < N_HEALTH_STATES; i++)
                fprintf(f, "salesd_health_state{state=\"%s\"} %d\n", health_state_names[i], (HealthState)i == st);

        put_run_metrics(f, h);
        put_state_metrics(f, h);
        if (proc)
                put_process_metrics(f, proc);

        bool failed = ferror(f) != 0;
        if (fclose(f) != 0 || failed) {
                free(text);
                return NULL;
        }
        return text;
}
