/* See backlog.h.  A ring buffer under a mutex; a flush copies the waiting
 * rows out so that no lock is held across network I/O. */
#include "backlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

struct RunBacklog {
        pthread_mutex_t lock;
        RunRecord rows[RUN_BACKLOG_MAX];
        size_t head;
        size_t count;
        uint64_t dropped; /* oldest rows discarded because the backlog was full */
};

int run_backlog_new(RunBacklog **ret) {
        RunBacklog *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        *ret = b;
        return 0;
}

void run_backlog_free(RunBacklog *b) {
        if (!b)
                return;
        pthread_mutex_destroy(&b->lock);
        free(b);
}

void run_backlog_push(RunBacklog *b, const RunRecord *r) {
        pthread_mutex_lock(&b->lock);
        if (b->count == RUN_BACKLOG_MAX) {
                b->head = (b->head + 1) % RUN_BACKLOG_MAX;
                b->count--;
                b->dropped++;
        }
        b->rows[(b->head + b->count) % RUN_BACKLOG_MAX] = *r;
        b->count++;
        pthread_mutex_unlock(&b->lock);
}

size_t run_backlog_pending(RunBacklog *b, uint64_t *ret_dropped) {
        pthread_mutex_lock(&b->lock);
        size_t n = b->count;
        if (ret_dropped)
                *ret_dropped = b->dropped;
        pthread_mutex_unlock(&b->lock);
        return n;
}

/* Copies the waiting rows, oldest first; *ret is NULL when none wait. */
static int backlog_snapshot(RunBacklog *b, RunRecord **ret, size_t *ret_n) {
        pthread_mutex_lock(&b->lock);
        size_t n = b->count;
        RunRecord *rows = n ? malloc(n * sizeof(RunRecord)) : NULL;
        for (size_t i = 0; rows && i < n; i++)
                rows[i] = b->rows[(b->head + i) % RUN_BACKLOG_MAX];
        pthread_mutex_unlock(&b->lock);
        if (n && !rows)
                return -ENOMEM;
        *ret = rows;
        *ret_n = n;
        return 0;
}

/* Drops the n oldest rows (they were written); rows dropped for lack of
 * room meanwhile are not dropped twice. */
static void backlog_consume(RunBacklog *b, size_t n) {
        pthread_mutex_lock(&b->lock);
        size_t done = MIN(n, b->count);
        b->head = (b->head + done) % RUN_BACKLOG_MAX;
        b->count -= done;
        pthread_mutex_unlock(&b->lock);
}

/* The rows to send: the waiting ones not stored yet, then r. */
static size_t rows_to_send(const RunRecord *waiting, const bool *stored, size_t n, const RunRecord *r,
                           const RunRecord **send) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (!stored[i])
                        send[k++] = &waiting[i];
        send[k++] = r;
        return k;
}

static int flush_rows(Sink *sink, const RunRecord *waiting, size_t n, const RunRecord *r, const char *instance,
                      char *err, size_t errlen) {
        _cleanup_free_ bool *stored = calloc(n + 1, sizeof(bool));
        _cleanup_free_ const RunRecord **send = calloc(n + 1, sizeof(RunRecord *));
        int k = stored && send ? 0 : -ENOMEM;

        if (k == 0 && n > 0)
                k = sink_runs_stored(sink, waiting, n, stored, err, errlen); /* failed: keep everything */
        if (k == 0)
                k = sink_insert_runs(sink, send, rows_to_send(waiting, stored, n, r, send), instance, err, errlen);
        return k;
}

int run_backlog_flush(RunBacklog *b, Sink *sink, const RunRecord *r, const char *instance, char *err, size_t errlen) {
        _cleanup_free_ RunRecord *waiting = NULL;
        size_t n = 0;
        int k = -ENOTCONN;

        if (sink) {
                k = backlog_snapshot(b, &waiting, &n);
                if (k == 0)
                        k = flush_rows(sink, waiting, n, r, instance, err, errlen);
        }
        if (k < 0) {
                run_backlog_push(b, r);
                return k;
        }
        /* Only the rows that were in the insert leave the backlog. */
        backlog_consume(b, n);
        return 0;
}
