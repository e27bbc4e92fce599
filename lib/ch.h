/* The ClickHouse client: SQL over ClickHouse's HTTP interface with libcurl,
 * TabSeparated in and out.  Works the same against 18.16 and current
 * releases: no per-version code.  A response that is HTTP 200 but carries an
 * exception at the end of the body (the server already streamed part of it)
 * is an error: reads ask for wait_end_of_query=1 and every body is checked.
 *
 * Errors: -ECONNREFUSED (could not connect: "server unavailable"),
 * -ETIMEDOUT / -ECONNRESET (sent, outcome unknown), -EIO (the server answered
 * 5xx or an exception; err carries its text), -EINVAL (the server rejected
 * the request with 4xx), -ECANCELED (the cancel flag was set).
 * Messages name the server URL (without credentials) and the statement. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct ChClient ChClient;

int ch_client_new(const ClickHouseConfig *c, ChClient **ret, char *err, size_t errlen);
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
} ChFlags;

/* Executes sql; data (may be NULL) is sent as the body after it (INSERT ...
 * FORMAT TabSeparated).  Retries connection errors and 5xx answers with
 * exponential backoff and jitter up to `retries` times unless CH_NO_RETRY;
 * never retries 4xx.  On success *ret_body (if ret_body) is the response
 * body, malloc'd. */
int ch_query(ChClient *c, const char *sql, const char *data, unsigned flags, char **ret_body, char *err, size_t errlen);

/* The server URL, for messages. */
const char *ch_client_url(const ChClient *c);

/* Sleeps for attempt's backoff (exponential, capped, jittered); returns
 * -ECANCELED if the cancel flag was raised meanwhile. */
int ch_client_backoff(ChClient *c, unsigned attempt);

/* Quotes s as a ClickHouse string literal ('...' with backslash escapes). */
char *ch_quote_string(const char *s);
/* Quotes s as a ClickHouse identifier (`...`). */
char *ch_quote_identifier(const char *s);
