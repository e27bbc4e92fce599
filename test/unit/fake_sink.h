/* A sink held in memory for the unit tests of the run's decisions: it keeps
 * daily_sales_stats and salesd_runs rows as a server would, and can be told
 * to fail the next operations, optionally after the write landed (an
 * answer lost on the way back). */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"

#define FAKE_MAX_ROWS 4096

typedef struct FakeSink {
        Sink base;
        StoredDay days[FAKE_MAX_ROWS]; /* every inserted row, like a MergeTree before merges */
        size_t n_days;
        RunRecord runs[FAKE_MAX_ROWS];
        size_t n_runs;
        char watermark[WATERMARK_STRLEN];
        unsigned reads, inserts, run_inserts, backoffs;
        int fail_inserts;              /* fail this many insert attempts ... */
        int fail_error;                /* ... with this error */
        bool fail_landed;              /* ... after the rows were stored */
        int fail_reads;                /* fail this many reads with fail_error */
        uint64_t attempt_versions[16]; /* version of the first row of each insert attempt */
        char query_ids[16][64];        /* query_id of each insert attempt */
        char ended[16][64];            /* query_ids passed to end_query, in order */
        unsigned n_ended;
        StoredDay late[FAKE_MAX_ROWS]; /* rows of a failed attempt that land with the next insert */
        size_t n_late;
        bool fail_lands_late;
} FakeSink;

static FakeSink *fake(Sink *s) {
        return (FakeSink *)s;
}

static int fake_read_watermark(Sink *s, char ret[WATERMARK_STRLEN], char *err, size_t errlen) {
        (void)err, (void)errlen;
        memcpy(ret, fake(s)->watermark, WATERMARK_STRLEN);
        return 0;
}

/* Like FINAL: the latest row of each asked day. */
static int fake_read_days(Sink *s, const Day *days, size_t n, StoredDay **ret, size_t *ret_n, char *err,
                          size_t errlen) {
        FakeSink *f = fake(s);
        f->reads++;
        if (f->fail_reads > 0) {
                f->fail_reads--;
                snprintf(err, errlen, "fake read failure");
                return f->fail_error;
        }
        StoredDay *out = calloc(f->n_days + 1, sizeof(StoredDay));
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const StoredDay *latest = NULL;
                for (size_t j = 0; j < f->n_days; j++)
                        if (f->days[j].stats.day == days[i] && (!latest || f->days[j].version > latest->version))
                                latest = &f->days[j];
                if (latest)
                        out[k++] = *latest;
        }
        *ret = out;
        *ret_n = k;
        return 0;
}

static int fake_insert_days(Sink *s, const DayStats *days, const uint64_t *versions, size_t n, usec_t computed_at,
                            const char *query_id, char *err, size_t errlen) {
        FakeSink *f = fake(s);
        (void)computed_at;
        if (f->inserts < 16) {
                f->attempt_versions[f->inserts] = n ? versions[0] : 0;
                snprintf(f->query_ids[f->inserts], 64, "%s", query_id);
        }
        f->inserts++;
        bool fail = f->fail_inserts > 0;
        if (fail)
                f->fail_inserts--;
        for (size_t i = 0; i < f->n_late; i++) /* a timed-out attempt finishing on the server */
                f->days[f->n_days++] = f->late[i];
        f->n_late = 0;
        for (size_t i = 0; i < n && fail && f->fail_lands_late; i++) {
                f->late[f->n_late].stats = days[i];
                f->late[f->n_late++].version = versions[i];
        }
        if (!fail || f->fail_landed)
                for (size_t i = 0; i < n; i++) {
                        f->days[f->n_days].stats = days[i];
                        f->days[f->n_days++].version = versions[i];
                }
        if (fail) {
                snprintf(err, errlen, "fake insert failure");
                return f->fail_error;
        }
        return 0;
}

static int fake_end_query(Sink *s, const char *query_id, char *err, size_t errlen) {
        FakeSink *f = fake(s);
        (void)err, (void)errlen;
        if (f->n_ended < 16)
                snprintf(f->ended[f->n_ended++], 64, "%s", query_id);
        return 0;
}

static int fake_write_watermark(Sink *s, const char *value, uint64_t version, char *err, size_t errlen) {
        (void)version, (void)err, (void)errlen;
        snprintf(fake(s)->watermark, WATERMARK_STRLEN, "%s", value);
        return 0;
}

static int fake_runs_stored(Sink *s, const RunRecord *rows, size_t n, bool *ret_stored, char *err, size_t errlen) {
        FakeSink *f = fake(s);
        if (f->fail_reads > 0) {
                f->fail_reads--;
                snprintf(err, errlen, "fake read failure");
                return f->fail_error;
        }
        for (size_t i = 0; i < n; i++) {
                ret_stored[i] = false;
                for (size_t j = 0; j < f->n_runs; j++)
                        if (strcmp(f->runs[j].run_id, rows[i].run_id) == 0)
                                ret_stored[i] = true;
        }
        return 0;
}

static int fake_insert_runs(Sink *s, const RunRecord *const *rows, size_t n, const char *instance, char *err,
                            size_t errlen) {
        FakeSink *f = fake(s);
        (void)instance;
        f->run_inserts++;
        bool fail = f->fail_inserts > 0;
        if (fail)
                f->fail_inserts--;
        if (!fail || f->fail_landed)
                for (size_t i = 0; i < n; i++)
                        f->runs[f->n_runs++] = *rows[i];
        if (fail) {
                snprintf(err, errlen, "fake insert failure");
                return f->fail_error;
        }
        return 0;
}

static int fake_write_heartbeat(Sink *s, const HeartbeatRow *h, char *err, size_t errlen) {
        (void)s, (void)h, (void)err, (void)errlen;
        return 0;
}

static int fake_backoff(Sink *s, unsigned attempt) {
        (void)attempt;
        fake(s)->backoffs++;
        return 0;
}

static void fake_set_cancel(Sink *s, const atomic_bool *flag) {
        (void)s, (void)flag;
}

static void fake_free(Sink *s) {
        free(s);
}

static const SinkOps fake_ops = {
        .read_watermark = fake_read_watermark,
        .read_days = fake_read_days,
        .insert_days = fake_insert_days,
        .end_query = fake_end_query,
        .write_watermark = fake_write_watermark,
        .runs_stored = fake_runs_stored,
        .insert_runs = fake_insert_runs,
        .write_heartbeat = fake_write_heartbeat,
        .backoff = fake_backoff,
        .set_cancel = fake_set_cancel,
        .free = fake_free,
};

static FakeSink *fake_sink_new(void) {
        FakeSink *f = calloc(1, sizeof(FakeSink));
        f->base.ops = &fake_ops;
        f->fail_error = -ETIMEDOUT;
        return f;
}
