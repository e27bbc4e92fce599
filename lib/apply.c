/* See apply.h. */
#include "apply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"

/* Errors after which a retry cannot help: the request was refused, the
 * client cannot reach the server as configured (TLS, URL: ch.h's -EPROTO),
 * the run is stopping, memory ran out, or the run lost its lock. */
static bool final_error(int r) {
        return r == -EINVAL || r == -EPROTO || r == -ECANCELED || r == -ENOMEM || r == -ENOLCK;
}

/* The days to insert now: those whose stored latest row differs, with
 * their versions. */
typedef struct Plan {
        DayStats *days;
        uint64_t *versions;
        uint64_t *corrupt; /* per computed day: the stored version that cannot be replaced, or 0 */
        size_t n;
} Plan;

static void plan_free(Plan *p) {
        free(p->days);
        free(p->versions);
        free(p->corrupt);
}

/* Reads the stored rows of the computed days and plans the writes into p
 * (arrays of n, allocated by the caller). */
static int plan_writes(Sink *s, const DayStats *computed, size_t n, const Day *days, uint64_t snapshot_version,
                       uint64_t version, Plan *p, char *err, size_t errlen) {
        _cleanup_free_ StoredDay *stored = NULL;
        size_t n_stored = 0;
        int r = sink_read_days(s, days, n, &stored, &n_stored, err, errlen);
        if (r < 0)
                return r;
        metrics_plan_writes(computed, n, stored, n_stored, snapshot_version, version, p->versions, p->corrupt);
        p->n = 0;
        for (size_t i = 0; i < n; i++)
                if (p->versions[i]) {
                        p->days[p->n] = computed[i];
                        p->versions[p->n++] = p->versions[i];
                }
        return 0;
}

/* Ends what the server may still run of an earlier attempt, so that the
 * re-read that follows sees its final effect.  Best effort: the next
 * attempt's greater version keeps a late landing harmless anyway. */
static void end_attempt(Sink *s, const char *query_id) {
        char err[512];
        int r = sink_end_query(s, query_id, err, sizeof(err));
        if (r < 0)
                log_debug("cannot end query %s: %s", query_id, err);
}

/* Names each day whose stored version no write can pass, and the remedy. */
static int describe_corrupt(const DayStats *computed, size_t n, const Plan *p, uint64_t snapshot_version, Buf *faults) {
        int r = 0;
        for (size_t i = 0; i < n && faults && r == 0; i++)
                if (p->corrupt[i]) {
                        char day[DAY_STRLEN];
                        day_format(computed[i].day, day);
                        r = buf_printf(
                                faults,
                                "%sday %s: the stored row of daily_sales_stats has version %" PRIu64
                                ", beyond the source clock (%" PRIu64
                                "): it is corrupt or was not written by salesd, and no new row can replace it; "
                                "remove it (ALTER TABLE daily_sales_stats DELETE WHERE date = '%s' AND version = "
                                "%" PRIu64 ") and the next run rewrites the day",
                                faults->len ? "; " : "", day, p->corrupt[i], snapshot_version, day, p->corrupt[i]);
                }
        return r;
}

static int fence(const ApplyOptions *o, char *err, size_t errlen) {
        return o->fence ? o->fence(o->fence_userdata, err, errlen) : 0;
}

static int month_of(Day d) {
        int year;
        unsigned month, mday;
        day_to_civil(d, &year, &month, &mday);
        return year * 12 + (int)month;
}

/* The end of the block of rows from `at` that spans at most
 * APPLY_MONTHS_PER_INSERT months (counted as changes of month, so an
 * unsorted plan only makes blocks smaller). */
static size_t block_end(const DayStats *days, size_t at, size_t n) {
        unsigned months = 1;
        size_t i = at + 1;
        for (; i < n; i++) {
                if (month_of(days[i].day) != month_of(days[i - 1].day) && ++months > APPLY_MONTHS_PER_INSERT)
                        break;
        }
        return i;
}

/* One attempt: the planned rows, a block per INSERT, each right after the
 * fence.  query_id receives the id of the last statement sent: the one a
 * retry must end (the earlier blocks were answered). */
static int insert_planned(Sink *s, const Plan *p, const ApplyOptions *o, unsigned attempt, char *query_id,
                          size_t query_id_len, char *err, size_t errlen) {
        const char *run_id = o->run_id ? o->run_id : "run";
        for (size_t at = 0, k = 0; at < p->n; k++) {
                size_t end = block_end(p->days, at, p->n);
                if (k == 0)
                        snprintf(query_id, query_id_len, "salesd-%.36s-%u", run_id, attempt);
                else
                        snprintf(query_id, query_id_len, "salesd-%.36s-%u-%u", run_id, attempt, (unsigned)k);
                int r = fence(o, err, errlen);
                if (r == 0)
                        r = sink_insert_days(s, p->days + at, p->versions + at, end - at, o->computed_at, query_id, err,
                                             errlen);
                if (r < 0)
                        return r;
                at = end;
        }
        return 0;
}

int apply_days(Sink *s, const DayStats *computed, size_t n, const ApplyOptions *o, unsigned *ret_written, char *err,
               size_t errlen) {
        _cleanup_(plan_free) Plan p = { calloc(n + 1, sizeof(DayStats)), calloc(n + 1, sizeof(uint64_t)),
                                        calloc(n + 1, sizeof(uint64_t)), 0 };
        _cleanup_free_ Day *days = calloc(n + 1, sizeof(Day));
        char query_id[96] = "";

        *ret_written = 0;
        if (!p.days || !p.versions || !p.corrupt || !days)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                days[i] = computed[i].day;
        for (unsigned attempt = 0; n > 0; attempt++) {
                if (attempt > 0)
                        end_attempt(s, query_id);
                /* A failed read is not retried here: the client already
                 * retried it, and the next run redoes the days. */
                int r = plan_writes(s, computed, n, days, o->run_version, o->run_version + attempt, &p, err, errlen);
                if (r < 0)
                        return r;
                if (attempt == 0) {
                        *ret_written = (unsigned)p.n;
                        for (size_t i = 0; i < p.n && o->ret_written_days; i++)
                                o->ret_written_days[i] = p.days[i].day;
                        r = describe_corrupt(computed, n, &p, o->run_version, o->faults);
                        if (r < 0)
                                return r;
                }
                if (p.n == 0)
                        return 0; /* nothing changed, or an earlier ambiguous attempt landed */
                r = insert_planned(s, &p, o, attempt, query_id, sizeof(query_id), err, errlen);
                if (r == 0 || final_error(r) || attempt >= o->retries)
                        return r;
                log_debug("insert into daily_sales_stats failed (%s); re-reading before retry %u", err, attempt + 1);
                r = sink_backoff(s, attempt);
                if (r < 0)
                        return r;
        }
        return 0;
}
