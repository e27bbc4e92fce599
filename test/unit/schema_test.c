/* The ON CLUSTER form of sql/clickhouse/'s statements (SPEC §9): each file's
 * statement as schema.c rewrites it for clickhouse.cluster, checked whole,
 * so a change to a file or to the rewrite shows here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "schema.h"
#include "schema_sql.h"

static const ClickHouseConfig cfg = {
        .database = "shop_stats",
        .cluster = "sales-eu",
        .zookeeper_path = "/clickhouse/tables/{shard}/{database}",
};

static const char *cluster_sql(const char *file, char **owned) {
        for (size_t i = 0; i < schema_files_count; i++)
                if (strcmp(schema_files[i].name, file) == 0) {
                        assert_int_equal(schema_cluster_sql(schema_files[i].sql, &cfg, owned), 0);
                        return *owned;
                }
        fail_msg("no schema file %s", file);
        return NULL;
}

static void test_tables(void **state) {
        (void)state;
        static const struct {
                const char *file, *head, *engine;
        } cases[] = {
                { "sql/clickhouse/001_daily_sales_stats.sql",
                  "CREATE TABLE IF NOT EXISTS `shop_stats`.daily_sales_stats ON CLUSTER `sales-eu` (",
                  "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shop_stats/daily_sales_stats', "
                  "'{replica}', version)\nPARTITION BY toYYYYMM(date) ORDER BY date" },
                { "sql/clickhouse/002_salesd_runs.sql",
                  "CREATE TABLE IF NOT EXISTS `shop_stats`.salesd_runs ON CLUSTER `sales-eu` (",
                  "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shop_stats/salesd_runs', '{replica}')\n"
                  "PARTITION BY toYYYYMM(started_at) ORDER BY (started_at, instance)" },
                { "sql/clickhouse/003_salesd_heartbeat.sql",
                  "CREATE TABLE IF NOT EXISTS `shop_stats`.salesd_heartbeat ON CLUSTER `sales-eu` (",
                  "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shop_stats/salesd_heartbeat', "
                  "'{replica}', ts)\nORDER BY instance" },
                { "sql/clickhouse/004_salesd_state.sql",
                  "CREATE TABLE IF NOT EXISTS `shop_stats`.salesd_state ON CLUSTER `sales-eu` (",
                  "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shop_stats/salesd_state', "
                  "'{replica}', version)\nORDER BY name" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *sql = NULL;
                cluster_sql(cases[i].file, &sql);
                if (!strstr(sql, cases[i].head) || !strstr(sql, cases[i].engine))
                        fail_msg("%s:\n%s", cases[i].file, sql);
                free(sql);
        }
}

static void test_view(void **state) {
        (void)state;
        char *sql = NULL;
        cluster_sql("sql/clickhouse/005_daily_sales_stats_latest.sql", &sql);
        assert_non_null(strstr(sql, "CREATE VIEW IF NOT EXISTS `shop_stats`.daily_sales_stats_latest ON CLUSTER "
                                    "`sales-eu` AS\n"));
        assert_non_null(strstr(sql, "\nFROM `shop_stats`.daily_sales_stats FINAL"));
        assert_null(strstr(sql, "ENGINE"));
        free(sql);
}

static void test_other_shapes(void **state) {
        (void)state;
        char *sql = NULL;
        assert_int_equal(schema_cluster_sql("SELECT 1", &cfg, &sql), -EINVAL);
        assert_int_equal(
                schema_cluster_sql("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = MergeTree ORDER BY a", &cfg, &sql),
                -EINVAL);
        assert_null(sql);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tables),
                cmocka_unit_test(test_view),
                cmocka_unit_test(test_other_shapes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
