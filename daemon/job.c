/* See job.h.  One eventfd per job (not one per start): the loop watches it
 * for the job's lifetime, and a worker's single write is its last touch of
 * the Job, so the loop may join it and reuse the Job right away. */
#include "job.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"

struct Job {
        int efd;
        sd_event_source *source;
        pthread_t thread;
        bool busy;
        JobFunc func;
        JobDoneFunc done;
        void *userdata;
};

static void *job_thread(void *arg) {
        Job *j = arg;
        uint64_t one = 1;

        j->func(j->userdata);
        /* the loop thread learns of the end here; nothing touches j after */
        if (write(j->efd, &one, sizeof(one)) < 0)
                abort(); /* an eventfd write cannot fail unless the counter overflows */
        return NULL;
}

static int on_job_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)revents;
        Job *j = userdata;
        uint64_t v;

        if (read(fd, &v, sizeof(v)) < 0)
                return 0;
        pthread_join(j->thread, NULL);
        j->busy = false;
        j->done(j->userdata);
        return 0;
}

void job_free(Job *j) {
        if (!j)
                return;
        assert(!j->busy);
        sd_event_source_disable_unref(j->source);
        if (j->efd >= 0)
                close(j->efd);
        free(j);
}

DEFINE_POINTER_CLEANUP_FUNC(Job, job_free)

int job_new(sd_event *e, JobDoneFunc done, void *userdata, Job **ret) {
        _cleanup_(job_freep) Job *j = calloc(1, sizeof(*j));
        int r;

        if (!j)
                return -ENOMEM;
        j->done = done;
        j->userdata = userdata;
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r = j->efd < 0 ? -errno : sd_event_add_io(e, &j->source, j->efd, EPOLLIN, on_job_event, j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

int job_start(Job *j, JobFunc func) {
        int r;

        if (j->busy)
                return -EBUSY;
        j->func = func;
        j->busy = true;
        r = pthread_create(&j->thread, NULL, job_thread, j);
        if (r != 0) {
                j->busy = false;
                return -r;
        }
        return 0;
}

bool job_is_busy(const Job *j) {
        return j->busy;
}
