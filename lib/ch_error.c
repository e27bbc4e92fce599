/* ClickHouse client, part 2 (see ch.h): what a finished exchange means.
 * Pure functions over what libcurl and the server left behind (the curl
 * code, the status, two headers, the body), so that every case is a row of a
 * unit test's table rather than a server one would have to break.
 *
 * How a server reports a query that fails after its answer started (the
 * status line, 200, is already sent):
 *   - 18.16 (and up to 24.x): the exception text as the last line,
 *     "Code: 395, e.displayText() = DB::Exception: ..." (newer servers print
 *     "Code: 395. DB::Exception: ..."), and the answer ends normally;
 *   - 25.x before 25.11: "__exception__\r\n" and the exception text; the
 *     server then closes the connection without ending the chunked answer,
 *     so libcurl reports a partial transfer;
 *   - 25.11 and later: a block framed with the answer's random tag (also sent
 *     in the X-ClickHouse-Exception-Tag header of every answer):
 *       "\r\n__exception__\r\n" TAG "\r\n" MESSAGE "\n" LENGTH " " TAG "\r\n"
 *       "__exception__\r\n"
 *     where LENGTH counts MESSAGE and its newline; the connection is then cut
 *     the same way (ClickHouse's WriteBufferFromHTTP1ServerResponse::
 *     cancelWithException());
 *   - a server that had sent progress headers before failing adds an
 *     X-ClickHouse-Exception-Code header to the 200 (current releases also
 *     send it with every error status).
 * TabSeparated data escapes carriage returns, so "__exception__\r\n" never
 * occurs in a result salesd reads. */
#include "ch.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "text.h"

#define MARKER      "__exception__\r\n"
#define MARKER_LEN  (sizeof(MARKER) - 1)
#define MAX_TAG_LEN 64
/* Exceptions sit at the end of a body: look no further back than this. */
#define EXCEPTION_WINDOW (1024u * 1024u)

#define HINT_UNREACHABLE "is the server up? check clickhouse.url"
#define HINT_TIMEOUT     "no answer within clickhouse.timeout: the request's outcome is unknown"
#define HINT_LOST        "the connection was lost after the request was sent: its outcome is unknown"
#define HINT_TLS                                                                                           \
        "a TLS handshake or certificate problem, not an outage: check clickhouse.url (https:// needs the " \
        "server's TLS port, 8443 by default) and that this host trusts the server's certificate"
#define HINT_URL                                                                                                  \
        "not an HTTP answer or an unusable address: check clickhouse.url (http:// or https://, and the server's " \
        "HTTP port, 8123 by default, not the native protocol's 9000)"
#define HINT_REDIRECT "the server redirected the request: set clickhouse.url to the final address"
#define HINT_TOO_BIG  "the answer is larger than salesd accepts"
#define HINT_CLIENT   "libcurl could not run the request"
#define HINT_AUTH     "check clickhouse.user and the password in clickhouse.password_file"
#define HINT_QUORUM                                                                                       \
        "clickhouse.insert_quorum: fewer replicas confirmed the insert than the quorum needs; bring the " \
        "replicas back, or lower clickhouse.insert_quorum"

/* libcurl's error families.  Anything not listed is -EIO: retried, as an
 * unknown cause may pass, but never called "server unavailable". */
