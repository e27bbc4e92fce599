/* See ch.h.  One CURL easy handle per client, reused across requests for
 * keep-alive; a client belongs to one thread at a time.  What an answer
 * means (success, which error, whether to retry, whether to fail over) is
 * ch_error.c's.
 *
 * Failover (SPEC §9): the current endpoint is process-wide (an atomic index
 * into clickhouse.url), so a run, the heartbeat and /healthz agree on it and
 * a new client starts where the last request succeeded. */
#include "ch.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "macro.h"
#include "text.h"

#define MAX_RESPONSE_BYTES (256u * 1024u * 1024u)
#define BACKOFF_BASE_MS    200u
#define BACKOFF_CAP_MS     10000u

/* The process's current endpoint: (generation << 32) | index into
 * clickhouse.url.  ch_endpoint_reset() starts a new generation, so a client
 * made under the previous list (a heartbeat still running across a
 * reload) cannot move the new list's endpoint. */
static _Atomic uint64_t endpoint_state;

static size_t endpoint_index(void) {
        return (size_t)(atomic_load(&endpoint_state) & UINT32_MAX);
}

static uint32_t endpoint_generation(void) {
        return (uint32_t)(atomic_load(&endpoint_state) >> 32);
}

struct ChClient {
        CURL *curl;
        struct curl_slist *headers;
        char **bases;        /* "http://host:port" without trailing slash or credentials, in failover order */
        size_t n_bases;      /* at least 1 */
        size_t current;      /* index into bases of the endpoint requests go to */
        bool pinned;         /* one endpoint only: no failover */
        uint32_t generation; /* of endpoint_state when the client was made */
        char *database;
        usec_t timeout;
        unsigned retries;
        unsigned insert_quorum;
        const atomic_bool *cancel;
        char query_id[64]; /* "" = let the server choose */
};

static bool cancelled(const ChClient *c) {
        return c->cancel && atomic_load(c->cancel);
}

/* The base URL without trailing slashes.  It never holds credentials:
 * config_load() rejects a user or password in clickhouse.url. */
static char *base_url(const char *url) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                n--;
        return strndup(url, n);
}

static size_t url_count(const ClickHouseConfig *cfg) {
        size_t n = 0;
        while (cfg->url && cfg->url[n])
                n++;
        return n;
}

/* The endpoints of cfg: all of them (pin < 0), or url[pin] alone. */
static int set_bases(ChClient *c, const ClickHouseConfig *cfg, ssize_t pin) {
        size_t n = url_count(cfg);
        if (n == 0 || (pin >= 0 && (size_t)pin >= n))
                return -EINVAL;
        c->n_bases = pin >= 0 ? 1 : n;
        c->pinned = pin >= 0 || n == 1;
        c->bases = calloc(c->n_bases, sizeof(char *));
        if (!c->bases)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_bases; i++)
                if (!(c->bases[i] = base_url(cfg->url[pin >= 0 ? (size_t)pin : i])))
                        return -ENOMEM;
        c->generation = endpoint_generation();
        c->current = c->pinned ? 0 : endpoint_index() % c->n_bases;
        return 0;
}

