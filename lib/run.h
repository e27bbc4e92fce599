/* One pipeline run (SPEC §4): lock, guard, snapshot, affected days,
 * aggregate, compare, insert only what changed, advance the watermark,
 * record the run.  A run owns its own Postgres connection and ClickHouse
 * sink and is safe to execute on a worker thread; run_control_cancel()
 * stops it from any thread.  A crash or cancel at any point loses nothing:
 * the watermark moves only after the rows it covers are stored, so the next
 * run redoes the same days.
 *
 * Also the run's record (the salesd_runs row), which the daemon's health
 * picture and the run-row backlog consume. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "day.h"
#include "duration.h"
#include "pg.h"
#include "run_control.h"
#include "watermark.h"

typedef enum RunStatus {
        RUN_STATUS_SUCCESS,
        RUN_STATUS_FAILED,
        RUN_STATUS_SKIPPED,
        _RUN_STATUS_MAX,
} RunStatus;

static inline const char *run_status_to_string(RunStatus s) {
        static const char *const names[_RUN_STATUS_MAX] = { "success", "failed", "skipped" };
        return (unsigned)s < _RUN_STATUS_MAX ? names[s] : "unknown";
}

/* The timed stages of a run (the /metrics salesd_stage_duration_seconds
 * histogram): POSTGRES is SPEC §4 step 3, the REPEATABLE READ snapshot
 * (affected days and their aggregates); CLICKHOUSE is steps 4-5, reading the
 * stored rows, inserting the changed days and writing the watermark.
 * Connecting, the lock, the guard and the run row are in neither. */
typedef enum RunStage {
        RUN_STAGE_POSTGRES,
        RUN_STAGE_CLICKHOUSE,
        _RUN_STAGE_MAX,
} RunStage;

static inline const char *run_stage_to_string(RunStage s) {
        static const char *const names[_RUN_STAGE_MAX] = { "postgres", "clickhouse" };
        return (unsigned)s < _RUN_STAGE_MAX ? names[s] : "unknown";
}

/* What a run did: its salesd_runs row. */
typedef struct RunRecord {
        char run_id[37];     /* UUID text */
        const char *trigger; /* static string: start, schedule, signal, http, notify, cli */
        RunStatus status;
        usec_t started_at; /* CLOCK_REALTIME, usec */
        usec_t finished_at;
        unsigned days_recomputed;
        unsigned days_written;
        char error[512]; /* "" on success; why, on skip */
        /* time spent in each stage (CLOCK_MONOTONIC), for the stages the run
         * reached (stage_ran), failed ones included; not in the run row */
        usec_t stage_usec[_RUN_STAGE_MAX];
        bool stage_ran[_RUN_STAGE_MAX];
} RunRecord;

typedef struct RunBacklog RunBacklog; /* backlog.h */

typedef struct RunOptions {
        const char *trigger; /* "start", "schedule", "signal", "http", "notify", "cli" */
        const Day *days;     /* explicit days (once --date, backfill, verify --repair); NULL: normal run */
        size_t n_days;
        /* A normal run recomputes these days too (the audit's mismatches:
         * drift repairs itself); the watermark moves as usual. */
        const Day *extra_days;
        size_t n_extra_days;
        /* With days: when not NULL, room for n_days; receives the days the
         * run wrote (days_written of them, sorted). */
        Day *ret_written_days;
        const char *instance;
} RunOptions;

typedef struct RunOutcome {
        bool server_unavailable; /* Postgres or ClickHouse could not be reached */
        bool guard_blind;        /* the role cannot see other sessions (no pg_read_all_stats) */
        bool primary_ignored;    /* postgres.primary_conninfo set, postgres.conninfo not a standby */
        usec_t replica_wait;     /* how long the standby took to catch up (SPEC §9); 0 on one server */
        bool run_row_written;
        Day first_day, last_day;          /* affected range, when days_recomputed > 0 */
        char watermark[WATERMARK_STRLEN]; /* after the run ("" = none) */
        bool watermark_advanced;
        usec_t complete_as_of; /* source time before which every committed change is stored
                                  (SPEC §10); 0 = not known from this run */
} RunOutcome;

/* Executes one run.  Always fills *ret_record (status, counts, error) and
 * *ret_outcome; returns 0 when the run succeeded or was skipped, else a
 * negative errno (ret_record->error says why).  The run row (and any rows
 * waiting in backlog) are written to salesd_runs at the end; if that fails
 * the record joins the backlog. */
int run_execute(const Config *c, const RunOptions *o, RunControl *ctl, RunBacklog *backlog, RunRecord *ret_record,
                RunOutcome *ret_outcome);

/* Whether an error from a run, pg.h or ch.h means that Postgres or
 * ClickHouse could not be reached (exit 69, a retry may help):
 * -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET.  A client-side problem (ch.h's
 * -EPROTO: TLS, URL) or a server's error answer is not "unavailable". */
bool run_error_unavailable(int r);

/* Logged (once) by whoever runs a run whose outcome has primary_ignored. */
#define RUN_PRIMARY_IGNORED_WARNING                                                                            \
        "postgres.conninfo is not a hot standby (promoted?), so postgres.primary_conninfo is not used: lock, " \
        "guard and snapshot are all read on postgres.conninfo; remove postgres.primary_conninfo if this is meant"

/* Whether an error from a run, pg.h or verify.h is the configuration's
 * (exit 78): postgres.conninfo is a standby without a usable
 * postgres.primary_conninfo. */
bool run_error_config(int r);

/* A one-line summary of a finished run for the log ("run ID (trigger T):
 * success in 0.123 s: ..."), and the syslog priority to log it at.
 * explicit_days: the run had named days (the watermark never moves). */
int run_summary(const RunRecord *rec, const RunOutcome *out, bool explicit_days, char *buf, size_t len);
