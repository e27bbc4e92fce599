/* The ClickHouse client: SQL over ClickHouse's HTTP interface with libcurl,
 * TabSeparated in and out.  Works the same against 18.16 and current
 * releases: no per-version code.  A response that is HTTP 200 but carries an
 * exception (the server had already started streaming: a trailing
 * "Code: NNN" line from 18.16, an __exception__ block from 25.x, an
 * X-ClickHouse-Exception-Code header) is an error: reads ask for
 * wait_end_of_query=1 and every answer is checked (ch_classify()).
 *
 * Errors, one errno per class (ch_classify() decides; ch_error_retryable()
 * says which ones ch_query() retries):
 *   -ECONNREFUSED  could not connect or resolve: nothing was sent
 *                  ("server unavailable"; retried)
 *   -ETIMEDOUT     timed out: maybe sent, outcome unknown (retried)
 *   -ECONNRESET    connection lost after sending: outcome unknown (retried)
 *   -EIO           the server failed the request in a way a retry may fix:
 *                  5xx (not 501/505), 408, 429, an exception after a 200,
 *                  or a transfer error of no known family (retried)
 *   -EINVAL        the server rejected the request (other 4xx, 501, 505):
 *                  the same request fails again (never retried)
 *   -EPROTO        a client-side or configuration problem a retry cannot
 *                  fix: TLS handshake or certificate, malformed URL,
 *                  unsupported protocol or a non-HTTP port, a redirect,
 *                  a response larger than salesd accepts (never retried;
 *                  not "server unavailable": the message names the cause
 *                  and what to check)
 *   -ENOMEM        out of memory (never retried)
 *   -ECANCELED     the cancel flag was set.
 * Messages name the server URL (without credentials) and the statement. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct ChClient ChClient;

/* A client of every URL of c->url, in failover order (SPEC §9): requests go
 * to the current endpoint (process-wide; at first the first URL).  A request
 * that fails in a way ch_error_failover() names moves the current endpoint
 * to the next URL (wrapping); when the endpoint refused before doing
 * anything (ch_error_refused()), the same request goes on to the next at once,
 * each URL at most once per attempt.  Other failures follow the retry rules
 * below, on the new current endpoint. */
int ch_client_new(const ClickHouseConfig *c, ChClient **ret, char *err, size_t errlen);
/* A client of c->url[index] alone, never failing over (verifying each
 * replica).  -EINVAL when there is no such URL. */
int ch_client_new_pinned(const ClickHouseConfig *c, size_t index, ChClient **ret, char *err, size_t errlen);
void ch_client_free(ChClient *c);
static inline void ch_client_freep(ChClient **c) {
        ch_client_free(*c);
}

/* The query_id sent with the following requests (NULL or "": none, the
 * server chooses); at most 63 characters of [A-Za-z0-9-].  An attempt that
 * timed out on the client can then be found in system.processes. */
int ch_client_set_query_id(ChClient *c, const char *id);

/* While *flag is true, requests and backoff sleeps stop early (-ECANCELED). */
void ch_client_set_cancel_flag(ChClient *c, const atomic_bool *flag);

typedef enum ChFlags {
        CH_NO_DATABASE = 1 << 0, /* do not pass database= (CREATE DATABASE) */
        CH_NO_RETRY = 1 << 1,    /* not idempotent: the caller handles retries */
        CH_DDL = 1 << 2,         /* ON CLUSTER DDL: its wait for the replicas ends before clickhouse.timeout */
} ChFlags;

/* Executes sql; data (may be NULL) is sent as the body after it (INSERT ...
 * FORMAT TabSeparated).  Retries the retryable classes above with
 * exponential backoff and jitter up to `retries` times unless CH_NO_RETRY
 * (an answer with Retry-After, as 429 and 503 may carry, waits at least
 * that long, up to the backoff cap); never retries the others.  On success *ret_body (if ret_body) is the
 * response body, malloc'd. */
int ch_query(ChClient *c, const char *sql, const char *data, unsigned flags, char **ret_body, char *err, size_t errlen);

/* The current endpoint's URL, for messages. */
const char *ch_client_url(const ChClient *c);

/* The process's current endpoint among c->url (for /healthz, /metrics):
 * the URL the last successful request went to, or failed over to. */
const char *ch_endpoint_current(const ClickHouseConfig *c);
/* Back to the first URL (a reload that changed clickhouse.url, tests). */
void ch_endpoint_reset(void);
/* The endpoint after current among n: list order, wrapping. */
size_t ch_endpoint_next(size_t current, size_t n);

/* Sleeps for attempt's backoff (exponential, capped, jittered); returns
 * -ECANCELED if the cancel flag was raised meanwhile. */
int ch_client_backoff(ChClient *c, unsigned attempt);

/* What a finished exchange left behind, for ch_classify(). */
typedef struct ChExchange {
        int curl_code;              /* the transfer's CURLcode, 0 (CURLE_OK) when it completed */
        const char *curl_detail;    /* libcurl's error buffer, or NULL/"" for its generic text */
        long http_status;           /* 0 when no status line arrived */
        const char *exception_code; /* X-ClickHouse-Exception-Code, or NULL */
        const char *exception_tag;  /* X-ClickHouse-Exception-Tag (25.11+), or NULL */
        const char *body;           /* what arrived of the body, or NULL */
        size_t body_len;
} ChExchange;

/* Classifies an exchange: 0 when it succeeded, else one of the errors
 * above, with msg set to the cause (the server's exception text, or
 * libcurl's) and a hint for the operator where one helps.  Pure: no I/O,
 * no logging.  An exception found in the body outranks a transfer error
 * (a server that fails mid-stream cuts the connection after writing it). */
int ch_classify(const ChExchange *x, char *msg, size_t msglen);

/* Finds a server exception at the end of body: a 25.11+ block (framed by
 * "__exception__" lines with the answer's tag, NULL when unknown), a 25.x
 * marker followed by the message, or an 18.16 "Code: NNN ... Exception" last
 * line.  Returns a pointer into body and sets *ret_len to the message's
 * length (without the framing), or returns NULL. */
const char *ch_find_exception(const char *body, size_t len, const char *tag, size_t *ret_len);

/* Whether ch_query() retries an error of this class. */
bool ch_error_retryable(int r);

/* The server's exception code of a failed exchange (the
 * X-ClickHouse-Exception-Code header, else "Code: NNN" of the exception
 * text), or 0. */
int ch_exception_code(const ChExchange *x);

/* Whether an error (class r, server exception code) says this endpoint
 * cannot serve now, so requests move to the next URL: unreachable, timed
 * out, connection lost, a replica that is read-only or lost its ZooKeeper
 * session (242, 225, 999), a gateway's 502/503/504 (code 0 with -EIO).  A
 * query's own fault (-EINVAL, -EPROTO) or a quorum refusal (every replica
 * would answer the same) is not. */
bool ch_error_failover(int r, int code);

/* Whether the endpoint refused before doing anything (unreachable, or a
 * read-only replica), so the same request may go to the next at once. */
bool ch_error_refused(int r, int code);

/* Quotes s as a ClickHouse string literal ('...' with backslash escapes). */
char *ch_quote_string(const char *s);
/* Quotes s as a ClickHouse identifier (`...`). */
char *ch_quote_identifier(const char *s);
