/* See apply.h. */
#include "apply.h"

#include <errno.h>
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
        size_t n;
} Plan;

static void plan_free(Plan *p) {
        free(p->days);
        free(p->versions);
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
        metrics_plan_writes(computed, n, stored, n_stored, snapshot_version, version, p->versions);
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

static int fence(const ApplyOptions *o, char *err, size_t errlen) {
        return o->fence ? o->fence(o->fence_userdata, err, errlen) : 0;
}

int apply_days(Sink *s, const DayStats *computed, size_t n, const ApplyOptions *o, unsigned *ret_written, char *err,
               size_t errlen) {
        _cleanup_(plan_free) Plan p = { calloc(n + 1, sizeof(DayStats)), calloc(n + 1, sizeof(uint64_t)), 0 };
        _cleanup_free_ Day *days = calloc(n + 1, sizeof(Day));
        char query_id[64] = "";

        *ret_written = 0;
        if (!p.days || !p.versions || !days)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                days[i] = computed[i].day;
        for (unsigned attempt = 0; n > 0; attempt++) {
                if (attempt > 0)
                        end_attempt(s, query_id);
                snprintf(query_id, sizeof(query_id), "salesd-%.36s-%u", o->run_id ? o->run_id : "run", attempt);
                /* A failed read is not retried here: the client already
                 * retried it, and the next run redoes the days. */
                int r = plan_writes(s, computed, n, days, o->run_version, o->run_version + attempt, &p, err, errlen);
                if (r < 0)
                        return r;
                if (attempt == 0) {
                        *ret_written = (unsigned)p.n;
                        for (size_t i = 0; i < p.n && o->ret_written_days; i++)
                                o->ret_written_days[i] = p.days[i].day;
                }
                if (p.n == 0)
                        return 0; /* nothing changed, or an earlier ambiguous attempt landed */
                r = fence(o, err, errlen);
                if (r == 0)
                        r = sink_insert_days(s, p.days, p.versions, p.n, o->computed_at, query_id, err, errlen);
                if (r == 0 || final_error(r) || attempt >= o->retries)
                        return r;
                log_debug("insert into daily_sales_stats failed (%s); re-reading before retry %u", err, attempt + 1);
                r = sink_backoff(s, attempt);
                if (r < 0)
                        return r;
        }
        return 0;
}
