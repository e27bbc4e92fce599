/* See listener.h.  States: connecting (an Attempt on a thread of its own),
 * listening (LISTEN sent; input is consumed and notifications dispatched),
 * and waiting to retry after a failure.
 *
 * Why a thread for the connect: libpq resolves host names with a blocking
 * getaddrinfo() even in its non-blocking connect API, and a name server or
 * Postgres host that does not answer would hold the loop (HTTP, signals,
 * the watchdog) for as long as the resolver or connect_timeout allow.  On the
 * thread the connect is a plain PQconnectdbParams() with the same
 * connect_timeout, keepalives and tcp_user_timeout as a run's connection;
 * the established connection comes back to the loop, which only ever does
 * non-blocking I/O on it. */
#include "listener.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "detached.h"
#include "duration.h"
#include "log.h"
#include "macro.h"
#include "pg.h"
#include "text.h"

#define RETRY_USEC (5 * USEC_PER_SEC)

/* One connection attempt, shared by the loop and the thread that makes it;
 * the last to let go frees it, so a listener freed mid-attempt (reload,
 * stop) just lets go and never waits for the thread. */
typedef struct Attempt {
        atomic_uint refs;
        int efd; /* the thread's "done", watched by the loop */
        PgConnParams params;
        PgConnParams primary; /* postgres.primary_conninfo; conninfo NULL when not set */
        PGconn *conn;         /* the result; the loop takes it */
} Attempt;

struct Listener {
        sd_event *event;
        const Config *config;
        void (*on_notify)(void *userdata);
        void *userdata;
        PGconn *conn;
        int fd;
        bool listening;
        bool failed_logged;
        sd_event_source *io;
        sd_event_source *retry;
        Attempt *attempt;
        sd_event_source *attempt_io;
};

static void listener_connect(Listener *l);

static void attempt_unref(Attempt *a) {
        if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
                return;
        if (a->conn)
                PQfinish(a->conn);
        pg_conn_params_done(&a->params);
        pg_conn_params_done(&a->primary);
        if (a->efd >= 0)
                close(a->efd);
        free(a);
}

/* Whether conn's server is a hot standby, which cannot LISTEN. */
static bool is_standby(PGconn *conn) {
        PGresult *res = PQexec(conn, "SELECT pg_is_in_recovery()");
        bool standby = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        return standby;
}

static void *attempt_thread(void *arg) {
        Attempt *a = arg;
        uint64_t one = 1;
        a->conn = PQconnectdbParams(a->params.keys, a->params.values, 1);
        /* SPEC §9: notifications are sent on the primary, the runs' rule decides which server that is */
        if (a->primary.conninfo && a->conn && PQstatus(a->conn) == CONNECTION_OK && is_standby(a->conn)) {
                PQfinish(a->conn);
                a->conn = PQconnectdbParams(a->primary.keys, a->primary.values, 1);
        }
        if (write(a->efd, &one, sizeof(one)) < 0)
                abort(); /* an eventfd write cannot fail unless the counter overflows */
        attempt_unref(a);
        return NULL;
}

/* The loop lets go of its attempt: stops watching first, since the
 * thread's unref may close the eventfd. */
static void attempt_drop(Listener *l) {
        l->attempt_io = sd_event_source_disable_unref(l->attempt_io);
        attempt_unref(l->attempt);
        l->attempt = NULL;
}

static void listener_reset(Listener *l) {
        attempt_drop(l);
        l->io = sd_event_source_disable_unref(l->io);
        if (l->conn)
                PQfinish(l->conn);
        l->conn = NULL;
        l->fd = -1;
        l->listening = false;
}

static void listener_fail(Listener *l, const char *what) {
        char msg[512];
        text_one_line(l->conn ? PQerrorMessage(l->conn) : "out of memory", msg, sizeof(msg));
        /* one warning per outage, not one every retry */
        if (!l->failed_logged)
                log_warning("notify: %s for LISTEN on channel '%s': %s; retrying every %u s", what,
                            l->config->notify.channel, msg, (unsigned)(RETRY_USEC / USEC_PER_SEC));
        l->failed_logged = true;
        listener_reset(l);
        sd_event_source_set_time(l->retry, now_usec(CLOCK_MONOTONIC) + RETRY_USEC);
        sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
}

