/* The ClickHouse objects of sql/clickhouse/ (compiled into the binary):
 * creates them idempotently and verifies that existing tables have the
 * columns, types and engines salesd reads and writes, reporting a mismatch
 * precisely (file, table, column, expected and actual type). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ch.h"

/* create: also CREATE DATABASE/TABLE/VIEW IF NOT EXISTS (with
 * clickhouse.cluster: ON CLUSTER, Replicated engines, see
 * schema_cluster_sql()), through the current endpoint; then verifies on
 * every URL of c->url.  Returns 0, -ENOENT/-EPROTO (missing object /
 * mismatch: err says what, and on a cluster which replica), or a ch_query
 * error.  cancel may be NULL. */
int schema_check(const ClickHouseConfig *c, bool create, const atomic_bool *cancel, char *err, size_t errlen);

/* The ON CLUSTER form of one of sql/clickhouse/'s statements for c
 * (c->cluster set): the object qualified with the database, `ON CLUSTER`,
 * an engine E(args) as ReplicatedE('<zookeeper_path>/<table>', '{replica}',
 * args) with {database} expanded, a view's FROM table qualified.  -EINVAL
 * for a statement of another shape.  *ret malloc'd. */
int schema_cluster_sql(const char *sql, const ClickHouseConfig *c, char **ret);
