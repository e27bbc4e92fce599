/* See run.h. */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "ch.h"
#include "log.h"
#include "metrics.h"
#include "tsv.h"
#include "watermark.h"

#define INSERT_STATS                                                                                       \
        "INSERT INTO daily_sales_stats (date, total_orders, total_items_sold, total_revenue, total_cost, " \
        "total_profit, average_order_value, computed_at, version) FORMAT TabSeparated"
#define INSERT_RUNS                                                                                              \
        "INSERT INTO salesd_runs (run_id, instance, trigger, started_at, finished_at, status, days_recomputed, " \
        "days_written, error) FORMAT TabSeparated"
#define INSERT_HEARTBEAT \
        "INSERT INTO salesd_heartbeat (instance, ts, state, last_success, next_run) FORMAT TabSeparated"
#define INSERT_STATE   "INSERT INTO salesd_state (name, value, version) FORMAT TabSeparated"
#define WATERMARK_NAME "watermark"

usec_t run_now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

void run_new_id(char ret[37]) {
        uint8_t b[16];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
                /* getrandom only fails before the pool is seeded; a time-based
                 * id is still unique enough for a log table. */
                uint64_t t = run_now_realtime();
                for (size_t i = 0; i < sizeof(b); i++)
                        b[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
        }
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- the salesd_runs backlog ---- */

void run_row_queue_init(RunRowQueue *q) {
        memset(q, 0, sizeof(*q));
        pthread_mutex_init(&q->lock, NULL);
}

void run_row_queue_done(RunRowQueue *q) {
        pthread_mutex_destroy(&q->lock);
}

void run_row_queue_push(RunRowQueue *q, const RunRecord *r) {
        pthread_mutex_lock(&q->lock);
        if (q->count == RUN_ROWS_BACKLOG_MAX) {
                q->head = (q->head + 1) % RUN_ROWS_BACKLOG_MAX;
                q->count--;
                q->dropped++;
        }
        q->rows[(q->head + q->count) % RUN_ROWS_BACKLOG_MAX] = *r;
        q->count++;
        pthread_mutex_unlock(&q->lock);
}

size_t run_row_queue_pending(RunRowQueue *q, uint64_t *ret_dropped) {
        pthread_mutex_lock(&q->lock);
        size_t n = q->count;
        if (ret_dropped)
                *ret_dropped = q->dropped;
        pthread_mutex_unlock(&q->lock);
        return n;
}

/* DateTime columns get Unix seconds padded to 10 digits (see metrics.h). */
static int append_run_row(Buf *b, const RunRecord *r, const char *instance) {
        int rc = 0;
        rc = rc ? rc : tsv_append_escaped(b, r->run_id);
        rc = rc ? rc : buf_puts(b, "\t");
        rc = rc ? rc : tsv_append_escaped(b, instance);
        rc = rc ? rc : buf_puts(b, "\t");
        rc = rc ? rc : tsv_append_escaped(b, r->trigger);
        rc = rc ? rc
                : buf_printf(b, "\t%010" PRIu64 "\t%010" PRIu64 "\t%s\t%u\t%u\t", r->started_at / USEC_PER_SEC,
                             r->finished_at / USEC_PER_SEC, run_status_to_string(r->status), r->days_recomputed,
                             r->days_written);
        rc = rc ? rc : tsv_append_escaped(b, r->error);
        return rc ? rc : buf_puts(b, "\n");
}

/* The run_ids among the backlog that are already stored: a backlog row may
 * come from an insert whose answer was lost, and salesd_runs (a plain
 * MergeTree) would keep a second copy. */
static char *stored_run_ids(ChClient *ch, RunRowQueue *q, size_t n) {
        Buf sql = { 0 };
        char err[256], *body = NULL;
        int r = buf_puts(&sql, "SELECT run_id FROM salesd_runs WHERE run_id IN (");
        pthread_mutex_lock(&q->lock);
        for (size_t i = 0; i < n && r == 0; i++)
                r = buf_printf(&sql, "%s'%s'", i ? ", " : "", q->rows[(q->head + i) % RUN_ROWS_BACKLOG_MAX].run_id);
        pthread_mutex_unlock(&q->lock);
        if (r == 0)
                r = buf_puts(&sql, ") FORMAT TabSeparated");
        if (r == 0)
                r = ch_query(ch, sql.data, NULL, 0, &body, err, sizeof(err));
        buf_free(&sql);
        return r < 0 ? NULL : body;
}

/* Writes the backlog and r in one insert; on failure r joins the backlog.
 * Never retried here: a failed write is retried with the next run's. */
static bool write_run_rows(ChClient *ch, RunRowQueue *q, const RunRecord *r, const char *instance) {
        char err[1024] = "";
        Buf body = { 0 };
        char *stored = NULL;
        size_t n;
        int rc = 0;

        if (!ch) {
                run_row_queue_push(q, r);
                return false;
        }
        n = run_row_queue_pending(q, NULL);
        if (n > 0) {
                stored = stored_run_ids(ch, q, n);
                if (!stored)
                        rc = -EIO; /* still unreachable: keep everything for later */
        }
        pthread_mutex_lock(&q->lock);
        for (size_t i = 0; i < n && rc == 0; i++) {
                const RunRecord *row = &q->rows[(q->head + i) % RUN_ROWS_BACKLOG_MAX];
                if (!strstr(stored, row->run_id))
                        rc = append_run_row(&body, row, instance);
        }
        pthread_mutex_unlock(&q->lock);
        free(stored);
        if (rc == 0)
                rc = append_run_row(&body, r, instance);
        if (rc == 0)
                rc = ch_query(ch, INSERT_RUNS, body.data, CH_NO_RETRY, NULL, err, sizeof(err));
        buf_free(&body);
        if (rc < 0) {
                log_debug("run %s: cannot write its salesd_runs row: %s", r->run_id, *err ? err : strerror(-rc));
                run_row_queue_push(q, r);
                return false;
        }
        /* Only the rows that were in the insert leave the backlog. */
        pthread_mutex_lock(&q->lock);
        size_t done = n < q->count ? n : q->count;
        q->head = (q->head + done) % RUN_ROWS_BACKLOG_MAX;
        q->count -= done;
        pthread_mutex_unlock(&q->lock);
        return true;
}

/* ---- run control ---- */

void run_control_init(RunControl *ctl) {
        atomic_init(&ctl->cancel, false);
        pthread_mutex_init(&ctl->lock, NULL);
        ctl->pg = NULL;
}

void run_control_done(RunControl *ctl) {
        pthread_mutex_destroy(&ctl->lock);
}

void run_control_cancel(RunControl *ctl) {
        atomic_store(&ctl->cancel, true);
        pthread_mutex_lock(&ctl->lock);
        if (ctl->pg)
                pg_source_cancel(ctl->pg);
        pthread_mutex_unlock(&ctl->lock);
}

static void run_control_publish(RunControl *ctl, PgSource *pg) {
        pthread_mutex_lock(&ctl->lock);
        ctl->pg = pg;
        pthread_mutex_unlock(&ctl->lock);
}

/* ---- ClickHouse reads ---- */

static int read_watermark(ChClient *ch, char ret[WATERMARK_STRLEN], char *err, size_t errlen) {
        char *body = NULL;
        int r = ch_query(ch,
                         "SELECT value FROM salesd_state FINAL WHERE name = '" WATERMARK_NAME
                         "' ORDER BY version DESC LIMIT 1 FORMAT TabSeparated",
                         NULL, 0, &body, err, errlen);
        if (r < 0)
                return r;
        char *cursor = body, *line = tsv_next_line(&cursor);
        ret[0] = '\0';
        if (line) {
                usec_t t;
                if (watermark_parse(line, &t) < 0) {
                        snprintf(err, errlen,
                                 "clickhouse %s: salesd_state holds an unusable watermark '%.60s' (expected "
                                 "YYYY-MM-DDTHH:MM:SS.ffffffZ; delete that row to recompute the whole history)",
                                 ch_client_url(ch), line);
                        free(body);
                        return -EPROTO;
                }
                snprintf(ret, WATERMARK_STRLEN, "%s", line);
        }
        free(body);
        return 0;
}

static int read_stored(ChClient *ch, const DayStats *days, size_t n, StoredDay **ret, size_t *ret_n, char *err,
                       size_t errlen) {
        Buf sql = { 0 };
        char *body = NULL;
        int r = buf_puts(&sql, "SELECT date, total_orders, total_items_sold, total_revenue, total_cost, total_profit, "
                               "average_order_value, version FROM daily_sales_stats FINAL WHERE date IN (");
        for (size_t i = 0; i < n && r == 0; i++) {
                char d[DAY_STRLEN];
                r = buf_printf(&sql, "%stoDate('%s')", i ? ", " : "", day_format(days[i].day, d));
        }
        if (r == 0)
                r = buf_puts(&sql, ") FORMAT TabSeparated");
        if (r == 0)
                r = ch_query(ch, sql.data, NULL, 0, &body, err, errlen);
        buf_free(&sql);
        if (r < 0)
                return r;

        size_t cap = 16, count = 0;
        StoredDay *stored = malloc(cap * sizeof(StoredDay));
        char *cursor = body, *line;
        if (!stored) {
                free(body);
                return -ENOMEM;
        }
        while ((line = tsv_next_line(&cursor))) {
                char *fields[10];
                char inner[256];
                int nf = tsv_split(line, fields, 10);
                if (count == cap) {
                        StoredDay *p = realloc(stored, 2 * cap * sizeof(StoredDay));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        stored = p;
                        cap *= 2;
                }
                r = nf < 0 ? nf : metrics_parse_stored(fields, (size_t)nf, &stored[count], inner, sizeof(inner));
                if (r < 0) {
                        snprintf(err, errlen, "clickhouse %s: unexpected row from daily_sales_stats: %s",
                                 ch_client_url(ch), nf < 0 ? "malformed TabSeparated" : inner);
                        break;
                }
                count++;
        }
        free(body);
        if (r < 0) {
                free(stored);
                return r;
        }
        *ret = stored;
        *ret_n = count;
        return 0;
}

/* ---- the run ---- */

static int insert_changed_days(const Config *c, ChClient *ch, const DayStats *stats, const bool *writable, size_t n,
                               uint64_t run_version, unsigned *ret_written, char *err, size_t errlen) {
        uint64_t *versions = calloc(n ? n : 1, sizeof(uint64_t));
        DayStats *todo = calloc(n ? n : 1, sizeof(DayStats));
        StoredDay *stored = NULL;
        size_t n_todo = 0, n_stored = 0;
        time_t computed_at = (time_t)(run_now_realtime() / USEC_PER_SEC);
        int r = 0;

        if (!versions || !todo) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                if (writable[i])
                        todo[n_todo++] = stats[i];
        *ret_written = 0;
        if (n_todo == 0)
                goto out;

        for (unsigned attempt = 0;; attempt++) {
                Buf body = { 0 };
                free(stored);
                stored = NULL;
                r = read_stored(ch, todo, n_todo, &stored, &n_stored, err, errlen);
                if (r < 0)
                        goto out;
                size_t writes = metrics_plan_writes(todo, n_todo, stored, n_stored, run_version, versions);
                if (attempt == 0)
                        *ret_written = (unsigned)writes;
                if (writes == 0)
                        goto out; /* nothing changed, or an earlier ambiguous attempt landed */
                for (size_t i = 0; i < n_todo && r == 0; i++)
                        if (versions[i])
                                r = metrics_append_tsv(&body, &todo[i], computed_at, versions[i]);
                if (r == 0)
                        /* Not retried inside ch_query: a plain MergeTree insert is
                         * not deduplicated, so after an ambiguous failure the
                         * stored rows are read again before anything is resent. */
                        r = ch_query(ch, INSERT_STATS, body.data, CH_NO_RETRY, NULL, err, errlen);
                buf_free(&body);
                if (r == 0 || r == -EINVAL || r == -ECANCELED || r == -ENOMEM || attempt >= c->clickhouse.retries)
                        goto out;
                log_debug("insert into daily_sales_stats failed (%s); re-reading before retry %u", err, attempt + 1);
                r = ch_client_backoff(ch, attempt);
                if (r < 0)
                        goto out;
        }
out:
        free(versions);
        free(todo);
        free(stored);
        return r;
}

static int write_watermark(ChClient *ch, const char *value, uint64_t version, char *err, size_t errlen) {
        Buf body = { 0 };
        int r = buf_printf(&body, WATERMARK_NAME "\t%s\t%" PRIu64 "\n", value, version);
        if (r == 0)
                r = ch_query(ch, INSERT_STATE, body.data, 0, NULL, err, errlen);
        buf_free(&body);
        return r;
}

bool run_error_unavailable(int r) {
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET;
}

int run_execute(const Config *c, const RunOptions *o, RunControl *ctl, RunRowQueue *q, RunRecord *ret_record,
                RunOutcome *ret_outcome) {
        RunRecord rec = { 0 };
        RunOutcome out = { 0 };
        char err[1024] = "";
        char watermark[WATERMARK_STRLEN] = "", max_changed[WATERMARK_STRLEN] = "", guard[WATERMARK_STRLEN] = "";
        ChClient *ch = NULL;
        PgSource *pg = NULL;
        Day *days = NULL;
        DayStats *stats = NULL;
        bool *writable = NULL;
        size_t n_days = 0;
        bool locked = false, can_see_all = true;
        uint64_t version = 0;
        int r;

        run_new_id(rec.run_id);
        rec.trigger = o->trigger;
        rec.status = RUN_STATUS_FAILED;
        rec.started_at = run_now_realtime();

        r = ch_client_new(&c->clickhouse, &ch, err, sizeof(err));
        if (r < 0)
                goto finish;
        ch_client_set_cancel_flag(ch, &ctl->cancel);

        r = pg_source_open(c, &pg, err, sizeof(err));
        if (r < 0)
                goto finish;
        run_control_publish(ctl, pg);
        if (atomic_load(&ctl->cancel)) {
                r = -ECANCELED;
                goto finish;
        }

        r = pg_source_try_lock(pg, c->postgres.lock_key, &locked, err, sizeof(err));
        if (r < 0)
                goto finish;
        if (!locked) {
                rec.status = RUN_STATUS_SKIPPED;
                snprintf(rec.error, sizeof(rec.error),
                         "another instance holds the postgres advisory lock %" PRId64 " (postgres.lock_key)",
                         c->postgres.lock_key);
                goto finish;
        }

        r = pg_source_read_guard(pg, guard, &can_see_all, err, sizeof(err));
        if (r < 0)
                goto finish;
        out.guard_blind = !can_see_all;

        if (!o->days) {
                r = read_watermark(ch, watermark, err, sizeof(err));
                if (r < 0)
                        goto finish;
        }

        r = pg_source_begin(pg, err, sizeof(err));
        if (r < 0)
                goto finish;
        r = pg_source_clock_usec(pg, &version, err, sizeof(err));
        if (r < 0)
                goto finish;
        if (o->days) {
                days = calloc(o->n_days ? o->n_days : 1, sizeof(Day));
                if (!days) {
                        r = -ENOMEM;
                        goto finish;
                }
                memcpy(days, o->days, o->n_days * sizeof(Day));
                n_days = day_sort_unique(days, o->n_days);
        } else {
                char since[WATERMARK_STRLEN];
                r = watermark_since(watermark, c->overlap, since);
                if (r == 0)
                        r = pg_source_affected_days(pg, *watermark ? since : NULL, &days, &n_days, max_changed, err,
                                                    sizeof(err));
                if (r < 0)
                        goto finish;
        }
        if (atomic_load(&ctl->cancel)) {
                r = -ECANCELED;
                goto finish;
        }
        r = pg_source_aggregate(pg, days, n_days, &stats, err, sizeof(err));
        if (r < 0)
                goto finish;
        r = pg_source_commit(pg, err, sizeof(err));
        if (r < 0)
                goto finish;
        rec.days_recomputed = (unsigned)n_days;
        if (n_days > 0) {
                out.first_day = days[0];
                out.last_day = days[n_days - 1];
        }

        /* A day whose values do not fit its columns fails loudly; the other
         * days are still written, the run fails and the watermark stays. */
        writable = calloc(n_days ? n_days : 1, sizeof(bool));
        if (!writable) {
                r = -ENOMEM;
                goto finish;
        }
        Buf range_errors = { 0 };
        for (size_t i = 0; i < n_days; i++) {
                char e[256];
                writable[i] = metrics_check_range(&stats[i], e, sizeof(e)) == 0;
                if (!writable[i])
                        buf_printf(&range_errors, "%s%s", range_errors.len ? "; " : "", e);
        }
        if (atomic_load(&ctl->cancel)) {
                buf_free(&range_errors);
                r = -ECANCELED;
                goto finish;
        }
        r = insert_changed_days(c, ch, stats, writable, n_days, version, &rec.days_written, err, sizeof(err));
        if (r < 0) {
                buf_free(&range_errors);
                goto finish;
        }
        if (range_errors.len) {
                snprintf(err, sizeof(err), "%s; not written, watermark not advanced", range_errors.data);
                buf_free(&range_errors);
                r = -ERANGE;
                goto finish;
        }
        buf_free(&range_errors);

        /* The new watermark: what the snapshot saw, but never past the start
         * of a transaction that was still open (it may commit rows stamped
         * earlier than our snapshot's newest). */
        snprintf(out.watermark, sizeof(out.watermark), "%s", watermark);
        char next[WATERMARK_STRLEN];
        if (!o->days && watermark_next(watermark, max_changed, guard, next)) {
                r = write_watermark(ch, next, version, err, sizeof(err));
                if (r < 0)
                        goto finish;
                snprintf(out.watermark, sizeof(out.watermark), "%s", next);
                out.watermark_advanced = true;
        }
        rec.status = RUN_STATUS_SUCCESS;
        r = 0;

finish:
        if (r < 0 && rec.status != RUN_STATUS_SKIPPED) {
                rec.status = RUN_STATUS_FAILED;
                if (r == -ECANCELED || atomic_load(&ctl->cancel))
                        snprintf(rec.error, sizeof(rec.error), "cancelled: salesd is stopping");
                else
                        snprintf(rec.error, sizeof(rec.error), "%s", *err ? err : strerror(-r));
                out.server_unavailable = run_error_unavailable(r);
        }
        if (pg)
                pg_source_rollback(pg);
        rec.finished_at = run_now_realtime();
        /* A cancelled run is still recorded: the row is one small insert and
         * the stop grace period bounds it. */
        if (ch)
                ch_client_set_cancel_flag(ch, NULL);
        out.run_row_written = write_run_rows(ch, q, &rec, o->instance);
        if (locked) {
                char e[256];
                /* closing the connection releases it anyway */
                (void)pg_source_unlock(pg, c->postgres.lock_key, e, sizeof(e));
        }
        run_control_publish(ctl, NULL);
        pg_source_free(pg);
        ch_client_free(ch);
        free(days);
        free(stats);
        free(writable);
        *ret_record = rec;
        *ret_outcome = out;
        return rec.status == RUN_STATUS_FAILED ? (r < 0 ? r : -EIO) : 0;
}

int run_summary(const RunRecord *rec, const RunOutcome *out, bool explicit_days, char *buf, size_t len) {
        char first[DAY_STRLEN], last[DAY_STRLEN], range[2 * DAY_STRLEN + 8] = "";
        usec_t d = rec->finished_at - rec->started_at;

        switch (rec->status) {
        case RUN_STATUS_SUCCESS:
                if (rec->days_recomputed)
                        snprintf(range, sizeof(range), " (%s..%s)", day_format(out->first_day, first),
                                 day_format(out->last_day, last));
                snprintf(buf, len,
                         "run %s (trigger %s): success in %" PRIu64 ".%03" PRIu64
                         " s: %u days recomputed%s, %u written, watermark %s%s",
                         rec->run_id, rec->trigger, d / USEC_PER_SEC, (d % USEC_PER_SEC) / USEC_PER_MSEC,
                         rec->days_recomputed, range, rec->days_written,
                         explicit_days     ? "not moved (explicit days)"
                         : *out->watermark ? out->watermark
                                           : "none yet",
                         out->watermark_advanced ? " (advanced)" : "");
                return LOG_INFO;
        case RUN_STATUS_SKIPPED:
                snprintf(buf, len, "run %s (trigger %s): skipped: %s", rec->run_id, rec->trigger, rec->error);
                return LOG_NOTICE;
        default:
                snprintf(buf, len, "run %s (trigger %s): failed after %" PRIu64 ".%03" PRIu64 " s: %s", rec->run_id,
                         rec->trigger, d / USEC_PER_SEC, (d % USEC_PER_SEC) / USEC_PER_MSEC, rec->error);
                return LOG_ERR;
        }
}

int run_write_heartbeat(const Config *c, const HeartbeatRow *h, const atomic_bool *cancel, char *err, size_t errlen) {
        ChClient *ch = NULL;
        Buf body = { 0 };
        int r = ch_client_new(&c->clickhouse, &ch, err, errlen);
        if (r < 0)
                return r;
        if (cancel)
                ch_client_set_cancel_flag(ch, cancel);
        r = tsv_append_escaped(&body, h->instance);
        if (r == 0)
                r = buf_printf(&body, "\t%010" PRIu64 "\t%s\t%010" PRIu64 "\t%010" PRIu64 "\n", h->ts / USEC_PER_SEC,
                               h->state, h->last_success / USEC_PER_SEC, h->next_run / USEC_PER_SEC);
        if (r == 0)
                r = ch_query(ch, INSERT_HEARTBEAT, body.data, CH_NO_RETRY, NULL, err, errlen);
        buf_free(&body);
        ch_client_free(ch);
        return r;
}
