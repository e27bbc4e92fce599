/* Unit tests for daemon/http.c: a real HttpServer on a free 127.0.0.1 port,
 * its sd-event loop running in a second thread, and libcurl as the client.
 * Checks every route, status and header of SPEC §7, the bearer-token rules,
 * the body limit, and that a stalled client does not block others.
 *
 * The loop thread owns the event loop and the server; the test thread only
 * talks HTTP to it, or hands it a function to run (through a pipe) when it
 * must touch the server, e.g. to replace the token. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "../../daemon/http.h"
#include "log.h"

#define TOKEN "s3cr3t-token-0123456789abcdef"

typedef struct Fixture Fixture;
typedef void (*LoopFn)(Fixture *f);

struct Fixture {
        pthread_t thread;
        int cmd[2]; /* pipe: LoopFn pointers for the loop thread */
        sem_t done;
        sd_event *event;
        sd_event_source *cmd_source;
        HttpServer *server;
        char listen[64];
        const char *token;
        const char *new_token; /* for loop_set_token */
        int new_result;
        char err[512];
        atomic_int runs;
        atomic_int ready;
        atomic_int healthz_calls;
};

static int h_healthz(void *userdata, char **ret_body) {
        Fixture *f = userdata;
        atomic_fetch_add(&f->healthz_calls, 1);
        *ret_body = strdup("{\"status\":\"ok\"}");
        return 200;
}

static int h_readyz(void *userdata, char **ret_body) {
        Fixture *f = userdata;
        bool ready = atomic_load(&f->ready);
        *ret_body = strdup(ready ? "{\"ready\":true}" : "{\"ready\":false}");
        return ready ? 200 : 503;
}

static int h_metrics(void *userdata, char **ret_body) {
        (void)userdata;
        *ret_body = strdup("# TYPE salesd_up gauge\nsalesd_up 1\n");
        return 200;
}

static void h_run(void *userdata) {
        Fixture *f = userdata;
        atomic_fetch_add(&f->runs, 1);
}

static const HttpHandlers handlers_template = {
        .healthz = h_healthz,
        .readyz = h_readyz,
        .metrics = h_metrics,
        .run = h_run,
};

static int on_cmd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fixture *f = userdata;
        LoopFn fn;
        (void)s;
        (void)revents;
        if (read(fd, &fn, sizeof(fn)) == (ssize_t)sizeof(fn))
                fn(f);
        sem_post(&f->done);
        return 0;
}

static void *loop_thread(void *arg) {
        Fixture *f = arg;
        HttpHandlers h = handlers_template;

        h.userdata = f;
        f->new_result = sd_event_new(&f->event);
        if (f->new_result >= 0)
                f->new_result = sd_event_add_io(f->event, &f->cmd_source, f->cmd[0], EPOLLIN, on_cmd, f);
        if (f->new_result >= 0)
                f->new_result = http_server_new(f->event, f->listen, f->token, &h, &f->server, f->err, sizeof(f->err));
        sem_post(&f->done);
        if (f->new_result >= 0)
                sd_event_loop(f->event);
        http_server_free(f->server);
        sd_event_source_unref(f->cmd_source);
        sd_event_unref(f->event);
        return NULL;
}

/* Runs fn on the loop thread and waits for it. */
static void loop_call(Fixture *f, LoopFn fn) {
        assert_int_equal(write(f->cmd[1], &fn, sizeof(fn)), sizeof(fn));
        sem_wait(&f->done);
}

static void loop_exit(Fixture *f) {
        sd_event_exit(f->event, 0);
}

static void loop_set_token(Fixture *f) {
        f->new_result = http_server_set_token(f->server, f->new_token);
}

/* A port nobody listens on right now (the kernel's pick). */
static int free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static Fixture *fixture_start(const char *token) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->token = token;
        snprintf(f->listen, sizeof(f->listen), "127.0.0.1:%d", free_port());
        assert_int_equal(pipe(f->cmd), 0);
        assert_int_equal(sem_init(&f->done, 0, 0), 0);
        atomic_store(&f->ready, 1);
        assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
        sem_wait(&f->done);
        if (f->new_result < 0)
                fail_msg("http_server_new: %s", f->err);
        return f;
}

static void fixture_stop(Fixture *f) {
        loop_call(f, loop_exit);
        pthread_join(f->thread, NULL);
        close(f->cmd[0]);
        close(f->cmd[1]);
        sem_destroy(&f->done);
        free(f);
}

