/* Step 4 of a run (SPEC §3, §4): compare recomputed days with what the sink
 * holds and insert only those that changed, each with a version greater
 * than its stored one.  An insert that failed ambiguously (timeout, lost
 * connection) may have landed: the retry re-reads the stored rows first and
 * resends only what is still missing, so no two rows of a day share a
 * version. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sink.h"

typedef struct ApplyOptions {
        uint64_t run_version; /* the snapshot's clock, usec (SPEC §3) */
        usec_t computed_at;   /* written to computed_at */
        unsigned retries;     /* extra attempts after a failed insert */
} ApplyOptions;

/* Writes the days of computed that differ from their stored rows.
 * *ret_written: how many days differed when first compared (rows written by
 * this call, even when an ambiguous attempt landed).  Returns 0 or the last
 * error (err says what failed). */
int apply_days(Sink *s, const DayStats *computed, size_t n, const ApplyOptions *o, unsigned *ret_written, char *err,
               size_t errlen);
