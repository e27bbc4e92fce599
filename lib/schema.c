/* See schema.h.  The expected columns are spelled out here rather than
 * derived from the DDL: they are what the code reads and writes, and a
 * mismatch must name the file to look at. */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
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

static int ensure_database(ChClient *c, const char *database, bool create, char *err, size_t errlen) {
        _cleanup_free_ char *lit = ch_quote_string(database), *ident = ch_quote_identifier(database), *body = NULL;
        _cleanup_(buf_free) Buf sql = { 0 };

        if (!lit || !ident ||
            buf_printf(&sql, "SELECT count() FROM system.databases WHERE name = %s FORMAT TabSeparated", lit) < 0)
                return -ENOMEM;
        int r = select_rows(c, sql.data, &body, err, errlen);
        if (r < 0 || strtoul(body, NULL, 10) > 0)
                return r;
        if (!create) {
                snprintf(err, errlen,
                         "clickhouse %s: database '%s' does not exist (run 'salesd init-schema' or check "
                         "clickhouse.database)",
                         ch_client_url(c), database);
                return -ENOENT;
        }
        buf_reset(&sql);
        if (buf_printf(&sql, "CREATE DATABASE IF NOT EXISTS %s", ident) < 0)
                return -ENOMEM;
        return ch_query(c, sql.data, NULL, CH_NO_DATABASE, NULL, err, errlen);
}

static int create_objects(ChClient *c, char *err, size_t errlen) {
        for (size_t i = 0; i < schema_files_count; i++) {
                char inner[1024];
                int r = ch_query(c, schema_files[i].sql, NULL, 0, NULL, inner, sizeof(inner));
                if (r < 0) {
                        snprintf(err, errlen, "%s: statement failed: %s", schema_files[i].name, inner);
                        return r;
                }
        }
        return 0;
}

/* "SELECT columns FROM system.<from> WHERE database = '<database>' AND
 * <table_column> IN (salesd's tables)". */
static int select_about_tables(ChClient *c, const char *columns, const char *from, const char *table_column,
                               const char *database, char **ret_body, char *err, size_t errlen) {
        _cleanup_free_ char *lit = ch_quote_string(database);
        _cleanup_(buf_free) Buf sql = { 0 };
        if (!lit || buf_printf(&sql,
                               "SELECT %s FROM system.%s WHERE database = %s AND %s IN ('daily_sales_stats', "
                               "'salesd_runs', 'salesd_heartbeat', 'salesd_state') FORMAT TabSeparated",
                               columns, from, lit, table_column) < 0)
                return -ENOMEM;
        return select_rows(c, sql.data, ret_body, err, errlen);
}

/* The engine of table in a "name<TAB>engine" listing, or NULL. */
static const char *engine_of(const char *listing, const char *table, char *buf, size_t len) {
        _cleanup_free_ char *copy = strdup(listing);
        char *cursor = copy, *line, *fields[4];
        while (copy && (line = tsv_next_line(&cursor)))
                if (tsv_split(line, fields, 4) == 2 && strcmp(fields[0], table) == 0) {
                        snprintf(buf, len, "%s", fields[1]);
                        return buf;
                }
        return NULL;
}

/* Engines first: a table of the right columns on the wrong engine would
 * silently keep duplicates. */
static int verify_engines(ChClient *c, const char *database, char *err, size_t errlen) {
        _cleanup_free_ char *body = NULL;
        int r = select_about_tables(c, "name, engine", "tables", "name", database, &body, err, errlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < N_EXPECTED; i++) {
                const ExpectedColumn *e = &expected[i];
                char engine[128];
                if (i > 0 && strcmp(e->table, expected[i - 1].table) == 0)
                        continue;
                if (!engine_of(body, e->table, engine, sizeof(engine))) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` does not exist (run 'salesd init-schema' to create it)", e->file,
                                 database, e->table);
                        return -ENOENT;
                }
                if (strcmp(engine, e->engine) != 0) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` has engine '%s', expected '%s' (recreate it from that file, or "
                                 "point clickhouse.database elsewhere)",
                                 e->file, database, e->table, engine, e->engine);
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

static int verify_columns(ChClient *c, const char *database, char *err, size_t errlen) {
        _cleanup_free_ char *body = NULL;
        bool found[N_EXPECTED] = { false };
        int r = select_about_tables(c, "table, name, type", "columns", "table", database, &body, err, errlen);
        char *cursor = body, *line, *f[4];
        while (r == 0 && (line = tsv_next_line(&cursor)))
                if (tsv_split(line, f, 4) == 3)
                        r = check_column(f, database, found, err, errlen);
        for (size_t i = 0; r == 0 && i < N_EXPECTED; i++)
                if (!found[i]) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` has no column '%s' of type '%s' (migrate the table or use "
                                 "another clickhouse.database)",
                                 expected[i].file, database, expected[i].table, expected[i].column, expected[i].type);
                        r = -EPROTO;
                }
        return r;
}

static int verify_objects(ChClient *c, const char *database, char *err, size_t errlen) {
        int r = verify_engines(c, database, err, errlen);
        return r < 0 ? r : verify_columns(c, database, err, errlen);
}

int schema_apply(ChClient *c, const char *database, bool create, char *err, size_t errlen) {
        int r = ensure_database(c, database, create, err, errlen);
        if (r < 0)
                return r;
        if (create) {
                r = create_objects(c, err, errlen);
                if (r < 0)
                        return r;
        }
        return verify_objects(c, database, err, errlen);
}

int schema_check(const ClickHouseConfig *c, bool create, const atomic_bool *cancel, char *err, size_t errlen) {
        _cleanup_(ch_client_freep) ChClient *ch = NULL;
        int r = ch_client_new(c, &ch, err, errlen);
        if (r < 0)
                return r;
        if (cancel)
                ch_client_set_cancel_flag(ch, cancel);
        return schema_apply(ch, c->database, create, err, errlen);
}