static int client_new(const ClickHouseConfig *cfg, ssize_t pin, ChClient **ret, char *err, size_t errlen) {
        ChClient *c = calloc(1, sizeof(*c));
        Buf h = { 0 };

        if (!c)
                return -ENOMEM;
        c->curl = curl_easy_init();
        int r = set_bases(c, cfg, pin);
        c->database = strdup(cfg->database);
        c->timeout = cfg->timeout;
        c->retries = cfg->retries;
        c->insert_quorum = cfg->insert_quorum;
        if (r == -EINVAL) {
                snprintf(err, errlen, "cannot set up the clickhouse client: no such url in clickhouse.url");
                ch_client_free(c);
                return r;
        }
        if (!c->curl || r < 0 || !c->database) {
                snprintf(err, errlen, "cannot set up the clickhouse client: out of memory");
                ch_client_free(c);
                return -ENOMEM;
        }
        buf_printf(&h, "X-ClickHouse-User: %s", cfg->user);
        c->headers = curl_slist_append(c->headers, h.data ? h.data : "");
        if (cfg->password && *cfg->password) {
                buf_reset(&h);
                buf_printf(&h, "X-ClickHouse-Key: %s", cfg->password);
                c->headers = curl_slist_append(c->headers, h.data ? h.data : "");
                /* the header buffer held the secret */
                if (h.data)
                        explicit_bzero(h.data, h.cap);
        }
        c->headers = curl_slist_append(c->headers, "Content-Type: text/plain; charset=utf-8");
        c->headers = curl_slist_append(c->headers, "Expect:");
        buf_free(&h);
        if (!c->headers) {
                ch_client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int ch_client_new(const ClickHouseConfig *cfg, ChClient **ret, char *err, size_t errlen) {
        return client_new(cfg, -1, ret, err, errlen);
}

int ch_client_new_pinned(const ClickHouseConfig *cfg, size_t index, ChClient **ret, char *err, size_t errlen) {
        return client_new(cfg, (ssize_t)index, ret, err, errlen);
}

void ch_client_free(ChClient *c) {
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        curl_slist_free_all(c->headers);
        for (size_t i = 0; c->bases && i < c->n_bases; i++)
                free(c->bases[i]);
        free(c->bases);
        free(c->database);
        free(c);
}

int ch_client_set_query_id(ChClient *c, const char *id) {
        size_t n = id ? strlen(id) : 0;
        if (n >= sizeof(c->query_id) ||
            strspn(id ? id : "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != n)
                return -EINVAL;
        memcpy(c->query_id, id ? id : "", n + 1);
        return 0;
}

void ch_client_set_cancel_flag(ChClient *c, const atomic_bool *flag) {
        c->cancel = flag;
}

const char *ch_client_url(const ChClient *c) {
        return c->bases[c->current];
}

const char *ch_endpoint_current(const ClickHouseConfig *cfg) {
        size_t n = url_count(cfg);
        return n ? cfg->url[endpoint_index() % n] : "";
}

void ch_endpoint_reset(void) {
        uint64_t old = atomic_load(&endpoint_state);
        while (!atomic_compare_exchange_weak(&endpoint_state, &old, ((old >> 32) + 1) << 32))
                ;
}

/* Makes this client's endpoint the process's, unless the list changed
 * since the client was made. */
static void endpoint_publish(const ChClient *c) {
        uint64_t old = atomic_load(&endpoint_state);
        uint64_t want = ((uint64_t)c->generation << 32) | c->current;
        while ((uint32_t)(old >> 32) == c->generation && !atomic_compare_exchange_weak(&endpoint_state, &old, want))
                ;
}

size_t ch_endpoint_next(size_t current, size_t n) {
        return n ? (current + 1) % n : 0;
}

/* Moves this client, and the process's current endpoint, to the next URL. */
static void fail_over(ChClient *c, const char *why) {
        size_t from = c->current;
        c->current = ch_endpoint_next(c->current, c->n_bases);
        endpoint_publish(c);
        log_debug("clickhouse %s failed (%s): failing over to %s", c->bases[from], why, c->bases[c->current]);
}

/* What arrives of one answer: the body (bounded) and the headers that
 * decide how to read it. */
typedef struct Answer {
        Buf body;
        bool too_large; /* on_body refused: more than MAX_RESPONSE_BYTES */
        bool no_memory; /* on_body refused: out of memory */
        char exception_code[16];
        char exception_tag[72];
        unsigned retry_after; /* seconds, 0 when absent */
        int code;             /* the server's exception code, 0 when none */
} Answer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Answer *a = userdata;
        size_t n = size * nmemb;
        if (a->body.len + n > MAX_RESPONSE_BYTES) {
                a->too_large = true;
                return 0; /* makes curl fail the transfer */
        }
        if (buf_append(&a->body, ptr, n) < 0) {
                a->no_memory = true;
                return 0;
        }
        return n;
}

/* Copies a header's value (after "Name:") into buf when line is that
 * header; values are short tokens, longer ones are cut. */
static bool header_value(const char *line, size_t n, const char *name, char *buf, size_t len) {
        size_t k = strlen(name);
        if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
                return false;
        const char *v = line + k + 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        snprintf(buf, len, "%.*s", (int)MIN((size_t)(end - v), len - 1), v);
        return true;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Answer *a = userdata;
        size_t n = size * nmemb;
        char retry_after[24];
        uint64_t secs;

        if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
                /* a new status line: forget what an interim answer said */
                a->exception_code[0] = a->exception_tag[0] = '\0';
                a->retry_after = 0;
        } else if (!header_value(ptr, n, "X-ClickHouse-Exception-Code", a->exception_code, sizeof(a->exception_code)) &&
                   !header_value(ptr, n, "X-ClickHouse-Exception-Tag", a->exception_tag, sizeof(a->exception_tag)) &&
                   header_value(ptr, n, "Retry-After", retry_after, sizeof(retry_after)) &&
                   text_parse_u64(retry_after, &secs) == 0) /* the HTTP-date form is ignored */
                a->retry_after = (unsigned)MIN(secs, 3600u);
        return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        return cancelled(userdata) ? 1 : 0;
}

/* The statement for messages: one line, at most ~200 characters. */
static const char *abbreviate(const char *sql, char *buf, size_t len) {
        return text_one_line(sql, buf, len);
}

/* The request URL: an INSERT's statement goes in the URL and its rows in
 * the body; any other statement is the body itself, so long IN lists never
 * hit URL length limits. */
static int request_url(ChClient *c, const char *sql, bool insert, unsigned flags, Buf *url) {
        buf_printf(url, "%s/?wait_end_of_query=%d", ch_client_url(c), insert ? 0 : 1);
        if (insert) {
                char *q = curl_easy_escape(c->curl, sql, 0);
                if (!q)
                        return -ENOMEM;
                buf_printf(url, "&query=%s", q);
                curl_free(q);
        }
        if (*c->query_id)
                buf_printf(url, "&query_id=%s", c->query_id); /* [A-Za-z0-9-] only, see ch.h */
        /* SPEC §9: the quorum's wait ends before the client's, so a replica
         * killed without a clean stop (alive to ZooKeeper until its session
         * expires) fails the insert with the server's error, not a timeout. */
        if (insert && c->insert_quorum > 0)
                buf_printf(url, "&insert_quorum=%u&insert_quorum_timeout=%" PRIu64, c->insert_quorum,
                           MAX(c->timeout / USEC_PER_MSEC * 3 / 4, (usec_t)1));
        else if (c->insert_quorum > 0)
                buf_printf(url, "&select_sequential_consistency=1");
        /* the same for ON CLUSTER DDL waiting for a replica that is down */
        if (flags & CH_DDL)
                buf_printf(url, "&distributed_ddl_task_timeout=%" PRIu64,
                           MAX(c->timeout / USEC_PER_SEC * 3 / 4, (usec_t)1));
        if (!(flags & CH_NO_DATABASE)) {
                char *db = curl_easy_escape(c->curl, c->database, 0);
                if (db)
                        buf_printf(url, "&database=%s", db);
                curl_free(db);
        }
        return url->data ? 0 : -ENOMEM;
}

static void request_setup(ChClient *c, const char *url, const char *payload, bool insert, Answer *a, char *curl_err) {
        curl_easy_reset(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
        curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, a);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(c->timeout / USEC_PER_MSEC));
        curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)((c->timeout < 10 * USEC_PER_SEC ? c->timeout : 10 * USEC_PER_SEC) / USEC_PER_MSEC));
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "salesd/" SALESD_VERSION);
        /* libcurl silently resends a request whose reused keep-alive
         * connection died before any answer: for an INSERT that is a hidden
         * duplicate.  A fresh connection turns it into an error the caller
         * handles (re-read, then resend only what is missing). */
        if (insert)
                curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
}

