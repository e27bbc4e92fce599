/* The ClickHouse client's reading of answers (ch_error.c), table-driven:
 * what libcurl and the server left behind → the error class (errno), whether
 * ch_query() retries it, and what the message says. */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ch.h"
#include "macro.h"

#define TAG "qwertyuiopasdfgh"
#define EXC18                                                                                                     \
        "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = " \
        "DB::Exception\n"
#define EXC25                                                                        \
        "Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero. " \
        "(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 25.8.1.1)\n"
#define EXC25_LEN             "131" /* strlen(EXC25) */
#define BLOCK(tag, len, text) "\r\n__exception__\r\n" tag "\r\n" text len " " tag "\r\n__exception__\r\n"
#define ROWS                  "2026-01-10\t1\n2026-01-11\t2\n"

static void test_exc25_length(void **state) {
        (void)state;
        char n[8];
        snprintf(n, sizeof(n), "%zu", strlen(EXC25));
        assert_string_equal(n, EXC25_LEN);
}

static const struct Case {
        const char *name;
        int curl_code;
        long status;
        const char *code_header, *tag_header, *body;
        int error;
        const char *fragment; /* expected in the message (NULL: message empty) */
} exchanges[] = {
        /* success */
        { "200", CURLE_OK, 200, NULL, TAG, ROWS, 0, NULL },
        { "200 empty", CURLE_OK, 200, NULL, NULL, "", 0, NULL },
        { "200 code 0", CURLE_OK, 200, "0", NULL, ROWS, 0, NULL },
        { "204", CURLE_OK, 204, NULL, NULL, NULL, 0, NULL },
        /* libcurl families */
        { "refused", CURLE_COULDNT_CONNECT, 0, NULL, NULL, NULL, -ECONNREFUSED, "is the server up?" },
        { "no such host", CURLE_COULDNT_RESOLVE_HOST, 0, NULL, NULL, NULL, -ECONNREFUSED, "check clickhouse.url" },
        { "proxy unknown", CURLE_COULDNT_RESOLVE_PROXY, 0, NULL, NULL, NULL, -ECONNREFUSED, "is the server up?" },
        { "timeout", CURLE_OPERATION_TIMEDOUT, 0, NULL, NULL, NULL, -ETIMEDOUT, "outcome is unknown" },
        { "timeout mid-answer", CURLE_OPERATION_TIMEDOUT, 200, NULL, NULL, ROWS, -ETIMEDOUT, "clickhouse.timeout" },
        { "reset", CURLE_RECV_ERROR, 0, NULL, NULL, NULL, -ECONNRESET, "connection was lost" },
        { "send failed", CURLE_SEND_ERROR, 0, NULL, NULL, NULL, -ECONNRESET, "outcome is unknown" },
        { "empty reply", CURLE_GOT_NOTHING, 0, NULL, NULL, NULL, -ECONNRESET, "outcome is unknown" },
        { "cut, no exception", CURLE_PARTIAL_FILE, 200, NULL, TAG, ROWS, -ECONNRESET, "connection was lost" },
        { "http2", CURLE_HTTP2_STREAM, 0, NULL, NULL, NULL, -ECONNRESET, "outcome is unknown" },
        { "tls handshake", CURLE_SSL_CONNECT_ERROR, 0, NULL, NULL, NULL, -EPROTO, "TLS handshake" },
        { "tls verify", CURLE_PEER_FAILED_VERIFICATION, 0, NULL, NULL, NULL, -EPROTO,
          "trusts the server's certificate" },
        { "tls ca file", CURLE_SSL_CACERT_BADFILE, 0, NULL, NULL, NULL, -EPROTO, "check clickhouse.url" },
        { "tls client cert", CURLE_SSL_CERTPROBLEM, 0, NULL, NULL, NULL, -EPROTO, "TLS" },
        { "bad url", CURLE_URL_MALFORMAT, 0, NULL, NULL, NULL, -EPROTO, "check clickhouse.url" },
        { "ftp://", CURLE_UNSUPPORTED_PROTOCOL, 0, NULL, NULL, NULL, -EPROTO, "http:// or https://" },
        { "native port", CURLE_WEIRD_SERVER_REPLY, 0, NULL, NULL, NULL, -EPROTO, "not the native protocol's 9000" },
        { "redirects", CURLE_TOO_MANY_REDIRECTS, 0, NULL, NULL, NULL, -EPROTO, "final address" },
        { "too large", CURLE_WRITE_ERROR, 200, NULL, NULL, ROWS, -EPROTO, "larger than salesd accepts" },
        { "out of memory", CURLE_OUT_OF_MEMORY, 0, NULL, NULL, NULL, -ENOMEM, "out of memory" },
        { "internal", CURLE_BAD_FUNCTION_ARGUMENT, 0, NULL, NULL, NULL, -EPROTO, "libcurl could not" },
        { "unknown curl error", CURLE_RANGE_ERROR, 0, NULL, NULL, NULL, -EIO, "libcurl error 33" },
        { "cancelled", CURLE_ABORTED_BY_CALLBACK, 200, NULL, NULL, ROWS, -ECANCELED, "cancelled" },
        /* statuses */
        { "500", CURLE_OK, 500, "241", NULL, "Code: 241. DB::Exception: Memory limit exceeded\n", -EIO,
          "HTTP 500: Code: 241. DB::Exception: Memory limit exceeded" },
        { "502 from a proxy", CURLE_OK, 502, NULL, NULL, "<html>Bad Gateway</html>", -EIO, "HTTP 502: <html>" },
        { "503", CURLE_OK, 503, "210", NULL, "Code: 210. DB::NetException: Connection refused\n", -EIO, "HTTP 503" },
        { "408", CURLE_OK, 408, "159", NULL, "Code: 159. DB::Exception: Timeout exceeded\n", -EIO, "HTTP 408" },
        { "429", CURLE_OK, 429, "202", NULL, "Code: 202. DB::Exception: Too many simultaneous queries\n", -EIO,
          "Too many simultaneous queries" },
        { "501", CURLE_OK, 501, "48", NULL, "Code: 48. DB::Exception: Not implemented\n", -EINVAL, "HTTP 501" },
        { "400", CURLE_OK, 400, "62", NULL, "Code: 62. DB::Exception: Syntax error\n", -EINVAL, "Syntax error" },
        { "404", CURLE_OK, 404, "60", NULL, "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist\n",
          -EINVAL, "HTTP 404: Code: 60" },
        { "401", CURLE_OK, 401, "194", NULL, "Code: 194. DB::Exception: password required\n", -EINVAL,
          "check clickhouse.user" },
        { "403 code 516", CURLE_OK, 403, "516", NULL, "Code: 516. DB::Exception: default: Authentication failed\n",
          -EINVAL, "clickhouse.password_file" },
        { "18.16 wrong password", CURLE_OK, 500, NULL, NULL, "Code: 516, e.displayText() = DB::Exception: x\n", -EIO,
          "clickhouse.password_file" },
        { "413", CURLE_OK, 413, NULL, NULL, "", -EINVAL, "HTTP 413: (empty response)" },
        { "301", CURLE_OK, 301, NULL, NULL, "", -EPROTO, "final address" },
        { "500 cut", CURLE_PARTIAL_FILE, 500, NULL, NULL, "Code: 1", -EIO, "HTTP 500: Code: 1" },
        /* an exception after a 200: 18.16, 25.x, 25.11+ */
        { "18.16 last line", CURLE_OK, 200, NULL, NULL, ROWS EXC18, -EIO, "HTTP 200: Code: 395, e.displayText()" },
        { "18.16 only line", CURLE_OK, 200, NULL, NULL, EXC18, -EIO, "HTTP 200: Code: 395" },
        { "25.x cut", CURLE_PARTIAL_FILE, 200, NULL, NULL, ROWS "__exception__\r\n" EXC25, -EIO,
          "HTTP 200: Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero." },
        { "25.x whole", CURLE_OK, 200, NULL, NULL, ROWS "__exception__\r\n" EXC25, -EIO, "HTTP 200: Code: 395." },
        { "25.11 cut", CURLE_PARTIAL_FILE, 200, "395", TAG, ROWS BLOCK(TAG, EXC25_LEN, EXC25), -EIO,
          "HTTP 200 with exception code 395: Code: 395. DB::Exception: Value passed" },
        { "25.11 whole", CURLE_OK, 200, NULL, TAG, ROWS BLOCK(TAG, EXC25_LEN, EXC25), -EIO,
          "HTTP 200: Code: 395. DB::Exception" },
        { "25.11 header stripped", CURLE_OK, 200, NULL, NULL, ROWS BLOCK(TAG, EXC25_LEN, EXC25), -EIO,
          "HTTP 200: Code: 395." },
        { "25.11 recv error", CURLE_RECV_ERROR, 200, NULL, TAG, BLOCK(TAG, EXC25_LEN, EXC25), -EIO, "(version 25.8" },
        { "25.11 block truncated", CURLE_PARTIAL_FILE, 200, NULL, TAG, ROWS "\r\n__exception__\r\n" TAG "\r\nCode: 3",
          -EIO, "HTTP 200: Code: 3" },
        { "code header on a 200", CURLE_OK, 200, "241", NULL, ROWS, -EIO,
          "HTTP 200 with exception code 241: the answer ended without the exception's text" },
        { "code header, 18.16 text", CURLE_OK, 200, "241", NULL,
          ROWS "Code: 241, e.displayText() = DB::Exception: "
               "Memory limit\n",
          -EIO, "HTTP 200 with exception code 241: Code: 241" },
        { "code header, cut", CURLE_PARTIAL_FILE, 200, "241", NULL, ROWS, -EIO, "exception code 241" },
};

