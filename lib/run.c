/* See run.h.  run_execute() reads top to bottom like SPEC §4: each step is
 * a function of its own over the run's state (struct Run), and the sink
 * (sink.h) is the only way to ClickHouse. */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>

#include "apply.h"
#include "backlog.h"
#include "buf.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "sink.h"

/* The run's state: what each step leaves for the next. */
typedef struct Run {
        const Config *config;
        const RunOptions *options;
        RunControl *control;
        RunRecord record;
        RunOutcome outcome;
        char err[1024];

        Sink *sink;
        PgSource *pg;
        bool locked;
        char watermark[WATERMARK_STRLEN];   /* stored before the run ("" = none) */
        char guard[WATERMARK_STRLEN];       /* the late-commit guard (SPEC §4 step 2) */
        char max_changed[WATERMARK_STRLEN]; /* greatest updated_at/changed_at seen */
        uint64_t version;                   /* the snapshot's clock, usec */
        Day *days;
        size_t n_days;
        DayStats *stats; /* the days that can be written, n_stats of them */
        size_t n_stats;
        /* What cannot be written ("; "-separated): completed orders on no
         * storable day, days with NULL or out-of-range values, stored rows
         * no version can replace.  The other days are written; the run
         * fails and the watermark stays, so the next run sees them again. */
        Buf faults;
} Run;

static int check_cancel(const Run *run) {
        return atomic_load(&run->control->cancel) ? -ECANCELED : 0;
}

/* ---- the steps ---- */

static void new_run_id(char ret[37]) {
        sd_id128_t id;
        if (sd_id128_randomize(&id) < 0)
                /* only before the kernel's pool is seeded; unique enough for a log table */
                id = (sd_id128_t){ .qwords = { now_usec(CLOCK_REALTIME), now_usec(CLOCK_MONOTONIC) } };
        snprintf(ret, 37, SD_ID128_UUID_FORMAT_STR, SD_ID128_FORMAT_VAL(id));
}

static int run_connect(Run *run) {
        int r = sink_clickhouse_new(&run->config->clickhouse, &run->sink, run->err, sizeof(run->err));
        if (r < 0)
                return r;
        sink_set_cancel(run->sink, &run->control->cancel);
        r = pg_source_open(run->config, &run->pg, run->err, sizeof(run->err));
        if (r < 0)
                return r;
        run_control_publish(run->control, run->pg);
        return check_cancel(run);
}

/* Step 1: the advisory lock.  Returns 1 when held, 0 when another instance
 * holds it (the run is skipped). */
static int run_lock(Run *run) {
        int64_t key = run->config->postgres.lock_key;
        int r = pg_source_try_lock(run->pg, key, &run->locked, run->err, sizeof(run->err));
        if (r < 0)
                return r;
        if (!run->locked) {
                run->record.status = RUN_STATUS_SKIPPED;
                snprintf(run->record.error, sizeof(run->record.error),
                         "another instance holds the postgres advisory lock %" PRId64 " (postgres.lock_key)", key);
        }
        return run->locked;
}

/* Step 2: the stored watermark, then, right before the snapshot, the
 * late-commit guard: nothing may sit between the guard and the snapshot
 * but a standby's catch-up, which only adds commits to it. */
static int run_read_guard(Run *run) {
        bool can_see_all = true;
        int r = 0;
        if (!run->options->days) /* named days never move the watermark */
                r = sink_read_watermark(run->sink, run->watermark, run->err, sizeof(run->err));
        if (r == 0)
                r = pg_source_read_guard(run->pg, run->guard, &can_see_all, run->err, sizeof(run->err));
        run->outcome.guard_blind = !can_see_all;
        return r;
}

/* SPEC §9: with a standby source, the snapshot waits until the standby has
 * replayed the primary's WAL up to its insert position, read after the
 * guard: a commit the guard did not see in flight is then in the snapshot. */
static int run_catch_up(Run *run) {
        run->outcome.primary_ignored = pg_source_primary_ignored(run->pg);
        return pg_source_catch_up(run->pg, &run->control->cancel, &run->outcome.replica_wait, run->err,
                                  sizeof(run->err));
}

static int copy_named_days(Run *run) {
        const RunOptions *o = run->options;
        run->days = calloc(o->n_days + 1, sizeof(Day));
        if (!run->days)
                return -ENOMEM;
        memcpy(run->days, o->days, o->n_days * sizeof(Day));
        run->n_days = day_sort_unique(run->days, o->n_days);
        return 0;
}

/* The days the audit found differing join the affected days. */
static int add_extra_days(Run *run) {
        const RunOptions *o = run->options;
        if (o->n_extra_days == 0)
                return 0;
        Day *all = realloc(run->days, (run->n_days + o->n_extra_days + 1) * sizeof(Day));
        if (!all)
                return -ENOMEM;
        memcpy(all + run->n_days, o->extra_days, o->n_extra_days * sizeof(Day));
        run->days = all;
        run->n_days = day_sort_unique(all, run->n_days + o->n_extra_days);
        return 0;
}

