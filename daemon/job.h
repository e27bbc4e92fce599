/* A Job runs one function at a time on its own worker thread and reports
 * its end on the sd-event loop: the thread writes to an eventfd the loop
 * watches, the loop joins the thread and calls the job's done callback.
 * Whatever the function reads and writes (inputs, results) is the caller's,
 * reached through userdata: the thread owns it while the job is busy, the
 * loop owns it again when done runs.  Everything here but the function
 * itself runs on the loop thread. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Job Job;

/* Runs on the worker thread. */
typedef void (*JobFunc)(void *userdata);
/* Runs on the loop thread once the worker has ended and been joined. */
typedef void (*JobDoneFunc)(void *userdata);

/* A job whose completions are dispatched on e to done(userdata). */
int job_new(sd_event *e, JobDoneFunc done, void *userdata, Job **ret);

/* Frees an idle job; accepts NULL.  A busy job's thread still uses its
 * data, so freeing it is a programmer error (assert). */
void job_free(Job *j);

/* Starts func(userdata) on a new thread.  Returns 0, -EBUSY while a previous
 * function is still running, or the negative errno of pthread_create(). */
int job_start(Job *j, JobFunc func);

/* True from a successful job_start() until just before done is called. */
bool job_is_busy(const Job *j);
