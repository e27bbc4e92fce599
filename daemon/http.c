/* The HTTP endpoint (SPEC §7) on libmicrohttpd, run from the sd-event loop.
 *
 * MHD runs without threads of its own (MHD_USE_EPOLL, external polling): its
 * epoll fd is one IO source of the loop and a one-shot timer follows
 * MHD_get_timeout(), refreshed in a prepare callback before every poll.  So
 * request handlers run on the loop thread and read the manager's state
 * without locks.
 *
 * MHD only re-adds its listening socket to its epoll set at the start of an
 * MHD_run(), and drops it while the connection table is full; so whenever a
 * run closed connections we run MHD once more, and a coarse tick runs it
 * while any connection is open.  Without that, a full table that empties
 * leaves the backlog unserved until something else wakes MHD: never.
 *
 * Hostile clients are bounded three ways: a table of HTTP_MAX_CONNECTIONS,
 * at most HTTP_MAX_CONNECTIONS_PER_IP of them from one address, and a
 * whole-request deadline.  MHD's own timeout is an idle timeout that every
 * byte resets, so a client trickling a header byte at a time would hold its
 * slot forever; we note when each connection started waiting for a request
 * and shut down its socket once the deadline passes (MHD then sees EOF and
 * closes it the ordinary way).
 *
 * We open the listening socket ourselves and hand it to MHD: bind() gives the
 * exact errno for "port already in use", which MHD_start_daemon would hide
 * behind a NULL.
 *
 * The POST /run token is compared in constant time and never logged or
 * echoed.  MHD's own rejections (malformed requests, oversized headers) keep
 * MHD's built-in bodies; everything we answer ourselves is JSON. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "macro.h"

/* No route takes a body; anything bigger than this is a mistake or abuse. */
#define HTTP_MAX_BODY    1024
#define HTTP_MAX_DISCARD (64 * 1024)
/* Clients are a monitoring system, Prometheus and an operator's curl: a few
 * connections at a time.  32 is ample and bounds fds and memory (32 x 32 KiB). */
#define HTTP_MAX_CONNECTIONS 32u
/* One address (one misbehaving client, or many behind one NAT) can hold at
 * most a quarter of the table; everyone else still gets in. */
#define HTTP_MAX_CONNECTIONS_PER_IP 8u
/* A request must be in and answered within this long of the connection
 * opening or the previous response finishing, however steadily the client
 * trickles bytes.  Our answers take milliseconds; 5 s is generous for a
 * slow network and short enough that a full table frees up quickly. */
#define HTTP_REQUEST_DEADLINE_US (5 * 1000000ull)
/* Idle keep-alive connections go after this (also MHD's idle timeout). */
#define HTTP_CONNECTION_TIMEOUT_S 5u
/* While connections are open, run MHD at least this often: a safety net in
 * case an event is missed, so the endpoint can never stay dead. */
#define HTTP_TICK_US (1000000ull)
/* Per-connection pool: bounds request line plus headers. */
#define HTTP_CONNECTION_MEMORY (32 * 1024)
/* Connections waiting to be accepted.  A flood (hundreds of sockets from
 * one address, turned away by the per-address limit and reconnecting
 * together) must not overflow the accept queue: a health check whose SYN is
 * dropped waits a whole second for its retransmission.  The kernel caps it
 * at net.core.somaxconn (4096 on Debian 12). */
#define HTTP_LISTEN_BACKLOG 1024
/* MHD's deadlines are in milliseconds; sd-event would coalesce by 250 ms. */
#define HTTP_TIMER_ACCURACY_US 1000

#define CONTENT_TYPE_JSON    "application/json"
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* One open client connection; the list is ordered by deadline (every
 * deadline is "now + HTTP_REQUEST_DEADLINE_US", so appending keeps order). */
typedef struct HttpConnection {
        struct HttpConnection *prev, *next;
        int fd;
        uint64_t deadline; /* CLOCK_MONOTONIC, usec */
        bool expired;      /* socket shut down, MHD has yet to close it */
} HttpConnection;

