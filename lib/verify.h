/* Proving the numbers (SPEC §10): recompute days from Postgres in one
 * snapshot, read the latest stored rows (FINAL) and compare them as values
 * (3.10 equals 3.1).  The comparison is a pure function over DayStats and
 * StoredDay, unit-tested against fake data; verify_days() and
 * verify_audit() run it against the servers through pg.h and sink.h (no SQL
 * here).  Nothing in this module writes or takes the advisory lock: the
 * repair is a run with explicit days (run.h).
 *
 * Two rules keep the report honest while the daemon runs:
 * - a stored row written from a newer snapshot than the check's (version
 *   greater than the check's snapshot clock) is not compared: it may hold
 *   changes the check cannot see; it is counted in days_newer;
 * - a day with no stored row and no completed orders is not missing: the
 *   pipeline only writes rows for days it recomputes, and a reader sees no
 *   sales either way. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "day.h"
#include "metrics.h"
#include "run_control.h"

/* The compared columns, in table order. */
#define VERIFY_N_COLUMNS 6

typedef struct VerifyDiff {
        Day day;
        bool missing;      /* no stored row, and the recomputed day has orders */
        unsigned columns;  /* bit i set: column i differs (verify_column_name(i)); 0 when missing */
        DayStats stored;   /* the latest stored row (when !missing) */
        DayStats computed; /* recomputed from the source */
        uint64_t stored_version;
} VerifyDiff;

typedef struct VerifyResult {
        size_t days_checked;     /* days compared (days_newer not included) */
        size_t days_newer;       /* stored row newer than the check's snapshot: not compared */
        VerifyDiff *diffs;       /* malloc'd, by day */
        size_t n_diffs;          /* differing days, missing ones included */
        uint64_t snapshot_clock; /* the check's snapshot clock (usec), 0 when nothing was read */
        /* Days the source cannot give exact metrics for (a NULL price, a
         * negative total quantity: pg_source_aggregate()), described;
         * not compared.  malloc'd, NULL when there are none. */
        char *unverifiable;
} VerifyResult;

void verify_result_done(VerifyResult *r);

/* Compares computed days (sorted, unique) with the stored rows (any order,
 * possibly several per day: the greatest version counts).  Fills *ret
 * (diffs malloc'd).  -ENOMEM only. */
int verify_compare(const DayStats *computed, size_t n, const StoredDay *stored, size_t n_stored,
                   uint64_t snapshot_version, VerifyResult *ret);

/* "total_orders", "total_items_sold", "total_revenue", "total_cost",
 * "total_profit", "average_order_value"; NULL past the last. */
const char *verify_column_name(size_t i);

/* The value of column i of s as text ("12", "3.10"). Returns buf. */
char *verify_column_value(const DayStats *s, size_t i, char *buf, size_t len);

/* The differing columns of d as "total_revenue, total_profit" (or
 * "missing"). Returns buf. */
char *verify_columns_text(const VerifyDiff *d, char *buf, size_t len);

/* Recomputes the given days (sorted, unique) in one REPEATABLE READ, READ
 * ONLY snapshot and compares them with the latest stored rows.  ctl may be
 * NULL; run_control_cancel() on it stops the check, a statement in flight
 * included.  Errors as run.h (run_error_unavailable() tells exit 69). */
int verify_days(const Config *c, const Day *days, size_t n, RunControl *ctl, VerifyResult *ret, char *err,
                size_t errlen);

/* Picks up to k distinct days at random from [first, last] that are not in
 * excluded (sorted, unique), sorted into ret (room for k).  rand64 returns
 * uniformly random 64-bit values.  Returns how many were picked. */
size_t verify_pick_days(Day first, Day last, const Day *excluded, size_t n_excluded, size_t k,
                        uint64_t (*rand64)(void *userdata), void *userdata, Day *ret);

/* The daemon's continuous audit: verifies audit.days_per_run random days of
 * the last audit.window, leaving out the days the next run recomputes
 * anyway (today, reconcile_days, days changed since the stored watermark −
 * overlap): a difference there is a change not yet processed, not drift.
 * Nothing is checked before the first watermark.  ctl as verify_days(). */
int verify_audit(const Config *c, RunControl *ctl, VerifyResult *ret, char *err, size_t errlen);
