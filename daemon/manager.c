/* See manager.h.
 *
 * Why worker threads rather than async libpq + curl multi on the loop: a run
 * is a short sequence of dependent statements; written as blocking code it
 * reads like SPEC §4 and is easy to prove correct.  The loop stays
 * responsive because it never executes one: it hands the run to a Job (a
 * worker thread, see job.h), keeps serving signals, HTTP, heartbeats and the
 * watchdog, and learns of the result on the loop.  Cancellation (SIGTERM)
 * raises a flag that curl's progress callback and every step check, and
 * cancels the Postgres statement in flight (the cancel request travels on a
 * thread of its own: with the server unreachable it would block for
 * minutes).  The watchdog still catches a truly hung daemon: the loop stops
 * pinging if a run outlives its deadline (run_timeout), and of course when
 * the loop itself is stuck.
 *
 * All state below is owned by the loop thread, except what a task's thread
 * reads and writes in its own Task (a config reference taken at start) and
 * the RunBacklog/RunControl, which lock for themselves. */
#include "manager.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "backlog.h"
#include "buf.h"
#include "ch.h"
#include "cron.h"
#include "duration.h"
#include "health.h"
#include "http.h"
#include "job.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "procstat.h"
#include "run.h"
#include "schema.h"
#include "sink.h"
#include "verify.h"
#include "watermark.h"

#define STOP_GRACE_USEC   (8 * USEC_PER_SEC)
#define SCHEMA_RETRY_USEC (5 * USEC_PER_SEC)

typedef struct Manager Manager;

/* A configuration shared by the loop and the tasks that started under it;
 * freed when the last holder lets go (a SIGHUP may replace it mid-run). */
typedef struct ConfigRef {
        Config *config;
        unsigned refs;
} ConfigRef;

typedef enum TaskKind { TASK_RUN, TASK_HEARTBEAT, TASK_SCHEMA, TASK_RELOAD_CHECK, TASK_AUDIT } TaskKind;

/* The work one Job does and what it reports: the loop fills the inputs
 * before task_start() and reads the outputs in on_task_done(); in between
 * the Task belongs to the worker thread. */
typedef struct Task {
        Manager *manager;
        Job *job;
        TaskKind kind;
        ConfigRef *config;
        /* inputs */
        const char *trigger;
        HeartbeatRow heartbeat;
        Day *extra_days; /* a run also recomputes these (the audit's mismatches); owned */
        size_t n_extra_days;
        /* outputs */
        int result;
        bool unavailable;
        RunRecord record;
        RunOutcome outcome;
        VerifyResult audit;
        char err[1024];
} Task;

struct Manager {
        sd_event *event;
        char *config_path;
        ConfigRef *config;
        CronExpr *cron;
        Health health;
        RunBacklog *backlog;
        RunControl control;
        atomic_bool heartbeat_cancel;
        HttpServer *http;
        Listener *listener;

        Task run_task, heartbeat_task, reload_task, audit_task;
        RunControl audit_control;
        Day *audit_pending; /* days the audit found differing: the next run recomputes them */
        size_t n_audit_pending;
        ConfigRef *reload_candidate; /* a reloaded config waiting for its schema check */
        CronExpr *reload_cron;
        const char *pending_trigger; /* a follow-up run is queued */
        bool stopping;
        bool watchdog_disabled;
        int exit_code;
        bool guard_warned;
        bool primary_ignored_warned;

        sd_event_source *schedule_timer;
        sd_event_source *heartbeat_timer;
        sd_event_source *stop_timer;
        sd_event_source *schema_timer;
        sd_event_source *deadline_timer;
        sd_event_source *debounce_timer;
        sd_event_source *clock_watch;
        int clock_fd;
        usec_t next_run;
        char clickhouse_endpoint[512]; /* the last one logged (SPEC §9 failover) */
};

/* ---------- small helpers ---------- */

static ConfigRef *config_ref_new(Config *c) {
        ConfigRef *ref = calloc(1, sizeof(*ref));
        if (!ref)
                return NULL;
        ref->config = c;
        ref->refs = 1;
        return ref;
}

static ConfigRef *config_ref(ConfigRef *ref) {
        ref->refs++;
        return ref;
}

static void config_unref(ConfigRef *ref) {
        if (!ref || --ref->refs > 0)
                return;
        config_free(ref->config);
        free(ref);
}

DEFINE_POINTER_CLEANUP_FUNC(ConfigRef, config_unref)

static const Config *cfg(const Manager *m) {
        return m->config->config;
}