static int setup(void **state) {
        *state = fixture_start(TOKEN);
        return 0;
}

static int teardown(void **state) {
        fixture_stop(*state);
        return 0;
}

typedef struct Reply {
        long status;
        char body[8192];
        size_t body_len;
        char headers[8192];
        size_t headers_len;
} Reply;

static size_t collect(char *dst, size_t cap, size_t *len, const char *src, size_t n) {
        size_t room = cap - 1 - *len;
        size_t k = n < room ? n : room;
        memcpy(dst + *len, src, k);
        *len += k;
        dst[*len] = '\0';
        return n;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        return collect(r->body, sizeof(r->body), &r->body_len, p, size * n);
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        return collect(r->headers, sizeof(r->headers), &r->headers_len, p, size * n);
}

/* Value of a response header (case-insensitive name), or NULL. */
static const char *header(const Reply *r, const char *name, char *buf, size_t len) {
        size_t n = strlen(name);
        for (const char *p = r->headers; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
                        const char *v = p + n + 1;
                        while (*v == ' ')
                                v++;
                        size_t k = strcspn(v, "\r\n");
                        if (k >= len)
                                k = len - 1;
                        memcpy(buf, v, k);
                        buf[k] = '\0';
                        return buf;
                }
        return NULL;
}

/* One request; extra_header may be NULL; body NULL = none. */
static void request(Fixture *f, const char *method, const char *path, const char *extra_header, const char *body,
                    Reply *r) {
        char url[256];
        struct curl_slist *hdrs = NULL;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        memset(r, 0, sizeof(*r));
        snprintf(url, sizeof(url), "http://%s%s", f->listen, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") != 0)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        } else if (strcmp(method, "POST") == 0) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        }
        hdrs = curl_slist_append(hdrs, "Expect:");
        if (extra_header)
                hdrs = curl_slist_append(hdrs, extra_header);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
                fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
}

static void assert_header(const Reply *r, const char *name, const char *want) {
        char buf[256];
        const char *v = header(r, name, buf, sizeof(buf));
        if (!v)
                fail_msg("no %s header in:\n%s", name, r->headers);
        assert_string_equal(v, want);
}

static void assert_json_error(const Reply *r, long status) {
        assert_int_equal(r->status, status);
        assert_header(r, "Content-Type", "application/json");
        assert_true(strncmp(r->body, "{\"error\":\"", 10) == 0);
        assert_int_equal(r->body[r->body_len - 1], '}');
        assert_null(strstr(r->body, TOKEN));
        assert_null(strstr(r->headers, TOKEN));
}

static void test_healthz(void **state) {
        Fixture *f = *state;
        Reply r;

        request(f, "GET", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"status\":\"ok\"}");
        assert_header(&r, "Content-Type", "application/json");
        assert_header(&r, "Cache-Control", "no-store");

        request(f, "HEAD", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 0);
        assert_header(&r, "Content-Type", "application/json");
        assert_int_equal(atomic_load(&f->healthz_calls), 2);

        /* Query strings do not change the route. */
        request(f, "GET", "/healthz?verbose=1", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
}

static void test_readyz(void **state) {
        Fixture *f = *state;
        Reply r;

        request(f, "GET", "/readyz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"ready\":true}");
        atomic_store(&f->ready, 0);
        request(f, "GET", "/readyz", NULL, NULL, &r);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body, "{\"ready\":false}");
        request(f, "HEAD", "/readyz", NULL, NULL, &r);
        assert_int_equal(r.status, 503);
}

static void test_metrics(void **state) {
        Fixture *f = *state;
        Reply r;

        request(f, "GET", "/metrics", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        assert_string_equal(r.body, "# TYPE salesd_up gauge\nsalesd_up 1\n");
}

static void test_run_ok(void **state) {
        Fixture *f = *state;
        Reply r;

        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_int_equal(r.status, 202);
        assert_string_equal(r.body, "{\"status\":\"queued\"}");
        assert_header(&r, "Content-Type", "application/json");
        assert_int_equal(atomic_load(&f->runs), 1);

        /* The scheme is case-insensitive (RFC 7235); a small body is fine. */
        request(f, "POST", "/run", "Authorization: bearer " TOKEN, "{}", &r);
        assert_int_equal(r.status, 202);
        assert_int_equal(atomic_load(&f->runs), 2);
}

static void test_run_unauthorized(void **state) {
        Fixture *f = *state;
        Reply r;
        char wrong[sizeof(TOKEN)];
        char prefix[sizeof(TOKEN)];
        static const char *const bad[] = {
                NULL,
                "Authorization: Bearer ",
                "Authorization: Bearer",
                "Authorization: Basic c2FsZXNkOnMzY3IzdA==",
                "Authorization: " TOKEN,
                "Authorization: Bearer " TOKEN "x",
                "Authorization: Bearer x" TOKEN,
                "Authorization: BearerX " TOKEN,
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                request(f, "POST", "/run", bad[i], NULL, &r);
                assert_json_error(&r, 401);
                char buf[128];
                const char *v = header(&r, "WWW-Authenticate", buf, sizeof(buf));
                assert_non_null(v);
                assert_true(strncmp(v, "Bearer", 6) == 0);
        }

        /* Same length, last byte differs; and the first byte differs. */
        memcpy(wrong, TOKEN, sizeof(TOKEN));
        wrong[sizeof(TOKEN) - 2] ^= 1;
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", wrong);
        request(f, "POST", "/run", hdr, NULL, &r);
        assert_json_error(&r, 401);
        memcpy(wrong, TOKEN, sizeof(TOKEN));
        wrong[0] ^= 1;
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", wrong);
        request(f, "POST", "/run", hdr, NULL, &r);
        assert_json_error(&r, 401);

        /* Every proper prefix of the token. */
        for (size_t n = 1; n < sizeof(TOKEN) - 1; n++) {
                memcpy(prefix, TOKEN, n);
                prefix[n] = '\0';
                snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", prefix);
                request(f, "POST", "/run", hdr, NULL, &r);
                assert_json_error(&r, 401);
        }
        assert_int_equal(atomic_load(&f->runs), 0);
}

static void test_not_found(void **state) {
        Fixture *f = *state;
        Reply r;
        static const char *const paths[] = { "/", "/healthz/", "/HEALTHZ", "/run/now", "/metricsx", "/favicon.ico" };

        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                request(f, "GET", paths[i], NULL, NULL, &r);
                assert_json_error(&r, 404);
                assert_string_equal(r.body, "{\"error\":\"not found\"}");
        }
        request(f, "POST", "/nothing", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 404);
}

static void test_method_not_allowed(void **state) {
        Fixture *f = *state;
        Reply r;
        static const char *const get_paths[] = { "/healthz", "/readyz", "/metrics" };
        static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH" };

        for (size_t i = 0; i < sizeof(get_paths) / sizeof(get_paths[0]); i++)
                for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                        request(f, methods[m], get_paths[i], NULL, NULL, &r);
                        assert_json_error(&r, 405);
                        assert_header(&r, "Allow", "GET, HEAD");
                }
        request(f, "GET", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 405);
        assert_header(&r, "Allow", "POST");
        request(f, "PUT", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 405);
        assert_header(&r, "Allow", "POST");
        assert_int_equal(atomic_load(&f->runs), 0);
        assert_int_equal(atomic_load(&f->healthz_calls), 0);
}

