/* The Postgres source (SPEC §1, §4): one connection per run, the advisory
 * lock, the late-commit guard, and the run's REPEATABLE READ, READ ONLY
 * snapshot in which the affected days are found and aggregated.  Every
 * aggregate is computed by Postgres over exact numerics, shaped to be driven
 * by the orders.order_date index, each day's order_id range and
 * order_items(order_id), so a run costs what changed, not the size of the
 * history.
 *
 * With postgres.conninfo pointing at a hot standby (SPEC §9) a PgSource
 * also connects to postgres.primary_conninfo: the lock, the guard and the
 * WAL insert position are read there, the snapshot on the standby once it
 * has replayed that far (pg_source_catch_up()).
 *
 * Errors name the server (host, port, database) and the query; passwords
 * never appear.  Connection failures return -ECONNREFUSED so callers can map
 * them to "server unavailable" (exit 69). */
#pragma once

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "day.h"
#include "metrics.h"
#include "watermark.h"

typedef struct PgSource PgSource;

/* The libpq keywords of every Postgres connection salesd opens: the
 * configured conninfo (expanded in place, so its own keepalive or timeout
 * keywords win over the ones set here), the application name, the password
 * and the network bounds of SPEC §4 (connect_timeout, TCP keepalives,
 * tcp_user_timeout).  Owns copies of every string, so it may outlive c and
 * travel to another thread.  keys/values end with NULL, for
 * PQconnectdbParams(keys, values, 1) and PQconnectStartParams(). */
#define PG_CONN_MAX_PARAMS 10
typedef struct PgConnParams {
        const char *keys[PG_CONN_MAX_PARAMS + 1];
        const char *values[PG_CONN_MAX_PARAMS + 1];
        char *conninfo;
        char *password;
        char numbers[5][24];
} PgConnParams;

int pg_conn_params_init(PgConnParams *p, const PostgresConfig *c, const char *conninfo, const char *application_name);
void pg_conn_params_done(PgConnParams *p);

/* pg_source_open()'s answer when postgres.conninfo is a hot standby
 * (pg_is_in_recovery()) and postgres.primary_conninfo is empty or names a
 * standby too: a configuration error (exit 78). */
#define PG_ERR_NEEDS_PRIMARY (-EDESTADDRREQ)

/* Connects to postgres.conninfo and, when that is a hot standby, to
 * postgres.primary_conninfo (PG_ERR_NEEDS_PRIMARY without it). */
int pg_source_open(const Config *c, PgSource **ret, char *err, size_t errlen);
void pg_source_free(PgSource *s);

/* Whether the source is a standby read through its primary. */
bool pg_source_is_standby(const PgSource *s);
/* Whether postgres.primary_conninfo is set but postgres.conninfo is not a
 * standby (for instance promoted): then that server is used alone, as
 * without a standby, and the caller warns. */
bool pg_source_primary_ignored(const PgSource *s);

/* Asks the server to cancel the statement in progress; callable from any
 * thread while another thread uses s (not after pg_source_free()).  Never
 * blocks: the cancel request needs a TCP connection of its own, which is
 * made on a short-lived thread of its own (a vanished server would
 * otherwise hold the caller for minutes). */
void pg_source_cancel(PgSource *s);

/* Lock and guard are read on the primary when the source is a standby. */

/* pg_try_advisory_lock(key): never waits. */
int pg_source_try_lock(PgSource *s, int64_t key, bool *ret_locked, char *err, size_t errlen);
int pg_source_unlock(PgSource *s, int64_t key, char *err, size_t errlen);

/* Whether this connection still holds the advisory lock key (SPEC §4 step
 * 4: checked right before every ClickHouse write).  -ENOLCK ("lock lost",
 * err says why) when it does not or the connection is gone. */
int pg_source_check_lock(PgSource *s, int64_t key, char *err, size_t errlen);

/* The late-commit guard (SPEC §4 step 2): the start of the oldest open
 * transaction of any other client backend or prepared transaction, or this
 * statement's start when none is open (never ""), and whether this role may
 * see other sessions' transactions (pg_read_all_stats); read right before
 * the snapshot. */
int pg_source_read_guard(PgSource *s, char ret_guard[WATERMARK_STRLEN], bool *ret_can_see_all, char *err,
                         size_t errlen);

/* SPEC §9, between the guard and pg_source_begin(): with a standby, reads
 * pg_current_wal_insert_lsn() on the primary and waits until the standby's
 * pg_last_wal_replay_lsn() has reached it, so the snapshot holds every
 * commit the guard did not see in flight.  At most
 * postgres.max_replica_lag: past it -ETIMEDOUT (err names both servers,
 * the lag and whether replay is paused); -ECANCELED soon after
 * pg_source_cancel() or once *cancel (may be NULL) is set.  Does nothing on
 * one server.  *ret_waited: how long it took. */
int pg_source_catch_up(PgSource *s, const atomic_bool *cancel, usec_t *ret_waited, char *err, size_t errlen);

/* BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off. */
int pg_source_begin(PgSource *s, char *err, size_t errlen);
int pg_source_commit(PgSource *s, char *err, size_t errlen);
void pg_source_rollback(PgSource *s);

/* The server's clock_timestamp() in microseconds since the epoch. */
int pg_source_clock_usec(PgSource *s, uint64_t *ret, char *err, size_t errlen);

/* Days to recompute (sorted, unique, malloc'd): today and reconcile_days
 * before it (in c->timezone, by the server's clock), plus the days of
 * orders/items changed after `since` (watermark − overlap, see
 * watermark_since()) and of tombstones written after it; every day with
 * source rows when since is NULL (no watermark yet).  Only storable days
 * (day_storable()): an order of another status on another day (NULL,
 * infinity, BC, 0001-01-01) has nothing to write.  When faults is not
 * NULL, a completed order among those changed (every one when since is
 * NULL) whose order_date is NULL or falls outside the storable days is
 * described there ("; "-separated: table, order_id, value), since its
 * metrics belong to no day that can be written.  Also the greatest
 * updated_at/changed_at in the snapshot ("" when no rows), never past the
 * server's clock. */
int pg_source_affected_days(PgSource *s, const char *since, Day **ret_days, size_t *ret_n,
                            char ret_max_changed[WATERMARK_STRLEN], Buf *faults, char *err, size_t errlen);

/* Metrics of the given days (sorted, storable), profit and AOV derived:
 * *ret_n DayStats in the order given, without the days that cannot be
 * written, which are described in faults instead ("; "-separated, the
 * first few in full): a NULL quantity, price or cost_price in an item of a
 * completed order (sum() would skip it; the order_id and column are
 * named), a negative total quantity, a value that is not an exact
 * decimal of cents. */
int pg_source_aggregate(PgSource *s, const Day *days, size_t n, DayStats **ret, size_t *ret_n, Buf *faults, char *err,
                        size_t errlen);
