/* See manager.h.
 *
 * Why worker threads rather than async libpq + curl multi on the loop: a run
 * is a short sequence of dependent statements; written as blocking code it
 * reads like SPEC §4 and is easy to prove correct.  The loop stays
 * responsive because it never executes one: it hands the run to a thread,
 * keeps serving signals, HTTP, heartbeats and the watchdog, and learns of
 * the result through an eventfd.  Cancellation (SIGTERM) raises a flag that
 * curl's progress callback and every step check, and cancels the Postgres
 * statement in flight.  The watchdog still catches a truly hung daemon: the
 * loop stops pinging if a run outlives its hard deadline, and of course when
 * the loop itself is stuck.
 *
 * All state below is owned by the loop thread, except what a job's thread
 * reads from its own Job (a config reference taken at start) and the
 * RunBacklog/RunControl, which lock for themselves. */
#include "manager.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "cron.h"
#include "day.h"
#include "backlog.h"
#include "health.h"
#include "sink.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "run.h"
#include "schema.h"
#include "watermark.h"

#define STOP_GRACE_USEC   (8 * USEC_PER_SEC)
#define SCHEMA_RETRY_USEC (5 * USEC_PER_SEC)

typedef struct Manager Manager;

/* A configuration shared by the loop and the jobs that started under it;
 * freed when the last holder lets go (a SIGHUP may replace it mid-run). */
typedef struct ConfigRef {
        Config *config;
        unsigned refs;
} ConfigRef;

typedef enum JobKind { JOB_RUN, JOB_HEARTBEAT, JOB_SCHEMA } JobKind;

typedef struct Job {
        Manager *manager;
        JobKind kind;
        pthread_t thread;
        int efd;
        sd_event_source *source;
        bool busy;
        ConfigRef *config;
        /* inputs */
        const char *trigger;
        HeartbeatRow heartbeat;
        /* outputs */
        int result;
        bool unavailable;
        RunRecord record;
        RunOutcome outcome;
        char err[1024];
} Job;

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

        Job run_job, heartbeat_job;
        const char *pending_trigger; /* a follow-up run is queued */
        bool stopping;
        bool watchdog_disabled;
        int exit_code;
        bool guard_warned;

        sd_event_source *schedule_timer;
        sd_event_source *heartbeat_timer;
        sd_event_source *stop_timer;
        sd_event_source *schema_timer;
        sd_event_source *deadline_timer;
        sd_event_source *debounce_timer;
        sd_event_source *clock_watch;
        int clock_fd;
        usec_t next_run;
};

/* ---------- small helpers ---------- */

static usec_t now_realtime(void) {
        return now_usec(CLOCK_REALTIME);
}

static usec_t now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

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

static const Config *cfg(const Manager *m) {
        return m->config->config;
}

/* The period handed to health_state()'s "nothing succeeded or was skipped
 * for more than 2 schedule periods" rule.  A schedule need not be regular
 * ("0 9 * * 1-5" has a 3-day gap over the weekend), so the rule is applied
 * to the actual slots: stale means nothing ok since the slot before the
 * last one, and half the time since that slot is the period that says so.
 * Previous slots are found by stepping cron_next() through growing windows. */
static usec_t schedule_period(const Manager *m) {
        static const time_t windows[] = { 3600, 86400, 7 * 86400, 32 * 86400, 367 * 86400, 8 * 366 * 86400 };
        time_t now = (time_t)(now_realtime() / USEC_PER_SEC);

        if (!m->cron)
                return 0;
        for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
                time_t t = now - windows[i], next, prev1 = 0, prev2 = 0;
                for (unsigned steps = 0; steps < 200000 && cron_next(m->cron, t, &next) == 0 && next < now; steps++) {
                        prev2 = prev1;
                        prev1 = next;
                        t = next;
                }
                if (prev2)
                        return (usec_t)(now - prev2) * USEC_PER_SEC / 2;
        }
        return 0; /* fewer than two slots in 8 years: no staleness rule */
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

/* ---------- jobs on worker threads ---------- */

