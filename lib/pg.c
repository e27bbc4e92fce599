/* See pg.h.  Blocking libpq calls: a run executes on the daemon's worker
 * thread (see docs/design.md), so blocking here never stalls the event loop;
 * statement_timeout bounds every statement, TCP keepalives and
 * tcp_user_timeout a silent network, and pg_source_cancel() (on a thread of
 * its own) lets the daemon stop one.
 *
 * A PgSource has one connection, or two when postgres.conninfo is a hot
 * standby (SPEC §9): `source` takes the snapshot, `primary` answers the
 * lock, the guard and the WAL insert position (control()). */
#include "pg.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "detached.h"
#include "log.h"
#include "lsn.h"
#include "macro.h"
#include "text.h"

#define TS_FORMAT "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"

DEFINE_POINTER_CLEANUP_FUNC(PGresult, PQclear)

/* A cancel key shared by its PgSource and the threads that send it: the
 * last holder frees it, so a request still in flight survives the run. */
typedef struct CancelKey {
        PGcancel *cancel;
        atomic_uint refs;
        char where[256];
} CancelKey;

/* One server's connection. */
typedef struct PgConn {
        PGconn *conn;
        CancelKey *cancel;
        char where[256]; /* "host H port P database D", for messages */
} PgConn;

struct PgSource {
        PgConn source;  /* postgres.conninfo: the snapshot */
        PgConn primary; /* postgres.primary_conninfo while source is a standby; conn NULL otherwise */
        bool primary_ignored;
        atomic_bool cancelled;
        const Config *config;
        char *orders; /* quoted identifiers */
        char *items;
        char *tombstones; /* NULL when not configured */
};

/* The server of the lock, the guard and the WAL position. */
static PgConn *control(PgSource *s) {
        return s->primary.conn ? &s->primary : &s->source;
}

static void cancel_key_unref(CancelKey *k) {
        if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
                return;
        PQfreeCancel(k->cancel);
        free(k);
}

static void *cancel_thread(void *arg) {
        CancelKey *k = arg;
        char buf[256];
        if (!PQcancel(k->cancel, buf, sizeof(buf)))
                log_debug("postgres %s: cancel request failed: %s", k->where, buf);
        cancel_key_unref(k);
        return NULL;
}

int pg_conn_params_init(PgConnParams *p, const PostgresConfig *c, const char *conninfo, const char *application_name) {
        /* seconds for libpq's keepalives and connect_timeout, ms for tcp_user_timeout */
        const struct {
                const char *key;
                uint64_t value;
        } numbers[ELEMENTSOF(p->numbers)] = {
                { "connect_timeout", c->connect_timeout / USEC_PER_SEC },
                { "keepalives_idle", c->keepalives_idle / USEC_PER_SEC },
                { "keepalives_interval", c->keepalives_interval / USEC_PER_SEC },
                { "keepalives_count", c->keepalives_count },
                { "tcp_user_timeout", c->tcp_user_timeout / USEC_PER_MSEC },
        };
        size_t k = 0;

        *p = (PgConnParams){ .conninfo = strdup(conninfo), .password = c->password ? strdup(c->password) : NULL };
        if (!p->conninfo || (c->password && !p->password)) {
                pg_conn_params_done(p);
                return -ENOMEM;
        }
        /* before dbname: the conninfo, expanded in its place, overrides these */
        p->keys[k] = "keepalives", p->values[k++] = "1";
        for (size_t i = 0; i < ELEMENTSOF(numbers); i++) {
                snprintf(p->numbers[i], sizeof(p->numbers[i]), "%" PRIu64, numbers[i].value);
                p->keys[k] = numbers[i].key, p->values[k++] = p->numbers[i];
        }
        p->keys[k] = "dbname", p->values[k++] = p->conninfo;
        p->keys[k] = "application_name", p->values[k++] = application_name;
        if (p->password)
                p->keys[k] = "password", p->values[k++] = p->password;
        p->keys[k] = NULL, p->values[k] = NULL;
        return 0;
}

void pg_conn_params_done(PgConnParams *p) {
        free(p->conninfo);
        if (p->password)
                explicit_bzero(p->password, strlen(p->password));
        free(p->password);
        *p = (PgConnParams){ 0 };
}

static char *quote_table(PGconn *conn, const char *name) {
        Buf b = { 0 };
        const char *dot = strchr(name, '.');
        char *part;

        if (dot) {
                part = PQescapeIdentifier(conn, name, (size_t)(dot - name));
                if (!part)
                        return NULL;
                buf_puts(&b, part);
                buf_puts(&b, ".");
                PQfreemem(part);
                name = dot + 1;
        }
        part = PQescapeIdentifier(conn, name, strlen(name));
        if (!part) {
                buf_free(&b);
                return NULL;
        }
        buf_puts(&b, part);
        PQfreemem(part);
        return buf_steal(&b);
}

static int query_failed(PgConn *c, const char *what, PGresult *res, char *err, size_t errlen) {
        char msg[768];
        const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        int r = PQstatus(c->conn) == CONNECTION_BAD ? -ECONNREFUSED : -EIO;

        if (state && strcmp(state, "57014") == 0)
                r = -ECANCELED; /* query_canceled: our cancel or statement_timeout */
        snprintf(err, errlen, "postgres %s: query '%s' failed: %s%s", c->where, what,
                 text_one_line(text, msg, sizeof(msg)),
                 r == -ECONNREFUSED ? " (connection lost; the next run retries)" : "");
        PQclear(res);
        return r;
}