static void test_body_too_large(void **state) {
        Fixture *f = *state;
        Reply r;
        char big[2048];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, big, &r);
        assert_json_error(&r, 413);
        request(f, "POST", "/run", NULL, big, &r);
        assert_json_error(&r, 413);

        /* Exactly at the limit is accepted. */
        big[1024] = '\0';
        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, big, &r);
        assert_int_equal(r.status, 202);
        assert_int_equal(atomic_load(&f->runs), 1);
}

typedef struct Upload {
        size_t left;
} Upload;

static size_t on_read(char *buf, size_t size, size_t n, void *userdata) {
        Upload *u = userdata;
        size_t k = size * n < u->left ? size * n : u->left;
        memset(buf, 'y', k);
        u->left -= k;
        return k;
}

/* A chunked body has no Content-Length to refuse up front. */
static void test_chunked_body_too_large(void **state) {
        Fixture *f = *state;
        char url[128];
        struct curl_slist *hdrs = NULL;
        Upload u = { .left = 4096 };
        Reply r;
        long status = 0;

        memset(&r, 0, sizeof(r));
        snprintf(url, sizeof(url), "http://%s/run", f->listen);
        CURL *c = curl_easy_init();
        assert_non_null(c);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        hdrs = curl_slist_append(hdrs, "Expect:");
        hdrs = curl_slist_append(hdrs, "Authorization: Bearer " TOKEN);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &u);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        assert_int_equal(status, 413);
        assert_string_equal(r.body, "{\"error\":\"request body too large\"}");
        assert_int_equal(atomic_load(&f->runs), 0);
}