static void *job_thread(void *userdata) {
        Job *j = userdata;
        const Config *c = j->config->config;
        uint64_t one = 1;

        switch (j->kind) {
        case JOB_RUN: {
                RunOptions o = { .trigger = j->trigger, .instance = c->instance };
                j->result = run_execute(c, &o, &j->manager->control, j->manager->backlog, &j->record, &j->outcome);
                break;
        }
        case JOB_HEARTBEAT:
                j->result = sink_heartbeat_once(&c->clickhouse, &j->heartbeat, &j->manager->heartbeat_cancel, j->err,
                                                sizeof(j->err));
                break;
        case JOB_SCHEMA:
                j->result = schema_check(&c->clickhouse, true, &j->manager->control.cancel, j->err, sizeof(j->err));
                /* at start-up a 5xx is worth waiting out too */
                j->unavailable = run_error_unavailable(j->result) || j->result == -EIO;
                break;
        }
        /* the loop thread learns of the result here; nothing touches j after */
        if (write(j->efd, &one, sizeof(one)) < 0)
                abort(); /* an eventfd write cannot fail unless the counter overflows */
        return NULL;
}

static int job_start(Job *j, JobKind kind) {
        Manager *m = j->manager;
        j->kind = kind;
        j->config = config_ref(m->config);
        j->result = 0;
        j->unavailable = false;
        j->err[0] = '\0';
        j->busy = true;
        int r = pthread_create(&j->thread, NULL, job_thread, j);
        if (r != 0) {
                j->busy = false;
                config_unref(j->config);
                j->config = NULL;
                return -r;
        }
        return 0;
}

/* ---------- runs ---------- */

static void schedule_arm(Manager *m);
static void heartbeat_start(Manager *m);

static void run_start(Manager *m, const char *trigger) {
        if (m->stopping)
                return;
        if (m->run_job.busy) {
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
        atomic_store(&m->control.cancel, false);
        m->run_job.trigger = trigger;
        int r = job_start(&m->run_job, JOB_RUN);
        if (r < 0) {
                log_error("cannot start a run thread: %s", strerror(-r));
                return;
        }
        log_debug("run started (trigger %s)", trigger);
        /* A hung run must not hide behind a healthy loop: past this deadline
         * the watchdog pings stop and systemd restarts us.  Every statement is
         * bounded by statement_timeout and every request by the ClickHouse
         * timeout and retries; a run makes about ten of each, so ten times
         * those bounds is generous enough never to kill an honest first run
         * over a long history.  Without a statement_timeout there is no
         * bound, and no deadline. */
        const Config *c = cfg(m);
        if (c->postgres.statement_timeout > 0) {
                usec_t deadline =
                        10 * c->postgres.statement_timeout +
                        10 * (usec_t)(c->clickhouse.retries + 1) * (c->clickhouse.timeout + 10 * USEC_PER_SEC);
                sd_event_source_set_time(m->deadline_timer, now_monotonic() + deadline);
                sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_ONESHOT);
        }
        heartbeat_start(m);
}

static void log_run_result(Manager *m, const RunRecord *rec, const RunOutcome *out) {
        char summary[2048];
        log_msg(run_summary(rec, out, false, summary, sizeof(summary)), "%s", summary);
        if (out->guard_blind && !m->guard_warned) {
                m->guard_warned = true;
                log_warning("the postgres role cannot see other sessions' transactions (grant it pg_read_all_stats); "
                            "relying on overlap alone for late commits");
        }
        if (!out->run_row_written)
                log_warning("run %s: its salesd_runs row could not be written; kept in memory (%zu pending) for the "
                            "next successful write",
                            rec->run_id, run_backlog_pending(m->backlog, NULL));
}