struct HttpServer {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *timer;
        struct MHD_Daemon *mhd;
        HttpConnection *conns_head, *conns_tail;
        unsigned n_conns;
        HttpHandlers handlers;
        char *token; /* NULL: POST /run disabled */
        size_t token_len;
};

typedef enum RouteKind {
        ROUTE_HEALTHZ,
        ROUTE_READYZ,
        ROUTE_METRICS,
        ROUTE_RUN,
} RouteKind;

static const struct Route {
        const char *path;
        RouteKind kind;
        const char *allow;
} routes[] = {
        { "/healthz", ROUTE_HEALTHZ, "GET, HEAD" },
        { "/readyz", ROUTE_READYZ, "GET, HEAD" },
        { "/metrics", ROUTE_METRICS, "GET, HEAD" },
        { "/run", ROUTE_RUN, "POST" },
};

/* Per-request state, freed by on_completed. */
typedef struct Request {
        uint64_t body_bytes;
} Request;

static void secret_free(char *s, size_t len) {
        if (!s)
                return;
        explicit_bzero(s, len);
        free(s);
}

static void format_peer(struct MHD_Connection *c, char *buf, size_t len) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        snprintf(buf, len, "?");
        if (!ci || !ci->client_addr)
                return;
        socklen_t sl =
                ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (getnameinfo(ci->client_addr, sl, buf, len, NULL, 0, NI_NUMERICHOST) != 0)
                snprintf(buf, len, "?");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, const char *content_type,
                             const char *extra_name, const char *extra_value) {
        /* body is malloc'd and owned by MHD from here on (MUST_FREE). */
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (extra_name)
                MHD_add_response_header(r, extra_name, extra_value);
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static char *json_one(const char *key, const char *value) {
        json_t *j = json_pack("{s:s}", key, value);
        if (!j)
                return NULL;
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *message,
                                   const char *extra_name, const char *extra_value) {
        char *body = json_one("error", message);
        if (!body)
                return MHD_NO;
        return reply(c, status, body, CONTENT_TYPE_JSON, extra_name, extra_value);
}

/* Runs over the whole expected token whatever the given one holds, so the
 * time taken does not tell how many leading bytes matched. */
static bool token_equal(const char *given, size_t given_len, const char *want, size_t want_len) {
        volatile unsigned char diff = given_len != want_len;

        for (size_t i = 0; i < want_len; i++) {
                unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
                diff |= g ^ (unsigned char)want[i];
        }
        return diff == 0;
}

/* NULL when the header is missing or not a Bearer credential. */
static const char *bearer_token(struct MHD_Connection *c) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!v || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
                return NULL;
        v += 6;
        while (*v == ' ' || *v == '\t')
                v++;
        return v;
}

static enum MHD_Result serve_handler(HttpServer *s, struct MHD_Connection *c, const struct Route *route) {
        int (*fn)(void *, char **) = route->kind == ROUTE_HEALTHZ  ? s->handlers.healthz
                                     : route->kind == ROUTE_READYZ ? s->handlers.readyz
                                                                   : s->handlers.metrics;
        char *body = NULL;
        int status = fn(s->handlers.userdata, &body);

        if (status < 100 || status > 599 || !body) {
                free(body);
                log_debug("http: %s handler failed (%d)", route->path, status);
                return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL, NULL);
        }
        return reply(c, (unsigned)status, body, route->kind == ROUTE_METRICS ? CONTENT_TYPE_METRICS : CONTENT_TYPE_JSON,
                     NULL, NULL);
}