static void test_header_too_large(void **state) {
        Fixture *f = *state;
        Reply r;
        static char hdr[40 * 1024];

        snprintf(hdr, sizeof(hdr), "X-Big: ");
        memset(hdr + 7, 'z', sizeof(hdr) - 8);
        hdr[sizeof(hdr) - 1] = '\0';
        request(f, "GET", "/healthz", hdr, NULL, &r);
        /* MHD answers itself (Request Header Fields Too Large), before any
         * handler; the body is MHD's own, not JSON. */
        assert_int_equal(r.status, 431);
        assert_int_equal(atomic_load(&f->healthz_calls), 0);
        /* And keeps serving others. */
        request(f, "GET", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
}

static void test_no_token(void **state) {
        Fixture *f = fixture_start(NULL);
        Reply r;
        (void)state;

        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 403);
        assert_non_null(strstr(r.body, "POST /run is disabled"));
        assert_non_null(strstr(r.body, "http.token_file"));
        request(f, "POST", "/run", NULL, NULL, &r);
        assert_json_error(&r, 403);
        assert_int_equal(atomic_load(&f->runs), 0);
        fixture_stop(f);

        f = fixture_start("");
        request(f, "POST", "/run", "Authorization: Bearer ", NULL, &r);
        assert_json_error(&r, 403);
        assert_int_equal(atomic_load(&f->runs), 0);
        fixture_stop(f);
}

static void test_set_token(void **state) {
        Fixture *f = *state;
        Reply r;

        f->new_token = NULL;
        loop_call(f, loop_set_token);
        assert_int_equal(f->new_result, 0);
        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 403);
        assert_non_null(strstr(r.body, "http.token_file"));

        f->new_token = "rotated-token";
        loop_call(f, loop_set_token);
        assert_int_equal(f->new_result, 0);
        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        assert_json_error(&r, 401);
        request(f, "POST", "/run", "Authorization: Bearer rotated-token", NULL, &r);
        assert_int_equal(r.status, 202);
        assert_int_equal(atomic_load(&f->runs), 1);
}

/* A client that sent half a request must not hold up anyone else: MHD runs
 * on the loop, not in a blocking accept/read. */
static void test_stalled_client(void **state) {
        Fixture *f = *state;
        Reply r;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const char *colon = strrchr(f->listen, ':');

        a.sin_port = htons((uint16_t)atoi(colon + 1));
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        const char *partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
        assert_int_equal(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));

        for (int i = 0; i < 20; i++) {
                request(f, "GET", "/metrics", NULL, NULL, &r);
                assert_int_equal(r.status, 200);
        }

        /* Finish it: the stalled request is still answered. */
        assert_int_equal(write(fd, "\r\n", 2), 2);
        char buf[512];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 12);
        buf[n] = '\0';
        assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        close(fd);
}

static void test_listen_errors(void **state) {
        Fixture *f = *state;
        sd_event *e = NULL;
        HttpServer *s = NULL;
        char err[512];
        HttpHandlers h = handlers_template;
        static const char *const invalid[] = {
                "",
                "127.0.0.1",
                "127.0.0.1:",
                ":8787",
                "127.0.0.1:0",
                "127.0.0.1:65536",
                "127.0.0.1:abc",
                "127.0.0.1:80x",
                "::1:8787",
                "[::1]8787",
                "[::1]",
                "[]:8787",
                "[::1:8787",
        };

        assert_int_equal(sd_event_new(&e), 0);
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                err[0] = '\0';
                int r = http_server_new(e, invalid[i], NULL, &h, &s, err, sizeof(err));
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d", invalid[i], r);
                assert_null(s);
                char quoted[128];
                snprintf(quoted, sizeof(quoted), "'%s'", invalid[i]);
                assert_non_null(strstr(err, quoted));
        }

        /* The fixture's server holds its port. */
        err[0] = '\0';
        int r = http_server_new(e, f->listen, TOKEN, &h, &s, err, sizeof(err));
        assert_int_equal(r, -EADDRINUSE);
        assert_null(s);
        char want[128];
        snprintf(want, sizeof(want), "cannot listen on '%s': Address already in use", f->listen);
        if (!strstr(err, want))
                fail_msg("unexpected error: %s", err);
        assert_null(strstr(err, TOKEN));

        /* IPv6 loopback in brackets. */
        char v6[64];
        snprintf(v6, sizeof(v6), "[::1]:%d", free_port());
        r = http_server_new(e, v6, TOKEN, &h, &s, err, sizeof(err));
        if (r < 0)
                fail_msg("%s: %s", v6, err);
        http_server_free(s);
        s = NULL;

        /* "localhost" resolves. */
        char lh[64];
        snprintf(lh, sizeof(lh), "localhost:%d", free_port());
        r = http_server_new(e, lh, TOKEN, &h, &s, err, sizeof(err));
        if (r < 0)
                fail_msg("%s: %s", lh, err);
        http_server_free(s);

        http_server_free(NULL);
        sd_event_unref(e);
}