static const struct CurlFamily {
        CURLcode code;
        int error;
        const char *hint;
} curl_families[] = {
        { CURLE_COULDNT_RESOLVE_PROXY, -ECONNREFUSED, HINT_UNREACHABLE },
        { CURLE_COULDNT_RESOLVE_HOST, -ECONNREFUSED, HINT_UNREACHABLE },
        { CURLE_COULDNT_CONNECT, -ECONNREFUSED, HINT_UNREACHABLE },
        { CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT, HINT_TIMEOUT },
        { CURLE_SEND_ERROR, -ECONNRESET, HINT_LOST },
        { CURLE_RECV_ERROR, -ECONNRESET, HINT_LOST },
        { CURLE_PARTIAL_FILE, -ECONNRESET, HINT_LOST },
        { CURLE_GOT_NOTHING, -ECONNRESET, HINT_LOST },
        { CURLE_HTTP2, -ECONNRESET, HINT_LOST },
        { CURLE_HTTP2_STREAM, -ECONNRESET, HINT_LOST },
        { CURLE_SEND_FAIL_REWIND, -ECONNRESET, HINT_LOST },
        { CURLE_SSL_CONNECT_ERROR, -EPROTO, HINT_TLS },
        { CURLE_PEER_FAILED_VERIFICATION, -EPROTO, HINT_TLS },
        { CURLE_SSL_CERTPROBLEM, -EPROTO, HINT_TLS },
        { CURLE_SSL_CIPHER, -EPROTO, HINT_TLS },
        { CURLE_SSL_CACERT_BADFILE, -EPROTO, HINT_TLS },
        { CURLE_SSL_CRL_BADFILE, -EPROTO, HINT_TLS },
        { CURLE_SSL_ISSUER_ERROR, -EPROTO, HINT_TLS },
        { CURLE_SSL_PINNEDPUBKEYNOTMATCH, -EPROTO, HINT_TLS },
        { CURLE_SSL_INVALIDCERTSTATUS, -EPROTO, HINT_TLS },
        { CURLE_SSL_CLIENTCERT, -EPROTO, HINT_TLS },
        { CURLE_SSL_ENGINE_NOTFOUND, -EPROTO, HINT_TLS },
        { CURLE_SSL_ENGINE_SETFAILED, -EPROTO, HINT_TLS },
        { CURLE_SSL_ENGINE_INITFAILED, -EPROTO, HINT_TLS },
        { CURLE_USE_SSL_FAILED, -EPROTO, HINT_TLS },
        { CURLE_URL_MALFORMAT, -EPROTO, HINT_URL },
        { CURLE_UNSUPPORTED_PROTOCOL, -EPROTO, HINT_URL },
        { CURLE_WEIRD_SERVER_REPLY, -EPROTO, HINT_URL },
        { CURLE_TOO_MANY_REDIRECTS, -EPROTO, HINT_REDIRECT },
        { CURLE_WRITE_ERROR, -EPROTO, HINT_TOO_BIG },
        { CURLE_FILESIZE_EXCEEDED, -EPROTO, HINT_TOO_BIG },
        { CURLE_FAILED_INIT, -EPROTO, HINT_CLIENT },
        { CURLE_NOT_BUILT_IN, -EPROTO, HINT_CLIENT },
        { CURLE_BAD_FUNCTION_ARGUMENT, -EPROTO, HINT_CLIENT },
        { CURLE_UNKNOWN_OPTION, -EPROTO, HINT_CLIENT },
        { CURLE_READ_ERROR, -EPROTO, HINT_CLIENT },
        { CURLE_OUT_OF_MEMORY, -ENOMEM, "out of memory" },
};

bool ch_error_retryable(int r) {
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET || r == -EIO;
}

/* The last occurrence of needle in [hay, hay + len). */
static const char *last_occurrence(const char *hay, size_t len, const char *needle, size_t n) {
        if (n > len)
                return NULL;
        for (size_t i = len - n + 1; i-- > 0;)
                if (memcmp(hay + i, needle, n) == 0)
                        return hay + i;
        return NULL;
}

static bool has_prefix(const char *s, size_t len, const char *prefix) {
        size_t n = strlen(prefix);
        return len >= n && memcmp(s, prefix, n) == 0;
}

/* A complete 25.11+ block at the very end of body, read backwards through
 * its closing line "LENGTH TAG\r\n" so the message is cut by the length the
 * server declared, not by searching the text. */
static const char *tagged_block(const char *body, size_t len, const char *tag, size_t *ret_len) {
        if (len < 2 * MARKER_LEN + 8 || memcmp(body + len - MARKER_LEN, MARKER, MARKER_LEN) != 0)
                return NULL;
        size_t end = len - MARKER_LEN; /* "LENGTH TAG\r\n" ends here */
        if (body[end - 1] != '\n' || body[end - 2] != '\r')
                return NULL;
        end -= 2;
        size_t start = end;
        while (start > 0 && body[start - 1] != '\n')
                start--;
        const char *line = body + start, *space = memchr(line, ' ', end - start);
        size_t tag_len = space ? (size_t)(body + end - space - 1) : 0;
        if (!space || tag_len == 0 || tag_len > MAX_TAG_LEN ||
            (tag && (strlen(tag) != tag_len || memcmp(space + 1, tag, tag_len) != 0)))
                return NULL;
        size_t msg_len = 0;
        for (const char *p = line; p < space; p++) {
                if (*p < '0' || *p > '9' || msg_len > len)
                        return NULL;
                msg_len = msg_len * 10 + (size_t)(*p - '0');
        }
        /* before the message: MARKER TAG "\r\n" */
        size_t head = MARKER_LEN + tag_len + 2;
        if (msg_len > start || start - msg_len < head)
                return NULL;
        const char *msg = body + start - msg_len, *open = msg - head;
        if (memcmp(open, MARKER, MARKER_LEN) != 0 || memcmp(open + MARKER_LEN, space + 1, tag_len) != 0 ||
            memcmp(msg - 2, "\r\n", 2) != 0)
                return NULL;
        *ret_len = msg_len;
        return msg;
}