static void on_run_done(Manager *m, Job *j) {
        sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        if (m->watchdog_disabled) {
                m->watchdog_disabled = false;
                sd_event_set_watchdog(m->event, true);
        }
        /* state first, then the log line: whoever reads the line and then
         * asks /healthz sees this run */
        health_record_run(&m->health, &j->record);
        usec_t wm;
        if (j->record.status == RUN_STATUS_SUCCESS && watermark_parse(j->outcome.watermark, &wm) == 0)
                m->health.watermark = wm;
        uint64_t dropped = 0;
        m->health.run_rows_pending = run_backlog_pending(m->backlog, &dropped);
        m->health.run_rows_dropped_total = dropped;
        log_run_result(m, &j->record, &j->outcome);
        update_status(m);
        if (m->stopping) {
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        heartbeat_start(m);
        if (m->pending_trigger) {
                const char *t = m->pending_trigger;
                m->pending_trigger = NULL;
                run_start(m, t);
        }
}

/* ---------- notify.channel: LISTEN, debounced ---------- */

static void on_notification(void *userdata) {
        Manager *m = userdata;
        /* a burst of notifications within `debounce` becomes one run */
        if (sd_event_source_get_enabled(m->debounce_timer, NULL) > 0)
                return;
        sd_event_source_set_time(m->debounce_timer, now_monotonic() + cfg(m)->notify.debounce);
        sd_event_source_set_enabled(m->debounce_timer, SD_EVENT_ONESHOT);
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
                log_error("notify: cannot start the LISTEN connection: %s", strerror(-r));
}

/* ---------- schema verification before READY ---------- */

static void on_schema_done(Manager *m, Job *j) {
        if (m->stopping) {
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        if (j->result < 0) {
                if (j->unavailable) {
                        log_error("clickhouse schema check failed: %s; retrying in %" PRIu64 " s", j->err,
                                  SCHEMA_RETRY_USEC / USEC_PER_SEC);
                        sd_notifyf(false, "STATUS=waiting for clickhouse: %s", j->err);
                        sd_event_source_set_time(m->schema_timer, now_monotonic() + SCHEMA_RETRY_USEC);
                        sd_event_source_set_enabled(m->schema_timer, SD_EVENT_ONESHOT);
                        return;
                }
                log_error("clickhouse schema check failed: %s", j->err);
                m->exit_code = EX_CONFIG; /* an operator must fix it: no restart loop */
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        m->health.ready = true;
        log_info("clickhouse schema verified in database '%s'; ready", cfg(m)->clickhouse.database);
        sd_notify(false, "READY=1");
        update_status(m);
        listener_restart(m);
        if (m->pending_trigger) {
                const char *t = m->pending_trigger;
                m->pending_trigger = NULL;
                run_start(m, t);
        } else if (cfg(m)->run_on_start)
                run_start(m, "start");
        heartbeat_start(m);
}

static int on_schema_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        Manager *m = userdata;
        if (!m->run_job.busy && job_start(&m->run_job, JOB_SCHEMA) < 0)
                log_error("cannot start the schema check thread");
        return 0;
}

/* ---------- heartbeat ---------- */

static const char *heartbeat_state(const Manager *m) {
        if (m->run_job.busy && m->run_job.kind == JOB_RUN)
                return "running";
        switch (health_state(&m->health, now_realtime(), schedule_period(m))) {
        case HEALTH_STANDBY:
                return "standby";
        case HEALTH_FAILING:
                return "failing";
        default:
                return "idle";
        }
}

static void heartbeat_start(Manager *m) {
        if (m->heartbeat_job.busy || m->stopping || !m->health.ready)
                return;
        m->heartbeat_job.heartbeat = (HeartbeatRow){
                .instance = cfg(m)->instance,
                .state = heartbeat_state(m),
                .ts = now_realtime(),
                .last_success = m->health.last_success,
                .next_run = m->next_run,
        };
        if (job_start(&m->heartbeat_job, JOB_HEARTBEAT) < 0)
                log_error("cannot start the heartbeat thread");
}

static void on_heartbeat_done(Manager *m, Job *j) {
        if (j->result < 0) {
                m->health.heartbeat_failures_total++;
                log_warning("heartbeat not written: %s", j->err);
        }
        if (m->stopping && !m->run_job.busy)
                sd_event_exit(m->event, m->exit_code);
}

static int on_heartbeat_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        heartbeat_start(m);
        sd_event_source_set_time(s, usec + cfg(m)->heartbeat_interval);
        return 0;
}

/* ---------- job completion ---------- */

static int on_job_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)revents;
        Job *j = userdata;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0)
                return 0;
        pthread_join(j->thread, NULL);
        j->busy = false;
        config_unref(j->config);
        j->config = NULL;
        switch (j->kind) {
        case JOB_RUN:
                on_run_done(j->manager, j);
                break;
        case JOB_SCHEMA:
                on_schema_done(j->manager, j);
                break;
        case JOB_HEARTBEAT:
                on_heartbeat_done(j->manager, j);
                break;
        }
        return 0;
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
        time_t after = (time_t)(now_realtime() / USEC_PER_SEC);
        if (cron_next(m->cron, after, &next) < 0) {
                log_error("schedule '%s' never matches again; no scheduled runs", cfg(m)->schedule);
                m->next_run = 0;
                sd_event_source_set_enabled(m->schedule_timer, SD_EVENT_OFF);
                return;
        }
        m->next_run = (usec_t)next * USEC_PER_SEC;
        m->health.next_run = m->next_run;
        sd_event_source_set_time(m->schedule_timer, m->next_run);
        sd_event_source_set_enabled(m->schedule_timer, SD_EVENT_ONESHOT);
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
        if (!m->run_job.busy && !m->heartbeat_job.busy) {
                log_info("%s: stopping", why);
                sd_event_exit(m->event, m->exit_code);
                return;
        }
        log_info("%s: stopping; cancelling the work in progress", why);
        run_control_cancel(&m->control);
        atomic_store(&m->heartbeat_cancel, true);
        sd_event_source_set_time(m->stop_timer, now_monotonic() + STOP_GRACE_USEC);
        sd_event_source_set_enabled(m->stop_timer, SD_EVENT_ONESHOT);
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
        log_error("the current run passed its hard deadline and is not responding; stopping watchdog pings so the "
                  "service manager restarts salesd");
        m->watchdog_disabled = true;
        sd_event_set_watchdog(m->event, false);
        run_control_cancel(&m->control);
        return 0;
}

