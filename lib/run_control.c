/* See run_control.h. */
#include "run_control.h"

#include <stddef.h>

void run_control_init(RunControl *ctl) {
        atomic_init(&ctl->cancel, false);
        pthread_mutex_init(&ctl->lock, NULL);
        ctl->pg = NULL;
        ctl->reason = NULL;
}

void run_control_done(RunControl *ctl) {
        pthread_mutex_destroy(&ctl->lock);
}

void run_control_cancel(RunControl *ctl, const char *reason) {
        pthread_mutex_lock(&ctl->lock);
        ctl->reason = reason;
        atomic_store(&ctl->cancel, true);
        if (ctl->pg)
                pg_source_cancel(ctl->pg);
        pthread_mutex_unlock(&ctl->lock);
}

void run_control_reset(RunControl *ctl) {
        pthread_mutex_lock(&ctl->lock);
        ctl->reason = NULL;
        atomic_store(&ctl->cancel, false);
        pthread_mutex_unlock(&ctl->lock);
}

const char *run_control_reason(RunControl *ctl) {
        pthread_mutex_lock(&ctl->lock);
        const char *why = atomic_load(&ctl->cancel) ? (ctl->reason ? ctl->reason : "salesd is stopping") : NULL;
        pthread_mutex_unlock(&ctl->lock);
        return why;
}

void run_control_publish(RunControl *ctl, PgSource *pg) {
        pthread_mutex_lock(&ctl->lock);
        ctl->pg = pg;
        pthread_mutex_unlock(&ctl->lock);
}
