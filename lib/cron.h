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

typedef struct CronExpr CronExpr;

/* Parses expr.  On failure returns -EINVAL and writes a one-line message
 * naming the field and the offending text into err; *ret is untouched. */
int cron_parse(const char *expr, CronExpr **ret, char *err, size_t errlen);

void cron_free(CronExpr *e);

/* The first matching time strictly after `after` (Unix seconds), in local
 * time.  Returns 0, or -ERANGE when nothing matches within 8 years (e.g.
 * "0 0 30 2 *"). */
int cron_next(const CronExpr *e, time_t after, time_t *ret);
