/* Step 4 of a run (SPEC §3, §4): compare recomputed days with what the sink
 * holds and insert only those that changed, each with a version greater
 * than its stored one; a stored row from a newer snapshot than the run's
 * stands.  An insert that failed ambiguously (timeout, lost connection) may
 * have landed, or may still be running on the server: the retry ends it
 * (by its query_id) if the server still runs it, re-reads the stored rows
 * and resends only what is still missing, with a greater version than the
 * attempt before, so no two rows of a day share a version even when the
 * earlier attempt lands late. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"
#include "sink.h"

/* daily_sales_stats is partitioned by month, and current ClickHouse
 * refuses an INSERT block over more partitions than
 * max_partitions_per_insert_block (100 by default; 18.16 has no such
 * limit): the rows of one attempt go in blocks of at most this many
 * months, one INSERT each, every one fenced.  A block that fails
 * ambiguously is handled like a failed attempt (re-read, resend what is
 * missing); the blocks before it were answered. */
#define APPLY_MONTHS_PER_INSERT 100

typedef struct ApplyOptions {
        uint64_t run_version; /* the snapshot's clock, usec (SPEC §3) */
        usec_t computed_at;   /* written to computed_at */
        unsigned retries;     /* extra attempts after a failed insert */
        const char *run_id;   /* names each attempt's query_id: salesd-<run_id>-<attempt>, then -<k> per block k > 0 */
        /* Called right before each insert; a negative errno stops the run
         * there (the run's lock is gone: SPEC §4 step 4).  May be NULL. */
        int (*fence)(void *userdata, char *err, size_t errlen);
        void *fence_userdata;
        /* When not NULL, room for n: the days that differed when first
         * compared (*ret_written of them, in the order given). */
        Day *ret_written_days;
        /* Receives ("; "-separated) the days that cannot be written because
         * their stored row's version is beyond the source clock (see
         * METRICS_VERSION_AHEAD_MAX): named with the version and the
         * remedy, never counted as written.  May be NULL. */
        Buf *faults;
} ApplyOptions;

/* Writes the days of computed that differ from their stored rows.
 * *ret_written: how many days differed when first compared (rows written by
 * this call, even when an ambiguous attempt landed).  Returns 0 or the last
 * error (err says what failed). */
int apply_days(Sink *s, const DayStats *computed, size_t n, const ApplyOptions *o, unsigned *ret_written, char *err,
               size_t errlen);
