/* See schema.h.  The expected columns are spelled out here rather than
 * derived from the DDL: they are what the code reads and writes, and a
 * mismatch must name the file to look at. */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
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

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static int select_rows(ChClient *c, const char *sql, char **ret_body, char *err, size_t errlen) {
        return ch_query(c, sql, NULL, CH_NO_DATABASE, ret_body, err, errlen);
}

static int ensure_database(ChClient *c, const char *database, bool create, char *err, size_t errlen) {
        char *lit = ch_quote_string(database), *ident = ch_quote_identifier(database), *body = NULL;
        Buf sql = { 0 };
        int r = -ENOMEM;

        if (!lit || !ident)
                goto out;
        buf_printf(&sql, "SELECT count() FROM system.databases WHERE name = %s FORMAT TabSeparated", lit);
        r = select_rows(c, sql.data, &body, err, errlen);
        if (r < 0)
                goto out;
        if (strtoul(body, NULL, 10) == 0) {
                if (!create) {
                        snprintf(err, errlen,
                                 "clickhouse %s: database '%s' does not exist (run 'salesd init-schema' or check "
                                 "clickhouse.database)",
                                 ch_client_url(c), database);
                        r = -ENOENT;
                        goto out;
                }
                buf_reset(&sql);
                buf_printf(&sql, "CREATE DATABASE IF NOT EXISTS %s", ident);
                r = ch_query(c, sql.data, NULL, CH_NO_DATABASE, NULL, err, errlen);
        }
out:
        free(lit);
        free(ident);
        free(body);
        buf_free(&sql);
        return r;
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

static int verify_objects(ChClient *c, const char *database, char *err, size_t errlen) {
        char *lit = ch_quote_string(database), *body = NULL;
        Buf sql = { 0 };
        int r = -ENOMEM;
        bool found[N_EXPECTED] = { false };

        if (!lit)
                return -ENOMEM;
        /* Engines first: a table of the right columns on the wrong engine
         * would silently keep duplicates. */
        buf_printf(&sql,
                   "SELECT name, engine FROM system.tables WHERE database = %s AND name IN ('daily_sales_stats', "
                   "'salesd_runs', 'salesd_heartbeat', 'salesd_state') FORMAT TabSeparated",
                   lit);
        r = select_rows(c, sql.data, &body, err, errlen);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < N_EXPECTED; i++) {
                if (i > 0 && strcmp(expected[i].table, expected[i - 1].table) == 0)
                        continue;
                bool ok = false;
                char *copy = strdup(body), *cursor = copy, *line;
                char *fields[4];
                if (!copy) {
                        r = -ENOMEM;
                        goto out;
                }
                while ((line = tsv_next_line(&cursor)))
                        if (tsv_split(line, fields, 4) == 2 && strcmp(fields[0], expected[i].table) == 0) {
                                ok = true;
                                if (strcmp(fields[1], expected[i].engine) != 0) {
                                        snprintf(err, errlen,
                                                 "%s: table `%s`.`%s` has engine '%s', expected '%s' (recreate it "
                                                 "from that file, or point clickhouse.database elsewhere)",
                                                 expected[i].file, database, expected[i].table, fields[1],
                                                 expected[i].engine);
                                        free(copy);
                                        r = -EPROTO;
                                        goto out;
                                }
                        }
                free(copy);
                if (!ok) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` does not exist (run 'salesd init-schema' to create it)",
                                 expected[i].file, database, expected[i].table);
                        r = -ENOENT;
                        goto out;
                }
        }

        free(body);
        body = NULL;
        buf_reset(&sql);
        buf_printf(&sql,
                   "SELECT table, name, type FROM system.columns WHERE database = %s AND table IN "
                   "('daily_sales_stats', 'salesd_runs', 'salesd_heartbeat', 'salesd_state') FORMAT TabSeparated",
                   lit);
        r = select_rows(c, sql.data, &body, err, errlen);
        if (r < 0)
                goto out;
        char *cursor = body, *line;
        while ((line = tsv_next_line(&cursor))) {
                char *fields[4];
                if (tsv_split(line, fields, 4) != 3)
                        continue;
                for (size_t i = 0; i < N_EXPECTED; i++) {
                        if (strcmp(fields[0], expected[i].table) != 0 || strcmp(fields[1], expected[i].column) != 0)
                                continue;
                        if (strcmp(fields[2], expected[i].type) != 0) {
                                snprintf(err, errlen,
                                         "%s: table `%s`.`%s` column '%s' has type '%s', expected '%s' (the table "
                                         "was created by something else; migrate it or use another "
                                         "clickhouse.database)",
                                         expected[i].file, database, expected[i].table, expected[i].column, fields[2],
                                         expected[i].type);
                                r = -EPROTO;
                                goto out;
                        }
                        found[i] = true;
                }
        }
        for (size_t i = 0; i < N_EXPECTED; i++)
                if (!found[i]) {
                        snprintf(err, errlen,
                                 "%s: table `%s`.`%s` has no column '%s' of type '%s' (migrate the table or use "
                                 "another clickhouse.database)",
                                 expected[i].file, database, expected[i].table, expected[i].column, expected[i].type);
                        r = -EPROTO;
                        goto out;
                }
        r = 0;
out:
        free(lit);
        free(body);
        buf_free(&sql);
        return r;
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
        ChClient *ch = NULL;
        int r = ch_client_new(c, &ch, err, errlen);
        if (r < 0)
                return r;
        if (cancel)
                ch_client_set_cancel_flag(ch, cancel);
        r = schema_apply(ch, c->database, create, err, errlen);
        ch_client_free(ch);
        return r;
}
