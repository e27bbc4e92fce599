/* The key table: every configuration key, once.  Parsing, defaults,
 * validation, SALESD_* overrides, secrets, check-config output, the reload
 * policy and the generated documentation (docs/configuration.md, the example
 * config/salesd.yaml: `make config-docs`) all read it; no code anywhere
 * names a key.  Adding a key means adding a row here and a Config field. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "macro.h"

#define OFF(field) offsetof(Config, field)

const KeyDef config_keys[] = {
        {
                .name = "instance",
                .type = KEY_STRING,
                .def = "",
                .restart_only = true,
                .offset = OFF(instance),
                .check = config_check_text,
                .doc = "name of this instance in salesd_runs and salesd_heartbeat; empty: the hostname",
                .doc_more = "Give each host of a high-availability pair its own name.",
        },
        {
                .name = "timezone",
                .type = KEY_STRING,
                .def = "UTC",
                .required = true,
                .offset = OFF(timezone),
                .check = config_check_timezone,
                .doc = "IANA time zone that decides the calendar day and the schedule",
                .doc_type = "time zone",
                .doc_more = "An IANA name such as `Europe/Berlin`: a zone file under `/usr/share/zoneinfo` "
                            "(or `$TZDIR`).",
        },
        {
                .name = "schedule",
                .type = KEY_STRING,
                .def = "0 */6 * * *",
                .required = true,
                .offset = OFF(schedule),
                .check = config_check_schedule,
                .doc = "5-field cron expression, evaluated in timezone",
                .doc_type = "cron",
                .doc_more = "Minute hour day-of-month month day-of-week; also `@hourly`, `@daily` etc. See "
                            "`docs/schedule.md`.",
        },
        {
                .name = "run_on_start",
                .type = KEY_BOOL,
                .def = "true",
                .offset = OFF(run_on_start),
                .doc = "run once when the daemon starts",
        },
        {
                .name = "overlap",
                .type = KEY_DURATION,
                .def = "15m",
                .offset = OFF(overlap),
                .min = 0,
                .max = 7 * USEC_PER_DAY,
                .doc = "watermark look-back for late-committing transactions",
        },
        {
                .name = "reconcile_days",
                .type = KEY_UINT,
                .def = "1",
                .offset = OFF(reconcile_days),
                .min = 0,
                .max = 3660,
                .doc = "previous days recomputed on every run",
                .doc_more = "Today is always recomputed.",
        },
        {
                .name = "run_timeout",
                .type = KEY_DURATION,
                .def = "30m",
                .offset = OFF(run_timeout),
                .min = USEC_PER_SEC,
                .max = 7 * USEC_PER_DAY,
                .doc = "deadline of one run in the daemon",
                .doc_more = "A run still going at its deadline is cancelled and `/healthz` reports it `overdue` "
                            "(status `failing`, 503); if it still does not end, the watchdog pings stop so that "
                            "systemd restarts salesd. Keep it above the longest honest run (a first run over the "
                            "whole history).",
        },
        {
                .name = "heartbeat_interval",
                .type = KEY_DURATION,
                .def = "60s",
                .offset = OFF(heartbeat_interval),
                .min = USEC_PER_SEC,
                .max = USEC_PER_DAY,
                .doc = "how often the heartbeat row is written",
                .doc_more = "The row is in `salesd_heartbeat`.",
        },
        {
                .name = "log_level",
                .type = KEY_LOGLEVEL,
                .def = "info",
                .offset = OFF(log_level),
                .doc = "error, warning, notice, info or debug",
        },
        {
                .name = "postgres.conninfo",
                .type = KEY_STRING,
                .def = "host=127.0.0.1 port=5432 dbname=shop user=salesd",
                .required = true,
                .offset = OFF(postgres.conninfo),
                .check = config_check_conninfo,
                .mask = config_mask_conninfo,
                .doc = "libpq connection string (keyword=value or URI)",
                .doc_more = "Must parse. Prefer a password file over a password in here; check-config shows a "
                            "password in it as `********`.",
        },
        {
                .name = "postgres.password_file",
                .type = KEY_STRING,
                .def = "",
                .offset = OFF(postgres.password_file),
                .check = config_check_text,
                .secret = "password",
                .credential = "pg-password",
                .secret_offset = OFF(postgres.password),
                .doc = "file holding the Postgres password",
                .doc_type = "path",
                .doc_more = "Without either, libpq's own: `PGPASSWORD`, `~/.pgpass`.",
        },
        {
                .name = "postgres.orders_table",
                .type = KEY_STRING,
                .def = "public.orders",
                .required = true,
                .offset = OFF(postgres.orders_table),
                .check = config_check_table,
                .doc = "orders table or view ([schema.]name)",
                .doc_type = "table",
                .doc_more = "Letters, digits and `_`; create a view for other names.",
        },
        {
                .name = "postgres.order_items_table",
                .type = KEY_STRING,
                .def = "public.order_items",
                .required = true,
                .offset = OFF(postgres.order_items_table),
                .check = config_check_table,
                .doc = "order items table or view ([schema.]name)",
                .doc_type = "table",
        },
        {
                .name = "postgres.tombstones_table",
                .type = KEY_STRING,
                .def = "",
                .offset = OFF(postgres.tombstones_table),
                .check = config_check_table,
                .doc = "tombstone table ([schema.]name); empty: no tombstones",
                .doc_type = "table",
                .doc_more = "The table of the optional delete triggers, e.g. `public.salesd_tombstones`.",
        },
        {
                .name = "postgres.completed_statuses",
                .type = KEY_STRLIST,
                .def = "completed",
                .required = true,
                .offset = OFF(postgres.completed_statuses),
                .check = config_check_text,
                .doc = "order statuses that count as sales",
                .doc_more = "Items must not be empty.",
        },
        {
                .name = "postgres.statement_timeout",
                .type = KEY_DURATION,
                .def = "5m",
                .offset = OFF(postgres.statement_timeout),
                .min = 0,
                .max = 24 * USEC_PER_DAY,
                .doc = "per-statement timeout on the source; 0: none",
        },
        {
                .name = "postgres.connect_timeout",
                .type = KEY_DURATION,
                .def = "10s",
                .offset = OFF(postgres.connect_timeout),
                .min = 2 * USEC_PER_SEC,
                .max = USEC_PER_HOUR,
                .doc = "time allowed to establish a Postgres connection",
                .doc_more = "libpq's `connect_timeout`, whole seconds. Like the keys below it applies to every "
                            "Postgres connection salesd opens (runs, `notify.channel`); the same keyword in "
                            "`postgres.conninfo` takes precedence.",
        },
        {
                .name = "postgres.keepalives_idle",
                .type = KEY_DURATION,
                .def = "15s",
                .offset = OFF(postgres.keepalives_idle),
                .min = USEC_PER_SEC,
                .max = USEC_PER_DAY,
                .doc = "silence on a Postgres connection before TCP keepalive probes start",
                .doc_more = "Set on both ends (libpq's `keepalives_idle` and the session's "
                            "`tcp_keepalives_idle`): a host that vanishes while a statement runs is noticed by "
                            "the probes, and the server drops the session (and its advisory lock) in turn.",
        },
        {
                .name = "postgres.keepalives_interval",
                .type = KEY_DURATION,
                .def = "5s",
                .offset = OFF(postgres.keepalives_interval),
                .min = USEC_PER_SEC,
                .max = USEC_PER_HOUR,
                .doc = "time between unanswered TCP keepalive probes",
        },
        {
                .name = "postgres.keepalives_count",
                .type = KEY_UINT,
                .def = "3",
                .offset = OFF(postgres.keepalives_count),
                .min = 1,
                .max = 100,
                .doc = "unanswered TCP keepalive probes before the connection is dropped",
        },
        {
                .name = "postgres.tcp_user_timeout",
                .type = KEY_DURATION,
                .def = "30s",
                .offset = OFF(postgres.tcp_user_timeout),
                .min = 0,
                .max = USEC_PER_DAY,
                .doc = "how long sent data may stay unacknowledged before the connection is dropped; 0: OS default",
                .doc_more = "TCP_USER_TIMEOUT on both ends. It also bounds the keepalive probes: with the "
                            "defaults a silently vanished host fails the run within about 30 s.",
        },
        {
                .name = "postgres.lock_key",
                .type = KEY_INT64,
                .def = "7345001",
                .restart_only = true,
                .offset = OFF(postgres.lock_key),
                .doc = "advisory lock key shared by all instances",
                .doc_more = "Every instance of one deployment must use the same key; only the holder runs. A "
                            "restart applies it, so two hosts never compute at once on different keys.",
        },
        {
                .name = "postgres.primary_conninfo",
                .type = KEY_STRING,
                .def = "",
                .offset = OFF(postgres.primary_conninfo),
                .check = config_check_conninfo,
                .mask = config_mask_conninfo,
                .doc = "libpq connection string of the primary when postgres.conninfo is a hot standby",
                .doc_more = "Required when `postgres.conninfo` is a streaming standby (`pg_is_in_recovery()`; "
                            "without it `once`, `backfill`, `verify` and the daemon's start run exit 78): "
                            "salesd then takes the advisory lock, the late-commit guard and "
                            "`pg_current_wal_insert_lsn()` on the primary, waits until the standby has replayed "
                            "up to that position, and aggregates on the standby. `notify.channel` listens here. "
                            "The same password sources as `postgres.conninfo` apply; check-config shows a password "
                            "in it as `********`. Ignored (with a warning) while `postgres.conninfo` is not a "
                            "standby, for instance after it was promoted.",
        },
        {
                .name = "postgres.max_replica_lag",
                .type = KEY_DURATION,
                .def = "60s",
                .offset = OFF(postgres.max_replica_lag),
                .min = USEC_PER_MSEC,
                .max = USEC_PER_DAY,
                .doc = "how long a run waits for the standby to replay the primary's WAL",
                .doc_more = "Only with `postgres.primary_conninfo`. Past it the run fails (`once`: exit 69) "
                            "naming both servers and how far the standby is behind; nothing is written, and the "
                            "next run tries again.",
        },
        {
                .name = "clickhouse.url",
                .type = KEY_STRLIST,
                .def = "http://127.0.0.1:8123",
                .required = true,
                .scalar_ok = true,
                .offset = OFF(clickhouse.url),
                .check = config_check_url,
                .mask = config_mask_url,
                .doc = "ClickHouse HTTP interface: one URL, or a list of the replicas of one shard",
                .doc_type = "URL or list of URLs",
                .doc_more = "`http://` or `https://`; no user or password in it (use `clickhouse.user` and "
                            "`clickhouse.password_file`). With a list (which needs `clickhouse.cluster`), "
                            "requests go to the current replica, at first the first one; a request that finds "
                            "it unreachable, timing out or unable to serve (read-only, ZooKeeper session lost) "
                            "moves to the next in list order, and the one that answers stays current (shown in "
                            "`/healthz` and `/metrics`). `SALESD_CLICKHOUSE_URL` takes the list comma-separated. "
                            "See `docs/operations.md` (ClickHouse cluster).",
        },
        {
                .name = "clickhouse.cluster",
                .type = KEY_STRING,
                .def = "",
                .restart_only = true,
                .offset = OFF(clickhouse.cluster),
                .check = config_check_ch_cluster,
                .doc = "the replicas' cluster in `<remote_servers>`, for ON CLUSTER DDL and Replicated engines; empty: "
                       "one "
                       "server",
                .doc_type = "name",
                .doc_more = "With a name, `init-schema` and the daemon's start create every table `ON CLUSTER` "
                            "with the `Replicated` form of its engine and verify the schema on every URL of "
                            "`clickhouse.url` (list every replica there). Letters, digits, `_` and `-`. A restart "
                            "applies a change (the tables' engines follow it).",
        },
        {
                .name = "clickhouse.zookeeper_path",
                .type = KEY_STRING,
                .def = "/clickhouse/tables/{shard}/{database}",
                .required = true,
                .restart_only = true,
                .offset = OFF(clickhouse.zookeeper_path),
                .check = config_check_zookeeper_path,
                .doc = "ZooKeeper path prefix of the replicated tables; the table's name is appended",
                .doc_type = "path",
                .doc_more = "Used with `clickhouse.cluster`. salesd replaces `{database}` with "
                            "`clickhouse.database` (ClickHouse 18.16 does not know that macro); `{shard}` and other "
                            "macros are the servers' `<macros>`. The replica name is always `{replica}`.",
        },
        {
                .name = "clickhouse.insert_quorum",
                .type = KEY_UINT,
                .def = "0",
                .offset = OFF(clickhouse.insert_quorum),
                .min = 0,
                .max = 100,
                .doc = "replicas that must confirm every insert; 0: off",
                .doc_more = "Sent as `insert_quorum` with `insert_quorum_timeout` of three quarters of "
                            "`clickhouse.timeout` (a replica killed without a clean stop counts as alive until its "
                            "ZooKeeper session expires); reads then use `select_sequential_consistency=1`. An "
                            "insert refused for too few live replicas fails the run with the server's error and "
                            "writes nothing (see `docs/operations.md` for a replica killed during a quorum insert).",
        },
        {
                .name = "clickhouse.database",
                .type = KEY_STRING,
                .def = "default",
                .required = true,
                .offset = OFF(clickhouse.database),
                .check = config_check_ch_identifier,
                .doc = "database holding the salesd tables",
                .doc_type = "name",
                .doc_more = "Letters, digits and `_`.",
        },
        {
                .name = "clickhouse.user",
                .type = KEY_STRING,
                .def = "default",
                .required = true,
                .offset = OFF(clickhouse.user),
                .check = config_check_text,
                .doc = "ClickHouse user",
        },
        {
                .name = "clickhouse.password_file",
                .type = KEY_STRING,
                .def = "",
                .offset = OFF(clickhouse.password_file),
                .check = config_check_text,
                .secret = "password",
                .credential = "ch-password",
                .secret_offset = OFF(clickhouse.password),
                .doc = "file holding the ClickHouse password",
                .doc_type = "path",
                .doc_more = "Without either: no password.",
        },
        {
                .name = "clickhouse.timeout",
                .type = KEY_DURATION,
                .def = "30s",
                .offset = OFF(clickhouse.timeout),
                .min = USEC_PER_MSEC,
                .max = USEC_PER_DAY,
                .doc = "timeout of one ClickHouse request",
        },
        {
                .name = "clickhouse.retries",
                .type = KEY_UINT,
                .def = "5",
                .offset = OFF(clickhouse.retries),
                .min = 0,
                .max = 100,
                .doc = "retries of a failed request, exponential backoff with jitter",
        },
        {
                .name = "http.listen",
                .type = KEY_STRING,
                .def = "127.0.0.1:8787",
                .restart_only = true,
                .offset = OFF(http.listen),
                .check = config_check_listen,
                .doc = "HOST:PORT or [V6]:PORT of the HTTP endpoint; empty: no endpoint",
                .doc_type = "address",
                .doc_more = "Serves `/healthz`, `/readyz`, `/metrics` and `/run`. HOST is an IP address or a "
                            "host name; port 1 to 65535. The socket is bound once at start.",
        },
        {
                .name = "http.token_file",
                .type = KEY_STRING,
                .def = "",
                .offset = OFF(http.token_file),
                .check = config_check_text,
                .secret = "token",
                .credential = "http-token",
                .secret_offset = OFF(http.token),
                .doc = "file holding the bearer token for POST /run",
                .doc_type = "path",
                .doc_more = "No token: `POST /run` answers 403.",
        },
        {
                .name = "notify.channel",
                .type = KEY_STRING,
                .def = "",
                .restart_only = true,
                .offset = OFF(notify.channel),
                .check = config_check_channel,
                .doc = "Postgres LISTEN channel that triggers a run; empty: off",
                .doc_type = "name",
                .doc_more = "The listening connection is set up at start.",
        },
        {
                .name = "notify.debounce",
                .type = KEY_DURATION,
                .def = "250ms",
                .offset = OFF(notify.debounce),
                .min = 0,
                .max = USEC_PER_HOUR,
                .doc = "wait after a notification before the run starts",
                .doc_more = "Notifications meanwhile join that run, so a burst of commits gives one run; one that "
                            "arrives during a run queues exactly one follow-up.",
        },
        {
                .name = "audit.days_per_run",
                .type = KEY_UINT,
                .def = "3",
                .offset = OFF(audit.days_per_run),
                .min = 0,
                .max = 3660,
                .doc = "random days of audit.window the daemon re-verifies after each successful run; 0: off",
                .doc_more = "Checked outside the lock, on the run's worker, like `salesd verify`; days the next run "
                            "recomputes anyway are left out. A mismatch is logged at warning, counted in `/metrics` "
                            "and `/healthz`, and the next run recomputes the day.",
        },
        {
                .name = "audit.window",
                .type = KEY_DURATION,
                .def = "400d",
                .offset = OFF(audit.window),
                .min = USEC_PER_DAY,
                .max = 36600 * USEC_PER_DAY,
                .doc = "how far back the continuous audit picks its days",
                .doc_more = "Whole days, counted back from today in `timezone`.",
        },
};