static int find_affected_days(Run *run) {
        char since[WATERMARK_STRLEN];
        int r = watermark_since(run->watermark, run->config->overlap, since);
        if (r < 0)
                return r;
        r = pg_source_affected_days(run->pg, *run->watermark ? since : NULL, &run->days, &run->n_days, run->max_changed,
                                    &run->faults, run->err, sizeof(run->err));
        return r < 0 ? r : add_extra_days(run);
}

/* Step 3: one REPEATABLE READ snapshot: the clock (the run's version), the
 * affected days, their aggregates. */
static int run_snapshot(Run *run) {
        int r = pg_source_begin(run->pg, run->err, sizeof(run->err));
        if (r == 0)
                r = pg_source_clock_usec(run->pg, &run->version, run->err, sizeof(run->err));
        if (r == 0)
                r = run->options->days ? copy_named_days(run) : find_affected_days(run);
        if (r == 0)
                r = check_cancel(run);
        if (r == 0)
                r = pg_source_aggregate(run->pg, run->days, run->n_days, &run->stats, &run->n_stats, &run->faults,
                                        run->err, sizeof(run->err));
        if (r == 0)
                r = pg_source_commit(run->pg, run->err, sizeof(run->err));
        if (r < 0)
                return r;
        run->record.days_recomputed = (unsigned)run->n_days;
        if (run->n_days > 0) {
                run->outcome.first_day = run->days[0];
                run->outcome.last_day = run->days[run->n_days - 1];
        }
        return 0;
}

/* Moves the days whose values fit their columns to the front of
 * run->stats and returns how many; the others join the faults. */
static size_t keep_representable(Run *run) {
        size_t kept = 0;
        for (size_t i = 0; i < run->n_stats; i++) {
                char e[256];
                if (metrics_check_range(&run->stats[i], e, sizeof(e)) == 0)
                        run->stats[kept++] = run->stats[i];
                else
                        (void)buf_printf(&run->faults, "%s%s", run->faults.len ? "; " : "", e);
        }
        return kept;
}

/* SPEC §4 step 4: every ClickHouse write of the run happens while it holds
 * its lock; a run whose session died (and whose lock another instance may
 * hold by now) stops writing. */
static int run_fence(void *userdata, char *err, size_t errlen) {
        const Run *run = userdata;
        return pg_source_check_lock(run->pg, run->config->postgres.lock_key, err, errlen);
}

/* Step 4: write what changed.  A day that cannot be written (see
 * Run.faults) fails loudly; the other days are still written, the run fails
 * and the watermark stays. */
static int run_store(Run *run) {
        size_t n = keep_representable(run);
        ApplyOptions o = {
                .run_version = run->version,
                .computed_at = now_usec(CLOCK_REALTIME),
                .retries = run->config->clickhouse.retries,
                .run_id = run->record.run_id,
                .fence = run_fence,
                .fence_userdata = run,
                .ret_written_days = run->options->days ? run->options->ret_written_days : NULL,
                .faults = &run->faults,
        };
        int r = check_cancel(run);
        if (r == 0)
                r = apply_days(run->sink, run->stats, n, &o, &run->record.days_written, run->err, sizeof(run->err));
        if (r < 0)
                return r;
        if (run->faults.len) {
                /* the remedy is in each fault; the outcome must survive the cut */
                int room = (int)sizeof(run->record.error) - 64;
                snprintf(run->err, sizeof(run->err),
                         "%.*s%s; not written (every other day was), watermark not advanced", room, run->faults.data,
                         run->faults.len > (size_t)room ? " …" : "");
                return -ERANGE;
        }
        return 0;
}

/* Step 5: the new watermark: what the snapshot saw, but never past the
 * start of a transaction that was still open (it may commit rows stamped
 * earlier than our snapshot's newest). */
static int run_advance_watermark(Run *run) {
        char next[WATERMARK_STRLEN];
        snprintf(run->outcome.watermark, sizeof(run->outcome.watermark), "%s", run->watermark);
        if (run->options->days)
                return 0;
        if (watermark_next(run->watermark, run->max_changed, run->guard, next)) {
                int r = run_fence(run, run->err, sizeof(run->err));
                if (r == 0)
                        r = sink_write_watermark(run->sink, next, run->version, run->err, sizeof(run->err));
                if (r < 0)
                        return r;
                snprintf(run->outcome.watermark, sizeof(run->outcome.watermark), "%s", next);
                run->outcome.watermark_advanced = true;
        }
        /* Every change committed before the guard is now in ClickHouse. */
        if (watermark_parse(run->guard, &run->outcome.complete_as_of) < 0)
                run->outcome.complete_as_of = 0;
        return 0;
}

/* Runs one step of a stage and adds the time it took to the stage. */
static int run_timed(Run *run, RunStage stage, int (*step)(Run *)) {
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        int r = step(run);
        usec_t t1 = now_usec(CLOCK_MONOTONIC);
        run->record.stage_usec[stage] += t1 > t0 ? t1 - t0 : 0;
        run->record.stage_ran[stage] = true;
        return r;
}

