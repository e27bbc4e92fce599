/* The watermark (SPEC §4): how far the source's changes are known to be in
 * ClickHouse, as a Postgres timestamp.  Stored in salesd_state as fixed-format
 * UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ", which sorts like the instant and
 * round-trips through Postgres's timestamptz exactly (microseconds). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "duration.h"

#define WATERMARK_STRLEN 40

/* Parses the stored text; -EINVAL unless it has exactly that shape and is a
 * real instant.  *ret is microseconds since the epoch. */
int watermark_parse(const char *s, usec_t *ret);

/* Formats t (microseconds since the epoch, ≥ 0) in the stored shape. */
char *watermark_format(usec_t t, char buf[WATERMARK_STRLEN]);

/* The lower bound of a run's change scan: watermark − overlap, as text for
 * Postgres; "-infinity" when there is no watermark yet (every row is new) or
 * the subtraction would go before the epoch. */
int watermark_since(const char *watermark, usec_t overlap, char ret[WATERMARK_STRLEN]);

/* The watermark after a successful run: the greatest change seen in the
 * snapshot, but never at or past the late-commit guard (the oldest open
 * transaction's start; "" when none): then one microsecond before it, since
 * that transaction's rows are stamped at or after its start.  Never moves
 * backwards from current ("" when none).  Returns true and fills ret when it
 * advances, always with a value watermark_parse() accepts: a max_changed
 * that is not one (year 10000, before 1970, BC) does not advance it. */
bool watermark_next(const char *current, const char *max_changed, const char *guard, char ret[WATERMARK_STRLEN]);
