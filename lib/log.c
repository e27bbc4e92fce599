/* See log.h.  A single fprintf per line keeps lines whole when the run worker
 * thread and the event loop log at the same time (stdio locks the stream). */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_level = LOG_INFO;
static int log_timestamps;

static const struct {
        const char *name;
        int priority;
} log_levels[] = {
        { "error", LOG_ERR },     { "err", LOG_ERR },   { "warning", LOG_WARNING }, { "warn", LOG_WARNING },
        { "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
};

void log_set_level(int priority) {
        log_level = priority;
}

void log_set_timestamps(int on) {
        log_timestamps = on;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
                if (strcasecmp(s, log_levels[i].name) == 0)
                        return log_levels[i].priority;
        return -EINVAL;
}

const char *log_level_to_string(int priority) {
        for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
                if (log_levels[i].priority == priority)
                        return log_levels[i].name;
        return "info";
}

void log_vmsg(int priority, const char *fmt, va_list ap) {
        char line[4096];
        char stamp[40] = "";

        if (priority > log_level)
                return;
        int saved_errno = errno;
        vsnprintf(line, sizeof(line), fmt, ap);
        if (log_timestamps) {
                struct timespec ts;
                struct tm tm;
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ", &tm);
        }
        if (log_timestamps) /* a person at a terminal: words, not "<6>" */
                fprintf(stderr, "%s%s: %s\n", stamp, log_level_to_string(priority), line);
        else
                fprintf(stderr, "<%d>%s\n", priority, line);
        errno = saved_errno;
}

void log_msg(int priority, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(priority, fmt, ap);
        va_end(ap);
}

int log_msg_errno(int priority, int r, const char *fmt, ...) {
        char what[3072];
        va_list ap;

        if (priority > log_level)
                return r;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        log_msg(priority, "%s: %s", what, strerror(r < 0 ? -r : r));
        return r;
}
