/* See sink.h.  The ClickHouse sink: every statement a run sends to
 * ClickHouse, over one ch.h client, with its TabSeparated row formats.
 * DateTime columns are declared DateTime('UTC') and written as Unix seconds
 * (SPEC §3), zero-padded to 10 digits for 18.16. */
#include "sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ch.h"
#include "macro.h"
#include "text.h"
#include "tsv.h"

#define WATERMARK_NAME "watermark"

/* Stored rows are read this many days per query (see ch_read_days()). */
#define READ_CHUNK_DAYS 1000

#define SELECT_WATERMARK                                                                                \
        "SELECT value FROM salesd_state FINAL WHERE name = '" WATERMARK_NAME "' ORDER BY version DESC " \
        "LIMIT 1 FORMAT TabSeparated"
#define SELECT_DAYS                                                                              \
        "SELECT date, total_orders, total_items_sold, total_revenue, total_cost, total_profit, " \
        "average_order_value, version FROM daily_sales_stats FINAL WHERE date"
#define INSERT_DAYS                                                                                        \
        "INSERT INTO daily_sales_stats (date, total_orders, total_items_sold, total_revenue, total_cost, " \
        "total_profit, average_order_value, computed_at, version) FORMAT TabSeparated"
#define INSERT_STATE "INSERT INTO salesd_state (name, value, version) FORMAT TabSeparated"
#define INSERT_RUNS                                                                                              \
        "INSERT INTO salesd_runs (run_id, instance, trigger, started_at, finished_at, status, days_recomputed, " \
        "days_written, error) FORMAT TabSeparated"
#define INSERT_HEARTBEAT \
        "INSERT INTO salesd_heartbeat (instance, ts, state, last_success, next_run) FORMAT TabSeparated"

typedef struct ChSink {
        Sink base;
        ChClient *ch;
} ChSink;

static ChClient *client(Sink *s) {
        return ((ChSink *)s)->ch;
}

/* ---- row formats ---- */

static uint64_t unix_seconds(usec_t t) {
        return t / USEC_PER_SEC;
}

int sink_format_day(Buf *b, const DayStats *s, usec_t computed_at, uint64_t version) {
        char day[DAY_STRLEN], rev[MONEY_STRLEN], cost[MONEY_STRLEN], profit[MONEY_STRLEN], aov[MONEY_STRLEN];
        return buf_printf(b, "%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%s\t%s\t%010" PRIu64 "\t%" PRIu64 "\n",
                          day_format(s->day, day), s->total_orders, s->total_items_sold,
                          money_format(s->total_revenue, rev, sizeof(rev)),
                          money_format(s->total_cost, cost, sizeof(cost)),
                          money_format(s->total_profit, profit, sizeof(profit)),
                          money_format(s->average_order_value, aov, sizeof(aov)), unix_seconds(computed_at), version);
}

/* 18.16 prints day 0 (1970-01-01) as 0000-00-00. */
static int parse_stored_date(const char *s, Day *ret) {
        if (strcmp(s, "0000-00-00") == 0) {
                *ret = DAY_STORABLE_FIRST;
                return 0;
        }
        return day_parse(s, ret);
}

int sink_parse_day(char *line, StoredDay *ret, char *err, size_t errlen) {
        static const char *const names[] = { "date",       "total_orders", "total_items_sold",    "total_revenue",
                                             "total_cost", "total_profit", "average_order_value", "version" };
        char *f[ELEMENTSOF(names) + 1];
        StoredDay d = { 0 };
        int n = tsv_split(line, f, ELEMENTSOF(f));

        if (n != (int)ELEMENTSOF(names)) {
                if (n < 0)
                        snprintf(err, errlen, "malformed TabSeparated");
                else
                        snprintf(err, errlen, "expected %zu columns, got %d", ELEMENTSOF(names), n);
                return -EINVAL;
        }
        int bad = parse_stored_date(f[0], &d.stats.day) < 0             ? 0
                  : text_parse_u64(f[1], &d.stats.total_orders) < 0     ? 1
                  : text_parse_u64(f[2], &d.stats.total_items_sold) < 0 ? 2
                  : money_parse(f[3], &d.stats.total_revenue) < 0       ? 3
                  : money_parse(f[4], &d.stats.total_cost) < 0          ? 4
                  : money_parse(f[5], &d.stats.total_profit) < 0        ? 5
                  : money_parse(f[6], &d.stats.average_order_value) < 0 ? 6
                  : text_parse_u64(f[7], &d.version) < 0                ? 7
                                                                        : -1;
        if (bad >= 0) {
                snprintf(err, errlen, "field %s: cannot parse '%.40s'", names[bad], f[bad]);
                return -EINVAL;
        }
        *ret = d;
        return 0;
}