static void drain(Listener *l) {
        PGresult *res;
        while (!PQisBusy(l->conn) && (res = PQgetResult(l->conn))) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        log_warning("notify: LISTEN on channel '%s' failed: %s", l->config->notify.channel,
                                    PQresultErrorMessage(res));
                PQclear(res);
        }
        PGnotify *n;
        bool any = false;
        while ((n = PQnotifies(l->conn))) {
                any = true;
                log_debug("notify: notification on channel '%s' from backend %d", n->relname, n->be_pid);
                PQfreemem(n);
        }
        if (any)
                l->on_notify(l->userdata);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)fd, (void)revents;
        Listener *l = userdata;
        if (!PQconsumeInput(l->conn)) {
                listener_fail(l, "connection lost");
                return 0;
        }
        drain(l);
        return 0;
}

/* The established connection's socket, watched on the loop. */
static int watch(Listener *l, uint32_t events) {
        int fd = PQsocket(l->conn);
        if (fd != l->fd) {
                l->io = sd_event_source_disable_unref(l->io);
                l->fd = fd;
        }
        if (!l->io)
                return sd_event_add_io(l->event, &l->io, fd, events, on_io, l);
        return sd_event_source_set_io_events(l->io, events);
}

static void start_listening(Listener *l) {
        char *ident = PQescapeIdentifier(l->conn, l->config->notify.channel, strlen(l->config->notify.channel));
        char sql[256];
        snprintf(sql, sizeof(sql), "LISTEN %s", ident ? ident : "\"\"");
        PQfreemem(ident);
        if (PQsetnonblocking(l->conn, 1) != 0 || !PQsendQuery(l->conn, sql)) {
                listener_fail(l, "cannot send LISTEN");
                return;
        }
        l->listening = true;
        PQflush(l->conn);
        if (watch(l, EPOLLIN) < 0) {
                listener_fail(l, "cannot watch the connection");
                return;
        }
        log_info("notify: listening on postgres channel '%s' (host '%s' port %s)", l->config->notify.channel,
                 PQhost(l->conn), PQport(l->conn));
        l->failed_logged = false;
}

static int on_attempt_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)revents;
        Listener *l = userdata;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0)
                return 0;
        PGconn *conn = TAKE_PTR(l->attempt->conn);
        attempt_drop(l);
        l->conn = conn;
        if (!conn || PQstatus(conn) != CONNECTION_OK)
                listener_fail(l, "cannot connect to postgres");
        else
                start_listening(l);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        listener_connect(userdata);
        return 0;
}

/* Starts an Attempt: one reference for the loop, one for the thread. */
static int attempt_start(Listener *l) {
        Attempt *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        atomic_init(&a->refs, 1);
        l->attempt = a;
        a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->efd < 0)
                return -errno;
        const PostgresConfig *pc = &l->config->postgres;
        int r = pg_conn_params_init(&a->params, pc, pc->conninfo, "salesd-listen");
        if (r == 0 && *pc->primary_conninfo)
                r = pg_conn_params_init(&a->primary, pc, pc->primary_conninfo, "salesd-listen");
        if (r < 0)
                return r;
        r = sd_event_add_io(l->event, &l->attempt_io, a->efd, EPOLLIN, on_attempt_done, l);
        if (r < 0)
                return r;
        atomic_fetch_add(&a->refs, 1);
        r = detached_start(attempt_thread, a);
        if (r < 0) {
                atomic_fetch_sub(&a->refs, 1);
                return r;
        }
        return 0;
}

static void listener_connect(Listener *l) {
        listener_reset(l);
        int r = attempt_start(l);
        if (r < 0) {
                log_debug("notify: cannot start connecting: %s", strerror(-r));
                listener_fail(l, "cannot start connecting");
        }
}

void listener_free(Listener *l) {
        if (!l)
                return;
        listener_reset(l);
        sd_event_source_disable_unref(l->retry);
        sd_event_unref(l->event);
        free(l);
}

DEFINE_POINTER_CLEANUP_FUNC(Listener, listener_free)

int listener_new(sd_event *e, const Config *c, void (*on_notify)(void *userdata), void *userdata, Listener **ret) {
        _cleanup_(listener_freep) Listener *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->config = c;
        l->on_notify = on_notify;
        l->userdata = userdata;
        l->fd = -1;
        int r = sd_event_add_time(e, &l->retry, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC, on_retry, l);
        if (r < 0)
                return r;
        listener_connect(l);
        *ret = TAKE_PTR(l);
        return 0;
}
