/* What the daemon knows about its own runs, and the two views of it that the
 * HTTP endpoint serves: the /healthz JSON document and the Prometheus text
 * exposition for /metrics.  Pure data and formatting: no I/O, no clock reads
 * (callers pass `now`), so every rule is unit-tested. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "duration.h"
#include "run.h"

/* Buckets of the run-duration and stage-duration histograms (each has its
 * own bounds, see health.c). */
#define HEALTH_DURATION_BUCKETS 10

/* The triggers the daemon runs under; the duration histogram has one series
 * per trigger (a run under any other trigger counts under "other"). */
typedef enum HealthTrigger {
        HEALTH_TRIGGER_START,
        HEALTH_TRIGGER_SCHEDULE,
        HEALTH_TRIGGER_SIGNAL,
        HEALTH_TRIGGER_HTTP,
        HEALTH_TRIGGER_NOTIFY,
        HEALTH_TRIGGER_OTHER,
        _HEALTH_TRIGGER_MAX,
} HealthTrigger;

typedef struct HealthDuration {
        uint64_t bucket_counts[HEALTH_DURATION_BUCKETS]; /* cumulative is computed at render */
        uint64_t count;
        usec_t sum;
} HealthDuration;

/* The standard process_* metrics, read from /proc by the caller (the
 * renderer stays pure). */
typedef struct HealthProcess {
        usec_t start_time; /* Unix time, usec */
        usec_t cpu;        /* user + system CPU time, usec */
        uint64_t resident_memory_bytes;
        uint64_t open_fds;
        uint64_t max_fds;
} HealthProcess;

typedef struct Health {
        const char *instance;            /* borrowed */
        const char *version;             /* borrowed */
        const char *clickhouse_endpoint; /* borrowed: the current clickhouse.url (SPEC §9), never credentials */
        bool ready;                      /* config and schema verified */
        bool has_last_run;
        RunRecord last_run;
        usec_t started_at;         /* daemon start, usec */
        usec_t last_success;       /* 0 = never */
        usec_t last_ok_or_skipped; /* last run that succeeded or was skipped; 0 = never */
        usec_t next_run;           /* 0 = unknown */
        usec_t watermark;          /* 0 = none yet */
        usec_t complete_as_of;     /* source time before which every commit is stored (SPEC §10); 0 = unknown */
        unsigned consecutive_failures;
        /* the run in progress, if any; overdue once it passed its deadline
         * (decided by the caller's monotonic timer, not by `now`) */
        bool running;
        bool running_overdue;
        const char *running_trigger; /* static */
        usec_t running_started_at;
        usec_t running_deadline;
        uint64_t runs_total[_RUN_STATUS_MAX];
        uint64_t days_recomputed_total;
        uint64_t days_written_total;
        uint64_t heartbeat_failures_total;
        uint64_t run_rows_dropped_total;
        uint64_t run_rows_pending;
        HealthDuration duration[_HEALTH_TRIGGER_MAX];
        HealthDuration stage_duration[_RUN_STAGE_MAX]; /* the stages runs reached (run.h) */
        /* the last SIGHUP (the start counts as a successful load) */
        bool config_last_reload_failed;
        usec_t config_last_reload_success_at;
        /* the continuous audit (SPEC §10) */
        uint64_t audit_checked_days_total;
        uint64_t audit_mismatched_days_total;
        usec_t audit_last_at;          /* last audit that finished; 0 = none yet */
        usec_t audit_last_mismatch_at; /* 0 = no mismatch yet */
        Day audit_last_mismatch_day;
        char audit_last_mismatch_columns[256]; /* "total_revenue, total_profit" or "missing" */
} Health;

/* Folds a finished run into h (counters, last_run, histograms, streaks). */
void health_record_run(Health *h, const RunRecord *r);

/* Folds a finished audit into h: checked days compared, mismatched of them
 * differing; when mismatched > 0, the last differing day and its columns
 * (comma-separated, or "missing"). */
void health_record_audit(Health *h, uint64_t checked, uint64_t mismatched, Day last_day, const char *columns,
                         usec_t now);

/* Records the outcome of a configuration reload at `now`. */
void health_record_reload(Health *h, bool ok, usec_t now);

typedef enum HealthState {
        HEALTH_OK,
        HEALTH_STANDBY, /* the last run was skipped: another instance holds the lock */
        HEALTH_FAILING, /* last 3 runs failed, nothing succeeded/skipped for > 2 periods, or a run is overdue */
} HealthState;

const char *health_state_to_string(HealthState s);

/* schedule_period: the time between two scheduled runs (usec). */
HealthState health_state(const Health *h, usec_t now, usec_t schedule_period);

/* /healthz body (JSON, timestamps RFC 3339 UTC, no secrets) and its HTTP
 * status (200, or 503 when failing).  Returns a malloc'd string, NULL on OOM. */
char *health_render_json(const Health *h, usec_t now, usec_t schedule_period, int *ret_http_status);

/* /metrics body in the Prometheus text format 0.0.4; the process_* metrics
 * come from proc (NULL: left out).  malloc'd, NULL on OOM. */
char *health_render_metrics(const Health *h, const HealthProcess *proc, usec_t now, usec_t schedule_period);

/* RFC 3339 UTC with second precision ("2026-11-25T07:00:00Z"). */
char *health_format_time(usec_t t, char *buf, size_t len);