/* Runs sql with text parameters; on success *ret holds a tuples result. */
static int exec_params(PgConn *c, const char *what, const char *sql, int n, const char *const *params, PGresult **ret,
                       char *err, size_t errlen) {
        log_debug("postgres %s: %s", c->where, what);
        PGresult *res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
                return query_failed(c, what, res, err, errlen);
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

/* The session's side of the network bounds: statement_timeout, and the
 * server's own keepalives, user timeout and client check, so that the
 * server drops the session of a vanished salesd (and with it the advisory
 * lock) as fast as salesd gives up on the server. */
static int set_session_bounds(PgConn *conn, const PostgresConfig *c, char *err, size_t errlen) {
        static const struct {
                const char *guc;
                int param; /* $n */
                int since; /* server version */
        } settings[] = {
                { "statement_timeout", 1, 0 },       { "tcp_keepalives_idle", 2, 0 },
                { "tcp_keepalives_interval", 3, 0 }, { "tcp_keepalives_count", 4, 0 },
                { "tcp_user_timeout", 5, 120000 },   { "client_connection_check_interval", 3, 140000 },
        };
        _cleanup_(buf_free) Buf sql = { 0 };
        char v[5][32];
        int r = 0, n = 0; /* every parameter passed must be used */

        snprintf(v[0], sizeof(v[0]), "%" PRIu64 "ms", c->statement_timeout / USEC_PER_MSEC);
        snprintf(v[1], sizeof(v[1]), "%" PRIu64 "s", c->keepalives_idle / USEC_PER_SEC);
        snprintf(v[2], sizeof(v[2]), "%" PRIu64 "s", c->keepalives_interval / USEC_PER_SEC);
        snprintf(v[3], sizeof(v[3]), "%u", c->keepalives_count);
        snprintf(v[4], sizeof(v[4]), "%" PRIu64 "ms", c->tcp_user_timeout / USEC_PER_MSEC);
        const char *params[] = { v[0], v[1], v[2], v[3], v[4] };
        for (size_t i = 0; i < ELEMENTSOF(settings) && r == 0; i++)
                if (PQserverVersion(conn->conn) >= settings[i].since) {
                        r = buf_printf(&sql, "%sset_config('%s', $%d, false)", i ? ", " : "SELECT ", settings[i].guc,
                                       settings[i].param);
                        n = settings[i].param > n ? settings[i].param : n;
                }
        if (r < 0)
                return r;
        assert((size_t)n <= ELEMENTSOF(params));
        return exec_params(conn, "set session timeouts", sql.data, n, params, NULL, err, errlen);
}

/* Connects c to conninfo (the value of config key `key`, named in errors)
 * and sets the session's bounds. */
static int connect_server(PgConn *c, const PostgresConfig *pc, const char *conninfo, const char *key, char *err,
                          size_t errlen) {
        PgConnParams p;
        char msg[768];
        int r = pg_conn_params_init(&p, pc, conninfo, "salesd");
        if (r < 0)
                return r;
        c->conn = PQconnectdbParams(p.keys, p.values, 1);
        pg_conn_params_done(&p);
        if (!c->conn)
                return -ENOMEM;
        const char *host = PQhost(c->conn), *port = PQport(c->conn), *db = PQdb(c->conn);
        snprintf(c->where, sizeof(c->where), "host '%s' port %s database '%s'", host && *host ? host : "(default)",
                 port && *port ? port : "5432", db ? db : "");
        if (PQstatus(c->conn) != CONNECTION_OK) {
                snprintf(err, errlen,
                         "cannot connect to postgres %s: %s (check %s, that the server is up, and the "
                         "password in postgres.password_file, PGPASSWORD or ~/.pgpass)",
                         c->where, text_one_line(PQerrorMessage(c->conn), msg, sizeof(msg)), key);
                return -ECONNREFUSED;
        }
        c->cancel = calloc(1, sizeof(*c->cancel));
        if (!c->cancel)
                return -ENOMEM;
        atomic_init(&c->cancel->refs, 1);
        snprintf(c->cancel->where, sizeof(c->cancel->where), "%s", c->where);
        c->cancel->cancel = PQgetCancel(c->conn);
        if (!c->cancel->cancel)
                return -ENOMEM;
        return set_session_bounds(c, pc, err, errlen);
}

static void conn_done(PgConn *c) {
        cancel_key_unref(c->cancel);
        if (c->conn)
                PQfinish(c->conn);
        *c = (PgConn){ 0 };
}

/* Whether c is a standby.  Servers since 14 report in_hot_standby when the
 * connection starts (and again on promotion): no round trip on a run's
 * path; older ones are asked. */
static int in_recovery(PgConn *c, bool *ret, char *err, size_t errlen) {
        const char *reported = PQparameterStatus(c->conn, "in_hot_standby");
        if (reported) {
                *ret = strcmp(reported, "on") == 0;
                return 0;
        }
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = exec_params(c, "pg_is_in_recovery", "SELECT pg_is_in_recovery()", 0, NULL, &res, err, errlen);
        if (r < 0)
                return r;
        *ret = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        return 0;
}

/* SPEC §9: a standby source needs its primary, and the primary must not be
 * a standby itself (its WAL position and guard would mean nothing). */
static int connect_primary(PgSource *s, char *err, size_t errlen) {
        const PostgresConfig *c = &s->config->postgres;
        bool standby = false;
        if (!*c->primary_conninfo) {
                snprintf(err, errlen,
                         "postgres %s is a hot standby (pg_is_in_recovery() is true), and a standby cannot hold "
                         "the lock or show the transactions in flight: set postgres.primary_conninfo to its "
                         "primary, or point postgres.conninfo at the primary",
                         s->source.where);
                return PG_ERR_NEEDS_PRIMARY;
        }
        int r = connect_server(&s->primary, c, c->primary_conninfo, "postgres.primary_conninfo", err, errlen);
        if (r == 0)
                r = in_recovery(&s->primary, &standby, err, errlen);
        if (r == 0 && standby) {
                snprintf(err, errlen,
                         "postgres %s (postgres.primary_conninfo) is a standby too: point postgres.primary_conninfo "
                         "at the primary that accepts writes",
                         s->primary.where);
                r = PG_ERR_NEEDS_PRIMARY;
        }
        return r;
}

static int pg_source_open_steps(PgSource *s, char *err, size_t errlen) {
        const Config *c = s->config;
        bool standby = false;
        int r = connect_server(&s->source, &c->postgres, c->postgres.conninfo, "postgres.conninfo", err, errlen);
        if (r < 0)
                return r;
        s->orders = quote_table(s->source.conn, c->postgres.orders_table);
        s->items = quote_table(s->source.conn, c->postgres.order_items_table);
        if (c->postgres.tombstones_table && *c->postgres.tombstones_table)
                s->tombstones = quote_table(s->source.conn, c->postgres.tombstones_table);
        if (!s->orders || !s->items ||
            (c->postgres.tombstones_table && *c->postgres.tombstones_table && !s->tombstones))
                return -ENOMEM;
        r = in_recovery(&s->source, &standby, err, errlen);
        if (r < 0)
                return r;
        if (standby)
                return connect_primary(s, err, errlen);
        /* After a promotion (or with both keys naming one server) the source
         * is the primary: lock, guard and snapshot on one server, as without
         * a standby.  A guard read elsewhere would not cover its commits. */
        s->primary_ignored = *c->postgres.primary_conninfo != '\0';
        if (s->primary_ignored)
                log_debug("postgres %s is not a standby; postgres.primary_conninfo is not used", s->source.where);
        return 0;
}

int pg_source_open(const Config *c, PgSource **ret, char *err, size_t errlen) {
        PgSource *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = c;
        atomic_init(&s->cancelled, false);
        int r = pg_source_open_steps(s, err, errlen);
        if (r < 0) {
                pg_source_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void pg_source_free(PgSource *s) {
        if (!s)
                return;
        conn_done(&s->source);
        conn_done(&s->primary);
        free(s->orders);
        free(s->items);
        free(s->tombstones);
        free(s);
}

bool pg_source_is_standby(const PgSource *s) {
        return s->primary.conn != NULL;
}

bool pg_source_primary_ignored(const PgSource *s) {
        return s->primary_ignored;
}

static void cancel_conn(PgConn *c) {
        CancelKey *k = c->cancel;

        if (!k)
                return;
        atomic_fetch_add(&k->refs, 1);
        int r = detached_start(cancel_thread, k);
        if (r < 0) {
                log_debug("postgres %s: cannot start the cancel thread: %s", c->where, strerror(-r));
                cancel_key_unref(k);
        }
}

void pg_source_cancel(PgSource *s) {
        atomic_store(&s->cancelled, true); /* ends pg_source_catch_up() between its polls */
        cancel_conn(&s->source);
        cancel_conn(&s->primary);
}

int pg_source_try_lock(PgSource *s, int64_t key, bool *ret_locked, char *err, size_t errlen) {
        char k[32];
        PGresult *res;
        snprintf(k, sizeof(k), "%" PRId64, key);
        const char *params[] = { k };
        int r = exec_params(control(s), "pg_try_advisory_lock", "SELECT pg_try_advisory_lock($1::bigint)", 1, params,
                            &res, err, errlen);
        if (r < 0)
                return r;
        *ret_locked = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        return 0;
}

int pg_source_check_lock(PgSource *s, int64_t key, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        char k[32], inner[512] = "";
        snprintf(k, sizeof(k), "%" PRId64, key);
        const char *params[] = { k };
        /* A bigint advisory key is split into classid (high half) and objid (low half). */
        int r = exec_params(control(s), "check advisory lock",
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                            " AND granted AND objsubid = 1 AND classid = (($1::bigint >> 32) & 4294967295)::oid"
                            " AND objid = ($1::bigint & 4294967295)::oid",
                            1, params, &res, inner, sizeof(inner));
        if (r == 0 && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                return 0;
        snprintf(err, errlen,
                 "lock lost: the postgres session that held advisory lock %" PRId64
                 " (postgres.lock_key) is gone%s%s; nothing more is written by this run, the next run redoes its days",
                 key, *inner ? ": " : "", inner);
        return -ENOLCK;
}

int pg_source_unlock(PgSource *s, int64_t key, char *err, size_t errlen) {
        char k[32];
        snprintf(k, sizeof(k), "%" PRId64, key);
        const char *params[] = { k };
        return exec_params(control(s), "pg_advisory_unlock", "SELECT pg_advisory_unlock($1::bigint)", 1, params, NULL,
                           err, errlen);
}

int pg_source_read_guard(PgSource *s, char ret_guard[WATERMARK_STRLEN], bool *ret_can_see_all, char *err,
                         size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* The oldest start of any other client backend's open transaction
         * or of a prepared transaction; when none is open, this statement's
         * own start: there is always a cap.  The functions behind the
         * pg_stat_activity and pg_prepared_xacts views, without the views'
         * joins: planning those cost ~2 ms of every run. */
        int r = exec_params(control(s), "late-commit guard",
                            "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),"
                            " to_char(least(statement_timestamp(),"
                            "   (SELECT min(a.xact_start) FROM pg_stat_get_activity(NULL) a"
                            "     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()),"
                            "   (SELECT min(p.prepared) FROM pg_prepared_xact() p)) AT TIME ZONE 'UTC', " TS_FORMAT ")",
                            0, NULL, &res, err, errlen);
        if (r < 0)
                return r;
        *ret_can_see_all = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        snprintf(ret_guard, WATERMARK_STRLEN, "%s", PQgetvalue(res, 0, 1));
        return 0;
}

/* Parses one LSN column of res, naming the server and query on failure. */
static int get_lsn(PgConn *c, const char *what, PGresult *res, int col, Lsn *ret, char *err, size_t errlen) {
        if (lsn_parse(PQgetvalue(res, 0, col), ret) == 0)
                return 0;
        snprintf(err, errlen, "postgres %s: query '%s' returned '%s', not a WAL position%s", c->where, what,
                 PQgetvalue(res, 0, col),
                 PQgetisnull(res, 0, col) ? " (the server is no longer a standby; the next run checks again)" : "");
        return -EIO;
}

/* The primary's WAL insert position, and its WAL page size.  Not
 * pg_current_wal_lsn(), the write position: with synchronous_commit = off
 * a commit is visible before its WAL is written. */
static int read_insert_lsn(PgSource *s, Lsn *ret, uint64_t *ret_block_size, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = exec_params(&s->primary, "pg_current_wal_insert_lsn",
                            "SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')", 0, NULL,
                            &res, err, errlen);
        if (r < 0)
                return r;
        *ret_block_size = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        return get_lsn(&s->primary, "pg_current_wal_insert_lsn", res, 0, ret, err, errlen);
}

/* The standby's replay position after sleeping `sleep_usec` on the server
 * (pg_source_cancel() interrupts the sleep), and whether replay is paused. */
static int poll_replay(PgSource *s, usec_t sleep_usec, Lsn *ret, bool *ret_paused, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        char secs[32];
        snprintf(secs, sizeof(secs), "%" PRIu64 ".%06" PRIu64, sleep_usec / USEC_PER_SEC, sleep_usec % USEC_PER_SEC);
        const char *params[] = { secs };
        int r = exec_params(
                &s->source, "pg_last_wal_replay_lsn",
                "SELECT pg_last_wal_replay_lsn()::text, pg_is_wal_replay_paused() FROM pg_sleep($1::float8)", 1, params,
                &res, err, errlen);
        if (r < 0)
                return r;
        *ret_paused = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        return get_lsn(&s->source, "pg_last_wal_replay_lsn", res, 0, ret, err, errlen);
}

static int lag_exceeded(PgSource *s, Lsn target, Lsn replayed, bool paused, char *err, size_t errlen) {
        char want[LSN_STRLEN], got[LSN_STRLEN], lag[32];
        snprintf(err, errlen,
                 "postgres standby %s has not replayed the primary's WAL up to %s (pg_current_wal_insert_lsn() on %s) "
                 "within postgres.max_replica_lag (%s): it replayed up to %s, %" PRIu64 " bytes behind%s; nothing "
                 "was written, the next run tries again",
                 s->source.where, lsn_format(target, want), s->primary.where,
                 duration_format(s->config->postgres.max_replica_lag, lag, sizeof(lag)), lsn_format(replayed, got),
                 target - replayed,
                 paused ? ", and replay is paused (SELECT pg_wal_replay_resume() on the standby)" : "");
        return -ETIMEDOUT;
}

int pg_source_catch_up(PgSource *s, const atomic_bool *cancel, usec_t *ret_waited, char *err, size_t errlen) {
        const usec_t start = now_usec(CLOCK_MONOTONIC);
        const usec_t deadline = start + s->config->postgres.max_replica_lag;
        usec_t sleep_usec = 0;
        uint64_t block_size = 0;
        Lsn target = 0, replayed = 0;
        bool paused = false;

        *ret_waited = 0;
        if (!pg_source_is_standby(s))
                return 0;
        int r = read_insert_lsn(s, &target, &block_size, err, errlen);
        while (r == 0) {
                r = poll_replay(s, sleep_usec, &replayed, &paused, err, errlen);
                if (r < 0 || lsn_replayed(replayed, target, block_size))
                        break;
                usec_t now = now_usec(CLOCK_MONOTONIC);
                if (atomic_load(&s->cancelled) || (cancel && atomic_load(cancel)))
                        r = -ECANCELED;
                else if (now >= deadline)
                        r = lag_exceeded(s, target, replayed, paused, err, errlen);
                /* 1 ms, doubling up to 100 ms, never past the deadline */
                sleep_usec = MIN(MIN(MAX(2 * sleep_usec, USEC_PER_MSEC), 100 * USEC_PER_MSEC),
                                 deadline - MIN(now, deadline));
        }
        *ret_waited = now_usec(CLOCK_MONOTONIC) - start;
        if (r == 0) {
                char want[LSN_STRLEN];
                log_debug("postgres standby %s: replayed up to %s (primary's insert position) after %" PRIu64 " us",
                          s->source.where, lsn_format(target, want), *ret_waited);
        }
        return r;
}

int pg_source_begin(PgSource *s, char *err, size_t errlen) {
        int r = exec_params(&s->source, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL, err,
                            errlen);
        if (r < 0)
                return r;
        /* JIT compilation alone cost ~70 ms per run for queries this small. */
        return exec_params(&s->source, "set jit", "SET LOCAL jit = off", 0, NULL, NULL, err, errlen);
}

int pg_source_commit(PgSource *s, char *err, size_t errlen) {
        return exec_params(&s->source, "commit", "COMMIT", 0, NULL, NULL, err, errlen);
}

void pg_source_rollback(PgSource *s) {
        if (PQtransactionStatus(s->source.conn) == PQTRANS_IDLE)
                return;
        PQclear(PQexec(s->source.conn, "ROLLBACK"));
}

int pg_source_clock_usec(PgSource *s, uint64_t *ret, char *err, size_t errlen) {
        PGresult *res;
        int r = exec_params(&s->source, "clock", "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", 0,
                            NULL, &res, err, errlen);
        if (r < 0)
                return r;
        *ret = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
}

static int append_array_literal(Buf *b, const char *const *items, size_t n) {
        int r = buf_puts(b, "{");
        for (size_t i = 0; i < n && r == 0; i++) {
                r = buf_puts(b, i ? ",\"" : "\"");
                for (const char *p = items[i]; *p && r == 0; p++) {
                        if (*p == '"' || *p == '\\')
                                r = buf_append(b, "\\", 1);
                        if (r == 0)
                                r = buf_append(b, p, 1);
                }
                if (r == 0)
                        r = buf_puts(b, "\"");
        }
        return r < 0 ? r : buf_puts(b, "}");
}

static int append_statuses(const Config *c, Buf *statuses) {
        size_t n = 0;
        while (c->postgres.completed_statuses[n])
                n++;
        return append_array_literal(statuses, (const char *const *)c->postgres.completed_statuses, n);
}

/* The days of the changes after `since` (SPEC §4 step 3).  The lower bound
 * is a plain parameter, not a subquery: the planner then estimates the few
 * changed rows from the index (a CTE made it guess a third of each table
 * and scan all orders). */
static int build_changed_days(PgSource *s, Buf *sql) {
        int r = buf_printf(sql,
                           "SELECT DISTINCT d::text FROM ("
                           " SELECT (now() AT TIME ZONE $2)::date - g AS d FROM generate_series(0, $3::int) AS g"
                           " UNION ALL SELECT (o.order_date AT TIME ZONE $2)::date FROM %s o"
                           "  WHERE o.updated_at > $1::timestamptz"
                           " UNION ALL SELECT (o.order_date AT TIME ZONE $2)::date FROM %s i"
                           "  JOIN %s o ON o.order_id = i.order_id WHERE i.updated_at > $1::timestamptz",
                           s->orders, s->items, s->orders);
        if (r == 0 && s->tombstones)
                r = buf_printf(sql,
                               " UNION ALL SELECT (t.order_date AT TIME ZONE $2)::date FROM %s t"
                               "  WHERE t.changed_at > $1::timestamptz",
                               s->tombstones);
        return r < 0 ? r : buf_puts(sql, ") AS x ORDER BY 1");
}

/* The storable range (day.h) as SQL bounds on order_date in the zone $N:
 * an index range; days outside have no row to write (and infinity or BC
 * would break the day arithmetic below). */
static int storable_bounds(Buf *sql, const char *column, int tz_param) {
        char first[DAY_STRLEN], after[DAY_STRLEN];
        return buf_printf(
                sql, "%1$s >= ('%2$s'::timestamp AT TIME ZONE $%4$d) AND %1$s < ('%3$s'::timestamp AT TIME ZONE $%4$d)",
                column, day_format(DAY_STORABLE_FIRST, first), day_format(DAY_STORABLE_LAST + 1, after), tz_param);
}

/* The opposite, NULL included, as three index conditions (a BitmapOr). */
static int unstorable_condition(Buf *sql, const char *column, int tz_param) {
        char first[DAY_STRLEN], after[DAY_STRLEN];
        return buf_printf(sql,
                          "(%1$s IS NULL OR %1$s < ('%2$s'::timestamp AT TIME ZONE $%4$d)"
                          " OR %1$s >= ('%3$s'::timestamp AT TIME ZONE $%4$d))",
                          column, day_format(DAY_STORABLE_FIRST, first), day_format(DAY_STORABLE_LAST + 1, after),
                          tz_param);
}

/* Every day with source rows (no watermark yet): the orders' days by a
 * skip scan of the order_date index, one probe per day found instead of
 * one row per order; an item's day is its order's.  Tombstones name days
 * whose rows are gone.  Only storable days: completed orders outside are
 * found by find_unstorable_orders(). */
static int build_all_days(PgSource *s, Buf *sql) {
        int r = buf_printf(sql,
                           "WITH RECURSIVE od(d) AS (SELECT (min(order_date) AT TIME ZONE $1)::date FROM %s WHERE ",
                           s->orders);
        if (r == 0)
                r = storable_bounds(sql, "order_date", 1);
        if (r == 0)
                r = buf_printf(sql,
                               " UNION ALL SELECT (SELECT (min(o.order_date) AT TIME ZONE $1)::date FROM %s o"
                               "   WHERE o.order_date >= ((od.d + 1)::timestamp AT TIME ZONE $1) AND ",
                               s->orders);
        if (r == 0)
                r = storable_bounds(sql, "o.order_date", 1);
        if (r == 0)
                r = buf_puts(sql, ") FROM od WHERE od.d IS NOT NULL)"
                                  " SELECT DISTINCT d::text FROM ("
                                  " SELECT (now() AT TIME ZONE $1)::date - g AS d FROM generate_series(0, $2::int) AS g"
                                  " UNION ALL SELECT d FROM od WHERE d IS NOT NULL");
        if (r == 0 && s->tombstones)
                r = buf_printf(sql, " UNION ALL SELECT (t.order_date AT TIME ZONE $1)::date FROM %s t", s->tombstones);
        return r < 0 ? r : buf_puts(sql, ") AS x ORDER BY 1");
}

/* The storable days of the result; *ret_unstorable: whether a row fell on
 * another day (NULL, infinity, BC, outside 1970..2105), which only matters
 * for a completed order (find_unstorable_orders()). */
static int parse_days(PGresult *res, Day **ret_days, size_t *ret_n, bool *ret_unstorable) {
        size_t n = (size_t)PQntuples(res), k = 0;
        _cleanup_free_ Day *days = calloc(n + 1, sizeof(Day));
        if (!days)
                return -ENOMEM;
        *ret_unstorable = false;
        for (size_t i = 0; i < n; i++) {
                if (!PQgetisnull(res, (int)i, 0) && day_parse(PQgetvalue(res, (int)i, 0), &days[k]) == 0 &&
                    day_storable(days[k]))
                        k++;
                else
                        *ret_unstorable = true;
        }
        *ret_n = day_sort_unique(days, k);
        *ret_days = TAKE_PTR(days);
        return 0;
}

/* The completed orders whose order_date is NULL or falls outside the
 * storable days, among those changed (or with items changed) after since
 * (all of them when since is NULL), as "; "-separated descriptions in
 * faults: their metrics belong to no day salesd can write.  The index on
 * order_date finds them (the bounds are two range scans and IS NULL). */
#define UNSTORABLE_ORDERS_SHOWN 3
static int find_unstorable_orders(PgSource *s, const char *since, Buf *faults, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 }, statuses = { 0 };
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = buf_printf(&sql,
                           "SELECT o.order_id::text, o.order_date::text, (o.order_date AT TIME ZONE $1)::date::text"
                           " FROM %s o WHERE o.status = ANY ($2::text[]) AND ",
                           s->orders);
        if (r == 0)
                r = unstorable_condition(&sql, "o.order_date", 1);
        if (r == 0 && since)
                r = buf_printf(&sql,
                               " AND (o.updated_at > $3::timestamptz OR EXISTS (SELECT 1 FROM %s i"
                               "  WHERE i.order_id = o.order_id AND i.updated_at > $3::timestamptz))",
                               s->items);
        if (r == 0)
                r = buf_printf(&sql, " ORDER BY o.order_id LIMIT %d", UNSTORABLE_ORDERS_SHOWN + 1);
        if (r == 0)
                r = append_statuses(s->config, &statuses);
        if (r < 0)
                return r;
        const char *params[] = { s->config->timezone, statuses.data, since };
        r = exec_params(&s->source, "completed orders outside the storable days", sql.data, since ? 3 : 2, params, &res,
                        err, errlen);
        for (int i = 0; r == 0 && i < PQntuples(res); i++) {
                const char *sep = faults->len ? "; " : "", *table = s->config->postgres.orders_table;
                if (i == UNSTORABLE_ORDERS_SHOWN)
                        r = buf_printf(faults, "; and more in %s", table);
                else if (PQgetisnull(res, i, 1))
                        r = buf_printf(faults, "%s%s order_id %s: order_date is NULL (a completed order on no day)",
                                       sep, table, PQgetvalue(res, i, 0));
                else
                        r = buf_printf(faults, "%s%s order_id %s: order_date '%s' falls on %s (%s), not in %s", sep,
                                       table, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                                       s->config->timezone, DAY_STORABLE_RANGE);
        }
        if (r == 0 && PQntuples(res) > 0)
                r = buf_puts(faults, " (ClickHouse's Date stores no such day: correct the order_date or status, or "
                                     "leave the order out of the view)");
        return r;
}

/* The greatest updated_at/changed_at in the snapshot ("" when no rows),
 * never past this statement's clock: a row stamped in year 10000 or at
 * infinity (an application's clock, a typo) must not become a watermark
 * that no later change can pass, or that salesd cannot read back. */
static int read_max_changed(PgSource *s, char ret[WATERMARK_STRLEN], char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = buf_printf(&sql,
                           "SELECT coalesce(to_char(least(g, statement_timestamp()) AT TIME ZONE 'UTC', " TS_FORMAT
                           "), '') FROM (SELECT greatest((SELECT max(updated_at) FROM %s),"
                           " (SELECT max(updated_at) FROM %s)",
                           s->orders, s->items);
        if (r == 0 && s->tombstones)
                r = buf_printf(&sql, ", (SELECT max(changed_at) FROM %s)", s->tombstones);
        if (r == 0)
                r = buf_puts(&sql, ") AS g) AS x WHERE g IS NOT NULL");
        if (r == 0)
                r = exec_params(&s->source, "greatest change", sql.data, 0, NULL, &res, err, errlen);
        if (r < 0)
                return r;
        snprintf(ret, WATERMARK_STRLEN, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
        return 0;
}

int pg_source_affected_days(PgSource *s, const char *since, Day **ret_days, size_t *ret_n,
                            char ret_max_changed[WATERMARK_STRLEN], Buf *faults, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        _cleanup_(PQclearp) PGresult *res = NULL;
        _cleanup_free_ Day *days = NULL;
        char reconcile[16];
        size_t n = 0;
        bool unstorable = false;

        snprintf(reconcile, sizeof(reconcile), "%u", s->config->reconcile_days);
        const char *params[] = { since, s->config->timezone, reconcile };
        int r = since ? build_changed_days(s, &sql) : build_all_days(s, &sql);
        if (r == 0)
                r = since ? exec_params(&s->source, "affected days", sql.data, 3, params, &res, err, errlen)
                          : exec_params(&s->source, "affected days", sql.data, 2, params + 1, &res, err, errlen);
        if (r == 0)
                r = parse_days(res, &days, &n, &unstorable);
        /* The first run's day scan sees only storable days (and no NULL). */
        if (r == 0 && faults && (unstorable || !since))
                r = find_unstorable_orders(s, since, faults, err, errlen);
        if (r == 0)
                r = read_max_changed(s, ret_max_changed, err, errlen);
        if (r < 0)
                return r;
        *ret_days = TAKE_PTR(days);
        *ret_n = n;
        return 0;
}

/* The aggregate's parameters: the days as a date[] literal, the completed
 * statuses as a text[] literal. */
static int aggregate_params(const Config *c, const Day *days, size_t n, Buf *day_list, Buf *statuses) {
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                char d[DAY_STRLEN];
                r = buf_printf(day_list, "%s%s", i ? "," : "{", day_format(days[i], d));
        }
        if (r == 0)
                r = buf_puts(day_list, n ? "}" : "{}");
        return r < 0 ? r : append_statuses(c, statuses);
}

/* The aggregate's columns: day, orders, items, revenue, cost, then per
 * metric column of order_items the smallest order_id of a completed order
 * with an item where it is NULL (sum() would silently skip it), and of one
 * with a negative quantity.  Filtered aggregates over the same rows: no
 * extra scan.  Every shape of the aggregate below gives a day these values
 * (as text, NULL for an SQL NULL). */
enum {
        AGG_DAY,
        AGG_ORDERS,
        AGG_ITEMS,
        AGG_REVENUE,
        AGG_COST,
        AGG_NULL_QTY,
        AGG_NULL_PRICE,
        AGG_NULL_COST,
        AGG_NEG_QTY,
        AGG_COLUMNS
};
#define AGGREGATE_CHECKS                                                                         \
        ", min(o.order_id) FILTER (WHERE i.order_id IS NOT NULL AND i.quantity IS NULL) AS nq,"  \
        " min(o.order_id) FILTER (WHERE i.order_id IS NOT NULL AND i.price IS NULL) AS np,"      \
        " min(o.order_id) FILTER (WHERE i.order_id IS NOT NULL AND i.cost_price IS NULL) AS nc," \
        " min(o.order_id) FILTER (WHERE i.quantity < 0) AS neg"
#define AGGREGATE_CHECK_COLUMNS " s.nq::text, s.np::text, s.nc::text, s.neg::text"

/* The value of result column `column` for AGG_ column c: NULL for an SQL
 * NULL in a check column; the metrics are never NULL (a "" would not
 * parse). */
static const char *agg_value(PGresult *res, int row, int column, int c) {
        return c >= AGG_NULL_QTY && PQgetisnull(res, row, column) ? NULL : PQgetvalue(res, row, column);
}

/* Describes in faults why the day of these values cannot be written, if it
 * cannot: a NULL in a metric column of a completed order's item, or a
 * negative total quantity.  1 when it did, 0 when the day is fine. */
static int check_sources(PgSource *s, const char *const v[AGG_COLUMNS], Buf *faults) {
        static const struct {
                int column;
                const char *name;
        } nulls[] = { { AGG_NULL_QTY, "quantity" }, { AGG_NULL_PRICE, "price" }, { AGG_NULL_COST, "cost_price" } };
        bool found = false;
        int r = 0;
        for (size_t k = 0; k < ELEMENTSOF(nulls) && r == 0; k++)
                if (v[nulls[k].column]) {
                        if (!found)
                                r = buf_printf(faults, "%sday %s: ", faults->len ? "; " : "", v[AGG_DAY]);
                        if (r == 0)
                                r = buf_printf(faults, "%sorder_id %s: %s is NULL", found ? ", " : "",
                                               v[nulls[k].column], nulls[k].name);
                        found = true;
                }
        if (found && r == 0)
                r = buf_printf(faults, " in %s (sum() would skip it)", s->config->postgres.order_items_table);
        if (!found && v[AGG_ITEMS][0] == '-') {
                r = buf_printf(faults, "%sday %s: total_items_sold %s is negative (order_id %s: quantity < 0 in %s)",
                               faults->len ? "; " : "", v[AGG_DAY], v[AGG_ITEMS], v[AGG_NEG_QTY] ? v[AGG_NEG_QTY] : "?",
                               s->config->postgres.order_items_table);
                found = true;
        }
        return r < 0 ? r : found;
}

/* One day's values into d: 0, 1 when the day cannot be written (described
 * in faults), or a negative errno. */
static int parse_day_values(PgSource *s, const char *const v[AGG_COLUMNS], DayStats *d, Buf *faults) {
        int r = check_sources(s, v, faults);
        if (r != 0)
                return r;
        if (day_parse(v[AGG_DAY], &d->day) == 0 && text_parse_u64(v[AGG_ORDERS], &d->total_orders) == 0 &&
            text_parse_u64(v[AGG_ITEMS], &d->total_items_sold) == 0 &&
            money_parse(v[AGG_REVENUE], &d->total_revenue) == 0 && money_parse(v[AGG_COST], &d->total_cost) == 0) {
                metrics_finish(d);
                return 0;
        }
        r = buf_printf(
                faults,
                "%sday %s: values salesd cannot store exactly (orders '%s', items '%s', revenue '%s', cost '%s'): "
                "check that quantity is an integer and price/cost_price have at most 2 decimal places",
                faults->len ? "; " : "", v[AGG_DAY], v[AGG_ORDERS], v[AGG_ITEMS], v[AGG_REVENUE], v[AGG_COST]);
        return r < 0 ? r : 1;
}

/* The aggregate's days as they are parsed: those that can be written, in
 * order, and the number of those that cannot (described in faults, the
 * first few in full, then a count). */
#define FAULTY_DAYS_SHOWN 5
typedef struct {
        DayStats *out;
        size_t kept, bad;
        Buf *faults;
} AggregateOut;

static int take_day(PgSource *s, const char *const v[AGG_COLUMNS], AggregateOut *a) {
        _cleanup_(buf_free) Buf one = { 0 };
        DayStats d = { 0 };
        int r = parse_day_values(s, v, &d, a->bad < FAULTY_DAYS_SHOWN ? a->faults : &one);
        if (r < 0)
                return r;
        if (r == 0)
                a->out[a->kept++] = d;
        else
                a->bad++;
        return 0;
}

/* The span of the history in days (first to last order_date), from the
 * two ends of the order_date index; 0 when there are no orders. */
static int history_span_days(PgSource *s, int64_t *ret, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        _cleanup_(buf_free) Buf sql = { 0 };
        if (buf_printf(&sql,
                       "SELECT coalesce((max(order_date) AT TIME ZONE $1)::date"
                       " - (min(order_date) AT TIME ZONE $1)::date + 1, 0) FROM %s WHERE ",
                       s->orders) < 0 ||
            storable_bounds(&sql, "order_date", 1) < 0)
                return -ENOMEM;
        const char *params[] = { s->config->timezone };
        int r = exec_params(&s->source, "history span", sql.data, 1, params, &res, err, errlen);
        if (r < 0)
                return r;
        *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        return 0;
}

/* The affected days, few (an incremental run) or many (a first run, a
 * backfill).  First, per day, its completed orders through the order_date
 * index between its two local midnights: their number and the first and
 * last order_id. */
#define COUNT_DAY_ORDERS                                                                                    \
        "SELECT r.d::text, c.n::text, c.first_id::text, c.last_id::text"                                    \
        " FROM (SELECT d, (d::timestamp AT TIME ZONE $2) AS lo, ((d + 1)::timestamp AT TIME ZONE $2) AS hi" \
        "         FROM unnest($1::date[]) AS d) AS r"                                                       \
        " CROSS JOIN LATERAL (SELECT count(DISTINCT o.order_id) AS n, min(o.order_id) AS first_id,"         \
        "   max(o.order_id) AS last_id FROM %s o"                                                           \
        "   WHERE o.order_date >= r.lo AND o.order_date < r.hi AND o.status = ANY ($3::text[])) AS c"       \
        " ORDER BY r.d"

/* Then, where order ids grow with order_date (as in most shops: every day
 * with orders has its completed orders within a range of at most
 * DENSE_ID_FACTOR ids per order), the items of each such day: the orders
 * and the items of its order_id range, both in order_id order from their
 * indexes, merge-joined (or hash-joined), the orders checked for the day
 * and the status.  That replaces one order_items index probe per order:
 * about a third less work for the aggregate at 10,000 and at 100,000
 * orders a day.  For a whole history it also beats one hash join of all
 * items to all orders (a first run: ~0.65x the time at 10,000 orders a
 * day, ~0.45x at 100,000, docs/performance.md): no hash table, no sort of every item by
 * its day, and the days' joins run side by side (Parallel Append).  The range is a literal value ($1 timezone, $2 statuses,
 * then day, first and last order_id of each day), so the planner estimates
 * the rows it holds.  The sums carry the checks of AGGREGATE_CHECKS
 * (filtered aggregates over the same joined rows, no extra scan).  The
 * day and status check is wrapped in coalesce() (a NULL is false either
 * way), which the planner estimates at one half: as plain conditions it
 * would take them for independent of the range, expect a handful of
 * orders and probe their items one by one again. */
#define SUM_DAY_ITEMS                                                                             \
        " SELECT $%1$d::date AS d, sum(i.quantity) AS qty, sum(i.price * i.quantity) AS revenue," \
        " sum(i.cost_price * i.quantity) AS cost" AGGREGATE_CHECKS                                \
        " FROM %4$s o JOIN %5$s i ON i.order_id = o.order_id"                                     \
        " WHERE o.order_id BETWEEN $%2$d AND $%3$d AND i.order_id BETWEEN $%2$d AND $%3$d"        \
        " AND coalesce(o.order_date >= ($%1$d::date::timestamp AT TIME ZONE $1)"                  \
        " AND o.order_date < (($%1$d::date + 1)::timestamp AT TIME ZONE $1) AND o.status = ANY ($2::text[]), false)"
#define DENSE_ID_FACTOR 4

/* Otherwise (some day's order ids do not follow order_date), for a few
 * days: per day, its orders by the order_date index and each order's
 * items through order_items(order_id); the cost follows the affected
 * days, not the history. */
#define AGGREGATE_BY_PROBES                                                                                 \
        "SELECT r.d::text, s.n::text, coalesce(s.qty, 0)::text, coalesce(s.revenue, 0)::text,"              \
        " coalesce(s.cost, 0)::text," AGGREGATE_CHECK_COLUMNS                                               \
        " FROM (SELECT d, (d::timestamp AT TIME ZONE $2) AS lo, ((d + 1)::timestamp AT TIME ZONE $2) AS hi" \
        "         FROM unnest($1::date[]) AS d) AS r"                                                       \
        " CROSS JOIN LATERAL (SELECT count(DISTINCT o.order_id) AS n, sum(i.quantity) AS qty,"              \
        "   sum(i.price * i.quantity) AS revenue, sum(i.cost_price * i.quantity) AS cost" AGGREGATE_CHECKS  \
        "   FROM %1$s o LEFT JOIN %2$s i ON i.order_id = o.order_id"                                        \
        "   WHERE o.order_date >= r.lo AND o.order_date < r.hi AND o.status = ANY ($3::text[])) AS s"       \
        " ORDER BY r.d"

/* And for many days: one pass over the range from the first to the last
 * day, items hash-joined to their orders and summed per day, which
 * Postgres can run in parallel; probing each order's items would cost an
 * index lookup per order. */
#define AGGREGATE_BY_JOIN                                                                                         \
        "SELECT r.d::text, coalesce(c.n, 0)::text, coalesce(s.qty, 0)::text, coalesce(s.revenue, 0)::text,"       \
        " coalesce(s.cost, 0)::text," AGGREGATE_CHECK_COLUMNS " FROM unnest($1::date[]) AS r(d)"                  \
        " LEFT JOIN (SELECT (o.order_date AT TIME ZONE $2)::date AS d, count(*) AS n FROM %1$s o"                 \
        "   WHERE o.order_date >= $4::timestamp AT TIME ZONE $2 AND o.order_date < $5::timestamp AT TIME ZONE $2" \
        "     AND o.status = ANY ($3::text[]) GROUP BY 1) AS c ON c.d = r.d"                                      \
        " LEFT JOIN (SELECT (o.order_date AT TIME ZONE $2)::date AS d, sum(i.quantity) AS qty,"                   \
        "   sum(i.price * i.quantity) AS revenue, sum(i.cost_price * i.quantity) AS cost" AGGREGATE_CHECKS        \
        "   FROM %1$s o JOIN %2$s i ON i.order_id = o.order_id"                                                   \
        "   WHERE o.order_date >= $4::timestamp AT TIME ZONE $2 AND o.order_date < $5::timestamp AT TIME ZONE $2" \
        "     AND o.status = ANY ($3::text[]) GROUP BY 1) AS s ON s.d = r.d"                                      \
        " ORDER BY r.d"

/* Of those: up to a week of days is always probed; beyond that, days that
 * cover a quarter of the history or more are aggregated in one pass. */
#define PROBE_ALWAYS_DAYS  7
#define JOIN_SPAN_FRACTION 4

static int choose_by_join(PgSource *s, size_t n, bool *ret, char *err, size_t errlen) {
        int64_t span = 0;
        *ret = false;
        if (n <= PROBE_ALWAYS_DAYS)
                return 0;
        int r = history_span_days(s, &span, err, errlen);
        if (r < 0)
                return r;
        *ret = (int64_t)n * JOIN_SPAN_FRACTION >= span;
        return 0;
}

/* Few days, first statement: each day's completed orders, counted, with
 * their first and last order_id; one row per day, in order. */
static int count_day_orders(PgSource *s, const char *day_list, const char *statuses, size_t n, PGresult **ret,
                            char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        _cleanup_(PQclearp) PGresult *res = NULL;
        if (buf_printf(&sql, COUNT_DAY_ORDERS, s->orders) < 0)
                return -ENOMEM;
        const char *params[] = { day_list, s->config->timezone, statuses };
        int r = exec_params(&s->source, "count affected days' orders", sql.data, 3, params, &res, err, errlen);
        if (r < 0)
                return r;
        if ((size_t)PQntuples(res) != n) {
                snprintf(err, errlen, "postgres %s: query 'count affected days' orders' returned %d days, expected %zu",
                         s->source.where, PQntuples(res), n);
                return -EIO;
        }
        *ret = TAKE_PTR(res);
        return 0;
}

/* Whether row i of the counts has its orders within a dense order_id range
 * (or none). */
static bool day_ids_dense(PGresult *counts, int i) {
        uint64_t n = 0;
        const char *first = PQgetvalue(counts, i, 2), *last = PQgetvalue(counts, i, 3);
        char *end_first = NULL, *end_last = NULL;
        if (text_parse_u64(PQgetvalue(counts, i, 1), &n) < 0)
                return false;
        if (n == 0)
                return true;
        errno = 0;
        long long lo = strtoll(first, &end_first, 10), hi = strtoll(last, &end_last, 10);
        if (errno != 0 || !*first || *end_first || !*last || *end_last || hi < lo)
                return false;
        return (uint64_t)hi - (uint64_t)lo < DENSE_ID_FACTOR * n;
}

/* Second statement (per at most RANGE_DAYS_PER_STATEMENT days, which
 * bounds its planning and its parameters): the items of the days of count
 * rows [from, to) that have orders (*ret stays NULL when none has), with
 * the checks of AGGREGATE_CHECKS.  Postgres runs the days' range joins as
 * a Parallel Append. */
#define RANGE_DAYS_PER_STATEMENT 200
static int sum_day_items(PgSource *s, PGresult *counts, int from, int to, const char *statuses, PGresult **ret,
                         char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        int n_params = 2;
        int r = buf_puts(&sql, "SELECT s.d::text, coalesce(s.qty, 0)::text, coalesce(s.revenue, 0)::text,"
                               " coalesce(s.cost, 0)::text," AGGREGATE_CHECK_COLUMNS " FROM (");
        _cleanup_free_ const char **params = calloc(2 + 3 * (size_t)(to - from), sizeof(char *));
        if (!params)
                return -ENOMEM;
        params[0] = s->config->timezone, params[1] = statuses;
        for (int i = from; i < to && r == 0; i++) {
                if (strcmp(PQgetvalue(counts, i, 1), "0") == 0)
                        continue;
                r = buf_puts(&sql, n_params > 2 ? " UNION ALL" : "");
                if (r == 0)
                        r = buf_printf(&sql, SUM_DAY_ITEMS, n_params + 1, n_params + 2, n_params + 3, s->orders,
                                       s->items);
                for (int c = 0; c < 3; c++)
                        params[n_params++] = PQgetvalue(counts, i, c == 0 ? 0 : c + 1);
        }
        if (r == 0)
                r = buf_puts(&sql, ") AS s ORDER BY s.d");
        if (r < 0)
                return r;
        if (n_params == 2)
                return 0;
        return exec_params(&s->source, "aggregate affected days", sql.data, n_params, params, ret, err, errlen);
}

/* The counts of days [from, to) joined with the sums (and checks) of those
 * with orders: sums row j has the columns of AGG_DAY and AGG_ITEMS
 * onwards. */
static int merge_counts_sums(PgSource *s, PGresult *counts, int from, int to, PGresult *items, AggregateOut *a,
                             char *err, size_t errlen) {
        int r = 0, j = 0, n_items = items ? PQntuples(items) : 0;
        for (int i = from; i < to && r == 0; i++) {
                const char *v[AGG_COLUMNS] = { PQgetvalue(counts, i, 0), PQgetvalue(counts, i, 1), "0", "0", "0" };
                if (strcmp(v[AGG_ORDERS], "0") != 0) {
                        if (j >= n_items || strcmp(PQgetvalue(items, j, 0), v[AGG_DAY]) != 0) {
                                snprintf(err, errlen,
                                         "postgres %s: query 'aggregate affected days' returned no row for day %s",
                                         s->source.where, v[AGG_DAY]);
                                return -EIO;
                        }
                        for (int c = AGG_ITEMS; c < AGG_COLUMNS; c++)
                                v[c] = agg_value(items, j, c - 1, c);
                        j++;
                }
                r = take_day(s, v, a);
        }
        return r;
}

/* Every day's items by its order_id range, RANGE_DAYS_PER_STATEMENT days
 * a statement. */
static int aggregate_by_ranges(PgSource *s, PGresult *counts, const char *statuses, AggregateOut *a, char *err,
                               size_t errlen) {
        int r = 0, rows = PQntuples(counts);
        for (int from = 0; from < rows && r == 0; from += RANGE_DAYS_PER_STATEMENT) {
                _cleanup_(PQclearp) PGresult *items = NULL;
                int to = rows - from > RANGE_DAYS_PER_STATEMENT ? from + RANGE_DAYS_PER_STATEMENT : rows;
                r = sum_day_items(s, counts, from, to, statuses, &items, err, errlen);
                if (r == 0)
                        r = merge_counts_sums(s, counts, from, to, items, a, err, errlen);
        }
        return r;
}

/* One statement that returns every day's row (the AGG_ columns), in
 * order. */
static int aggregate_rows(PgSource *s, const char *sql, int n_params, const char *const *params, size_t n,
                          AggregateOut *a, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = exec_params(&s->source, "aggregate affected days", sql, n_params, params, &res, err, errlen);
        if (r < 0)
                return r;
        size_t rows = (size_t)PQntuples(res);
        if (rows != n || PQnfields(res) != AGG_COLUMNS) {
                snprintf(err, errlen,
                         "postgres %s: query 'aggregate affected days' returned %zu days of %d columns, expected %zu "
                         "of %d",
                         s->source.where, rows, PQnfields(res), n, AGG_COLUMNS);
                return -EIO;
        }
        for (size_t i = 0; i < rows && r == 0; i++) {
                const char *v[AGG_COLUMNS];
                for (int c = 0; c < AGG_COLUMNS; c++)
                        v[c] = agg_value(res, (int)i, c, c);
                r = take_day(s, v, a);
        }
        return r;
}

/* Many days: one statement, one row per day. */
static int aggregate_many_days(PgSource *s, const Day *days, const char *day_list, const char *statuses, size_t n,
                               AggregateOut *a, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        char first[DAY_STRLEN], after_last[DAY_STRLEN];
        day_format(days[0], first);
        day_format(days[n - 1] + 1, after_last);
        if (buf_printf(&sql, AGGREGATE_BY_JOIN, s->orders, s->items) < 0)
                return -ENOMEM;
        const char *params[] = { day_list, s->config->timezone, statuses, first, after_last };
        return aggregate_rows(s, sql.data, 5, params, n, a, err, errlen);
}

/* Days whose order ids do not follow order_date: few of them, every
 * order's items probed; many, one pass over their range. */
static int aggregate_scattered(PgSource *s, const Day *days, const char *day_list, const char *statuses, size_t n,
                               AggregateOut *a, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        bool by_join = false;
        int r = choose_by_join(s, n, &by_join, err, errlen);
        if (r < 0)
                return r;
        log_debug("postgres %s: order ids do not follow order_date; %s", s->source.where,
                  by_join ? "one join over the days' span" : "probing each order's items");
        if (by_join)
                return aggregate_many_days(s, days, day_list, statuses, n, a, err, errlen);
        const char *params[] = { day_list, s->config->timezone, statuses };
        if (buf_printf(&sql, AGGREGATE_BY_PROBES, s->orders, s->items) < 0)
                return -ENOMEM;
        return aggregate_rows(s, sql.data, 3, params, n, a, err, errlen);
}

/* The orders of each day counted; where every day's ids are dense (the
 * usual case, a first run included), the items of their ranges summed,
 * else aggregate_scattered(). */
static int aggregate_days(PgSource *s, const Day *days, const char *day_list, const char *statuses, size_t n,
                          AggregateOut *a, char *err, size_t errlen) {
        _cleanup_(PQclearp) PGresult *counts = NULL;
        bool dense = true;
        int r = count_day_orders(s, day_list, statuses, n, &counts, err, errlen);
        if (r < 0)
                return r;
        for (int i = 0; i < (int)n && dense; i++)
                dense = day_ids_dense(counts, i);
        if (!dense)
                return aggregate_scattered(s, days, day_list, statuses, n, a, err, errlen);
        log_debug("postgres %s: aggregating %zu days by order_id ranges", s->source.where, n);
        return aggregate_by_ranges(s, counts, statuses, a, err, errlen);
}

int pg_source_aggregate(PgSource *s, const Day *days, size_t n, DayStats **ret, size_t *ret_n, Buf *faults, char *err,
                        size_t errlen) {
        _cleanup_(buf_free) Buf day_list = { 0 }, statuses = { 0 };
        int r = aggregate_params(s->config, days, n, &day_list, &statuses);
        if (r < 0)
                return r;
        _cleanup_free_ DayStats *out = calloc(n + 1, sizeof(DayStats));
        if (!out)
                return -ENOMEM;
        AggregateOut a = { .out = out, .faults = faults };
        r = n ? aggregate_days(s, days, day_list.data, statuses.data, n, &a, err, errlen) : 0;
        if (r < 0)
                return r;
        if (a.bad > FAULTY_DAYS_SHOWN &&
            buf_printf(faults, "; and %zu more days like these", a.bad - FAULTY_DAYS_SHOWN) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        *ret_n = a.kept;
        return 0;
}
