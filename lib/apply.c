/* See apply.h. */
#include "apply.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"

/* Errors after which a retry cannot help: the request was refused, the
 * client cannot reach the server as configured (TLS, URL: ch.h's -EPROTO),
 * the run is stopping, or memory ran out. */
static bool final_error(int r) {
        return r == -EINVAL || r == -EPROTO || r == -ECANCELED || r == -ENOMEM;
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
static int plan_writes(Sink *s, const DayStats *computed, size_t n, const Day *days, uint64_t run_version, Plan *p,
                       char *err, size_t errlen) {
        _cleanup_free_ StoredDay *stored = NULL;
        size_t n_stored = 0;
        int r = sink_read_days(s, days, n, &stored, &n_stored, err, errlen);
        if (r < 0)
                return r;
        metrics_plan_writes(computed, n, stored, n_stored, run_version, p->versions);
        p->n = 0;
        for (size_t i = 0; i < n; i++)
                if (p->versions[i]) {
                        p->days[p->n] = computed[i];
                        p->versions[p->n++] = p->versions[i];
                }
        return 0;
}

int apply_days(Sink *s, const DayStats *computed, size_t n, const ApplyOptions *o, unsigned *ret_written, char *err,
               size_t errlen) {
        _cleanup_(plan_free) Plan p = { calloc(n + 1, sizeof(DayStats)), calloc(n + 1, sizeof(uint64_t)), 0 };
        _cleanup_free_ Day *days = calloc(n + 1, sizeof(Day));

        *ret_written = 0;
        if (!p.days || !p.versions || !days)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                days[i] = computed[i].day;
        for (unsigned attempt = 0; n > 0; attempt++) {
                int r = plan_writes(s, computed, n, days, o->run_version, &p, err, errlen);
                if (r < 0)
                        return r;
                if (attempt == 0)
                        *ret_written = (unsigned)p.n;
                if (p.n == 0)
                        return 0; /* nothing changed, or an earlier ambiguous attempt landed */
                r = sink_insert_days(s, p.days, p.versions, p.n, o->computed_at, err, errlen);
                if (r == 0 || final_error(r) || attempt >= o->retries)
                        return r;
                log_debug("insert into daily_sales_stats failed (%s); re-reading before retry %u", err, attempt + 1);
                r = sink_backoff(s, attempt);
                if (r < 0)
                        return r;
        }
        return 0;
}
