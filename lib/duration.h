/* Durations as written in salesd.yaml: an unsigned integer and a unit
 * ("ms", "s", "m", "h", "d"), e.g. "15m", "250ms", "2h".  Several parts may be
 * combined ("1h30m").  Values are kept in microseconds (usec_t), the unit
 * sd-event uses. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_PER_MSEC   ((usec_t)1000ULL)
#define USEC_PER_SEC    ((usec_t)1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR   (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY    (24ULL * USEC_PER_HOUR)

/* Parses s.  Returns 0, -EINVAL for a malformed string (no unit, unknown
 * unit, empty, sign, garbage) or -ERANGE when it does not fit. */
int duration_parse(const char *s, usec_t *ret);

/* Formats d in the largest units that represent it exactly ("15m", "1h30m",
 * "250ms", "0s").  Returns buf. */
char *duration_format(usec_t d, char *buf, size_t len);

/* The given clock (CLOCK_REALTIME, CLOCK_MONOTONIC, ...) in microseconds. */
usec_t now_usec(clockid_t clock);
