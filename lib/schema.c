/* See schema.h.  The expected columns are spelled out here rather than
 * derived from the DDL: they are what the code reads and writes, and a
 * mismatch must name the file to look at. */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "macro.h"
#include "schema_sql.h"
#include "tsv.h"

typedef struct ExpectedColumn {
        const char *table;
        const char *file;
        const char *engine;
        const char *column;
        const char *type;
} ExpectedColumn;

#define F1  "sql/clickhouse/001_daily_sales_stats.sql"
#define F2  "sql/clickhouse/002_salesd_runs.sql"
#define F3  "sql/clickhouse/003_salesd_heartbeat.sql"
#define F4  "sql/clickhouse/004_salesd_state.sql"
#define RMT "ReplacingMergeTree"

static const ExpectedColumn expected[] = {
        { "daily_sales_stats", F1, RMT, "date", "Date" },
        { "daily_sales_stats", F1, RMT, "total_orders", "UInt32" },
        { "daily_sales_stats", F1, RMT, "total_items_sold", "UInt32" },
        { "daily_sales_stats", F1, RMT, "total_revenue", "Decimal(15, 2)" },
        { "daily_sales_stats", F1, RMT, "total_cost", "Decimal(15, 2)" },
        { "daily_sales_stats", F1, RMT, "total_profit", "Decimal(15, 2)" },
        { "daily_sales_stats", F1, RMT, "average_order_value", "Decimal(15, 2)" },
        { "daily_sales_stats", F1, RMT, "computed_at", "DateTime('UTC')" },
        { "daily_sales_stats", F1, RMT, "version", "UInt64" },
        { "salesd_runs", F2, "MergeTree", "run_id", "String" },
        { "salesd_runs", F2, "MergeTree", "instance", "String" },
        { "salesd_runs", F2, "MergeTree", "trigger", "String" },
        { "salesd_runs", F2, "MergeTree", "started_at", "DateTime('UTC')" },
        { "salesd_runs", F2, "MergeTree", "finished_at", "DateTime('UTC')" },
        { "salesd_runs", F2, "MergeTree", "status", "String" },
        { "salesd_runs", F2, "MergeTree", "days_recomputed", "UInt32" },
        { "salesd_runs", F2, "MergeTree", "days_written", "UInt32" },
        { "salesd_runs", F2, "MergeTree", "error", "String" },
        { "salesd_heartbeat", F3, RMT, "instance", "String" },
        { "salesd_heartbeat", F3, RMT, "ts", "DateTime('UTC')" },
        { "salesd_heartbeat", F3, RMT, "state", "String" },
        { "salesd_heartbeat", F3, RMT, "last_success", "DateTime('UTC')" },
        { "salesd_heartbeat", F3, RMT, "next_run", "DateTime('UTC')" },
        { "salesd_state", F4, RMT, "name", "String" },
        { "salesd_state", F4, RMT, "value", "String" },
        { "salesd_state", F4, RMT, "version", "UInt64" },
};

#define N_EXPECTED ELEMENTSOF(expected)

static int select_rows(ChClient *c, const char *sql, char **ret_body, char *err, size_t errlen) {
        return ch_query(c, sql, NULL, CH_NO_DATABASE, ret_body, err, errlen);
}

static bool clustered(const ClickHouseConfig *cfg) {
        return cfg->cluster && *cfg->cluster;
}

static int create_database(ChClient *c, const ClickHouseConfig *cfg, char *err, size_t errlen) {
        _cleanup_free_ char *ident = ch_quote_identifier(cfg->database);
        _cleanup_free_ char *cluster = clustered(cfg) ? ch_quote_identifier(cfg->cluster) : NULL;
        _cleanup_(buf_free) Buf sql = { 0 };
        if (!ident || (clustered(cfg) && !cluster) ||
            buf_printf(&sql, "CREATE DATABASE IF NOT EXISTS %s%s%s", ident, cluster ? " ON CLUSTER " : "",
                       cluster ? cluster : "") < 0)
                return -ENOMEM;
        return ch_query(c, sql.data, NULL, CH_NO_DATABASE | (cluster ? CH_DDL : 0), NULL, err, errlen);
}

/* ---- the cluster form of the DDL (SPEC §9) ---- */

/* The length of the identifier at s (letters, digits, _). */
static size_t ident_len(const char *s) {
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
}

/* Appends the ZooKeeper path of table: the prefix with {database}
 * replaced (18.16 expands only the servers' own macros). */
static int put_zookeeper_path(Buf *out, const char *prefix, const char *database, const char *table, size_t n) {
        int r = 0;
        for (const char *p = prefix; *p && r == 0;) {
                if (strncmp(p, "{database}", 10) == 0) {
                        r = buf_puts(out, database);
                        p += 10;
                } else
                        r = buf_append(out, p++, 1);
        }
        return r ? r : buf_printf(out, "/%.*s", (int)n, table);
}