const size_t config_n_keys = ELEMENTSOF(config_keys);

const KeySection config_sections[] = {
        { "postgres", "the shop database" },
        { "clickhouse", "the destination" },
        { "http", "the status endpoint" },
        { "notify", "near-real-time runs" },
        { "audit", "proving the numbers (continuous audit)" },
        { NULL, NULL },
};

size_t config_key_index(const char *name) {
        for (size_t i = 0; i < config_n_keys; i++)
                if (strcmp(config_keys[i].name, name) == 0)
                        return i;
        return config_n_keys;
}

bool config_key_is_section(const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; i < config_n_keys; i++)
                if (strncmp(config_keys[i].name, name, n) == 0 && config_keys[i].name[n] == '.')
                        return true;
        return false;
}

void config_key_env_name(const KeyDef *k, char *buf, size_t len) {
        size_t o = 0;
        const char *prefix = "SALESD_";
        for (const char *p = prefix; *p && o + 1 < len; p++)
                buf[o++] = *p;
        for (const char *p = k->name; *p && o + 1 < len; p++)
                buf[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        buf[o] = '\0';
}

static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return SIZE_MAX;
        size_t row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

const char *config_key_suggest(const char *name, char *buf, size_t len) {
        size_t best = 3;
        const char *found = NULL;

        for (size_t i = 0; i < config_n_keys; i++) {
                /* Compare against the key and against each of its section prefixes. */
                const char *k = config_keys[i].name;
                for (const char *dot = k;; dot++) {
                        if (*dot != '.' && *dot != '\0')
                                continue;
                        size_t l = (size_t)(dot - k);
                        char cand[128];
                        if (l < len && l < sizeof(cand)) {
                                memcpy(cand, k, l);
                                cand[l] = '\0';
                                size_t d = edit_distance(name, cand);
                                if (d < best) {
                                        best = d;
                                        snprintf(buf, len, "%s", cand);
                                        found = buf;
                                }
                        }
                        if (*dot == '\0')
                                break;
                }
        }
        return found;
}

const char *const *config_known_keys(void) {
        /* Derived from the table so the documentation check can never drift from it. */
        static const char *names[ELEMENTSOF(config_keys) + 1];
        if (!names[0])
                for (size_t i = 0; i < config_n_keys; i++)
                        names[i] = config_keys[i].name;
        return names;
}
