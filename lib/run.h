/* One pipeline run (SPEC §4): lock, guard, snapshot, affected days,
 * aggregate, compare, insert only what changed, advance the watermark, record
 * the run.  A run owns its own Postgres connection and ClickHouse client and
 * is safe to execute on a worker thread; run_control_cancel() stops it from
 * any thread.  A crash or cancel at any point loses nothing: the watermark
 * moves only after the rows it covers are stored, so the next run redoes the
 * same days.
 *
 * Also the writers of salesd_runs rows (with a bounded in-memory backlog for
 * rows that could not be written) and of the heartbeat. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "day.h"
#include "health.h"
#include "pg.h"

#define RUN_ROWS_BACKLOG_MAX 1000

/* salesd_runs rows not yet written (ClickHouse was down), oldest first. */
typedef struct RunRowQueue {
        pthread_mutex_t lock;
        RunRecord rows[RUN_ROWS_BACKLOG_MAX];
        size_t head;
        size_t count;
        uint64_t dropped; /* oldest rows discarded because the backlog was full */
} RunRowQueue;

void run_row_queue_init(RunRowQueue *q);
void run_row_queue_done(RunRowQueue *q);
void run_row_queue_push(RunRowQueue *q, const RunRecord *r);
size_t run_row_queue_pending(RunRowQueue *q, uint64_t *ret_dropped);

/* Lets another thread stop a run: sets the flag checked between steps and in
 * every ClickHouse transfer, and cancels the Postgres statement in flight. */
typedef struct RunControl {
        atomic_bool cancel;
        pthread_mutex_t lock;
        PgSource *pg; /* while connected */
} RunControl;

void run_control_init(RunControl *ctl);
void run_control_done(RunControl *ctl);
void run_control_cancel(RunControl *ctl);

typedef struct RunOptions {
        const char *trigger; /* "start", "schedule", "signal", "http", "notify", "cli" */
        const Day *days;     /* explicit days (once --date, backfill); NULL: normal run */
        size_t n_days;
        const char *instance;
} RunOptions;

typedef struct RunOutcome {
        bool server_unavailable; /* Postgres or ClickHouse could not be reached */
        bool guard_blind;        /* the role cannot see other sessions (no pg_read_all_stats) */
        bool run_row_written;
        Day first_day, last_day;          /* affected range, when days_recomputed > 0 */
        char watermark[WATERMARK_STRLEN]; /* after the run ("" = none) */
        bool watermark_advanced;
} RunOutcome;

/* Executes one run.  Always fills *ret_record (status, counts, error) and
 * *ret_outcome; returns 0 when the run succeeded or was skipped, else a
 * negative errno (ret_record->error says why).  The run row (and any rows
 * queued in q) are written to salesd_runs at the end; if that fails the
 * record is queued in q. */
int run_execute(const Config *c, const RunOptions *o, RunControl *ctl, RunRowQueue *q, RunRecord *ret_record,
                RunOutcome *ret_outcome);

/* Whether an error from a run, pg.h or ch.h means that Postgres or
 * ClickHouse could not be reached (exit 69, a retry may help). */
bool run_error_unavailable(int r);

/* A one-line summary of a finished run for the log ("run ID (trigger T):
 * success in 0.123 s: ..."), and the syslog priority to log it at.
 * explicit_days: the run had named days (the watermark never moves). */
int run_summary(const RunRecord *rec, const RunOutcome *out, bool explicit_days, char *buf, size_t len);

typedef struct HeartbeatRow {
        const char *instance;
        const char *state;                 /* idle, running, standby, failing */
        usec_t ts, last_success, next_run; /* CLOCK_REALTIME usec; 0 = unknown */
} HeartbeatRow;

/* Upserts the instance's row in salesd_heartbeat (one attempt, no retries:
 * the next beat is the retry).  cancel may be NULL. */
int run_write_heartbeat(const Config *c, const HeartbeatRow *h, const atomic_bool *cancel, char *err, size_t errlen);

/* A random (version 4) UUID as text. */
void run_new_id(char ret[37]);

/* CLOCK_REALTIME in usec. */
usec_t run_now_realtime(void);