/* "CREATE TABLE IF NOT EXISTS t (" -> "... `db`.t ON CLUSTER `c` (", the
 * same for a view; returns the rest of sql after the name, or NULL when
 * sql creates nothing. */
static const char *put_create_head(Buf *out, const char *sql, const char *db, const char *cluster,
                                   const char **ret_name, size_t *ret_len) {
        static const char *const heads[] = { "CREATE TABLE IF NOT EXISTS ", "CREATE VIEW IF NOT EXISTS " };
        for (size_t i = 0; i < ELEMENTSOF(heads); i++) {
                const char *at = strstr(sql, heads[i]);
                if (!at)
                        continue;
                const char *name = at + strlen(heads[i]);
                size_t n = ident_len(name);
                *ret_name = name;
                *ret_len = n;
                if (buf_append(out, sql, (size_t)(name - sql)) < 0 ||
                    buf_printf(out, "%s.%.*s ON CLUSTER %s", db, (int)n, name, cluster) < 0)
                        return NULL;
                return name + n;
        }
        return NULL;
}

/* "ENGINE = [Replacing]MergeTree(args)" -> "ENGINE =
 * Replicated[Replacing]MergeTree('<path>/<table>', '{replica}'[, args])";
 * "FROM t" -> "FROM `db`.t" (a view's table: the distributed DDL runs in
 * each replica's default database). */
static int put_cluster_body(Buf *out, const char *rest, const char *db, const ClickHouseConfig *cfg, const char *table,
                            size_t table_len) {
        const char *engine = strstr(rest, "ENGINE = "), *from = strstr(rest, "FROM ");
        while (from && from > rest && from[-1] != ' ' && from[-1] != '\n')
                from = strstr(from + 1, "FROM ");
        int r = 0;
        if (engine) {
                const char *name = engine + 9, *open = name + ident_len(name), *close = strchr(open, ')');
                if (*open != '(' || !close)
                        return -EINVAL;
                r = buf_append(out, rest, (size_t)(name - rest));
                r = r ? r : buf_printf(out, "Replicated%.*s('", (int)(open - name), name);
                r = r ? r : put_zookeeper_path(out, cfg->zookeeper_path, cfg->database, table, table_len);
                r = r ? r
                      : buf_printf(out, "', '{replica}'%s%.*s", close > open + 1 ? ", " : "", (int)(close - open - 1),
                                   open + 1);
                return r ? r : buf_puts(out, close);
        }
        if (from) {
                const char *name = from + 5;
                r = buf_append(out, rest, (size_t)(name - rest));
                r = r ? r : buf_printf(out, "%s.", db);
                return r ? r : buf_puts(out, name);
        }
        return buf_puts(out, rest);
}

int schema_cluster_sql(const char *sql, const ClickHouseConfig *cfg, char **ret) {
        _cleanup_free_ char *db = ch_quote_identifier(cfg->database);
        _cleanup_free_ char *cluster = ch_quote_identifier(cfg->cluster);
        _cleanup_(buf_free) Buf out = { 0 };
        const char *table = NULL;
        size_t n = 0;
        if (!db || !cluster)
                return -ENOMEM;
        const char *rest = put_create_head(&out, sql, db, cluster, &table, &n);
        if (!rest)
                return table ? -ENOMEM : -EINVAL;
        int r = put_cluster_body(&out, rest, db, cfg, table, n);
        if (r < 0)
                return r;
        *ret = buf_steal(&out);
        return *ret ? 0 : -ENOMEM;
}

static int create_objects(ChClient *c, const ClickHouseConfig *cfg, char *err, size_t errlen) {
        for (size_t i = 0; i < schema_files_count; i++) {
                _cleanup_free_ char *sql = NULL;
                char inner[1024];
                int r = clustered(cfg) ? schema_cluster_sql(schema_files[i].sql, cfg, &sql) : 0;
                if (r < 0) {
                        snprintf(err, errlen, "%s: cannot derive the ON CLUSTER statement", schema_files[i].name);
                        return r;
                }
                r = ch_query(c, sql ? sql : schema_files[i].sql, NULL, sql ? CH_DDL : 0, NULL, inner, sizeof(inner));
                if (r < 0) {
                        snprintf(err, errlen, "%s: statement failed: %s", schema_files[i].name, inner);
                        return r;
                }
        }
        return 0;
}

#define SALESD_TABLES "('daily_sales_stats', 'salesd_runs', 'salesd_heartbeat', 'salesd_state')"
#define LATEST_VIEW   "daily_sales_stats_latest"
#define F5            "sql/clickhouse/005_daily_sales_stats_latest.sql"