static void arm_timer(sd_event_source *s, usec_t usec) {
        sd_event_source_set_time(s, usec);
        sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* The period handed to health_state()'s "nothing succeeded or was skipped
 * for more than 2 schedule periods" rule.  A schedule need not be regular
 * ("0 9 * * 1-5" has a 3-day gap over the weekend), so the rule is applied
 * to the actual slots: stale means nothing ok since the slot before the
 * last one, and half the time since that slot is the period that says so. */
static usec_t schedule_period(const Manager *m) {
        time_t now = (time_t)(now_usec(CLOCK_REALTIME) / USEC_PER_SEC), last, before_last;

        if (!m->cron || cron_prev(m->cron, now, &last) < 0 || cron_prev(m->cron, last, &before_last) < 0)
                return 0; /* fewer than two slots in 8 years: no staleness rule */
        return (usec_t)(now - before_last) * USEC_PER_SEC / 2;
}

/* The run-row backlog as /healthz, /metrics and the heartbeat report it. */
static void health_update_backlog(Manager *m) {
        uint64_t dropped = 0;
        m->health.run_rows_pending = run_backlog_pending(m->backlog, &dropped);
        m->health.run_rows_dropped_total = dropped;
}

static void update_status(Manager *m) {
        char next[40] = "unknown", last[40];
        if (m->next_run)
                health_format_time(m->next_run, next, sizeof(next));
        if (!m->health.has_last_run)
                sd_notifyf(false, "STATUS=no run yet; next run %s", next);
        else
                sd_notifyf(false, "STATUS=last run %s at %s (%u days written); next run %s",
                           run_status_to_string(m->health.last_run.status),
                           health_format_time(m->health.last_run.finished_at, last, sizeof(last)),
                           m->health.last_run.days_written, next);
}

/* ---------- tasks on worker threads ---------- */

static void task_thread(void *userdata) {
        Task *t = userdata;
        const Config *c = t->config->config;

        switch (t->kind) {
        case TASK_RUN: {
                RunOptions o = { .trigger = t->trigger,
                                 .extra_days = t->extra_days,
                                 .n_extra_days = t->n_extra_days,
                                 .instance = c->instance };
                t->result = run_execute(c, &o, &t->manager->control, t->manager->backlog, &t->record, &t->outcome);
                break;
        }
        case TASK_HEARTBEAT:
                t->result = sink_heartbeat_once(&c->clickhouse, &t->heartbeat, &t->manager->heartbeat_cancel, t->err,
                                                sizeof(t->err));
                break;
        case TASK_SCHEMA:
                t->result = schema_check(&c->clickhouse, true, &t->manager->control.cancel, t->err, sizeof(t->err));
                /* at start-up a 5xx is worth waiting out too */
                t->unavailable = run_error_unavailable(t->result) || t->result == -EIO;
                break;
        case TASK_RELOAD_CHECK: /* the candidate's ClickHouse, before anything uses it */
                t->result = schema_check(&c->clickhouse, true, &t->manager->control.cancel, t->err, sizeof(t->err));
                break;
        case TASK_AUDIT:
                t->result = verify_audit(c, &t->manager->audit_control, &t->audit, t->err, sizeof(t->err));
                break;
        }
}

static bool task_busy(const Task *t) {
        return t->job && job_is_busy(t->job);
}

static bool any_task_busy(const Manager *m) {
        return task_busy(&m->run_task) || task_busy(&m->heartbeat_task) || task_busy(&m->reload_task) ||
               task_busy(&m->audit_task);
}

/* Starts kind on t's worker with config (NULL: the one in force). */
static int task_start_with(Task *t, TaskKind kind, ConfigRef *config) {
        t->kind = kind;
        t->config = config_ref(config ? config : t->manager->config);
        t->result = 0;
        t->unavailable = false;
        t->err[0] = '\0';
        int r = job_start(t->job, task_thread);
        if (r < 0) {
                config_unref(t->config);
                t->config = NULL;
        }
        return r;
}

static int task_start(Task *t, TaskKind kind) {
        return task_start_with(t, kind, NULL);
}

/* ---------- runs ---------- */

static void schedule_arm(Manager *m);
static void on_reload_check_done(Manager *m, Task *t);
static void heartbeat_start(Manager *m);

/* A hung run must not hide behind a healthy loop: every run has a
 * deadline (run_timeout).  Past it the run is cancelled, /healthz reports it
 * overdue (failing), and the watchdog pings stop until it ends, so systemd
 * restarts a daemon whose run ignores the cancel.  The network bounds of
 * pg.h (keepalives, tcp_user_timeout) and the ClickHouse timeout normally
 * end a run on a dead path long before. */
static void run_deadline_arm(Manager *m, const char *trigger) {
        usec_t timeout = cfg(m)->run_timeout;
        m->health.running = true;
        m->health.running_overdue = false;
        m->health.running_trigger = trigger;
        m->health.running_started_at = now_usec(CLOCK_REALTIME);
        m->health.running_deadline = m->health.running_started_at + timeout;
        arm_timer(m->deadline_timer, now_usec(CLOCK_MONOTONIC) + timeout);
}

static void run_start(Manager *m, const char *trigger) {
        if (m->stopping)
                return;
        if (task_busy(&m->run_task)) {
                /* coalesce: however many requests arrive during a run, exactly
                 * one follow-up run happens after it */
                if (!m->pending_trigger) {
                        m->pending_trigger = trigger;
                        log_info("run requested (trigger %s) while a run is in progress; queued one follow-up run",
                                 trigger);
                } else
                        log_debug("run requested (trigger %s); a follow-up run is already queued", trigger);
                return;
        }
        if (!m->health.ready) {
                log_notice("run requested (trigger %s) before the clickhouse schema is verified; it will run once "
                           "it is",
                           trigger);
                m->pending_trigger = trigger;
                return;
        }
        run_control_reset(&m->control);
        m->run_task.trigger = trigger;
        /* the audit's mismatches ride along; back to pending if the run fails */
        free(m->run_task.extra_days);
        m->run_task.extra_days = TAKE_PTR(m->audit_pending);
        m->run_task.n_extra_days = m->n_audit_pending;
        m->n_audit_pending = 0;
        int r = task_start(&m->run_task, TASK_RUN);
        if (r < 0) {
                log_error_errno(r, "cannot start a run thread");
                return;
        }
        log_debug("run started (trigger %s)", trigger);
        run_deadline_arm(m, trigger);
        heartbeat_start(m);
}

/* Starts the queued follow-up run, if any. */
static void run_start_pending(Manager *m) {
        const char *t = m->pending_trigger;
        if (!t)
                return;
        m->pending_trigger = NULL;
        run_start(m, t);
}

static void log_run_result(Manager *m, const RunRecord *rec, const RunOutcome *out) {
        char summary[2048];
        log_msg(run_summary(rec, out, false, summary, sizeof(summary)), "%s", summary);
        if (out->guard_blind && !m->guard_warned) {
                m->guard_warned = true;
                log_warning("the postgres role cannot see other sessions' transactions (grant it pg_read_all_stats); "
                            "relying on overlap alone for late commits");
        }
        /* once, and again if it comes back after a run through the standby */
        if (out->primary_ignored && !m->primary_ignored_warned)
                log_warning("%s", RUN_PRIMARY_IGNORED_WARNING);
        if (out->primary_ignored || rec->status == RUN_STATUS_SUCCESS)
                m->primary_ignored_warned = out->primary_ignored;
        if (!out->run_row_written)
                log_warning("run %s: its salesd_runs row could not be written; kept in memory (%zu pending) for the "
                            "next successful write",
                            rec->run_id, run_backlog_pending(m->backlog, NULL));
}

/* ---------- the continuous audit (SPEC §10) ---------- */

/* Adds days to the set the next run recomputes. */
static void audit_pend(Manager *m, const Day *days, size_t n) {
        if (n == 0)
                return;
        Day *all = realloc(m->audit_pending, (m->n_audit_pending + n) * sizeof(Day));
        if (!all) {
                log_error("audit: out of memory; %zu differing days wait for the reconcile window", n);
                return;
        }
        memcpy(all + m->n_audit_pending, days, n * sizeof(Day));
        m->audit_pending = all;
        m->n_audit_pending = day_sort_unique(all, m->n_audit_pending + n);
}

/* The run took the audit's differing days along: recomputed when it
 * succeeded, pending again when it did not. */
static void audit_after_run(Manager *m, Task *t) {
        if (t->n_extra_days > 0 && t->record.status == RUN_STATUS_SUCCESS)
                log_info("run %s recomputed %zu day(s) the audit found differing", t->record.run_id, t->n_extra_days);
        else if (t->n_extra_days > 0)
                audit_pend(m, t->extra_days, t->n_extra_days);
        free(t->extra_days);
        t->extra_days = NULL;
        t->n_extra_days = 0;
}

/* After a successful run, outside its lock, on a worker of its own: the run
 * is reported at once and the loop never waits for the audit. */
static void audit_start(Manager *m, const Task *run) {
        if (run->record.status != RUN_STATUS_SUCCESS || cfg(m)->audit.days_per_run == 0 || m->stopping ||
            task_busy(&m->audit_task))
                return;
        int r = task_start(&m->audit_task, TASK_AUDIT);
        if (r < 0)
                log_error_errno(r, "audit: cannot start its thread");
}

static void log_audit_mismatch(const VerifyDiff *d) {
        char day[DAY_STRLEN], a[MONEY_STRLEN], b[MONEY_STRLEN];
        Buf what = { 0 };
        day_format(d->day, day);
        if (d->missing)
                buf_printf(&what, "has no row in clickhouse, but %s completed orders in the source",
                           verify_column_value(&d->computed, 0, a, sizeof(a)));
        for (size_t c = 0; c < VERIFY_N_COLUMNS && !d->missing; c++)
                if (d->columns & (1u << c))
                        buf_printf(&what, "%s%s (stored %s, recomputed %s)", what.len ? ", " : "differs in ",
                                   verify_column_name(c), verify_column_value(&d->stored, c, a, sizeof(a)),
                                   verify_column_value(&d->computed, c, b, sizeof(b)));
        log_warning("audit: day %s %s; the next run recomputes it", day, what.data ? what.data : "differs");
        buf_free(&what);
}

static void on_audit_done(Manager *m, Task *t) {
        VerifyResult *res = &t->audit;
        if (t->result < 0)
                log_warning("audit: cannot verify days: %s", *t->err ? t->err : strerror(-t->result));
        else {
                char columns[256] = "";
                Day last = 0;
                for (size_t i = 0; i < res->n_diffs; i++) {
                        log_audit_mismatch(&res->diffs[i]);
                        audit_pend(m, &res->diffs[i].day, 1);
                        last = res->diffs[i].day;
                        verify_columns_text(&res->diffs[i], columns, sizeof(columns));
                }
                health_record_audit(&m->health, res->days_checked, res->n_diffs, last, columns,
                                    now_usec(CLOCK_REALTIME));
                log_debug("audit: %zu days checked, %zu differ", res->days_checked, res->n_diffs);
        }
        verify_result_done(res);
        if (m->stopping && !any_task_busy(m))
                sd_event_exit(m->event, m->exit_code);
}

/* Says once when requests moved to another clickhouse.url (the client
 * fails over silently: library code logs at debug only). */
static void note_clickhouse_endpoint(Manager *m) {
        const char *now = ch_endpoint_current(&cfg(m)->clickhouse);
        if (m->clickhouse_endpoint[0] && strcmp(m->clickhouse_endpoint, now) != 0)
                log_warning("clickhouse: requests now go to %s (failed over from %s)", now, m->clickhouse_endpoint);
        snprintf(m->clickhouse_endpoint, sizeof(m->clickhouse_endpoint), "%s", now);
}

static void begin_stop(Manager *m, const char *why);

static void on_run_done(Manager *m, Task *t) {
        sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        m->health.running = false;
        m->health.running_overdue = false;
        if (m->watchdog_disabled) {
                m->watchdog_disabled = false;
                sd_event_set_watchdog(m->event, true);
        }
        /* state first, then the log line: whoever reads the line and then
         * asks /healthz sees this run */
        health_record_run(&m->health, &t->record);
        usec_t wm;
        if (t->record.status == RUN_STATUS_SUCCESS && watermark_parse(t->outcome.watermark, &wm) == 0)
                m->health.watermark = wm;
        if (t->record.status == RUN_STATUS_SUCCESS && t->outcome.complete_as_of > m->health.complete_as_of)
                m->health.complete_as_of = t->outcome.complete_as_of;
        health_update_backlog(m);
        note_clickhouse_endpoint(m);
        log_run_result(m, &t->record, &t->outcome);
        if (run_error_config(t->result) && strcmp(t->trigger, "start") == 0) {
                /* SPEC §9: a standby without its primary at start; later runs
                 * (a failover, a reload) fail and say why, but keep the daemon */
                m->exit_code = EX_CONFIG; /* an operator must fix it: no restart loop */
                begin_stop(m, "postgres.conninfo is a standby without postgres.primary_conninfo");
        }
        audit_after_run(m, t);
        update_status(m);
        if (m->stopping) {
                /* the heartbeat or the audit may still be on its way out */
                if (!any_task_busy(m))
                        sd_event_exit(m->event, m->exit_code);
                return;
        }
        heartbeat_start(m);
        audit_start(m, t);
        run_start_pending(m);
}

/* ---------- notify.channel: LISTEN, debounced ---------- */

static void on_notification(void *userdata) {
        Manager *m = userdata;
        /* a burst of notifications within `debounce` becomes one run */
        if (sd_event_source_get_enabled(m->debounce_timer, NULL) > 0)
                return;
        arm_timer(m->debounce_timer, now_usec(CLOCK_MONOTONIC) + cfg(m)->notify.debounce);
}

static int on_debounce_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        run_start(userdata, "notify");
        return 0;
}

