/* Stopping work on another thread: a run, an audit.  Shared by run.c and
 * verify.c. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "pg.h"

/* Lets another thread stop a run: sets the flag checked between steps and in
 * every ClickHouse transfer, and cancels the Postgres statement in flight. */
typedef struct RunControl {
        atomic_bool cancel;
        pthread_mutex_t lock;
        PgSource *pg;       /* while connected */
        const char *reason; /* why the run was cancelled (static), under lock */
} RunControl;

void run_control_init(RunControl *ctl);
void run_control_done(RunControl *ctl);
/* reason: a static string for the run's error, "cancelled: <reason>".
 * Never blocks (see pg_source_cancel()). */
void run_control_cancel(RunControl *ctl, const char *reason);
/* Clears the flag and reason before the next run. */
void run_control_reset(RunControl *ctl);
/* The connection run_control_cancel() cancels a statement on; NULL before
 * that connection is freed. */
void run_control_publish(RunControl *ctl, PgSource *pg);
/* Why the work was cancelled, NULL when it was not. */
const char *run_control_reason(RunControl *ctl);
