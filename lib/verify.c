/* See verify.h.  verify_compare() is the whole decision; the rest moves data
 * between the servers and it: a Check owns one Postgres connection and one
 * ClickHouse sink for the length of one verification. */
#include "verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "pg.h"
#include "sink.h"
#include "watermark.h"

static const char *const column_names[VERIFY_N_COLUMNS] = {
        "total_orders", "total_items_sold", "total_revenue", "total_cost", "total_profit", "average_order_value",
};

const char *verify_column_name(size_t i) {
        return i < VERIFY_N_COLUMNS ? column_names[i] : NULL;
}

char *verify_column_value(const DayStats *s, size_t i, char *buf, size_t len) {
        const Money money[] = { s->total_revenue, s->total_cost, s->total_profit, s->average_order_value };
        if (i == 0 || i == 1)
                snprintf(buf, len, "%" PRIu64, i == 0 ? s->total_orders : s->total_items_sold);
        else if (i < VERIFY_N_COLUMNS)
                money_format(money[i - 2], buf, len);
        else if (len > 0)
                buf[0] = '\0';
        return buf;
}

char *verify_columns_text(const VerifyDiff *d, char *buf, size_t len) {
        size_t o = 0;
        if (len == 0)
                return buf;
        buf[0] = '\0';
        if (d->missing) {
                snprintf(buf, len, "missing");
                return buf;
        }
        for (size_t i = 0; i < VERIFY_N_COLUMNS; i++)
                if (d->columns & (1u << i)) {
                        int k = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", column_names[i]);
                        if (k < 0 || (size_t)k >= len - o)
                                break;
                        o += (size_t)k;
                }
        return buf;
}

static unsigned differing_columns(const DayStats *a, const DayStats *b) {
        const bool differs[VERIFY_N_COLUMNS] = {
                a->total_orders != b->total_orders,   a->total_items_sold != b->total_items_sold,
                a->total_revenue != b->total_revenue, a->total_cost != b->total_cost,
                a->total_profit != b->total_profit,   a->average_order_value != b->average_order_value,
        };
        unsigned mask = 0;
        for (size_t i = 0; i < VERIFY_N_COLUMNS; i++)
                mask |= differs[i] ? 1u << i : 0;
        return mask;
}

static bool all_zero(const DayStats *s) {
        DayStats zero = { .day = s->day };
        return metrics_equal(s, &zero);
}

void verify_result_done(VerifyResult *r) {
        free(r->diffs);
        r->diffs = NULL;
        free(r->unverifiable);
        r->unverifiable = NULL;
        r->n_diffs = 0;
}

int verify_compare(const DayStats *computed, size_t n, const StoredDay *stored, size_t n_stored,
                   uint64_t snapshot_version, VerifyResult *ret) {
        VerifyResult res = { .diffs = calloc(n + 1, sizeof(VerifyDiff)), .snapshot_clock = snapshot_version };
        if (!res.diffs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const StoredDay *latest = NULL;
                for (size_t j = 0; j < n_stored; j++)
                        if (stored[j].stats.day == computed[i].day && (!latest || stored[j].version > latest->version))
                                latest = &stored[j];
                if (latest && latest->version > snapshot_version) {
                        res.days_newer++;
                        continue;
                }
                res.days_checked++;
                VerifyDiff d = { .day = computed[i].day, .computed = computed[i] };
                if (!latest)
                        d.missing = !all_zero(&computed[i]);
                else {
                        d.stored = latest->stats;
                        d.stored_version = latest->version;
                        d.columns = differing_columns(&latest->stats, &computed[i]);
                }
                if (d.missing || d.columns)
                        res.diffs[res.n_diffs++] = d;
        }
        *ret = res;
        return 0;
}

size_t verify_pick_days(Day first, Day last, const Day *excluded, size_t n_excluded, size_t k,
                        uint64_t (*rand64)(void *userdata), void *userdata, Day *ret) {
        size_t picked = 0, e = 0, candidates = 0;
        /* selection sampling (Knuth's algorithm S) over the days not excluded */
        for (Day d = first; d <= last; d++) {
                while (e < n_excluded && excluded[e] < d)
                        e++;
                candidates += !(e < n_excluded && excluded[e] == d);
        }
        e = 0;
        uint64_t left = candidates;
        for (Day d = first; d <= last && picked < k && left > 0; d++) {
                while (e < n_excluded && excluded[e] < d)
                        e++;
                if (e < n_excluded && excluded[e] == d)
                        continue;
                if (rand64(userdata) % left < k - picked)
                        ret[picked++] = d;
                left--;
        }
        return picked;
}

/* ---- against the servers ---- */

typedef struct Check {
        const Config *config;
        Sink *sink;
        PgSource *pg;
        RunControl *control; /* may be NULL */
        uint64_t clock;
        Day *days;
        size_t n_days;
        DayStats *stats;
        StoredDay *stored;
        size_t n_stored;
} Check;

static void check_done(Check *k) {
        if (k->control)
                run_control_publish(k->control, NULL);
        pg_source_free(k->pg);
        sink_free(k->sink);
        free(k->days);
        free(k->stats);
        free(k->stored);
}