/* The listener borrows the configuration, so it is restarted with it. */
static void listener_restart(Manager *m) {
        listener_free(m->listener);
        m->listener = NULL;
        if (!*cfg(m)->notify.channel || m->stopping)
                return;
        int r = listener_new(m->event, cfg(m), on_notification, m, &m->listener);
        if (r < 0)
                log_error_errno(r, "notify: cannot start the LISTEN connection");
}

/* ---------- schema verification before READY ---------- */

static void on_schema_done(Manager *m, Task *t) {
        if (m->stopping) {
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        if (t->result < 0) {
                if (t->unavailable) {
                        log_error("clickhouse schema check failed: %s; retrying in %" PRIu64 " s", t->err,
                                  SCHEMA_RETRY_USEC / USEC_PER_SEC);
                        sd_notifyf(false, "STATUS=waiting for clickhouse: %s", t->err);
                        arm_timer(m->schema_timer, now_usec(CLOCK_MONOTONIC) + SCHEMA_RETRY_USEC);
                        return;
                }
                log_error("clickhouse schema check failed: %s", t->err);
                m->exit_code = EX_CONFIG; /* an operator must fix it: no restart loop */
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        m->health.ready = true;
        log_info("clickhouse schema verified in database '%s'; ready", cfg(m)->clickhouse.database);
        sd_notify(false, "READY=1");
        update_status(m);
        listener_restart(m);
        if (m->pending_trigger)
                run_start_pending(m);
        else if (cfg(m)->run_on_start)
                run_start(m, "start");
        heartbeat_start(m);
}

static int on_schema_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        Manager *m = userdata;
        if (!task_busy(&m->run_task)) {
                int r = task_start(&m->run_task, TASK_SCHEMA);
                if (r < 0)
                        log_error_errno(r, "cannot start the schema check thread");
        }
        return 0;
}

/* ---------- heartbeat ---------- */

static const char *heartbeat_state(const Manager *m) {
        if (task_busy(&m->run_task) && m->run_task.kind == TASK_RUN)
                return m->health.running_overdue ? "failing" : "running";
        switch (health_state(&m->health, now_usec(CLOCK_REALTIME), schedule_period(m))) {
        case HEALTH_STANDBY:
                return "standby";
        case HEALTH_FAILING:
                return "failing";
        default:
                return "idle";
        }
}

static void heartbeat_start(Manager *m) {
        if (task_busy(&m->heartbeat_task) || m->stopping || !m->health.ready)
                return;
        m->heartbeat_task.heartbeat = (HeartbeatRow){
                .instance = cfg(m)->instance,
                .state = heartbeat_state(m),
                .ts = now_usec(CLOCK_REALTIME),
                .last_success = m->health.last_success,
                .next_run = m->next_run,
        };
        int r = task_start(&m->heartbeat_task, TASK_HEARTBEAT);
        if (r < 0)
                log_error_errno(r, "cannot start the heartbeat thread");
}

static void on_heartbeat_done(Manager *m, Task *t) {
        note_clickhouse_endpoint(m);
        if (t->result < 0) {
                m->health.heartbeat_failures_total++;
                log_warning("heartbeat not written: %s", t->err);
        }
        if (m->stopping && !any_task_busy(m))
                sd_event_exit(m->event, m->exit_code);
}

static int on_heartbeat_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        heartbeat_start(m);
        sd_event_source_set_time(s, usec + cfg(m)->heartbeat_interval);
        return 0;
}

