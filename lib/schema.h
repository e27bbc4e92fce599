/* The ClickHouse objects of sql/clickhouse/ (compiled into the binary):
 * creates them idempotently and verifies that existing tables have the
 * columns, types and engines salesd reads and writes, reporting a mismatch
 * precisely (file, table, column, expected and actual type). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ch.h"

/* create: also CREATE DATABASE/TABLE/VIEW IF NOT EXISTS; otherwise verify
 * only.  Returns 0, -ENOENT/-EPROTO (missing object / mismatch: err says
 * what), or a ch_query error. */
int schema_apply(ChClient *c, const char *database, bool create, char *err, size_t errlen);

/* schema_apply() on a client of its own for c (cancel may be NULL). */
int schema_check(const ClickHouseConfig *c, bool create, const atomic_bool *cancel, char *err, size_t errlen);