/* 0 when POST /run may proceed, else the reply has been queued into *ret. */
static int check_run_auth(HttpServer *s, struct MHD_Connection *c, enum MHD_Result *ret) {
        char peer[INET6_ADDRSTRLEN + 8];

        if (!s->token) {
                *ret = reply_error(c, MHD_HTTP_FORBIDDEN,
                                   "POST /run is disabled: no token configured; set http.token_file to a file "
                                   "holding a bearer token and reload",
                                   NULL, NULL);
                return -EPERM;
        }
        const char *given = bearer_token(c);
        if (!given || !token_equal(given, strlen(given), s->token, s->token_len)) {
                format_peer(c, peer, sizeof(peer));
                log_notice("http: refused POST /run from %s: %s", peer,
                           given ? "bearer token does not match" : "no bearer token");
                *ret = reply_error(c, MHD_HTTP_UNAUTHORIZED,
                                   given ? "invalid bearer token" : "missing bearer token (Authorization: Bearer ...)",
                                   MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"salesd\"");
                return -EACCES;
        }
        return 0;
}

static bool content_length_too_big(struct MHD_Connection *c) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!v)
                return false;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        /* MHD already refuses malformed lengths; be strict anyway. */
        return errno != 0 || end == v || n > HTTP_MAX_BODY;
}

/* Called once the whole request (headers and any body) is in. */
static enum MHD_Result dispatch(HttpServer *s, struct MHD_Connection *c, const char *url, const char *method) {
        const struct Route *route = NULL;

        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
                if (strcmp(url, routes[i].path) == 0)
                        route = &routes[i];
        if (!route)
                return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL, NULL);

        bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        bool is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        if (route->kind == ROUTE_RUN ? !is_post : !is_get)
                return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", MHD_HTTP_HEADER_ALLOW,
                                   route->allow);
        if (route->kind != ROUTE_RUN)
                return serve_handler(s, c, route);

        enum MHD_Result ret;
        if (check_run_auth(s, c, &ret) < 0)
                return ret;

        char peer[INET6_ADDRSTRLEN + 8];
        format_peer(c, peer, sizeof(peer));
        log_info("http: run requested by %s", peer);
        s->handlers.run(s->handlers.userdata);
        char *body = json_one("status", "queued");
        if (!body)
                return MHD_NO;
        return reply(c, MHD_HTTP_ACCEPTED, body, CONTENT_TYPE_JSON, NULL, NULL);
}

/* MHD calls this first with only the headers, then once per body piece,
 * then once more with nothing left.  We answer on that last call: a reply
 * queued on the first call makes MHD 0.9.x close the connection, which
 * would defeat keep-alive for scrapers. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        HttpServer *s = cls;
        Request *rq = *con_cls;
        (void)version;
        (void)upload_data;

        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                *con_cls = rq;
                log_debug("http: %s %s", method, url);
                /* Refused before reading it; MHD then closes the connection. */
                if (content_length_too_big(c))
                        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, NULL);
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                rq->body_bytes += *upload_data_size;
                *upload_data_size = 0;
                /* A chunked body has no length to refuse up front: discard a
                 * little, then drop the connection rather than read forever. */
                if (rq->body_bytes > HTTP_MAX_DISCARD)
                        return MHD_NO;
                return MHD_YES;
        }

        if (rq->body_bytes > HTTP_MAX_BODY)
                return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, NULL);
        return dispatch(s, c, url, method);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static void conn_unlink(HttpServer *s, HttpConnection *hc) {
        if (hc->prev)
                hc->prev->next = hc->next;
        else
                s->conns_head = hc->next;
        if (hc->next)
                hc->next->prev = hc->prev;
        else
                s->conns_tail = hc->prev;
        hc->prev = hc->next = NULL;
}

