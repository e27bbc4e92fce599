/* Durations as operators write them in salesd.yaml ("15m", "1h30m", "250ms")
 * and back.  Kept separate from config.c so the daemon and the tests can
 * format intervals the same way the configuration reads them.  Everything is
 * integer arithmetic in microseconds with explicit overflow checks: a typo
 * like "99999999999999d" must be rejected, never wrap into a short interval.
 */
#include "duration.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
        const char *suffix;
        usec_t usec;
} duration_units[] = {
        /* Longest suffix first where one is a prefix of another ("ms" before "m"). */
        { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC }, { "m", USEC_PER_MINUTE },
        { "h", USEC_PER_HOUR },  { "d", USEC_PER_DAY },
};

#define N_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

int duration_parse(const char *s, usec_t *ret) {
        usec_t total = 0;
        bool overflow = false;

        if (!s || !*s)
                return -EINVAL;

        const char *p = s;
        while (*p) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;

                usec_t n = 0;
                while (*p >= '0' && *p <= '9') {
                        unsigned digit = (unsigned)(*p - '0');
                        if (n > (UINT64_MAX - digit) / 10)
                                overflow = true;
                        else
                                n = n * 10 + digit;
                        p++;
                }

                size_t u;
                for (u = 0; u < N_UNITS; u++) {
                        size_t l = strlen(duration_units[u].suffix);
                        if (strncmp(p, duration_units[u].suffix, l) == 0) {
                                /* "5mx" or "5m s": the unit must end at the next digit or the end. */
                                if (p[l] != '\0' && (p[l] < '0' || p[l] > '9'))
                                        return -EINVAL;
                                p += l;
                                break;
                        }
                }
                if (u == N_UNITS)
                        return -EINVAL;

                usec_t mul = duration_units[u].usec;
                if (n > UINT64_MAX / mul)
                        overflow = true;
                else if (total > UINT64_MAX - n * mul)
                        overflow = true;
                else
                        total += n * mul;
        }

        /* Report a malformed string as such even when an earlier part overflowed. */
        if (overflow)
                return -ERANGE;
        *ret = total;
        return 0;
}

char *duration_format(usec_t d, char *buf, size_t len) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } parts[] = {
                { "d", USEC_PER_DAY }, { "h", USEC_PER_HOUR },  { "m", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC }, { "us", 1 },
        };
        size_t used = 0;

        if (len == 0)
                return buf;
        buf[0] = '\0';

        if (d == 0) {
                snprintf(buf, len, "0s");
                return buf;
        }

        /* "us" only appears for values config never produces (sub-millisecond),
         * so logs still show them exactly. */
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && d > 0; i++) {
                usec_t n = d / parts[i].usec;
                if (n == 0)
                        continue;
                d -= n * parts[i].usec;
                if (used < len) {
                        int r = snprintf(buf + used, len - used, "%llu%s", (unsigned long long)n, parts[i].suffix);
                        if (r < 0)
                                break;
                        used += (size_t)r;
                }
        }
        return buf;
}

usec_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}