static void test_classify(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(exchanges); i++) {
                const struct Case *c = &exchanges[i];
                ChExchange x = {
                        .curl_code = c->curl_code,
                        .http_status = c->status,
                        .exception_code = c->code_header,
                        .exception_tag = c->tag_header,
                        .body = c->body,
                        .body_len = c->body ? strlen(c->body) : 0,
                };
                char msg[1024];
                int r = ch_classify(&x, msg, sizeof(msg));
                if (r != c->error || (c->fragment ? !strstr(msg, c->fragment) : msg[0] != '\0'))
                        fail_msg("case '%s': got %d '%s', want %d '%s'", c->name, r, msg, c->error,
                                 c->fragment ? c->fragment : "");
                /* framing and tags never reach a message */
                if (strstr(msg, "__exception__") || strstr(msg, TAG))
                        fail_msg("case '%s': framing in '%s'", c->name, msg);
        }
}

/* libcurl's own error text is preferred over its generic one. */
static void test_curl_detail(void **state) {
        (void)state;
        ChExchange x = { .curl_code = CURLE_PEER_FAILED_VERIFICATION,
                         .curl_detail = "SSL certificate problem: self-signed certificate" };
        char msg[512];
        assert_int_equal(ch_classify(&x, msg, sizeof(msg)), -EPROTO);
        assert_non_null(strstr(msg, "SSL certificate problem: self-signed certificate (a TLS handshake"));
}