/* The length of a tag line at s ("TAG\r\n": letters and digits), or 0. */
static size_t tag_line(const char *s, size_t len, const char *tag) {
        if (tag) {
                size_t n = strlen(tag);
                return n > 0 && len >= n + 2 && memcmp(s, tag, n) == 0 && memcmp(s + n, "\r\n", 2) == 0 ? n + 2 : 0;
        }
        size_t n = 0;
        while (n < len && n <= MAX_TAG_LEN &&
               ((s[n] >= '0' && s[n] <= '9') || ((s[n] | 0x20) >= 'a' && (s[n] | 0x20) <= 'z')))
                n++;
        return n > 0 && n <= MAX_TAG_LEN && len >= n + 2 && memcmp(s + n, "\r\n", 2) == 0 ? n + 2 : 0;
}

/* After the last opening marker: a 25.x message, or a 25.11+ block whose
 * length line did not check out (cut short, or a wrong length).  A block
 * whose tag is not the answer's is data. */
static const char *marked_message(const char *body, size_t len, const char *tag, size_t *ret_len) {
        const char *m = last_occurrence(body, len, MARKER, MARKER_LEN);
        if (m && m + MARKER_LEN == body + len) /* a closing marker: the opening one is earlier */
                m = last_occurrence(body, (size_t)(m - body), MARKER, MARKER_LEN);
        if (!m)
                return NULL;
        const char *msg = m + MARKER_LEN, *end = body + len;
        msg += tag_line(msg, (size_t)(end - msg), tag);
        if (!has_prefix(msg, (size_t)(end - msg), "Code:"))
                return NULL;
        const char *cr = memchr(msg, '\r', (size_t)(end - msg));
        if (cr) {
                /* the rest of a block's framing: "LENGTH TAG\r\n__exception__" */
                end = cr;
                const char *nl = memrchr(msg, '\n', (size_t)(end - msg));
                if (nl && nl + 1 < end && nl[1] >= '0' && nl[1] <= '9')
                        end = nl + 1;
        }
        *ret_len = (size_t)(end - msg);
        return msg;
}

/* 18.16's form: the last non-empty line starts with "Code: " and names an
 * Exception. */
static const char *last_line_exception(const char *body, size_t len, size_t *ret_len) {
        size_t end = len;
        while (end > 0 && body[end - 1] == '\n')
                end--;
        size_t start = end;
        while (start > 0 && body[start - 1] != '\n')
                start--;
        const char *line = body + start;
        if (end - start > 6 && has_prefix(line, end - start, "Code: ") && memmem(line, end - start, "Exception", 9)) {
                *ret_len = end - start;
                return line;
        }
        return NULL;
}

const char *ch_find_exception(const char *body, size_t len, const char *tag, size_t *ret_len) {
        const char *found;
        if (!body || len == 0)
                return NULL;
        if (len > EXCEPTION_WINDOW) {
                body += len - EXCEPTION_WINDOW;
                len = EXCEPTION_WINDOW;
        }
        found = tagged_block(body, len, tag, ret_len);
        if (!found)
                found = marked_message(body, len, tag, ret_len);
        if (!found)
                found = last_line_exception(body, len, ret_len);
        return found;
}

/* Server text (not NUL-terminated, maybe huge) as one line in buf. */
static const char *server_text(const char *s, size_t n, char *buf, size_t len) {
        char raw[1024];
        size_t k = MIN(n, sizeof(raw) - 1);
        if (k)
                memcpy(raw, s, k);
        raw[k] = '\0';
        return text_one_line(k ? raw : "(empty response)", buf, len);
}

static bool has_exception_code(const ChExchange *x) {
        return x->exception_code && *x->exception_code && strcmp(x->exception_code, "0") != 0;
}

static int classify_curl(const ChExchange *x, char *msg, size_t msglen) {
        const char *what =
                x->curl_detail && *x->curl_detail ? x->curl_detail : curl_easy_strerror((CURLcode)x->curl_code);
        for (size_t i = 0; i < ELEMENTSOF(curl_families); i++)
                if ((int)curl_families[i].code == x->curl_code) {
                        snprintf(msg, msglen, "%s (%s)", what, curl_families[i].hint);
                        return curl_families[i].error;
                }
        snprintf(msg, msglen, "%s (libcurl error %d)", what, x->curl_code);
        return -EIO;
}