/* (Re)starts the connection's deadline: it goes to the tail of the list. */
static void conn_arm(HttpServer *s, HttpConnection *hc) {
        hc->deadline = now_usec() + HTTP_REQUEST_DEADLINE_US;
        hc->prev = s->conns_tail;
        hc->next = NULL;
        if (s->conns_tail)
                s->conns_tail->next = hc;
        else
                s->conns_head = hc;
        s->conns_tail = hc;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        HttpServer *s = cls;
        HttpConnection *hc = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                if (hc) {
                        conn_unlink(s, hc);
                        s->n_conns--;
                        free(hc);
                }
                *socket_context = NULL;
                return;
        }
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc = calloc(1, sizeof(*hc));
        if (!hc) /* untracked: only MHD's idle timeout bounds it */
                return;
        hc->fd = ci ? ci->connect_fd : -1;
        conn_arm(s, hc);
        s->n_conns++;
        *socket_context = hc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        HttpServer *s = cls;

        free(*con_cls);
        *con_cls = NULL;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                return;
        /* Answered: a keep-alive connection gets a fresh deadline for its next request. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        HttpConnection *hc = ci ? ci->socket_context : NULL;
        if (hc && !hc->expired) {
                conn_unlink(s, hc);
                conn_arm(s, hc);
        }
}

/* Shuts down the sockets of connections past their deadline; MHD reads EOF
 * on its next run and closes them, which frees the slot and the fd. */
static void expire_connections(HttpServer *s) {
        uint64_t now = now_usec();

        for (HttpConnection *hc = s->conns_head; hc && hc->deadline <= now; hc = hc->next) {
                if (hc->expired || hc->fd < 0)
                        continue;
                log_debug("http: closing a connection that sent no complete request within %llu s",
                          (unsigned long long)(HTTP_REQUEST_DEADLINE_US / 1000000ull));
                (void)shutdown(hc->fd, SHUT_RDWR);
                hc->expired = true;
        }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char line[512];
        (void)cls;

        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        log_debug("microhttpd: %s", line);
}

/* A run that closed connections may have freed a slot in a full table;
 * only the next run puts the listening socket back into MHD's epoll set and
 * accepts what waits in the backlog, so run again (bounded: the tick
 * catches anything left). */
static void run_mhd(HttpServer *s) {
        for (unsigned i = 0; i < 3; i++) {
                unsigned before = s->n_conns;
                if (MHD_run(s->mhd) != MHD_YES) {
                        log_debug("http: MHD_run failed");
                        return;
                }
                if (s->n_conns >= before)
                        return;
        }
}

static int on_mhd_event(sd_event_source *src, void *userdata) {
        HttpServer *s = userdata;
        (void)src;

        expire_connections(s);
        run_mhd(s);
        return 0;
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void)fd;
        (void)revents;
        return on_mhd_event(src, userdata);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        (void)usec;
        return on_mhd_event(src, userdata);
}

/* The earliest of: MHD's next deadline (idle timeouts, data it already
 * buffered), the first request deadline, and the tick while connections are
 * open.  0: nothing to wake up for. */
static uint64_t next_wakeup(HttpServer *s) {
        uint64_t now = now_usec(), at = 0;
        MHD_UNSIGNED_LONG_LONG ms;

        if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
                at = ms > (UINT64_MAX - now) / 1000 ? UINT64_MAX : now + ms * 1000;
        if (s->n_conns > 0 && (at == 0 || at > now + HTTP_TICK_US))
                at = now + HTTP_TICK_US;
        for (HttpConnection *hc = s->conns_head; hc; hc = hc->next)
                if (!hc->expired) {
                        if (at == 0 || hc->deadline < at)
                                at = hc->deadline;
                        break;
                }
        return at;
}

