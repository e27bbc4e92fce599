/* See detached.h. */
#include "detached.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "duration.h"

typedef struct {
        void *(*fn)(void *arg);
        void *arg;
} Start;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t none_left = PTHREAD_COND_INITIALIZER;
static unsigned running;

static void *trampoline(void *p) {
        Start s = *(Start *)p;
        free(p);
        s.fn(s.arg);
        pthread_mutex_lock(&lock);
        if (--running == 0)
                pthread_cond_broadcast(&none_left);
        pthread_mutex_unlock(&lock);
        return NULL;
}

int detached_start(void *(*fn)(void *arg), void *arg) {
        Start *s = malloc(sizeof(*s));
        pthread_attr_t attr;
        pthread_t thread;

        if (!s)
                return -ENOMEM;
        *s = (Start){ fn, arg };
        pthread_mutex_lock(&lock);
        running++;
        pthread_mutex_unlock(&lock);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&thread, &attr, trampoline, s);
        pthread_attr_destroy(&attr);
        if (r == 0)
                return 0;
        free(s);
        pthread_mutex_lock(&lock);
        if (--running == 0)
                pthread_cond_broadcast(&none_left);
        pthread_mutex_unlock(&lock);
        return -r;
}

bool detached_wait(uint64_t timeout_usec) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(timeout_usec / USEC_PER_SEC);
        until.tv_nsec += (long)(timeout_usec % USEC_PER_SEC) * 1000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&lock);
        int r = 0;
        while (running > 0 && r != ETIMEDOUT)
                r = pthread_cond_timedwait(&none_left, &lock, &until);
        bool done = running == 0;
        pthread_mutex_unlock(&lock);
        return done;
}