/* Everything verification needs in one round trip, as rows of four fields:
 * "database NAME", "table NAME ENGINE", "column TABLE NAME TYPE". */
static int read_catalog(ChClient *c, const char *database, char **ret_body, char *err, size_t errlen) {
        _cleanup_free_ char *lit = ch_quote_string(database);
        _cleanup_(buf_free) Buf sql = { 0 };
        if (!lit || buf_printf(&sql,
                               "SELECT 'database', name, '', '' FROM system.databases WHERE name = %1$s"
                               " UNION ALL SELECT 'table', name, engine, '' FROM system.tables"
                               "  WHERE database = %1$s AND (name IN " SALESD_TABLES " OR name = '" LATEST_VIEW "')"
                               " UNION ALL SELECT 'column', table, name, type FROM system.columns"
                               "  WHERE database = %1$s AND table IN " SALESD_TABLES " FORMAT TabSeparated",
                               lit) < 0)
                return -ENOMEM;
        return select_rows(c, sql.data, ret_body, err, errlen);
}

/* Calls fn for each catalog row of the given kind, with its other three
 * fields, until fn returns non-zero. */
static int catalog_each(const char *catalog, const char *kind, int (*fn)(char **f, void *userdata), void *userdata) {
        _cleanup_free_ char *copy = strdup(catalog);
        char *cursor = copy, *line, *f[5];
        int r = copy ? 0 : -ENOMEM;
        while (r == 0 && (line = tsv_next_line(&cursor)))
                if (tsv_split(line, f, 5) == 4 && strcmp(f[0], kind) == 0)
                        r = fn(f + 1, userdata);
        return r;
}

static int found_row(char **f, void *userdata) {
        (void)f, (void)userdata;
        return 1;
}

typedef struct EngineLookup {
        const char *table;
        char engine[128];
} EngineLookup;

static int match_engine(char **f, void *userdata) {
        EngineLookup *l = userdata;
        if (strcmp(f[0], l->table) != 0)
                return 0;
        snprintf(l->engine, sizeof(l->engine), "%s", f[1]);
        return 1;
}

/* The engine of table in the catalog, or NULL. */
static const char *engine_of(const char *catalog, const char *table, char *buf, size_t len) {
        EngineLookup l = { .table = table };
        if (catalog_each(catalog, "table", match_engine, &l) <= 0)
                return NULL;
        snprintf(buf, len, "%s", l.engine);
        return buf;
}

/* Engines first: a table of the right columns on the wrong engine would
 * silently keep duplicates (or, on a cluster, not replicate). */
static int verify_engines(const char *catalog, const char *database, bool replicated, char *err, size_t errlen) {
        for (size_t i = 0; i < N_EXPECTED; i++) {
                const ExpectedColumn *e = &expected[i];
                char engine[128], want[128];
                snprintf(want, sizeof(want), "%s%s", replicated ? "Replicated" : "", e->engine);
                if (i > 0 && strcmp(e->table, expected[i - 1].table) == 0)
                        continue;
                if (!engine_of(catalog, e->table, engine, sizeof(engine))) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` does not exist (run 'salesd init-schema' to create it)", e->file,
                                 database, e->table);
                        return -ENOENT;
                }
                if (strcmp(engine, want) != 0) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` has engine '%s', expected '%s' (recreate it from that file, or "
                                 "point clickhouse.database elsewhere)",
                                 e->file, database, e->table, engine, want);
                        return -EPROTO;
                }
        }
        return 0;
}

/* Marks found[i] for each expected column of the right type in a
 * "table<TAB>column<TAB>type" row; -EPROTO for a wrong type. */
static int check_column(char **f, const char *database, bool *found, char *err, size_t errlen) {
        for (size_t i = 0; i < N_EXPECTED; i++) {
                const ExpectedColumn *e = &expected[i];
                if (strcmp(f[0], e->table) != 0 || strcmp(f[1], e->column) != 0)
                        continue;
                if (strcmp(f[2], e->type) != 0) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` column '%s' has type '%s', expected '%s' (the table was created "
                                 "by something else; migrate it or use another clickhouse.database)",
                                 e->file, database, e->table, e->column, f[2], e->type);
                        return -EPROTO;
                }
                found[i] = true;
        }
        return 0;
}

typedef struct ColumnCheck {
        const char *database;
        bool found[N_EXPECTED];
        char *err;
        size_t errlen;
} ColumnCheck;

static int check_catalog_column(char **f, void *userdata) {
        ColumnCheck *cc = userdata;
        return check_column(f, cc->database, cc->found, cc->err, cc->errlen);
}

static int verify_columns(const char *catalog, const char *database, char *err, size_t errlen) {
        ColumnCheck cc = { .database = database, .err = err, .errlen = errlen };
        int r = catalog_each(catalog, "column", check_catalog_column, &cc);
        for (size_t i = 0; r == 0 && i < N_EXPECTED; i++)
                if (!cc.found[i]) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` has no column '%s' of type '%s' (migrate the table or use "
                                 "another clickhouse.database)",
                                 expected[i].file, database, expected[i].table, expected[i].column, expected[i].type);
                        r = -EPROTO;
                }
        return r;
}

