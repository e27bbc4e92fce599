/* The salesd_runs backlog (SPEC §3): run rows that could not be written
 * (ClickHouse down) wait here, at most RUN_BACKLOG_MAX of them, and go out
 * with the next run row that can be written.  Beyond that the oldest are
 * dropped and counted.  Safe to use from several threads (the daemon's run
 * thread writes, its loop reads the counts). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "run.h"
#include "sink.h"

#define RUN_BACKLOG_MAX 1000

int run_backlog_new(RunBacklog **ret);
void run_backlog_free(RunBacklog *b);
static inline void run_backlog_freep(RunBacklog **b) {
        run_backlog_free(*b);
}

/* Queues r; when full, the oldest row is dropped and counted. */
void run_backlog_push(RunBacklog *b, const RunRecord *r);

/* Rows waiting, and (if ret_dropped) how many were ever dropped. */
size_t run_backlog_pending(RunBacklog *b, uint64_t *ret_dropped);

/* Writes the waiting rows and r in one insert through sink (one attempt:
 * the next run's write is the retry).  A waiting row whose run_id is
 * already stored (an earlier insert whose answer was lost) is not sent
 * again.  On failure, or when sink is NULL (it could not be opened), r joins
 * the backlog and the error is returned. */
int run_backlog_flush(RunBacklog *b, Sink *sink, const RunRecord *r, const char *instance, char *err, size_t errlen);