static int run_steps(Run *run) {
        int r = run_connect(run);
        if (r == 0)
                r = run_lock(run);
        if (r <= 0)
                return r; /* failed, or skipped */
        r = run_read_guard(run);
        if (r == 0)
                r = run_timed(run, RUN_STAGE_POSTGRES, run_catch_up);
        if (r == 0)
                r = run_timed(run, RUN_STAGE_POSTGRES, run_snapshot);
        if (r == 0)
                r = run_timed(run, RUN_STAGE_CLICKHOUSE, run_store);
        if (r == 0)
                r = run_timed(run, RUN_STAGE_CLICKHOUSE, run_advance_watermark);
        if (r == 0)
                run->record.status = RUN_STATUS_SUCCESS;
        return r;
}

/* Step 6: the record, the run row, the lock.  A cancelled run is still
 * recorded: the row is one small insert and the stop grace period bounds
 * it. */
static void run_finish(Run *run, int r, RunBacklog *backlog) {
        RunRecord *rec = &run->record;
        if (r < 0) {
                rec->status = RUN_STATUS_FAILED;
                const char *why = run_control_reason(run->control);
                if (why)
                        snprintf(rec->error, sizeof(rec->error), "cancelled: %s", why);
                else
                        snprintf(rec->error, sizeof(rec->error), "%.*s", (int)sizeof(rec->error) - 1,
                                 *run->err ? run->err : strerror(-r));
                run->outcome.server_unavailable = run_error_unavailable(r);
        }
        if (run->pg)
                pg_source_rollback(run->pg);
        rec->finished_at = now_usec(CLOCK_REALTIME);
        if (run->sink)
                sink_set_cancel(run->sink, NULL);
        char err[1024] = "";
        int k = run_backlog_flush(backlog, run->sink, rec, run->options->instance, err, sizeof(err));
        if (k < 0)
                log_debug("run %s: cannot write its salesd_runs row: %s", rec->run_id, *err ? err : strerror(-k));
        run->outcome.run_row_written = k == 0;
        if (run->locked)
                /* closing the connection releases it anyway */
                (void)pg_source_unlock(run->pg, run->config->postgres.lock_key, err, sizeof(err));
}

static void run_done(Run *run) {
        run_control_publish(run->control, NULL);
        pg_source_free(run->pg);
        sink_free(run->sink);
        free(run->days);
        free(run->stats);
        buf_free(&run->faults);
}

int run_execute(const Config *c, const RunOptions *o, RunControl *ctl, RunBacklog *backlog, RunRecord *ret_record,
                RunOutcome *ret_outcome) {
        _cleanup_(run_done) Run run = {
                .config = c,
                .options = o,
                .control = ctl,
                .record = { .trigger = o->trigger,
                            .status = RUN_STATUS_FAILED,
                            .started_at = now_usec(CLOCK_REALTIME) },
        };
        new_run_id(run.record.run_id);

        int r = run_steps(&run);
        run_finish(&run, r, backlog);
        *ret_record = run.record;
        *ret_outcome = run.outcome;
        return run.record.status == RUN_STATUS_FAILED ? (r < 0 ? r : -EIO) : 0;
}

bool run_error_unavailable(int r) {
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET;
}

bool run_error_config(int r) {
        return r == PG_ERR_NEEDS_PRIMARY;
}

int run_summary(const RunRecord *rec, const RunOutcome *out, bool explicit_days, char *buf, size_t len) {
        char first[DAY_STRLEN], last[DAY_STRLEN], range[2 * DAY_STRLEN + 8] = "";
        usec_t d = rec->finished_at - rec->started_at;

        switch (rec->status) {
        case RUN_STATUS_SUCCESS:
                if (rec->days_recomputed)
                        snprintf(range, sizeof(range), " (%s..%s)", day_format(out->first_day, first),
                                 day_format(out->last_day, last));
                snprintf(buf, len,
                         "run %s (trigger %s): success in %" PRIu64 ".%03" PRIu64
                         " s: %u days recomputed%s, %u written, watermark %s%s",
                         rec->run_id, rec->trigger, d / USEC_PER_SEC, (d % USEC_PER_SEC) / USEC_PER_MSEC,
                         rec->days_recomputed, range, rec->days_written,
                         explicit_days     ? "not moved (explicit days)"
                         : *out->watermark ? out->watermark
                                           : "none yet",
                         out->watermark_advanced ? " (advanced)" : "");
                return LOG_INFO;
        case RUN_STATUS_SKIPPED:
                snprintf(buf, len, "run %s (trigger %s): skipped: %s", rec->run_id, rec->trigger, rec->error);
                return LOG_NOTICE;
        default:
                snprintf(buf, len, "run %s (trigger %s): failed after %" PRIu64 ".%03" PRIu64 " s: %s", rec->run_id,
                         rec->trigger, d / USEC_PER_SEC, (d % USEC_PER_SEC) / USEC_PER_MSEC, rec->error);
                return LOG_ERR;
        }
}
