/* 5-field cron expressions (minute hour day-of-month month day-of-week) and
 * the next matching time, evaluated in the process's local time zone (the
 * daemon sets TZ to the configured `timezone`).
 *
 * Syntax: numbers, "*", ranges "a-b", steps "* /n" and "a-b/n" (no space),
 * lists "a,b,c", month names jan..dec, day names sun..sat (case-insensitive),
 * day-of-week 0 and 7 both Sunday, and the aliases @yearly @annually @monthly
 * @weekly @daily @midnight @hourly.  When both day-of-month and day-of-week
 * are restricted (neither starts with "*"), a day matches if either does
 * (the classic cron OR rule).
 *
 * DST: a wall-clock time skipped by a spring-forward gap fires once, at the
 * first instant after the gap; a wall-clock time repeated by a fall-back
 * hour fires once, at its first occurrence.
 */
#pragma once

#include <stddef.h>
#include <time.h>

#include "macro.h"

typedef struct CronExpr CronExpr;

/* Parses expr.  On failure returns -EINVAL and writes a one-line message
 * naming the field and the offending text into err; *ret is untouched. */
int cron_parse(const char *expr, CronExpr **ret, char *err, size_t errlen);

void cron_free(CronExpr *e);
DEFINE_POINTER_CLEANUP_FUNC(CronExpr, cron_free)

/* The first matching time strictly after `after` (Unix seconds), in local
 * time.  Returns 0, or -ERANGE when nothing matches within 8 years (e.g.
 * "0 0 30 2 *"). */
int cron_next(const CronExpr *e, time_t after, time_t *ret);

/* The latest matching time strictly before `before`: the mirror of
 * cron_next(), under the same DST rules, so the two agree on the set of
 * slots: with p = cron_prev(t), p < t and cron_next(p), if any, is >= t; and
 * for a slot s, cron_prev(cron_next(s)) == s.  Computed backwards field by field (a
 * sparse schedule costs a few steps, like cron_next).  Returns 0, or -ERANGE
 * when nothing matches from the start of the eighth calendar year before
 * `before`'s year. */
int cron_prev(const CronExpr *e, time_t before, time_t *ret);

/* The number of search steps (one per month, day, hour or minute
 * candidate looked at, in either direction) this thread's cron_next() and
 * cron_prev() calls have taken so far: a measure of their cost that does not
 * depend on the machine's speed, for tests.  A step skips a whole month,
 * day or hour that cannot match, so a call takes at most about one step per
 * day it searches, never one per minute or per slot. */
unsigned long cron_search_steps(void);