int sink_format_run(Buf *b, const RunRecord *r, const char *instance) {
        int k = tsv_append_escaped(b, r->run_id);
        k = k ? k : buf_puts(b, "\t");
        k = k ? k : tsv_append_escaped(b, instance);
        k = k ? k : buf_puts(b, "\t");
        k = k ? k : tsv_append_escaped(b, r->trigger);
        k = k ? k
              : buf_printf(b, "\t%010" PRIu64 "\t%010" PRIu64 "\t%s\t%u\t%u\t", unix_seconds(r->started_at),
                           unix_seconds(r->finished_at), run_status_to_string(r->status), r->days_recomputed,
                           r->days_written);
        k = k ? k : tsv_append_escaped(b, r->error);
        return k ? k : buf_puts(b, "\n");
}

static int format_heartbeat(Buf *b, const HeartbeatRow *h) {
        int k = tsv_append_escaped(b, h->instance);
        return k ? k
                 : buf_printf(b, "\t%010" PRIu64 "\t%s\t%010" PRIu64 "\t%010" PRIu64 "\n", unix_seconds(h->ts),
                              h->state, unix_seconds(h->last_success), unix_seconds(h->next_run));
}

/* ---- operations ---- */

static int ch_read_watermark(Sink *s, char ret[WATERMARK_STRLEN], char *err, size_t errlen) {
        _cleanup_free_ char *body = NULL;
        int r = ch_query(client(s), SELECT_WATERMARK, NULL, 0, &body, err, errlen);
        if (r < 0)
                return r;
        char *cursor = body, *line = tsv_next_line(&cursor);
        usec_t t;
        ret[0] = '\0';
        if (!line)
                return 0;
        if (watermark_parse(line, &t) < 0) {
                snprintf(err, errlen,
                         "clickhouse %s: salesd_state holds an unusable watermark '%.60s' (expected "
                         "YYYY-MM-DDTHH:MM:SS.ffffffZ; delete that row to recompute the whole history)",
                         ch_client_url(client(s)), line);
                return -EPROTO;
        }
        snprintf(ret, WATERMARK_STRLEN, "%s", line);
        return 0;
}

static int parse_days(ChClient *ch, char *body, StoredDay **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ StoredDay *stored = NULL;
        size_t count = 0, cap = 0;
        char *cursor = body, *line;

        while ((line = tsv_next_line(&cursor))) {
                char inner[256];
                if (count == cap) {
                        cap = cap ? 2 * cap : 16;
                        StoredDay *p = realloc(stored, cap * sizeof(StoredDay));
                        if (!p)
                                return -ENOMEM;
                        stored = p;
                }
                if (sink_parse_day(line, &stored[count], inner, sizeof(inner)) < 0) {
                        snprintf(err, errlen, "clickhouse %s: unexpected row from daily_sales_stats: %s",
                                 ch_client_url(ch), inner);
                        return -EINVAL;
                }
                count++;
        }
        *ret = TAKE_PTR(stored);
        *ret_n = count;
        return 0;
}

/* Appends item i of a list to an IN (...) list. */
typedef int (*ItemFormat)(Buf *b, const void *items, size_t i);

/* Runs "<head> IN (<items>) FORMAT TabSeparated"; head ends with the
 * column name. */
static int select_in(Sink *s, const char *head, const void *items, size_t n, ItemFormat format, char **ret_body,
                     char *err, size_t errlen) {
        _cleanup_(buf_free) Buf sql = { 0 };
        int r = buf_printf(&sql, "%s IN (", head);
        for (size_t i = 0; i < n && r == 0; i++) {
                r = i ? buf_puts(&sql, ", ") : 0;
                r = r ? r : format(&sql, items, i);
        }
        if (r == 0)
                r = buf_puts(&sql, ") FORMAT TabSeparated");
        return r < 0 ? r : ch_query(client(s), sql.data, NULL, 0, ret_body, err, errlen);
}

static int format_day(Buf *b, const void *items, size_t i) {
        char d[DAY_STRLEN];
        return buf_printf(b, "toDate('%s')", day_format(((const Day *)items)[i], d));
}

/* One query per READ_CHUNK_DAYS days: an IN list of a long backfill's
 * days (12,000 days: 260 KB) would pass ClickHouse's max_query_size
 * (256 KiB by default; 18.16 refuses it). */
static int ch_read_days(Sink *s, const Day *days, size_t n, StoredDay **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ StoredDay *all = NULL;
        size_t n_all = 0;
        for (size_t at = 0; at < n; at += READ_CHUNK_DAYS) {
                _cleanup_free_ char *body = NULL;
                _cleanup_free_ StoredDay *part = NULL;
                size_t got = 0;
                int r = select_in(s, SELECT_DAYS, days + at, MIN(n - at, (size_t)READ_CHUNK_DAYS), format_day, &body,
                                  err, errlen);
                if (r == 0)
                        r = parse_days(client(s), body, &part, &got, err, errlen);
                if (r < 0)
                        return r;
                StoredDay *grown = realloc(all, (n_all + got + 1) * sizeof(StoredDay));
                if (!grown)
                        return -ENOMEM;
                all = grown;
                if (got)
                        memcpy(all + n_all, part, got * sizeof(StoredDay));
                n_all += got;
        }
        *ret = TAKE_PTR(all);
        *ret_n = n_all;
        return 0;
}

