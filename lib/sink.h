/* The sink: the ClickHouse side of a run (SPEC §3, §4, §6), as an
 * interface.  Every statement salesd sends to ClickHouse during a run, and
 * the row formats they need, belong to the ClickHouse implementation in
 * sink.c; the run calls only these operations, so its decisions (which days
 * to write, with which version, what to do after an ambiguous failure, the
 * run-row backlog) are unit-tested against a fake sink.  The DDL and its
 * verification are schema.c.
 *
 * Every operation returns 0 or a negative errno and fills err with what
 * failed, naming the server and the statement (ch.h's error classes:
 * -ECONNREFUSED unreachable, -ETIMEDOUT/-ECONNRESET outcome unknown, -EIO
 * server error, -EINVAL rejected, -EPROTO a client-side problem such as TLS
 * or the URL, -ECANCELED cancelled). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "run.h"
#include "watermark.h"

typedef struct Sink Sink;

/* One row of salesd_heartbeat. */
typedef struct HeartbeatRow {
        const char *instance;
        const char *state;                 /* idle, running, standby, failing */
        usec_t ts, last_success, next_run; /* CLOCK_REALTIME usec; 0 = unknown */
} HeartbeatRow;

typedef struct SinkOps {
        /* The stored watermark ("" when there is none yet). */
        int (*read_watermark)(Sink *s, char ret[WATERMARK_STRLEN], char *err, size_t errlen);
        /* The latest stored row of each of the given days that has one (any
         * order; malloc'd array).  Any number of days: the ClickHouse sink
         * asks 1000 days per query (max_query_size). */
        int (*read_days)(Sink *s, const Day *days, size_t n, StoredDay **ret, size_t *ret_n, char *err, size_t errlen);
        /* One INSERT of rows of daily_sales_stats (apply.h keeps each to at
         * most APPLY_MONTHS_PER_INSERT months), days[i] with
         * versions[i], sent with query_id (unique per statement); never retried
         * inside (a plain MergeTree insert is not deduplicated: the caller
         * re-reads before resending). */
        int (*insert_days)(Sink *s, const DayStats *days, const uint64_t *versions, size_t n, usec_t computed_at,
                           const char *query_id, char *err, size_t errlen);
        /* Ends the statement sent with query_id if the server still runs it
         * (an attempt the client gave up on), waiting until it is gone. */
        int (*end_query)(Sink *s, const char *query_id, char *err, size_t errlen);
        int (*write_watermark)(Sink *s, const char *value, uint64_t version, char *err, size_t errlen);
        /* ret_stored[i]: whether a salesd_runs row with rows[i].run_id exists
         * (rows only ever look back as far as the oldest rows[i].started_at). */
        int (*runs_stored)(Sink *s, const RunRecord *rows, size_t n, bool *ret_stored, char *err, size_t errlen);
        /* One attempt at inserting rows into salesd_runs. */
        int (*insert_runs)(Sink *s, const RunRecord *const *rows, size_t n, const char *instance, char *err,
                           size_t errlen);
        /* One attempt at upserting the instance's heartbeat row. */
        int (*write_heartbeat)(Sink *s, const HeartbeatRow *h, char *err, size_t errlen);
        /* Waits before retry `attempt` (0-based); -ECANCELED when cancelled. */
        int (*backoff)(Sink *s, unsigned attempt);
        /* While *flag is true, operations stop early with -ECANCELED (NULL: never). */
        void (*set_cancel)(Sink *s, const atomic_bool *flag);
        void (*free)(Sink *s);
} SinkOps;

/* Implementations start with this member. */
struct Sink {
        const SinkOps *ops;
};

/* The ClickHouse sink for c (one HTTP client; one thread at a time). */
int sink_clickhouse_new(const ClickHouseConfig *c, Sink **ret, char *err, size_t errlen);

static inline int sink_read_watermark(Sink *s, char ret[WATERMARK_STRLEN], char *err, size_t errlen) {
        return s->ops->read_watermark(s, ret, err, errlen);
}
static inline int sink_read_days(Sink *s, const Day *days, size_t n, StoredDay **ret, size_t *ret_n, char *err,
                                 size_t errlen) {
        return s->ops->read_days(s, days, n, ret, ret_n, err, errlen);
}
static inline int sink_insert_days(Sink *s, const DayStats *days, const uint64_t *versions, size_t n,
                                   usec_t computed_at, const char *query_id, char *err, size_t errlen) {
        return s->ops->insert_days(s, days, versions, n, computed_at, query_id, err, errlen);
}
static inline int sink_end_query(Sink *s, const char *query_id, char *err, size_t errlen) {
        return s->ops->end_query(s, query_id, err, errlen);
}
static inline int sink_write_watermark(Sink *s, const char *value, uint64_t version, char *err, size_t errlen) {
        return s->ops->write_watermark(s, value, version, err, errlen);
}
static inline int sink_runs_stored(Sink *s, const RunRecord *rows, size_t n, bool *ret_stored, char *err,
                                   size_t errlen) {
        return s->ops->runs_stored(s, rows, n, ret_stored, err, errlen);
}
static inline int sink_insert_runs(Sink *s, const RunRecord *const *rows, size_t n, const char *instance, char *err,
                                   size_t errlen) {
        return s->ops->insert_runs(s, rows, n, instance, err, errlen);
}
static inline int sink_write_heartbeat(Sink *s, const HeartbeatRow *h, char *err, size_t errlen) {
        return s->ops->write_heartbeat(s, h, err, errlen);
}
static inline int sink_backoff(Sink *s, unsigned attempt) {
        return s->ops->backoff(s, attempt);
}
static inline void sink_set_cancel(Sink *s, const atomic_bool *flag) {
        s->ops->set_cancel(s, flag);
}
static inline void sink_free(Sink *s) {
        if (s)
                s->ops->free(s);
}
static inline void sink_freep(Sink **s) {
        sink_free(*s);
}

/* Upserts one heartbeat row on a client of its own (one attempt, no
 * retries: the next beat is the retry).  cancel may be NULL. */
int sink_heartbeat_once(const ClickHouseConfig *c, const HeartbeatRow *h, const atomic_bool *cancel, char *err,
                        size_t errlen);

/* The row formats (TabSeparated), exposed for the unit tests. */

/* One row of daily_sales_stats; computed_at as Unix seconds zero-padded to
 * 10 digits (18.16 reads a shorter number as a malformed date). */
int sink_format_day(Buf *b, const DayStats *s, usec_t computed_at, uint64_t version);

/* Parses a stored row "date orders items revenue cost profit aov version"
 * (as read_days selects it; 3.10 and 3.1 are the same value).  -EINVAL on
 * malformed input, err names the field. */
int sink_parse_day(char *line, StoredDay *ret, char *err, size_t errlen);

/* One row of salesd_runs. */
int sink_format_run(Buf *b, const RunRecord *r, const char *instance);