static void reload(Manager *m) {
        char err[8192] = "";
        Config *next = NULL;
        const char *why = NULL;

        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_monotonic());
        int r = config_load(m->config_path, &next, err, sizeof(err));
        if (r < 0) {
                char *save = NULL;
                for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        log_error("%s", line);
                log_error("reload: configuration '%s' rejected; keeping the one in force", m->config_path);
                sd_notify(false, "READY=1");
                return;
        }
        if (!config_reloadable(cfg(m), next, &why)) {
                log_error("reload: '%s' changed, which needs a restart ('systemctl restart salesd'); keeping the "
                          "configuration in force",
                          why ? why : "a key");
                config_free(next);
                sd_notify(false, "READY=1");
                return;
        }
        CronExpr *cron = NULL;
        char cerr[256];
        if (cron_parse(next->schedule, &cron, cerr, sizeof(cerr)) < 0) {
                /* config_load validated it; this is belt and braces */
                log_error("reload: schedule: %s; keeping the configuration in force", cerr);
                config_free(next);
                sd_notify(false, "READY=1");
                return;
        }
        ConfigRef *ref = config_ref_new(next);
        if (!ref) {
                cron_free(cron);
                config_free(next);
                sd_notify(false, "READY=1");
                return;
        }
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
        sd_event_source_set_time(m->heartbeat_timer, now_monotonic() + cfg(m)->heartbeat_interval);
        schedule_arm(m);
        log_info("reload: configuration '%s' loaded", m->config_path);
        sd_notify(false, "READY=1");
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

/* ---------- HTTP handlers ---------- */

static int http_healthz(void *userdata, char **ret_body) {
        Manager *m = userdata;
        int status = 500;
        uint64_t dropped = 0;
        m->health.run_rows_pending = run_backlog_pending(m->backlog, &dropped);
        m->health.run_rows_dropped_total = dropped;
        *ret_body = health_render_json(&m->health, now_realtime(), schedule_period(m), &status);
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
        uint64_t dropped = 0;
        m->health.run_rows_pending = run_backlog_pending(m->backlog, &dropped);
        m->health.run_rows_dropped_total = dropped;
        *ret_body = health_render_metrics(&m->health, now_realtime(), schedule_period(m));
        return *ret_body ? 200 : 500;
}

static void http_run(void *userdata) {
        run_start(userdata, "http");
}

/* ---------- setup and teardown ---------- */

static void job_init(Manager *m, Job *j) {
        j->manager = m;
        j->efd = -1;
}