/* The class of an answer that is an error: by its status (a 2xx here
 * carries an exception). */
static int status_error(long status) {
        if (status >= 200 && status < 300)
                return -EIO;
        if (status >= 300 && status < 400)
                return -EPROTO; /* salesd follows no redirects */
        if (status == 408 || status == 429)
                return -EIO; /* timed out or busy: worth another try */
        if (status >= 400 && status < 500)
                return -EINVAL;
        if (status == 501 || status == 505)
                return -EINVAL; /* not implemented, HTTP version: the same again fails again */
        return -EIO;
}

static int classify_answer(const ChExchange *x, const char *exc, size_t exc_len, char *msg, size_t msglen) {
        bool code = has_exception_code(x), ok = x->http_status >= 200 && x->http_status < 300;
        const char *hint = "";
        char text[512];

        if (ok && !exc && !code)
                return 0;
        if (exc)
                server_text(exc, exc_len, text, sizeof(text));
        else if (ok)
                snprintf(text, sizeof(text), "the answer ended without the exception's text");
        else
                server_text(x->body, x->body ? x->body_len : 0, text, sizeof(text));
        int r = status_error(x->http_status);
        if (x->http_status == 401 || x->http_status == 403 || strstr(text, "Code: 516"))
                hint = " (" HINT_AUTH ")";
        else if (strstr(text, "Code: 285") || strstr(text, "Code: 286") || strstr(text, "Code: 319"))
                hint = " (" HINT_QUORUM ")";
        else if (r == -EPROTO)
                hint = " (" HINT_REDIRECT ")";
        if (code && ok)
                snprintf(msg, msglen, "HTTP %ld with exception code %.16s: %s%s", x->http_status, x->exception_code,
                         text, hint);
        else
                snprintf(msg, msglen, "HTTP %ld: %s%s", x->http_status, text, hint);
        return r;
}

int ch_classify(const ChExchange *x, char *msg, size_t msglen) {
        const char *tag = x->exception_tag && *x->exception_tag ? x->exception_tag : NULL;
        size_t exc_len = 0;
        const char *exc = ch_find_exception(x->body, x->body_len, tag, &exc_len);

        msg[0] = '\0';
        if (x->curl_code == CURLE_ABORTED_BY_CALLBACK) {
                snprintf(msg, msglen, "cancelled");
                return -ECANCELED;
        }
        /* A server that fails mid-stream writes the exception, then cuts the
         * connection: the exception is the news, not the cut. */
        if (x->curl_code != CURLE_OK && !exc && !has_exception_code(x) && x->http_status < 300)
                return classify_curl(x, msg, msglen);
        return classify_answer(x, exc, exc_len, msg, msglen);
}

int ch_exception_code(const ChExchange *x) {
        const char *tag = x->exception_tag && *x->exception_tag ? x->exception_tag : NULL;
        uint64_t code = 0;
        size_t len = 0;

        if (has_exception_code(x) && text_parse_u64(x->exception_code, &code) == 0 && code <= INT_MAX)
                return (int)code;
        const char *exc = ch_find_exception(x->body, x->body_len, tag, &len);
        if (!exc && x->body && x->http_status >= 300) {
                /* an error status: the body is the exception text */
                exc = x->body;
                len = MIN(x->body_len, 64u);
        }
        if (!exc || !has_prefix(exc, len, "Code: "))
                return 0;
        for (size_t i = 6; i < len && exc[i] >= '0' && exc[i] <= '9' && code < 1000000; i++)
                code = code * 10 + (uint64_t)(exc[i] - '0');
        return (int)code;
}

/* Server exceptions that say this replica cannot serve now; another may. */
#define CODE_NO_ZOOKEEPER       225
#define CODE_TABLE_IS_READ_ONLY 242
#define CODE_KEEPER_EXCEPTION   999

bool ch_error_failover(int r, int code) {
        if (r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET)
                return true;
        return r == -EIO && (code == 0 || code == CODE_NO_ZOOKEEPER || code == CODE_TABLE_IS_READ_ONLY ||
                             code == CODE_KEEPER_EXCEPTION);
}

bool ch_error_refused(int r, int code) {
        return r == -ECONNREFUSED || (r == -EIO && code == CODE_TABLE_IS_READ_ONLY);
}
