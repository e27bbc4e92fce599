/* See ch.h.  One CURL easy handle per client, reused across requests for
 * keep-alive; a client belongs to one thread at a time. */
#include "ch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "text.h"

#define MAX_RESPONSE_BYTES (256u * 1024u * 1024u)
#define BACKOFF_BASE_MS    200u
#define BACKOFF_CAP_MS     10000u

struct ChClient {
        CURL *curl;
        struct curl_slist *headers;
        char *base; /* "http://host:port" without trailing slash or credentials */
        char *database;
        usec_t timeout;
        unsigned retries;
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

int ch_client_new(const ClickHouseConfig *cfg, ChClient **ret, char *err, size_t errlen) {
        ChClient *c = calloc(1, sizeof(*c));
        Buf h = { 0 };

        if (!c)
                return -ENOMEM;
        c->curl = curl_easy_init();
        c->base = base_url(cfg->url);
        c->database = strdup(cfg->database);
        c->timeout = cfg->timeout;
        c->retries = cfg->retries;
        if (!c->curl || !c->base || !c->database) {
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

void ch_client_free(ChClient *c) {
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        curl_slist_free_all(c->headers);
        free(c->base);
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
        return c->base;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Buf *b = userdata;
        size_t n = size * nmemb;
        if (b->len + n > MAX_RESPONSE_BYTES || buf_append(b, ptr, n) < 0)
                return 0; /* makes curl fail the transfer */
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

/* ClickHouse's error text: the body up to the first newline run, trimmed. */
static const char *error_text(const char *body, char *buf, size_t len) {
        return abbreviate(body && *body ? body : "(empty response)", buf, len);
}

/* An exception that arrived after a 200 status: the last line of the body
 * starts with "Code: NNN" and names DB::Exception. */
static const char *trailing_exception(const char *body, size_t len) {
        if (len == 0)
                return NULL;
        size_t end = len;
        while (end > 0 && body[end - 1] == '\n')
                end--;
        size_t start = end;
        while (start > 0 && body[start - 1] != '\n')
                start--;
        const char *line = body + start;
        if (end - start > 6 && strncmp(line, "Code: ", 6) == 0 && strstr(line, "Exception"))
                return line;
        return NULL;
}

static int request_once(ChClient *c, const char *sql, const char *data, unsigned flags, Buf *body, long *ret_status,
                        char *err, size_t errlen) {
        char what[200], msg[512];
        Buf url = { 0 };
        CURLcode cc;
        int r = 0;

        /* An INSERT's statement goes in the URL and its rows in the body;
         * any other statement is the body itself, so long IN lists never hit
         * URL length limits. */
        buf_printf(&url, "%s/?wait_end_of_query=%d", c->base, data ? 0 : 1);
        if (data) {
                char *q = curl_easy_escape(c->curl, sql, 0);
                if (!q) {
                        buf_free(&url);
                        return -ENOMEM;
                }
                buf_printf(&url, "&query=%s", q);
                curl_free(q);
        }
        if (*c->query_id)
                buf_printf(&url, "&query_id=%s", c->query_id); /* [A-Za-z0-9-] only, see ch.h */
        if (!(flags & CH_NO_DATABASE)) {
                char *db = curl_easy_escape(c->curl, c->database, 0);
                if (db)
                        buf_printf(&url, "&database=%s", db);
                curl_free(db);
        }
        if (!url.data) {
                buf_free(&url);
                return -ENOMEM;
        }

        curl_easy_reset(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_URL, url.data);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data ? data : sql);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(data ? data : sql));
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, body);
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
        if (data)
                curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);

        log_debug("clickhouse %s: %s", c->base, abbreviate(sql, what, sizeof(what)));
        cc = curl_easy_perform(c->curl);
        buf_free(&url);
        *ret_status = 0;
        if (cc != CURLE_OK) {
                switch (cc) {
                case CURLE_ABORTED_BY_CALLBACK:
                        r = -ECANCELED;
                        break;
                case CURLE_COULDNT_CONNECT:
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_RESOLVE_PROXY:
                        r = -ECONNREFUSED;
                        break;
                case CURLE_OPERATION_TIMEDOUT:
                        r = -ETIMEDOUT;
                        break;
                default:
                        r = -ECONNRESET;
                        break;
                }
                snprintf(err, errlen, "clickhouse %s: query '%s' failed: %s%s", c->base,
                         abbreviate(sql, what, sizeof(what)), curl_easy_strerror(cc),
                         r == -ECONNREFUSED ? " (is the server up? check clickhouse.url)" : "");
                return r;
        }
        long status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        *ret_status = status;
        const char *exc = body->data ? trailing_exception(body->data, body->len) : NULL;
        if (status != 200 || exc) {
                const char *hint = "";
                if (status == 401 || status == 403 || (body->data && strstr(body->data, "Code: 516")))
                        hint = " (check clickhouse.user and the password in clickhouse.password_file)";
                snprintf(err, errlen, "clickhouse %s: query '%s' failed: HTTP %ld: %s%s", c->base,
                         abbreviate(sql, what, sizeof(what)), status,
                         error_text(exc ? exc : body->data, msg, sizeof(msg)), hint);
                return status >= 400 && status < 500 ? -EINVAL : -EIO;
        }
        return 0;
}

int ch_client_backoff(ChClient *c, unsigned attempt) {
        unsigned ms = BACKOFF_BASE_MS;
        for (unsigned i = 0; i < attempt && ms < BACKOFF_CAP_MS; i++)
                ms *= 2;
        if (ms > BACKOFF_CAP_MS)
                ms = BACKOFF_CAP_MS;
        unsigned rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (unsigned)time(NULL);
        /* "equal jitter": half fixed, half random, so retries from many
         * hosts spread out but never collapse to zero wait */
        ms = ms / 2 + rnd % (ms / 2 + 1);
        for (unsigned waited = 0; waited < ms; waited += 50) {
                if (cancelled(c))
                        return -ECANCELED;
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        return cancelled(c) ? -ECANCELED : 0;
}

int ch_query(ChClient *c, const char *sql, const char *data, unsigned flags, char **ret_body, char *err,
             size_t errlen) {
        unsigned max_attempts = (flags & CH_NO_RETRY) ? 1 : c->retries + 1;
        int r = -EIO;

        for (unsigned attempt = 0; attempt < max_attempts; attempt++) {
                Buf body = { 0 };
                long status = 0;

                if (attempt > 0) {
                        log_debug("clickhouse %s: retry %u of %u after: %s", c->base, attempt, c->retries, err);
                        int b = ch_client_backoff(c, attempt - 1);
                        if (b < 0)
                                return b;
                }
                r = request_once(c, sql, data, flags, &body, &status, err, errlen);
                if (r == 0) {
                        if (ret_body)
                                *ret_body = buf_steal(&body);
                        buf_free(&body);
                        return 0;
                }
                buf_free(&body);
                if (r == -ECANCELED || r == -EINVAL)
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