static int check_cancelled(const Check *k) {
        return k->control && atomic_load(&k->control->cancel) ? -ECANCELED : 0;
}

/* With a RunControl, cancelling it ends a statement in flight too. */
static int check_connect(Check *k, char *err, size_t errlen) {
        int r = sink_clickhouse_new(&k->config->clickhouse, &k->sink, err, errlen);
        if (r < 0)
                return r;
        sink_set_cancel(k->sink, k->control ? &k->control->cancel : NULL);
        r = pg_source_open(k->config, &k->pg, err, errlen);
        if (r < 0)
                return r;
        if (k->control)
                run_control_publish(k->control, k->pg);
        r = check_cancelled(k);
        if (r == 0) {
                /* a standby shows at least what the primary had committed when the check began */
                usec_t waited;
                r = pg_source_catch_up(k->pg, k->control ? &k->control->cancel : NULL, &waited, err, errlen);
        }
        return r;
}

/* Aggregates k->days in the open snapshot, commits it, reads the stored
 * rows and compares. */
static int check_finish(Check *k, VerifyResult *ret, char *err, size_t errlen) {
        _cleanup_(buf_free) Buf faults = { 0 };
        size_t n_stats = 0;
        int r = check_cancelled(k);
        if (r == 0 && k->n_days > 0)
                r = pg_source_aggregate(k->pg, k->days, k->n_days, &k->stats, &n_stats, &faults, err, errlen);
        if (r == 0)
                r = pg_source_commit(k->pg, err, errlen);
        if (r == 0)
                r = sink_read_days(k->sink, k->days, k->n_days, &k->stored, &k->n_stored, err, errlen);
        if (r < 0)
                return r;
        r = verify_compare(k->stats, n_stats, k->stored, k->n_stored, k->clock, ret);
        if (r == 0 && faults.len)
                ret->unverifiable = buf_steal(&faults);
        return r;
}

int verify_days(const Config *c, const Day *days, size_t n, RunControl *ctl, VerifyResult *ret, char *err,
                size_t errlen) {
        _cleanup_(check_done)
                Check k = { .config = c, .control = ctl, .days = calloc(n + 1, sizeof(Day)), .n_days = n };
        if (!k.days)
                return -ENOMEM;
        memcpy(k.days, days, n * sizeof(Day));
        int r = check_connect(&k, err, errlen);
        if (r == 0)
                r = pg_source_begin(k.pg, err, errlen);
        if (r == 0)
                r = pg_source_clock_usec(k.pg, &k.clock, err, errlen);
        if (r == 0)
                r = check_finish(&k, ret, err, errlen);
        if (r < 0 && k.pg)
                pg_source_rollback(k.pg);
        return r;
}

static uint64_t random64(void *userdata) {
        (void)userdata;
        uint64_t v;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = ((uint64_t)rand() << 32) ^ (uint64_t)rand(); /* only before the pool is seeded */
        return v;
}

/* In the open snapshot: the days the next run recomputes anyway, and from
 * the rest of the window the sample to check, into k->days. */
static int audit_pick(Check *k, const char *watermark, char *err, size_t errlen) {
        _cleanup_free_ Day *pending = NULL;
        size_t n_pending = 0;
        char since[WATERMARK_STRLEN], max_changed[WATERMARK_STRLEN];
        int r = watermark_since(watermark, k->config->overlap, since);
        if (r == 0)
                r = pg_source_affected_days(k->pg, since, &pending, &n_pending, max_changed, NULL, err, errlen);
        if (r < 0)
                return r;
        usec_t window_days = k->config->audit.window / USEC_PER_DAY;
        Day last = day_today();
        Day first = last - (Day)(window_days > 0 ? window_days - 1 : 0);
        k->days = calloc(k->config->audit.days_per_run + 1, sizeof(Day));
        if (!k->days)
                return -ENOMEM;
        k->n_days = verify_pick_days(first, last, pending, n_pending, k->config->audit.days_per_run, random64, NULL,
                                     k->days);
        log_debug("audit: %zu days picked from %zu candidates' window, %zu pending for the next run", k->n_days,
                  (size_t)(last - first + 1), n_pending);
        return 0;
}

int verify_audit(const Config *c, RunControl *ctl, VerifyResult *ret, char *err, size_t errlen) {
        _cleanup_(check_done) Check k = { .config = c, .control = ctl };
        char watermark[WATERMARK_STRLEN] = "";
        *ret = (VerifyResult){ 0 };
        int r = check_connect(&k, err, errlen);
        if (r == 0)
                r = sink_read_watermark(k.sink, watermark, err, errlen);
        if (r < 0 || !*watermark)
                return r; /* before the first watermark every day is still to be written */
        r = pg_source_begin(k.pg, err, errlen);
        if (r == 0)
                r = pg_source_clock_usec(k.pg, &k.clock, err, errlen);
        if (r == 0)
                r = audit_pick(&k, watermark, err, errlen);
        if (r == 0)
                r = check_finish(&k, ret, err, errlen);
        if (r < 0 && k.pg)
                pg_source_rollback(k.pg);
        return r;
}
