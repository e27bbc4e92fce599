/* salesd's configuration (SPEC §6).
 *
 * One declarative table (config_keys.c) drives parsing (libyaml), defaults,
 * validation, SALESD_* environment overrides, secrets, `check-config`
 * output, the reload policy and the generated documentation (config_doc.h).  Loading never stops at the
 * first problem: every error found is reported with file:line:column and the
 * key, so an operator fixes a file in one pass.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "duration.h"

typedef struct PostgresConfig {
        char *conninfo;
        char *password_file;
        char *orders_table;
        char *order_items_table;
        char *tombstones_table;    /* "" = none */
        char **completed_statuses; /* NULL-terminated */
        usec_t statement_timeout;
        /* every connection salesd opens (SPEC §4: a vanished host fails the
         * run instead of hanging it); 0 = the OS default */
        usec_t connect_timeout;
        usec_t keepalives_idle;
        usec_t keepalives_interval;
        unsigned keepalives_count;
        usec_t tcp_user_timeout;
        int64_t lock_key;
        char *primary_conninfo; /* "" = conninfo is the primary (SPEC §9) */
        usec_t max_replica_lag;
        char *password; /* resolved secret or NULL (libpq then uses PGPASSWORD / ~/.pgpass) */
} PostgresConfig;

typedef struct ClickHouseConfig {
        char **url;             /* NULL-terminated, at least one: replicas of one shard, in failover order (SPEC §9) */
        char *cluster;          /* "" = a single server; else ON CLUSTER and Replicated engines */
        char *zookeeper_path;   /* prefix of the replicated tables' ZooKeeper paths */
        unsigned insert_quorum; /* 0 = off */
        char *database;
        char *user;
        char *password_file;
        usec_t timeout;
        unsigned retries;
        char *password; /* resolved secret or NULL */
} ClickHouseConfig;

typedef struct HttpConfig {
        char *listen; /* "" = disabled */
        char *token_file;
        char *token; /* resolved secret or NULL (POST /run then answers 403) */
} HttpConfig;

typedef struct NotifyConfig {
        char *channel; /* "" = off */
        usec_t debounce;
} NotifyConfig;

typedef struct AuditConfig {
        unsigned days_per_run; /* 0 = off */
        usec_t window;
} AuditConfig;

typedef struct Config {
        char *path;     /* the file it was loaded from */
        char *instance; /* resolved: hostname when the file leaves it empty */
        char *timezone;
        char *schedule;
        bool run_on_start;
        usec_t overlap;
        unsigned reconcile_days;
        usec_t run_timeout; /* a daemon run's deadline */
        usec_t heartbeat_interval;
        int log_level; /* syslog priority */
        PostgresConfig postgres;
        ClickHouseConfig clickhouse;
        HttpConfig http;
        NotifyConfig notify;
        AuditConfig audit;
} Config;

/* Loads path (a missing file is an error), applies defaults, SALESD_*
 * environment overrides (taken from environ) and resolves secrets from
 * password_file / token_file / $CREDENTIALS_DIRECTORY.
 *
 * On failure returns -EINVAL (bad content), -ENOENT/-EACCES/... (file), and
 * fills err with one line per problem, each "FILE:LINE:COLUMN: key 'a.b': what
 * is wrong" (or "environment SALESD_X: ..." for overrides, "FILE: ..." when
 * there is no position). *ret is untouched on failure. */
int config_load(const char *path, Config **ret, char *err, size_t errlen);

/* Frees c and every string it owns; accepts NULL. */
void config_free(Config *c);

/* Writes the effective configuration as YAML that config_load would accept,
 * every key included, secrets (passwords in conninfo, resolved passwords and
 * tokens) never shown.  Returns 0 or -errno. */
int config_print(const Config *c, FILE *f);

/* True when a change from old to new can be applied by SIGHUP without a
 * restart.  When false, why names the first key that needs a restart. */
bool config_reloadable(const Config *old_config, const Config *new_config, const char **why);

/* True when new_config reaches ClickHouse differently (any clickhouse.* key
 * or the resolved password): the daemon verifies the schema with it before
 * a reload takes effect. */
bool config_clickhouse_changed(const Config *old_config, const Config *new_config);

/* Returns a copy of a libpq conninfo (keyword=value or URI) that shows no
 * password, for logs and check-config; libpq's own parser decides.  Without
 * a password: the text as written.  With one: re-emitted as keyword=value
 * pairs (in libpq's order, a URI too) with password=********.  Text libpq
 * cannot parse: "********".  NULL for NULL or out of memory; caller frees. */
char *config_mask_conninfo(const char *conninfo);

/* The names of every key the table knows, dotted ("postgres.conninfo"),
 * NULL-terminated; for the documentation check. */
const char *const *config_known_keys(void);
