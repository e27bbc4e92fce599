/* See listener.h.  States: connecting (PQconnectPoll decides whether to
 * wait for reading or writing), listening (LISTEN sent; input is consumed
 * and notifications dispatched), and waiting to retry after a failure. */
#include "listener.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "log.h"
#include "macro.h"
#include "text.h"

#define RETRY_USEC (5 * USEC_PER_SEC)

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
};

static void listener_connect(Listener *l);

static void listener_reset(Listener *l) {
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

static int watch(Listener *l, uint32_t events);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)fd, (void)revents;
        Listener *l = userdata;

        if (l->listening) {
                if (!PQconsumeInput(l->conn)) {
                        listener_fail(l, "connection lost");
                        return 0;
                }
                drain(l);
                return 0;
        }
        switch (PQconnectPoll(l->conn)) {
        case PGRES_POLLING_READING:
                watch(l, EPOLLIN);
                break;
        case PGRES_POLLING_WRITING:
                watch(l, EPOLLOUT);
                break;
        case PGRES_POLLING_OK: {
                char *ident = PQescapeIdentifier(l->conn, l->config->notify.channel, strlen(l->config->notify.channel));
                char sql[256];
                snprintf(sql, sizeof(sql), "LISTEN %s", ident ? ident : "\"\"");
                PQfreemem(ident);
                if (!PQsendQuery(l->conn, sql)) {
                        listener_fail(l, "cannot send LISTEN");
                        break;
                }
                l->listening = true;
                PQflush(l->conn);
                watch(l, EPOLLIN);
                log_info("notify: listening on postgres channel '%s'", l->config->notify.channel);
                l->failed_logged = false;
                break;
        }
        default:
                listener_fail(l, "cannot connect to postgres");
                break;
        }
        return 0;
}

/* The socket may change while libpq tries the hosts of a conninfo. */
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

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        listener_connect(userdata);
        return 0;
}

static void listener_connect(Listener *l) {
        const char *keys[4], *values[4];
        int k = 0;
        keys[k] = "dbname", values[k++] = l->config->postgres.conninfo;
        keys[k] = "application_name", values[k++] = "salesd-listen";
        if (l->config->postgres.password)
                keys[k] = "password", values[k++] = l->config->postgres.password;
        keys[k] = NULL, values[k] = NULL;

        listener_reset(l);
        l->conn = PQconnectStartParams(keys, values, 1);
        if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD || PQsetnonblocking(l->conn, 1) != 0 ||
            watch(l, EPOLLOUT) < 0)
                listener_fail(l, "cannot connect to postgres");
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