/* Many requests over one keep-alive connection: the timer/epoll wiring must
 * not leave MHD's buffered work unprocessed. */
static void test_keepalive(void **state) {
        Fixture *f = *state;
        char url[128];
        Reply r;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        snprintf(url, sizeof(url), "http://%s/healthz", f->listen);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        for (int i = 0; i < 100; i++) {
                long status = 0, conns = -1;
                memset(&r, 0, sizeof(r));
                assert_int_equal(curl_easy_perform(c), CURLE_OK);
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
                assert_int_equal(status, 200);
                if (i > 0)
                        assert_int_equal(conns, 0); /* reused */
        }
        curl_easy_cleanup(c);
        assert_int_equal(atomic_load(&f->healthz_calls), 100);
}

/* At debug level, with right and wrong tokens and MHD's own log lines, the
 * token never reaches the log. */
static void test_token_not_logged(void **state) {
        Fixture *f = *state;
        Reply r;
        char wrong[sizeof(TOKEN)];
        char hdr[256];
        static char log_text[65536];

        memcpy(wrong, TOKEN, sizeof(TOKEN));
        wrong[3] ^= 1;
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", wrong);

        int memfd = memfd_create("log", 0);
        assert_true(memfd >= 0);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_int_equal(dup2(memfd, STDERR_FILENO), STDERR_FILENO);
        log_set_level(LOG_DEBUG);

        request(f, "POST", "/run", "Authorization: Bearer " TOKEN, NULL, &r);
        long ok_status = r.status;
        request(f, "POST", "/run", hdr, NULL, &r);
        long wrong_status = r.status;
        request(f, "GET", "/healthz", "Authorization: Bearer " TOKEN, NULL, &r);
        /* Headers too large for the pool make MHD log through our logger. */
        static char big[40 * 1024];
        snprintf(big, sizeof(big), "Authorization: Bearer %s", TOKEN);
        memset(big + strlen(big), 'z', sizeof(big) - 1 - strlen(big));
        big[sizeof(big) - 1] = '\0';
        request(f, "POST", "/run", big, NULL, &r);
        long big_status = r.status;

        log_set_level(LOG_WARNING);
        fflush(stderr);
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
        ssize_t n = pread(memfd, log_text, sizeof(log_text) - 1, 0);
        close(memfd);
        assert_true(n > 0);
        log_text[n] = '\0';

        assert_int_equal(ok_status, 202);
        assert_int_equal(wrong_status, 401);
        assert_int_equal(big_status, 431);
        assert_non_null(strstr(log_text, "http: run requested by 127.0.0.1"));
        assert_non_null(strstr(log_text, "refused POST /run from 127.0.0.1"));
        assert_non_null(strstr(log_text, "microhttpd: "));
        if (strstr(log_text, TOKEN) || strstr(log_text, wrong))
                fail_msg("token in the log:\n%s", log_text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
                cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
                cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_ok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_unauthorized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
                cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chunked_body_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
                cmocka_unit_test(test_no_token),
                cmocka_unit_test_setup_teardown(test_set_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stalled_client, setup, teardown),
                cmocka_unit_test_setup_teardown(test_listen_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_not_logged, setup, teardown),
        };
        /* Refusals are logged at notice; keep the test output readable. */
        log_set_level(LOG_WARNING);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