/* ---------- task completion (a Job's done callback) ---------- */

static void on_task_done(void *userdata) {
        Task *t = userdata;
        config_unref(t->config);
        t->config = NULL;
        switch (t->kind) {
        case TASK_RUN:
                on_run_done(t->manager, t);
                break;
        case TASK_SCHEMA:
                on_schema_done(t->manager, t);
                break;
        case TASK_HEARTBEAT:
                on_heartbeat_done(t->manager, t);
                break;
        case TASK_RELOAD_CHECK:
                on_reload_check_done(t->manager, t);
                break;
        case TASK_AUDIT:
                on_audit_done(t->manager, t);
                break;
        }
}

/* ---------- the schedule ---------- */

static int on_schedule_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        Manager *m = userdata;
        run_start(m, "schedule");
        schedule_arm(m);
        return 0;
}

static void schedule_arm(Manager *m) {
        time_t next;
        /* one second of slack after the last fire: never fire twice for one
         * minute if the timer woke a little early */
        time_t after = (time_t)(now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
        if (cron_next(m->cron, after, &next) < 0) {
                log_error("schedule '%s' never matches again; no scheduled runs", cfg(m)->schedule);
                m->next_run = 0;
                sd_event_source_set_enabled(m->schedule_timer, SD_EVENT_OFF);
                return;
        }
        m->next_run = (usec_t)next * USEC_PER_SEC;
        m->health.next_run = m->next_run;
        arm_timer(m->schedule_timer, m->next_run);
        char buf[40];
        log_debug("next scheduled run at %s", health_format_time(m->next_run, buf, sizeof(buf)));
        update_status(m);
}

/* A timerfd that is cancelled whenever the realtime clock is set: the one
 * portable way to learn of settimeofday() and of jumps after resume. */
static int clock_watch_arm(Manager *m) {
        struct itimerspec its = { .it_value = { .tv_sec = (time_t)0x7fffffff } };
        if (timerfd_settime(m->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return 0;
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)revents;
        Manager *m = userdata;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != ECANCELED)
                return 0;
        log_notice("system clock changed; re-arming the schedule");
        clock_watch_arm(m);
        schedule_arm(m);
        return 0;
}

/* ---------- signals ---------- */

static void begin_stop(Manager *m, const char *why) {
        if (m->stopping)
                return;
        m->stopping = true;
        sd_notify(false, "STOPPING=1");
        listener_free(m->listener);
        m->listener = NULL;
        if (!any_task_busy(m)) {
                log_info("%s: stopping", why);
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        log_info("%s: stopping; cancelling the work in progress", why);
        run_control_cancel(&m->control, "salesd is stopping");
        atomic_store(&m->heartbeat_cancel, true);
        run_control_cancel(&m->audit_control, "salesd is stopping");
        arm_timer(m->stop_timer, now_usec(CLOCK_MONOTONIC) + STOP_GRACE_USEC);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec, (void)userdata;
        /* A worker ignored cancellation.  Nothing is lost by leaving now: the
         * watermark only moves after the rows it covers are stored. */
        log_warning("work still in progress %" PRIu64 " s after the stop request; exiting anyway",
                    STOP_GRACE_USEC / USEC_PER_SEC);
        fflush(stderr);
        _exit(0);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        Manager *m = userdata;
        char limit[32];
        log_error("the current run passed its deadline (run_timeout %s); cancelling it, and stopping watchdog pings "
                  "until it ends so that the service manager restarts salesd if it does not",
                  duration_format(cfg(m)->run_timeout, limit, sizeof(limit)));
        m->health.running_overdue = true;
        m->watchdog_disabled = true;
        sd_event_set_watchdog(m->event, false);
        run_control_cancel(&m->control, "the run passed its deadline (run_timeout)");
        return 0;
}

/* Loads and checks the new configuration and schedule; on success they
 * replace the ones in force.  Logs why not otherwise. */
/* Loads and checks the file; on success the candidate and its schedule. */
static int reload_prepare(Manager *m, ConfigRef **ret_ref, CronExpr **ret_cron) {
        _cleanup_(config_unrefp) ConfigRef *ref = NULL;
        _cleanup_(cron_freep) CronExpr *cron = NULL;
        char err[8192] = "", cerr[256];
        const char *why = NULL;
        Config *next = NULL;

        int r = config_load(m->config_path, &next, err, sizeof(err));
        if (r < 0) {
                char *save = NULL;
                for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        log_error("%s", line);
                log_error("reload: configuration '%s' rejected; keeping the one in force", m->config_path);
                return r;
        }
        ref = config_ref_new(next);
        if (!ref) {
                config_free(next);
                return log_error_errno(-ENOMEM, "reload: configuration '%s' not applied", m->config_path);
        }
        if (!config_reloadable(cfg(m), ref->config, &why)) {
                log_error("reload: '%s' changed, which needs a restart ('systemctl restart salesd'); keeping the "
                          "configuration in force",
                          why ? why : "a key");
                return -EPERM;
        }
        if (cron_parse(ref->config->schedule, &cron, cerr, sizeof(cerr)) < 0) {
                /* config_load validated it; this is belt and braces */
                log_error("reload: schedule: %s; keeping the configuration in force", cerr);
                return -EINVAL;
        }
        *ret_ref = TAKE_PTR(ref);
        *ret_cron = TAKE_PTR(cron);
        return 0;
}

/* Puts the candidate in force (takes both) and tells systemd. */
static bool same_urls(char *const *a, char *const *b) {
        while (*a && *b && strcmp(*a, *b) == 0)
                a++, b++;
        return !*a && !*b;
}

static void reload_apply(Manager *m, ConfigRef *ref, CronExpr *cron) {
        if (!same_urls(cfg(m)->clickhouse.url, ref->config->clickhouse.url))
                ch_endpoint_reset(); /* a new list: its first url */
        config_unref(m->config);
        m->config = ref;
        cron_free(m->cron);
        m->cron = cron;
        m->health.instance = cfg(m)->instance;
        log_set_level(cfg(m)->log_level);
        setenv("TZ", cfg(m)->timezone, 1);
        tzset();
        if (m->http)
                http_server_set_token(m->http, cfg(m)->http.token);
        if (m->health.ready)
                listener_restart(m);
        sd_event_source_set_time(m->heartbeat_timer, now_usec(CLOCK_MONOTONIC) + cfg(m)->heartbeat_interval);
        schedule_arm(m);
        health_record_reload(&m->health, true, now_usec(CLOCK_REALTIME));
        log_info("reload: configuration '%s' loaded", m->config_path);
        sd_notify(false, "READY=1");
}

/* SIGHUP.  New ClickHouse settings are checked against the schema on a
 * worker first (the loop never waits on a server): a reload that would make
 * every run fail is refused and the configuration in force stays. */
static void reload(Manager *m) {
        ConfigRef *ref = NULL;
        CronExpr *cron = NULL;

        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
        if (task_busy(&m->reload_task)) {
                log_warning("reload: the previous reload is still being checked; send SIGHUP again when it is done");
                return; /* its completion sends READY=1 */
        }
        if (reload_prepare(m, &ref, &cron) < 0) {
                health_record_reload(&m->health, false, now_usec(CLOCK_REALTIME));
                sd_notify(false, "READY=1");
                return;
        }
        if (!config_clickhouse_changed(cfg(m), ref->config)) {
                reload_apply(m, ref, cron);
                return;
        }
        log_info("reload: clickhouse settings changed; verifying the schema with them before applying");
        int r = task_start_with(&m->reload_task, TASK_RELOAD_CHECK, ref);
        if (r < 0) {
                log_error_errno(r, "reload: cannot start the schema check; keeping the configuration in force");
                health_record_reload(&m->health, false, now_usec(CLOCK_REALTIME));
                config_unref(ref);
                cron_free(cron);
                sd_notify(false, "READY=1");
                return;
        }
        m->reload_candidate = ref;
        m->reload_cron = cron;
}

static void on_reload_check_done(Manager *m, Task *t) {
        ConfigRef *ref = TAKE_PTR(m->reload_candidate);
        CronExpr *cron = TAKE_PTR(m->reload_cron);
        if (m->stopping || t->result < 0) {
                if (!m->stopping) {
                        health_record_reload(&m->health, false, now_usec(CLOCK_REALTIME));
                        log_error("reload: clickhouse schema check with the new settings failed: %s; keeping the "
                                  "configuration in force",
                                  t->err);
                }
                config_unref(ref);
                cron_free(cron);
                sd_notify(false, "READY=1");
                if (m->stopping)
                        sd_event_exit(m->event, m->exit_code);
                return;
        }
        reload_apply(m, ref, cron);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        Manager *m = userdata;
        switch (si->ssi_signo) {
        case SIGUSR1:
                run_start(m, "signal");
                break;
        case SIGHUP:
                reload(m);
                break;
        case SIGTERM:
                begin_stop(m, "SIGTERM");
                break;
        case SIGINT:
                begin_stop(m, "SIGINT");
                break;
        default:
                break;
        }
        return 0;
}

/* ---------- HTTP handlers: the endpoint's view of the loop's state ---------- */

static int http_healthz(void *userdata, char **ret_body) {
        Manager *m = userdata;
        int status = 500;
        health_update_backlog(m);
        m->health.clickhouse_endpoint = ch_endpoint_current(&cfg(m)->clickhouse);
        *ret_body = health_render_json(&m->health, now_usec(CLOCK_REALTIME), schedule_period(m), &status);
        return *ret_body ? status : 500;
}

static int http_readyz(void *userdata, char **ret_body) {
        Manager *m = userdata;
        *ret_body = strdup(m->health.ready ? "{\"status\":\"ready\"}"
                                           : "{\"status\":\"not ready\",\"reason\":\"clickhouse schema not verified "
                                             "yet\"}");
        return m->health.ready ? 200 : 503;
}

static int http_metrics(void *userdata, char **ret_body) {
        Manager *m = userdata;
        HealthProcess proc;
        health_update_backlog(m);
        m->health.clickhouse_endpoint = ch_endpoint_current(&cfg(m)->clickhouse);
        bool have_proc = procstat_read(&proc) >= 0;
        *ret_body = health_render_metrics(&m->health, have_proc ? &proc : NULL, now_usec(CLOCK_REALTIME),
                                          schedule_period(m));
        return *ret_body ? 200 : 500;
}

static void http_run(void *userdata) {
        run_start(userdata, "http");
}

/* ---------- setup and teardown ---------- */

static void manager_free(Manager *m) {
        if (!m)
                return;
        http_server_free(m->http);
        listener_free(m->listener);
        sd_event_source_unref(m->debounce_timer);
        sd_event_source_unref(m->schedule_timer);
        sd_event_source_unref(m->heartbeat_timer);
        sd_event_source_unref(m->stop_timer);
        sd_event_source_unref(m->schema_timer);
        sd_event_source_unref(m->deadline_timer);
        sd_event_source_unref(m->clock_watch);
        if (m->clock_fd >= 0)
                close(m->clock_fd);
        job_free(m->run_task.job);
        job_free(m->heartbeat_task.job);
        job_free(m->reload_task.job);
        job_free(m->audit_task.job);
        free(m->run_task.extra_days);
        free(m->audit_pending);
        config_unref(m->reload_candidate);
        cron_free(m->reload_cron);
        sd_event_unref(m->event);
        cron_free(m->cron);
        config_unref(m->config);
        run_backlog_free(m->backlog);
        run_control_done(&m->control);
        run_control_done(&m->audit_control);
        free(m->config_path);
        free(m);
}

DEFINE_POINTER_CLEANUP_FUNC(Manager, manager_free)

/* The loop's signals arrive through signalfd, so no thread may take them. */
static int manager_attach_signals(Manager *m) {
        static const int signals[] = { SIGUSR1, SIGHUP, SIGTERM, SIGINT };
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                sigaddset(&mask, signals[i]);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                int r = sd_event_add_signal(m->event, NULL, signals[i], on_signal, m);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int manager_attach_tasks(Manager *m) {
        Task *tasks[] = { &m->run_task, &m->heartbeat_task, &m->reload_task, &m->audit_task };
        for (size_t i = 0; i < ELEMENTSOF(tasks); i++) {
                tasks[i]->manager = m;
                int r = job_new(m->event, on_task_done, tasks[i], &tasks[i]->job);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Every timer is created here, disarmed unless said otherwise; the
 * handlers arm them. */
static int manager_attach_timers(Manager *m) {
        const struct {
                sd_event_source **source;
                clockid_t clock;
                usec_t accuracy;
                sd_event_time_handler_t handler;
        } timers[] = {
                { &m->schedule_timer, CLOCK_REALTIME, USEC_PER_SEC, on_schedule_timer },
                { &m->heartbeat_timer, CLOCK_MONOTONIC, USEC_PER_SEC, on_heartbeat_timer },
                { &m->stop_timer, CLOCK_MONOTONIC, 0, on_stop_timer },
                { &m->schema_timer, CLOCK_MONOTONIC, 0, on_schema_timer },
                { &m->deadline_timer, CLOCK_MONOTONIC, USEC_PER_SEC, on_deadline },
                { &m->debounce_timer, CLOCK_MONOTONIC, 0, on_debounce_timer },
        };
        for (size_t i = 0; i < ELEMENTSOF(timers); i++) {
                int r = sd_event_add_time(m->event, timers[i].source, timers[i].clock, UINT64_MAX, timers[i].accuracy,
                                          timers[i].handler, m);
                if (r < 0)
                        return r;
                r = sd_event_source_set_enabled(*timers[i].source, SD_EVENT_OFF);
                if (r < 0)
                        return r;
        }
        /* the heartbeat beats from the start; the others wait for a reason */
        sd_event_source_set_time(m->heartbeat_timer, now_usec(CLOCK_MONOTONIC) + cfg(m)->heartbeat_interval);
        return sd_event_source_set_enabled(m->heartbeat_timer, SD_EVENT_ON);
}

static int manager_attach_clock_watch(Manager *m) {
        m->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
        if (m->clock_fd < 0)
                return -errno;
        int r = clock_watch_arm(m);
        if (r < 0)
                return r;
        return sd_event_add_io(m->event, &m->clock_watch, m->clock_fd, EPOLLIN, on_clock_change, m);
}

static int manager_attach_http(Manager *m) {
        HttpHandlers h = {
                .userdata = m, .healthz = http_healthz, .readyz = http_readyz, .metrics = http_metrics, .run = http_run
        };
        char herr[512];

        if (!*cfg(m)->http.listen)
                return 0;
        int r = http_server_new(m->event, cfg(m)->http.listen, cfg(m)->http.token, &h, &m->http, herr, sizeof(herr));
        if (r < 0) {
                log_error("http: %s", herr);
                return r;
        }
        log_info("http endpoint listening on %s%s", cfg(m)->http.listen,
                 cfg(m)->http.token ? "" : " (POST /run disabled: no http.token_file)");
        return 0;
}

/* The Manager's own state, before anything is attached to a loop; c is
 * the configuration the caller will hand over. */
static int manager_alloc(const char *config_path, const Config *c, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
        char err[512];

        if (!m)
                return -ENOMEM;
        m->clock_fd = -1;
        run_control_init(&m->control);
        atomic_init(&m->heartbeat_cancel, false);
        run_control_init(&m->audit_control);
        if (run_backlog_new(&m->backlog) < 0)
                return -ENOMEM;
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;
        if (cron_parse(c->schedule, &m->cron, err, sizeof(err)) < 0) {
                log_error("schedule '%s': %s", c->schedule, err);
                return -EINVAL;
        }
        m->health.instance = c->instance;
        m->health.version = SALESD_VERSION;
        m->health.started_at = now_usec(CLOCK_REALTIME);
        m->health.config_last_reload_success_at = m->health.started_at;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Takes ownership of config, also on failure. */
static int manager_new(const char *config_path, Config *config, Manager **ret) {
        _cleanup_(config_unrefp) ConfigRef *ref = config_ref_new(config);
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        if (!ref) {
                config_free(config);
                return -ENOMEM;
        }
        r = manager_alloc(config_path, ref->config, &m);
        if (r < 0)
                return r;
        m->config = TAKE_PTR(ref);

        r = sd_event_default(&m->event);
        if (r >= 0)
                r = manager_attach_signals(m);
        if (r >= 0)
                r = manager_attach_tasks(m);
        if (r >= 0)
                r = manager_attach_timers(m);
        if (r >= 0)
                r = manager_attach_clock_watch(m);
        if (r >= 0)
                r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return log_error_errno(r, "cannot set up the event loop");
        r = manager_attach_http(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_main(const char *config_path, Config *config) {
        Manager *m = NULL;
        int r = manager_new(config_path, config, &m);
        if (r < 0)
                /* a taken port may free up (an old instance still stopping): let the
                 * service manager retry; a bad address or schedule cannot */
                return r == -EINVAL || r == -EADDRNOTAVAIL ? EX_CONFIG : 1;

        log_info("salesd %s starting: instance '%s', schedule '%s' in %s", SALESD_VERSION, cfg(m)->instance,
                 cfg(m)->schedule, cfg(m)->timezone);
        schedule_arm(m);
        r = task_start(&m->run_task, TASK_SCHEMA);
        if (r < 0) {
                log_error_errno(r, "cannot start the schema check thread");
                manager_free(m);
                return 1;
        }
        r = sd_event_loop(m->event);
        int code = r < 0 ? 1 : r;
        if (r < 0)
                log_error_errno(r, "event loop failed");
        /* a task still running here ignored the stop; do not free under it */
        if (any_task_busy(m)) {
                fflush(stderr);
                _exit(code);
        }
        log_info("stopped");
        manager_free(m);
        return code;
}