static int verify_objects(ChClient *c, const char *database, bool replicated, char *err, size_t errlen) {
        _cleanup_free_ char *catalog = NULL;
        char engine[128];
        int r = read_catalog(c, database, &catalog, err, errlen);
        if (r < 0)
                return r;
        if (catalog_each(catalog, "database", found_row, NULL) <= 0) {
                snprintf(err, errlen,
                         "clickhouse %s: database '%s' does not exist (run 'salesd init-schema' or check "
                         "clickhouse.database)",
                         ch_client_url(c), database);
                return -ENOENT;
        }
        r = verify_engines(catalog, database, replicated, err, errlen);
        if (r == 0 && replicated && !engine_of(catalog, LATEST_VIEW, engine, sizeof(engine))) {
                /* on a cluster, creating is skipped when all is in place */
                snprintf(err, errlen, F5 ": view `%s`.`" LATEST_VIEW "` does not exist (run 'salesd init-schema')",
                         database);
                r = -ENOENT;
        }
        return r < 0 ? r : verify_columns(catalog, database, err, errlen);
}

/* Verifies on url[i] alone; on a cluster the message names the replica. */
static int verify_replica(const ClickHouseConfig *cfg, size_t i, const atomic_bool *cancel, char *err, size_t errlen) {
        _cleanup_(ch_client_freep) ChClient *ch = NULL;
        char inner[1024];
        int r = ch_client_new_pinned(cfg, i, &ch, err, errlen);
        if (r < 0)
                return r;
        if (cancel)
                ch_client_set_cancel_flag(ch, cancel);
        r = verify_objects(ch, cfg->database, clustered(cfg), inner, sizeof(inner));
        if (r < 0 && clustered(cfg))
                snprintf(err, errlen, "clickhouse replica %s of cluster '%s': %s", ch_client_url(ch), cfg->cluster,
                         inner);
        else if (r < 0)
                snprintf(err, errlen, "%s", inner);
        return r;
}

/* Verifies on every URL.  A replica that cannot be reached (down, timing
 * out, read-only does not matter for reading the catalog) is skipped when
 * another one verified: failover exists for exactly that case, and a
 * replica that comes back runs the ON CLUSTER DDL it missed from the
 * distributed DDL queue.  One that answers with a missing table or a wrong
 * type fails the check, named. */
static int verify_replicas(const ClickHouseConfig *c, const atomic_bool *cancel, char *err, size_t errlen) {
        int unreachable = 0;
        bool verified = false;
        for (size_t i = 0; c->url[i]; i++) {
                char inner[2048];
                int r = verify_replica(c, i, cancel, inner, sizeof(inner));
                if (r == 0)
                        verified = true;
                else if (c->url[1] && ch_error_failover(r, 0) && r != -EIO) {
                        log_debug("schema check: skipping unreachable replica: %s", inner);
                        if (!unreachable) {
                                unreachable = r;
                                snprintf(err, errlen, "%s", inner);
                        }
                } else {
                        snprintf(err, errlen, "%s", inner);
                        return r;
                }
        }
        return verified ? 0 : unreachable;
}

/* Creating is idempotent (IF NOT EXISTS; ON CLUSTER on a cluster, through
 * the current endpoint); verifying is one query per URL.  On a cluster the
 * DDL is sent only when something is missing: ON CLUSTER waits for every
 * replica, so a start with one replica down would otherwise fail. */
int schema_check(const ClickHouseConfig *c, bool create, const atomic_bool *cancel, char *err, size_t errlen) {
        _cleanup_(ch_client_freep) ChClient *ch = NULL;
        if (create && clustered(c) && verify_replicas(c, cancel, err, errlen) == 0)
                return 0;
        int r = create ? ch_client_new(c, &ch, err, errlen) : 0;
        if (r < 0)
                return r;
        if (ch && cancel)
                ch_client_set_cancel_flag(ch, cancel);
        if (create)
                r = create_database(ch, c, err, errlen);
        if (r == 0 && create)
                r = create_objects(ch, c, err, errlen);
        return r < 0 ? r : verify_replicas(c, cancel, err, errlen);
}