static void test_retryable(void **state) {
        (void)state;
        static const struct {
                int error;
                bool retry;
        } cases[] = {
                { -ECONNREFUSED, true }, { -ETIMEDOUT, true }, { -ECONNRESET, true }, { -EIO, true },
                { -EINVAL, false },      { -EPROTO, false },   { -ENOMEM, false },    { -ECANCELED, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(ch_error_retryable(cases[i].error), cases[i].retry);
}

/* Exactly the message, framing and data left out; data that only looks
 * like framing is data. */
static void test_find_exception(void **state) {
        (void)state;
        static const struct {
                const char *body, *tag, *want;
        } cases[] = {
                { ROWS BLOCK(TAG, EXC25_LEN, EXC25), TAG, EXC25 },
                { ROWS BLOCK(TAG, EXC25_LEN, EXC25), NULL, EXC25 },
                { BLOCK(TAG, "6", "Code:\n"), TAG, "Code:\n" },
                /* declared length wins over searching: the message may hold the framing's words */
                { BLOCK(TAG, "30", "Code: 1. x\r\n__exception__\r\nyz\n"), TAG, "Code: 1. x\r\n__exception__\r\nyz\n" },
                { ROWS "__exception__\r\n" EXC25, NULL, EXC25 },
                { ROWS "__exception__\r\n" TAG "\r\nCode: 3", TAG, "Code: 3" },
                { ROWS EXC18, NULL,
                  "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function "
                  "is non zero, e.what() = DB::Exception" },
                { ROWS, TAG, NULL },
                { "", NULL, NULL },
                { ROWS "Code: 7\n", NULL, NULL },                                /* no Exception: data */
                { ROWS "__exception__\r\nhello\n", NULL, NULL },                 /* no Code: data */
                { ROWS BLOCK("otherotherother1", EXC25_LEN, EXC25), TAG, NULL }, /* not this answer's tag */
                { ROWS BLOCK(TAG, "999", EXC25), TAG, EXC25 },                   /* wrong length: found by the marker */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = 0;
                const char *body = cases[i].body;
                const char *got = ch_find_exception(body, strlen(body), cases[i].tag, &len);
                if (!cases[i].want) {
                        if (got)
                                fail_msg("case %zu: found '%.*s'", i, (int)len, got);
                        continue;
                }
                if (!got || len != strlen(cases[i].want) || memcmp(got, cases[i].want, len) != 0)
                        fail_msg("case %zu: got '%.*s', want '%s'", i, got ? (int)len : 0, got ? got : "",
                                 cases[i].want);
        }
}

/* The server's exception code: from the header, else from the text. */
static void test_exception_code(void **state) {
        (void)state;
        static const struct {
                long status;
                const char *header, *body;
                int code;
        } cases[] = {
                { 500, NULL,
                  "Code: 242, e.displayText() = DB::Exception: Table is in readonly mode, e.what() = DB::Exception\n",
                  242 },
                { 500, "285", "whatever", 285 },
                { 500, NULL,
                  "Code: 285, e.displayText() = DB::Exception: Number of alive replicas (1) is less than requested "
                  "quorum (2), e.what() = DB::Exception\n",
                  285 },
                { 200, NULL, ROWS EXC18, 395 },
                { 503, NULL, "Service Unavailable", 0 },
                { 200, NULL, ROWS, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ChExchange x = { .http_status = cases[i].status,
                                 .exception_code = cases[i].header,
                                 .body = cases[i].body,
                                 .body_len = strlen(cases[i].body) };
                if (ch_exception_code(&x) != cases[i].code)
                        fail_msg("case %zu: got %d, want %d", i, ch_exception_code(&x), cases[i].code);
        }
}

/* Which failures move requests to the next URL (SPEC §9), and which of
 * those may resend the same request at once. */
static void test_failover_classes(void **state) {
        (void)state;
        static const struct {
                int error, code;
                bool failover, refused;
        } cases[] = {
                { -ECONNREFUSED, 0, true, true }, /* nothing sent */
                { -ETIMEDOUT, 0, true, false },   /* outcome unknown: the caller's rules decide */
                { -ECONNRESET, 0, true, false },  /* the same */
                { -EIO, 242, true, true },        /* read-only replica: refused before writing */
                { -EIO, 225, true, false },       /* no ZooKeeper */
                { -EIO, 999, true, false },       /* ZooKeeper session lost */
                { -EIO, 0, true, false },         /* a gateway's 502/503 */
                { -EIO, 285, false, false },      /* quorum: every replica answers the same */
                { -EIO, 286, false, false },      { -EIO, 241, false, false }, /* memory limit of this query */
                { -EINVAL, 62, false, false },                                 /* the query's own fault */
                { -EPROTO, 0, false, false },                                  /* TLS, URL */
                { -ECANCELED, 0, false, false },  { -ENOMEM, 0, false, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (ch_error_failover(cases[i].error, cases[i].code) != cases[i].failover ||
                    ch_error_refused(cases[i].error, cases[i].code) != cases[i].refused)
                        fail_msg("case %zu (%d, code %d)", i, cases[i].error, cases[i].code);
        }
        assert_int_equal(ch_endpoint_next(0, 3), 1);
        assert_int_equal(ch_endpoint_next(2, 3), 0);
        assert_int_equal(ch_endpoint_next(0, 1), 0);
}

/* Two URLs that refuse connections: the request tries each once (list
 * order), fails as unreachable naming the last one tried, and the current
 * endpoint comes back round; a pinned client never moves it. */
static void test_failover_refused(void **state) {
        (void)state;
        char *urls[] = { "http://127.0.0.1:1", "http://127.0.0.1:2/", NULL };
        ClickHouseConfig cfg = {
                .url = urls, .database = "default", .user = "default", .timeout = 2 * USEC_PER_SEC, .retries = 0
        };
        ChClient *c = NULL;
        char err[1024];
        ch_endpoint_reset();
        assert_string_equal(ch_endpoint_current(&cfg), "http://127.0.0.1:1");
        assert_int_equal(ch_client_new(&cfg, &c, err, sizeof(err)), 0);
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:1");
        assert_int_equal(ch_query(c, "SELECT 1", NULL, 0, NULL, err, sizeof(err)), -ECONNREFUSED);
        assert_non_null(strstr(err, "clickhouse http://127.0.0.1:2: query 'SELECT 1' failed"));
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:1");
        ch_client_free(c);

        assert_int_equal(ch_client_new_pinned(&cfg, 1, &c, err, sizeof(err)), 0);
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:2");
        assert_int_equal(ch_query(c, "SELECT 1", NULL, 0, NULL, err, sizeof(err)), -ECONNREFUSED);
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:2");
        assert_string_equal(ch_endpoint_current(&cfg), "http://127.0.0.1:1");
        ch_client_free(c);
        assert_int_equal(ch_client_new_pinned(&cfg, 2, &c, err, sizeof(err)), -EINVAL);
}

/* A loopback port that takes connections (the kernel's backlog) and never
 * answers: a request to it times out after it was sent. */
static int silent_listener(int *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 8), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

/* A timeout moves the current endpoint to the next URL (once: the outcome
 * is unknown, the caller decides about a retry); a client made before the
 * list was replaced (ch_endpoint_reset()) cannot move the new list's. */
static void test_failover_after_timeout(void **state) {
        (void)state;
        int port, fd = silent_listener(&port);
        char silent[64], err[1024];
        snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", port);
        char *urls[] = { silent, "http://127.0.0.1:1", NULL };
        ClickHouseConfig cfg = {
                .url = urls, .database = "default", .user = "default", .timeout = 300 * USEC_PER_MSEC, .retries = 0
        };
        ChClient *c = NULL;

        ch_endpoint_reset();
        assert_int_equal(ch_client_new(&cfg, &c, err, sizeof(err)), 0);
        assert_int_equal(ch_query(c, "SELECT 1", NULL, CH_NO_RETRY, NULL, err, sizeof(err)), -ETIMEDOUT);
        assert_non_null(strstr(err, silent));
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:1");
        assert_string_equal(ch_endpoint_current(&cfg), "http://127.0.0.1:1");
        ch_client_free(c);

        ch_endpoint_reset();
        assert_string_equal(ch_endpoint_current(&cfg), silent);
        assert_int_equal(ch_client_new(&cfg, &c, err, sizeof(err)), 0);
        ch_endpoint_reset(); /* a reload replaced the list while c was in use */
        assert_int_equal(ch_query(c, "SELECT 1", NULL, CH_NO_RETRY, NULL, err, sizeof(err)), -ETIMEDOUT);
        assert_string_equal(ch_client_url(c), "http://127.0.0.1:1");
        assert_string_equal(ch_endpoint_current(&cfg), silent);
        ch_client_free(c);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exc25_length),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_curl_detail),
                cmocka_unit_test(test_retryable),
                cmocka_unit_test(test_find_exception),
                cmocka_unit_test(test_exception_code),
                cmocka_unit_test(test_failover_classes),
                cmocka_unit_test(test_failover_refused),
                cmocka_unit_test(test_failover_after_timeout),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