/* Before each poll: arm the timer to next_wakeup(), or disable it. */
static int on_prepare(sd_event_source *src, void *userdata) {
        HttpServer *s = userdata;
        int r;
        (void)src;

        /* Never return an error here: sd-event would disable the IO source
         * and the endpoint would go silent. */
        uint64_t at = next_wakeup(s);
        if (at == 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        else {
                r = sd_event_source_set_time(s->timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_debug("http: cannot arm the timer: %s", strerror(-r));
        return 0;
}

static int open_listener(const char *address, int *ret_fd, int *ret_family, char *err, size_t errlen) {
        struct sockaddr_storage addr;
        socklen_t len;
        int one = 1;

        int r = listen_address_parse(address, &addr, &len, err, errlen);
        if (r < 0)
                return r;
        int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot listen on '%s': socket: %s", address, strerror(-r));
                return r;
        }
        /* Lets a restarted daemon bind while old connections sit in TIME_WAIT;
         * a live listener still gets EADDRINUSE. */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
                r = -errno;
                close(fd);
                snprintf(err, errlen, "cannot listen on '%s': %s%s", address, strerror(-r),
                         r == -EADDRINUSE ? " (is another salesd running? change http.listen)"
                         : r == -EACCES   ? " (ports below 1024 need privileges)"
                                          : "");
                return r;
        }
        *ret_fd = fd;
        *ret_family = addr.ss_family;
        return 0;
}

static void http_server_freep(HttpServer **s) {
        http_server_free(*s);
}

/* libmicrohttpd on fd (which it then owns), in external-epoll mode. */
static int start_mhd(HttpServer *s, int fd, int family, const char *listen, char *err, size_t errlen) {
        unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
        errno = 0;
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                                  MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS_PER_IP,
                                  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
                                  HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                  (size_t)HTTP_CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                  MHD_OPTION_END);
        if (s->mhd)
                return 0;
        int r = errno > 0 ? -errno : -EIO;
        /* Depending on where it failed, MHD may already have closed it. */
        if (fcntl(fd, F_GETFD) >= 0)
                close(fd);
        snprintf(err, errlen, "cannot start the http server on '%s': libmicrohttpd refused to start (%s)", listen,
                 strerror(-r));
        return r;
}

/* MHD's epoll fd and its timeouts on the sd-event loop. */
static int attach_to_loop(HttpServer *s, const char *listen, char *err, size_t errlen) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                snprintf(err, errlen, "cannot start the http server on '%s': libmicrohttpd has no epoll fd", listen);
                return -EIO;
        }
        int r = sd_event_add_io(s->event, &s->io, info->epoll_fd, EPOLLIN, on_io, s);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->timer, CLOCK_MONOTONIC, 0, HTTP_TIMER_ACCURACY_US, on_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_prepare(s->io, on_prepare);
        if (r < 0) {
                snprintf(err, errlen, "cannot start the http server on '%s': sd-event: %s", listen, strerror(-r));
                return r;
        }
        (void)sd_event_source_set_description(s->io, "http-io");
        (void)sd_event_source_set_description(s->timer, "http-timer");
        return 0;
}

int http_server_new(sd_event *e, const char *listen, const char *token, const HttpHandlers *handlers, HttpServer **ret,
                    char *err, size_t errlen) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        int fd = -1, family = AF_UNSPEC;

        if (!e || !listen || !handlers || !ret || !handlers->healthz || !handlers->readyz || !handlers->metrics ||
            !handlers->run) {
                snprintf(err, errlen, "http server: missing argument");
                return -EINVAL;
        }
        s = calloc(1, sizeof(*s));
        if (!s || http_server_set_token(s, token) < 0) {
                snprintf(err, errlen, "http server: out of memory");
                return -ENOMEM;
        }
        s->event = sd_event_ref(e);
        s->handlers = *handlers;
        int r = open_listener(listen, &fd, &family, err, errlen);
        if (r == 0)
                r = start_mhd(s, fd, family, listen, err, errlen);
        if (r == 0)
                r = attach_to_loop(s, listen, err, errlen);
        if (r < 0)
                return r;
        log_debug("http: listening on %s", listen);
        *ret = TAKE_PTR(s);
        return 0;
}

int http_server_set_token(HttpServer *s, const char *token) {
        /* Fail closed: on OOM the old token is gone and POST /run answers 403. */
        secret_free(s->token, s->token_len);
        s->token = NULL;
        s->token_len = 0;
        if (!token || !*token)
                return 0;
        s->token = strdup(token);
        if (!s->token)
                return -ENOMEM;
        s->token_len = strlen(token);
        return 0;
}

void http_server_free(HttpServer *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->timer);
        if (s->mhd)
                MHD_stop_daemon(s->mhd); /* closes the listening socket too */
        sd_event_unref(s->event);
        secret_free(s->token, s->token_len);
        free(s);
}