static int ch_insert_days(Sink *s, const DayStats *days, const uint64_t *versions, size_t n, usec_t computed_at,
                          const char *query_id, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf body = { 0 };
        int r = ch_client_set_query_id(client(s), query_id);
        for (size_t i = 0; i < n && r == 0; i++)
                r = sink_format_day(&body, &days[i], computed_at, versions[i]);
        if (r == 0)
                r = ch_query(client(s), INSERT_DAYS, body.data, CH_NO_RETRY, NULL, err, errlen);
        (void)ch_client_set_query_id(client(s), NULL);
        return r;
}

/* KILL QUERY ... SYNC returns once the statement is gone (cancelled, or
 * finished meanwhile); a statement the server no longer (or not yet) lists
 * is not an error.  18.16 lists an INSERT only once its body arrived, which
 * is why every attempt also takes a new version. */
static int ch_end_query(Sink *s, const char *query_id, char *err, size_t errlen) {
        _cleanup_free_ char *lit = ch_quote_string(query_id);
        _cleanup_(buf_free) Buf sql = { 0 };
        if (!lit || buf_printf(&sql, "KILL QUERY WHERE query_id = %s SYNC FORMAT TabSeparated", lit) < 0)
                return -ENOMEM;
        return ch_query(client(s), sql.data, NULL, 0, NULL, err, errlen);
}

static int ch_write_watermark(Sink *s, const char *value, uint64_t version, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf body = { 0 };
        int r = buf_printf(&body, WATERMARK_NAME "\t%s\t%" PRIu64 "\n", value, version);
        return r < 0 ? r : ch_query(client(s), INSERT_STATE, body.data, 0, NULL, err, errlen);
}

static int format_run_id(Buf *b, const void *items, size_t i) {
        /* UUID text: nothing to escape */
        return buf_printf(b, "'%s'", ((const RunRecord *)items)[i].run_id);
}

static int ch_runs_stored(Sink *s, const RunRecord *rows, size_t n, bool *ret_stored, char *err, size_t errlen) {
        _cleanup_free_ char *body = NULL;
        char head[128];
        usec_t oldest = UINT64_MAX;
        for (size_t i = 0; i < n; i++)
                oldest = MIN(oldest, rows[i].started_at);
        /* started_at bounds the scan to the parts of the backlog's time */
        snprintf(head, sizeof(head),
                 "SELECT run_id FROM salesd_runs WHERE started_at >= toDateTime(%" PRIu64 ") AND run_id",
                 n ? unix_seconds(oldest) : 0);
        int r = select_in(s, head, rows, n, format_run_id, &body, err, errlen);
        if (r < 0)
                return r;
        memset(ret_stored, 0, n * sizeof(bool));
        char *cursor = body, *line;
        while ((line = tsv_next_line(&cursor)))
                for (size_t i = 0; i < n; i++)
                        if (strcmp(line, rows[i].run_id) == 0)
                                ret_stored[i] = true;
        return 0;
}

static int ch_insert_runs(Sink *s, const RunRecord *const *rows, size_t n, const char *instance, char *err,
                          size_t errlen) {
        _cleanup_(buf_free) Buf body = { 0 };
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                r = sink_format_run(&body, rows[i], instance);
        return r < 0 ? r : ch_query(client(s), INSERT_RUNS, body.data, CH_NO_RETRY, NULL, err, errlen);
}

static int ch_write_heartbeat(Sink *s, const HeartbeatRow *h, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf body = { 0 };
        int r = format_heartbeat(&body, h);
        return r < 0 ? r : ch_query(client(s), INSERT_HEARTBEAT, body.data, CH_NO_RETRY, NULL, err, errlen);
}

static int ch_backoff(Sink *s, unsigned attempt) {
        return ch_client_backoff(client(s), attempt);
}

static void ch_set_cancel(Sink *s, const atomic_bool *flag) {
        ch_client_set_cancel_flag(client(s), flag);
}

static void ch_free(Sink *s) {
        ch_client_free(client(s));
        free(s);
}

static const SinkOps clickhouse_ops = {
        .read_watermark = ch_read_watermark,
        .read_days = ch_read_days,
        .insert_days = ch_insert_days,
        .end_query = ch_end_query,
        .write_watermark = ch_write_watermark,
        .runs_stored = ch_runs_stored,
        .insert_runs = ch_insert_runs,
        .write_heartbeat = ch_write_heartbeat,
        .backoff = ch_backoff,
        .set_cancel = ch_set_cancel,
        .free = ch_free,
};

int sink_clickhouse_new(const ClickHouseConfig *c, Sink **ret, char *err, size_t errlen) {
        ChSink *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &clickhouse_ops;
        int r = ch_client_new(c, &s->ch, err, errlen);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = &s->base;
        return 0;
}

int sink_heartbeat_once(const ClickHouseConfig *c, const HeartbeatRow *h, const atomic_bool *cancel, char *err,
                        size_t errlen) {
        _cleanup_(sink_freep) Sink *s = NULL;
        int r = sink_clickhouse_new(c, &s, err, errlen);
        if (r < 0)
                return r;
        sink_set_cancel(s, cancel);
        return sink_write_heartbeat(s, h, err, errlen);
}