/* One attempt; the answer is classified by ch_classify(). */
static int request_once(ChClient *c, const char *sql, const char *data, unsigned flags, Answer *a, char *err,
                        size_t errlen) {
        char what[200], why[1024], curl_err[CURL_ERROR_SIZE] = "";
        Buf url = { 0 };

        int r = request_url(c, sql, data != NULL, flags, &url);
        if (r < 0) {
                buf_free(&url);
                snprintf(err, errlen, "clickhouse %s: out of memory", ch_client_url(c));
                return r;
        }
        request_setup(c, url.data, data ? data : sql, data != NULL, a, curl_err);
        log_debug("clickhouse %s: %s", ch_client_url(c), abbreviate(sql, what, sizeof(what)));
        CURLcode cc = curl_easy_perform(c->curl);
        buf_free(&url);
        /* our own refusal names its cause to the classifier */
        if (cc == CURLE_WRITE_ERROR && a->no_memory)
                cc = CURLE_OUT_OF_MEMORY;
        if (cc == CURLE_WRITE_ERROR && a->too_large)
                snprintf(curl_err, sizeof(curl_err), "the answer exceeds %u MiB", MAX_RESPONSE_BYTES >> 20);
        ChExchange x = {
                .curl_code = (int)cc,
                .curl_detail = curl_err,
                .exception_code = a->exception_code,
                .exception_tag = a->exception_tag,
                .body = a->body.data,
                .body_len = a->body.len,
        };
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &x.http_status);
        r = ch_classify(&x, why, sizeof(why));
        a->code = r < 0 ? ch_exception_code(&x) : 0;
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL); /* curl_err dies with this call */
        if (r < 0)
                snprintf(err, errlen, "clickhouse %s: query '%s' failed: %s", ch_client_url(c),
                         abbreviate(sql, what, sizeof(what)), why);
        return r;
}