static int job_attach(Manager *m, Job *j) {
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->efd < 0)
                return -errno;
        return sd_event_add_io(m->event, &j->source, j->efd, EPOLLIN, on_job_event, j);
}

static void job_done(Job *j) {
        sd_event_source_unref(j->source);
        if (j->efd >= 0)
                close(j->efd);
}

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
        job_done(&m->run_job);
        job_done(&m->heartbeat_job);
        sd_event_unref(m->event);
        cron_free(m->cron);
        config_unref(m->config);
        run_backlog_free(m->backlog);
        run_control_done(&m->control);
        free(m->config_path);
        free(m);
}

static int manager_new(const char *config_path, Config *config, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        char err[512];
        int r;

        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->clock_fd = -1;
        run_control_init(&m->control);
        atomic_init(&m->heartbeat_cancel, false);
        job_init(m, &m->run_job);
        job_init(m, &m->heartbeat_job);
        m->config = config_ref_new(config);
        m->config_path = strdup(config_path);
        if (!m->config || !m->config_path || run_backlog_new(&m->backlog) < 0) {
                if (!m->config)
                        config_free(config);
                manager_free(m);
                return -ENOMEM;
        }
        m->health.instance = cfg(m)->instance;
        m->health.version = SALESD_VERSION;
        m->health.started_at = now_realtime();

        if (cron_parse(cfg(m)->schedule, &m->cron, err, sizeof(err)) < 0) {
                log_error("schedule '%s': %s", cfg(m)->schedule, err);
                manager_free(m);
                return -EINVAL;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&m->event);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGUSR1, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r >= 0)
                r = job_attach(m, &m->run_job);
        if (r >= 0)
                r = job_attach(m, &m->heartbeat_job);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->schedule_timer, CLOCK_REALTIME, UINT64_MAX, USEC_PER_SEC,
                                      on_schedule_timer, m);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->heartbeat_timer, CLOCK_MONOTONIC,
                                      now_monotonic() + cfg(m)->heartbeat_interval, USEC_PER_SEC, on_heartbeat_timer,
                                      m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->heartbeat_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->stop_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_stop_timer, m);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->schema_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_schema_timer, m);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->deadline_timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC,
                                      on_deadline, m);
        if (r >= 0)
                r = sd_event_add_time(m->event, &m->debounce_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounce_timer,
                                      m);
        if (r >= 0) /* armed by the first notification of a burst */
                r = sd_event_source_set_enabled(m->debounce_timer, SD_EVENT_OFF);
        if (r >= 0) {
                m->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
                r = m->clock_fd < 0 ? -errno : clock_watch_arm(m);
        }
        if (r >= 0)
                r = sd_event_add_io(m->event, &m->clock_watch, m->clock_fd, EPOLLIN, on_clock_change, m);
        if (r >= 0)
                r = sd_event_set_watchdog(m->event, true);
        if (r < 0) {
                log_error("cannot set up the event loop: %s", strerror(-r));
                manager_free(m);
                return r;
        }

        if (*cfg(m)->http.listen) {
                HttpHandlers h = { .userdata = m,
                                   .healthz = http_healthz,
                                   .readyz = http_readyz,
                                   .metrics = http_metrics,
                                   .run = http_run };
                char herr[512];
                r = http_server_new(m->event, cfg(m)->http.listen, cfg(m)->http.token, &h, &m->http, herr,
                                    sizeof(herr));
                if (r < 0) {
                        log_error("http: %s", herr);
                        manager_free(m);
                        return r;
                }
                log_info("http endpoint listening on %s%s", cfg(m)->http.listen,
                         cfg(m)->http.token ? "" : " (POST /run disabled: no http.token_file)");
        }
        *ret = m;
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
        if (job_start(&m->run_job, JOB_SCHEMA) < 0) {
                log_error("cannot start the schema check thread");
                manager_free(m);
                return 1;
        }
        r = sd_event_loop(m->event);
        int code = r < 0 ? 1 : r;
        if (r < 0)
                log_error("event loop failed: %s", strerror(-r));
        /* a job still running here ignored the stop; do not free under it */
        if (m->run_job.busy || m->heartbeat_job.busy) {
                fflush(stderr);
                _exit(code);
        }
        log_info("stopped");
        manager_free(m);
        return code;
}