/* The wait before retry `attempt` (0-based): exponential, capped, with
 * "equal jitter" (half fixed, half random), so retries from many hosts
 * spread out but never collapse to zero wait. */
static unsigned backoff_ms(unsigned attempt) {
        unsigned ms = BACKOFF_BASE_MS;
        for (unsigned i = 0; i < attempt && ms < BACKOFF_CAP_MS; i++)
                ms *= 2;
        if (ms > BACKOFF_CAP_MS)
                ms = BACKOFF_CAP_MS;
        unsigned rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (unsigned)time(NULL);
        return ms / 2 + rnd % (ms / 2 + 1);
}

static int sleep_ms(ChClient *c, unsigned ms) {
        for (unsigned waited = 0; waited < ms; waited += 50) {
                if (cancelled(c))
                        return -ECANCELED;
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        return cancelled(c) ? -ECANCELED : 0;
}

int ch_client_backoff(ChClient *c, unsigned attempt) {
        return sleep_ms(c, backoff_ms(attempt));
}

/* One attempt on the current endpoint and, while endpoints refuse before
 * doing anything (unreachable, read-only), on the next ones, each at most
 * once: nothing was sent or done, so even an insert may go on at once.  An
 * endpoint that fails in a way that leaves the outcome unknown is left
 * too, but the error goes back to the caller's retry rules (an insert's
 * caller re-reads first, SPEC §4). */
static int request_any(ChClient *c, const char *sql, const char *data, unsigned flags, Answer *a, char *err,
                       size_t errlen) {
        for (size_t tried = 1;; tried++) {
                int r = request_once(c, sql, data, flags, a, err, errlen);
                if (r == 0) {
                        if (!c->pinned)
                                endpoint_publish(c);
                        return 0;
                }
                if (c->pinned || !ch_error_failover(r, a->code))
                        return r;
                fail_over(c, err);
                if (!ch_error_refused(r, a->code) || tried >= c->n_bases)
                        return r;
                buf_free(&a->body);
                *a = (Answer){ 0 };
        }
}

int ch_query(ChClient *c, const char *sql, const char *data, unsigned flags, char **ret_body, char *err,
             size_t errlen) {
        unsigned max_attempts = (flags & CH_NO_RETRY) ? 1 : c->retries + 1, retry_after = 0;
        int r = -EIO;

        for (unsigned attempt = 0; attempt < max_attempts; attempt++) {
                Answer a = { 0 };

                if (attempt > 0) {
                        /* a busy server's Retry-After, within the backoff cap */
                        unsigned ms = MAX(backoff_ms(attempt - 1), MIN(retry_after * 1000u, BACKOFF_CAP_MS));
                        log_debug("clickhouse %s: retry %u of %u in %u ms after: %s", ch_client_url(c), attempt,
                                  c->retries, ms, err);
                        r = sleep_ms(c, ms);
                        if (r < 0)
                                return r;
                }
                r = request_any(c, sql, data, flags, &a, err, errlen);
                retry_after = a.retry_after;
                if (r == 0 && ret_body)
                        *ret_body = buf_steal(&a.body);
                buf_free(&a.body);
                if (r == 0 || !ch_error_retryable(r))
                        break;
        }
        return r;
}

/* Wraps s in quote, backslash-escaping the quote and backslashes. */
static char *quote_with(const char *s, const char *quote) {
        Buf b = { 0 };
        buf_puts(&b, quote);
        for (const char *p = s; *p; p++) {
                if (*p == *quote || *p == '\\')
                        buf_append(&b, "\\", 1);
                buf_append(&b, p, 1);
        }
        if (buf_puts(&b, quote) < 0) {
                buf_free(&b);
                return NULL;
        }
        return buf_steal(&b);
}

char *ch_quote_string(const char *s) {
        return quote_with(s, "'");
}

char *ch_quote_identifier(const char *s) {
        return quote_with(s, "`");
}
