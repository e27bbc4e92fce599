/* Cron expressions for the salesd schedule: a hand-written parser into one
 * bitset per field, and cron_next()/cron_prev(), which map matching
 * wall-clock minutes onto Unix instants in the process's local time zone
 * (see cron.h).  Calendar arithmetic is day.h's.
 *
 * Time model.  A matching wall-clock minute W fires at the first instant whose
 * local wall clock reads W or later.  That one rule gives both DST promises
 * of the header: a W that exists fires at its first occurrence, and a W
 * skipped by a spring-forward gap fires at the first instant after the gap.
 * Several skipped minutes map to that same instant and fire once there, and
 * the second pass through a repeated fall-back hour fires nothing.
 *
 * Wildcard-hour expressions follow the same rule, with no special case
 * (unlike Vixie cron, which runs them "by real time"); Europe/Berlin as
 * example, where 02:00-02:59 is skipped in March and repeated in October:
 *   - "* /15 * * * *" (no space) in March fires 01:45 CET, 03:00 CEST (for
 *     the skipped 02:00..02:45 and 03:00 itself, once), 03:15 CEST; in
 *     October 02:00, 02:15, 02:30, 02:45 CEST, then 03:00 CET: 75 minutes
 *     without a run while the clock repeats 02:00-02:59.
 *   - "30 * * * *" in March fires 01:30 CET, 03:00 CEST (for the skipped
 *     02:30), 03:30 CEST; in October 01:30, 02:30 CEST, then 03:30 CET.
 *   - "30 2 * * *" fires at 03:00 CEST on the March day and at 02:30 CEST
 *     (not 02:30 CET) on the October day.
 * Consecutive results fed back as `after` are therefore strictly increasing,
 * never repeat a wall-clock minute and never skip a day's fixed-time run.
 *
 * Efficiency: the search walks wall-clock candidates field by field, jumping
 * to the next set bit of the month, day, hour and minute sets, so whole
 * months, days and hours that cannot match cost one step each.  Only
 * matching candidates are converted to instants (a few localtime_r() calls,
 * more only inside a DST gap).  The search stops after the end of the
 * eighth calendar year following `after`'s year: -ERANGE.
 *
 * cron_prev() walks the same candidates backwards.  As the instant of W
 * never decreases as W grows, the first candidate (from the top) whose
 * instant lies before `before` is the latest slot; the walk starts at the
 * latest wall clock shown before `before`, which after a fall-back is the
 * end of the repeated hour's first pass rather than the clock now.
 */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "day.h"

#define CRON_SEARCH_YEARS 8

/* Search steps taken by this thread: see cron_search_steps(). */
static _Thread_local unsigned long search_steps;

unsigned long cron_search_steps(void) {
        return search_steps;
}

struct CronExpr {
        uint64_t minutes; /* bits 0..59 */
        uint32_t hours;   /* bits 0..23 */
        uint32_t mdays;   /* bits 1..31 */
        uint16_t months;  /* bits 1..12 */
        uint8_t wdays;    /* bits 0..6, Sunday = 0 (7 is folded onto 0) */
        bool mday_star;   /* the field started with '*' */
        bool wday_star;
};

typedef struct CronField {
        const char *name;
        int min, max;
        const char *const *names; /* 3-letter names for min.., or NULL */
} CronField;

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                           "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const wday_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

enum { F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const CronField cron_fields[F_COUNT] = {
        [F_MINUTE] = { "minute", 0, 59, NULL },         [F_HOUR] = { "hour", 0, 23, NULL },
        [F_MDAY] = { "day-of-month", 1, 31, NULL },     [F_MONTH] = { "month", 1, 12, month_names },
        [F_WDAY] = { "day-of-week", 0, 7, wday_names },
};

static const struct {
        const char *name;
        const char *expr;
} cron_aliases[] = {
        { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
        { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
        { "@hourly", "0 * * * *" },
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;

                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* One value: a decimal number or, where the field has them, a 3-letter
 * name.  [s, end) is the value, item/ilen the list item it sits in (quoted
 * when the value is empty); *is_name lets a range treat a named Sunday. */
static int parse_value(const CronField *f, const char *item, int ilen, const char *s, const char *end, int *ret,
                       bool *is_name, char *err, size_t errlen) {
        int len = (int)(end - s);

        if (len == 0)
                return fail(err, errlen, "%s field: missing value in '%.*s'", f->name, ilen, item);

        if (isdigit((unsigned char)*s)) {
                long v = 0;

                for (const char *p = s; p < end; p++) {
                        if (!isdigit((unsigned char)*p))
                                return fail(err, errlen, "%s field: invalid value '%.*s'", f->name, len, s);
                        if (v <= 1000)
                                v = v * 10 + (*p - '0');
                }
                if (v < f->min || v > f->max)
                        return fail(err, errlen, "%s field: value '%.*s' out of range %d-%d", f->name, len, s, f->min,
                                    f->max);
                *ret = (int)v;
                *is_name = false;
                return 0;
        }

        if (f->names && len == 3)
                for (int i = 0; f->names[i]; i++)
                        if (strncasecmp(s, f->names[i], 3) == 0) {
                                *ret = f->min + i;
                                *is_name = true;
                                return 0;
                        }

        if (f->names)
                return fail(err, errlen, "%s field: invalid value '%.*s' (expected %d-%d or %s..%s)", f->name, len, s,
                            f->min, f->max, f->names[0], f == &cron_fields[F_MONTH] ? "dec" : "sat");
        return fail(err, errlen, "%s field: invalid value '%.*s' (expected %d-%d)", f->name, len, s, f->min, f->max);
}

/* One list item: "*", "v", "a-b", each optionally followed by "/step";
 * "v/step" means v-max/step. */
static int parse_item(const CronField *f, const char *s, const char *end, uint64_t *bits, char *err, size_t errlen) {
        int ilen = (int)(end - s);
        const char *slash = memchr(s, '/', (size_t)ilen);
        const char *vend = slash ? slash : end;
        int lo, hi, step = 1;
        bool lo_name = false, hi_name = false;
        int r;

        if (slash) {
                long v = 0;
                const char *p;

                if (slash + 1 == end)
                        return fail(err, errlen, "%s field: missing step in '%.*s'", f->name, ilen, s);
                for (p = slash + 1; p < end; p++) {
                        if (!isdigit((unsigned char)*p))
                                return fail(err, errlen, "%s field: invalid step '%.*s' in '%.*s'", f->name,
                                            (int)(end - slash - 1), slash + 1, ilen, s);
                        if (v <= 1000)
                                v = v * 10 + (*p - '0');
                }
                if (v < 1 || v > f->max)
                        return fail(err, errlen, "%s field: step '%.*s' out of range 1-%d", f->name,
                                    (int)(end - slash - 1), slash + 1, f->max);
                step = (int)v;
        }

        if (vend - s == 1 && *s == '*') {
                lo = f->min;
                hi = f->max;
        } else {
                const char *dash = memchr(s, '-', (size_t)(vend - s));

                r = parse_value(f, s, ilen, s, dash ? dash : vend, &lo, &lo_name, err, errlen);
                if (r < 0)
                        return r;
                if (dash) {
                        r = parse_value(f, s, ilen, dash + 1, vend, &hi, &hi_name, err, errlen);
                        if (r < 0)
                                return r;
                        /* "fri-sun" reads naturally; let a named Sunday close a range. */
                        if (f == &cron_fields[F_WDAY] && hi_name && hi == 0 && lo > 0)
                                hi = 7;
                        if (lo > hi)
                                return fail(err, errlen, "%s field: range '%.*s' goes backwards", f->name,
                                            (int)(vend - s), s);
                } else
                        hi = slash ? f->max : lo;
        }

        for (int v = lo; v <= hi; v += step)
                *bits |= UINT64_C(1) << v;
        return 0;
}

static int parse_field(const CronField *f, const char *s, const char *end, uint64_t *ret, char *err, size_t errlen) {
        uint64_t bits = 0;

        for (const char *item = s;;) {
                const char *comma = memchr(item, ',', (size_t)(end - item));
                const char *iend = comma ? comma : end;
                int r;

                if (iend == item)
                        return fail(err, errlen, "%s field: empty list item in '%.*s'", f->name, (int)(end - s), s);
                r = parse_item(f, item, iend, &bits, err, errlen);
                if (r < 0)
                        return r;
                if (!comma)
                        break;
                item = comma + 1;
        }

        *ret = bits;
        return 0;
}

static int parse_fields(const char *expr, CronExpr *e, char *err, size_t errlen) {
        const char *start[F_COUNT], *end[F_COUNT];
        uint64_t bits[F_COUNT];
        int n = 0;

        for (const char *p = expr;;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0')
                        break;
                if (n < F_COUNT)
                        start[n] = p;
                while (*p != '\0' && *p != ' ' && *p != '\t')
                        p++;
                if (n < F_COUNT)
                        end[n] = p;
                n++;
        }
        if (n != F_COUNT)
                return fail(err, errlen, "expected 5 fields, got %d (minute hour day-of-month month day-of-week)", n);

        for (int i = 0; i < F_COUNT; i++) {
                int r = parse_field(&cron_fields[i], start[i], end[i], &bits[i], err, errlen);
                if (r < 0)
                        return r;
        }

        e->minutes = bits[F_MINUTE];
        e->hours = (uint32_t)bits[F_HOUR];
        e->mdays = (uint32_t)bits[F_MDAY];
        e->months = (uint16_t)bits[F_MONTH];
        e->wdays = (uint8_t)((bits[F_WDAY] | (bits[F_WDAY] >> 7)) & 0x7f);
        e->mday_star = *start[F_MDAY] == '*';
        e->wday_star = *start[F_WDAY] == '*';
        return 0;
}

int cron_parse(const char *expr, CronExpr **ret, char *err, size_t errlen) {
        CronExpr *e;
        const char *p = expr;
        int r;

        if (!expr)
                return fail(err, errlen, "expected 5 fields, got 0");

        while (*p == ' ' || *p == '\t')
                p++;
        if (*p == '@') {
                size_t len = strcspn(p, " \t");
                const char *rest = p + len;
                const char *found = NULL;

                for (size_t i = 0; i < sizeof(cron_aliases) / sizeof(cron_aliases[0]); i++)
                        if (strlen(cron_aliases[i].name) == len && strncasecmp(p, cron_aliases[i].name, len) == 0)
                                found = cron_aliases[i].expr;
                if (!found && len == 7 && strncasecmp(p, "@reboot", len) == 0)
                        return fail(err, errlen,
                                    "unsupported alias '@reboot' (use run_on_start: true to run at start)");
                if (!found)
                        return fail(err, errlen,
                                    "unknown alias '%.*s' (expected @yearly, @annually, @monthly, @weekly, @daily, "
                                    "@midnight or @hourly)",
                                    (int)len, p);
                rest += strspn(rest, " \t");
                if (*rest != '\0')
                        return fail(err, errlen, "unexpected text '%s' after '%.*s'", rest, (int)len, p);
                p = found;
        }

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = parse_fields(p, e, err, errlen);
        if (r < 0) {
                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void cron_free(CronExpr *e) {
        free(e);
}

/* ---- wall-clock minutes and the bitsets ---- */

/* A wall-clock minute; fields may overflow (or underflow) by one between
 * the steps of a search, and carry_forward()/carry_backward() fix that. */
typedef struct Wall {
        int y, mo, d, h, mi;
} Wall;

static Wall wall_split(int64_t wall) {
        int64_t days = wall / 86400, secs = wall % 86400;
        Wall w;
        unsigned mo, d;

        if (secs < 0) {
                secs += 86400;
                days--;
        }
        day_to_civil((Day)days, &w.y, &mo, &d);
        w.mo = (int)mo;
        w.d = (int)d;
        w.h = (int)(secs / 3600);
        w.mi = (int)(secs % 3600 / 60);
        return w;
}

static int64_t wall_seconds(const Wall *w) {
        return (int64_t)day_from_civil(w->y, (unsigned)w->mo, (unsigned)w->d) * 86400 + w->h * 3600 + w->mi * 60;
}

static int days_in_month(const Wall *w) {
        return (int)day_days_in_month(w->y, (unsigned)w->mo);
}

static void carry_forward(Wall *w) {
        if (w->mi > 59)
                w->mi = 0, w->h++;
        if (w->h > 23)
                w->h = 0, w->d++;
        if (w->d > days_in_month(w))
                w->d = 1, w->mo++;
        if (w->mo > 12)
                w->mo = 1, w->y++;
}

static void carry_backward(Wall *w) {
        if (w->mi < 0)
                w->mi = 59, w->h--;
        if (w->h < 0)
                w->h = 23, w->d--;
        if (w->d < 1) {
                if (--w->mo < 1)
                        w->mo = 12, w->y--;
                w->d = days_in_month(w);
        }
}

/* Smallest set bit >= from and <= max, or -1. */
static int next_bit(uint64_t bits, int from, int max) {
        for (int b = from; b <= max; b++)
                if (bits & (UINT64_C(1) << b))
                        return b;
        return -1;
}

/* Greatest set bit <= from and >= min, or -1. */
static int prev_bit(uint64_t bits, int from, int min) {
        for (int b = from; b >= min; b--)
                if (bits & (UINT64_C(1) << b))
                        return b;
        return -1;
}

static bool day_matches(const CronExpr *e, const Wall *w) {
        bool md = e->mdays & (UINT32_C(1) << w->d);
        bool wd = e->wdays & (1u << day_weekday(day_from_civil(w->y, (unsigned)w->mo, (unsigned)w->d)));

        if (e->mday_star || e->wday_star)
                return md && wd;
        return md || wd;
}

/* Moves *w forward to the first matching wall minute at or after it, one
 * step per month, day or hour that cannot match.  -ERANGE past year limit. */
static int seek_forward(const CronExpr *e, Wall *w, int limit) {
        for (;;) {
                int v;

                search_steps++;
                carry_forward(w);
                if (w->y > limit)
                        return -ERANGE;
                v = next_bit(e->months, w->mo, 12);
                if (v < 0) {
                        *w = (Wall){ .y = w->y + 1, .mo = 1, .d = 1 };
                        continue;
                }
                if (v != w->mo) {
                        *w = (Wall){ .y = w->y, .mo = v, .d = 1 };
                        continue;
                }
                if (!day_matches(e, w)) {
                        w->d++, w->h = 0, w->mi = 0;
                        continue;
                }
                v = next_bit(e->hours, w->h, 23);
                if (v < 0) {
                        w->d++, w->h = 0, w->mi = 0;
                        continue;
                }
                if (v != w->h)
                        w->h = v, w->mi = 0;
                v = next_bit(e->minutes, w->mi, 59);
                if (v < 0) {
                        w->h++, w->mi = 0;
                        continue;
                }
                w->mi = v;
                return 0;
        }
}

/* The mirror of seek_forward(): the last matching wall minute at or before
 * *w.  -ERANGE before year limit. */
static int seek_backward(const CronExpr *e, Wall *w, int limit) {
        for (;;) {
                int v;

                search_steps++;
                carry_backward(w);
                if (w->y < limit)
                        return -ERANGE;
                v = prev_bit(e->months, w->mo, 1);
                if (v < 0) {
                        *w = (Wall){ .y = w->y - 1, .mo = 12, .d = 31, .h = 23, .mi = 59 };
                        continue;
                }
                if (v != w->mo) {
                        *w = (Wall){ .y = w->y, .mo = v, .h = 23, .mi = 59 };
                        w->d = days_in_month(w);
                        continue;
                }
                if (!day_matches(e, w)) {
                        w->d--, w->h = 23, w->mi = 59;
                        continue;
                }
                v = prev_bit(e->hours, w->h, 0);
                if (v < 0) {
                        w->d--, w->h = 23, w->mi = 59;
                        continue;
                }
                if (v != w->h)
                        w->h = v, w->mi = 59;
                v = prev_bit(e->minutes, w->mi, 0);
                if (v < 0) {
                        w->h--, w->mi = 59;
                        continue;
                }
                w->mi = v;
                return 0;
        }
}

/* ---- wall clock <-> instants ---- */

/* Wall-clock seconds (local time read as if it were UTC) at instant t. */
static int local_wall(time_t t, int64_t *ret) {
        struct tm tm;

        if (!localtime_r(&t, &tm))
                return -ERANGE;
        *ret = (int64_t)t + tm.tm_gmtoff;
        return 0;
}

/* The first instant whose wall clock reads `wall` or later: the first
 * occurrence of an existing wall time, or the end of the gap that skipped it. */
static int wall_to_instant(int64_t wall, time_t *ret) {
        int64_t offs[8];
        int n = 0, r;
        int64_t probes[3] = { wall - 36 * 3600, wall, wall + 36 * 3600 };
        time_t best = 0, lo, hi;
        bool found = false;
        int64_t omin, omax;

        /* Collect the UTC offsets in force around `wall`, then follow each
         * candidate instant to the offset in force there until no new one
         * appears (normally one or two offsets, one round). */
        for (int i = 0; i < 3; i++) {
                int64_t w;

                r = local_wall((time_t)probes[i], &w);
                if (r < 0)
                        return r;
                offs[n++] = w - probes[i];
        }
        for (int i = 0; i < n; i++) {
                time_t t = (time_t)(wall - offs[i]);
                int64_t w, o;
                bool known = false;

                r = local_wall(t, &w);
                if (r < 0)
                        return r;
                o = w - t;
                if (o == offs[i]) {
                        if (!found || t < best)
                                best = t;
                        found = true;
                }
                for (int j = 0; j < n; j++)
                        known = known || offs[j] == o;
                if (!known && n < (int)(sizeof(offs) / sizeof(offs[0])))
                        offs[n++] = o;
        }
        if (found) {
                *ret = best;
                return 0;
        }

        /* A gap: wall(lo) < wall < wall(hi); bisect to the transition. */
        omin = omax = offs[0];
        for (int i = 1; i < n; i++) {
                if (offs[i] < omin)
                        omin = offs[i];
                if (offs[i] > omax)
                        omax = offs[i];
        }
        lo = (time_t)(wall - omax);
        hi = (time_t)(wall - omin);
        while (hi - lo > 1) {
                time_t mid = lo + (hi - lo) / 2;
                int64_t w;

                r = local_wall(mid, &w);
                if (r < 0)
                        return r;
                if (w >= wall)
                        hi = mid;
                else
                        lo = mid;
        }
        *ret = hi;
        return 0;
}

int cron_next(const CronExpr *e, time_t after, time_t *ret) {
        int64_t wall;
        Wall w;
        int limit, r;

        r = local_wall(after, &wall);
        if (r < 0)
                return r;
        /* Every wall minute up to after's own has its instant at or before
         * `after`, so the search starts one minute later. */
        w = wall_split(wall);
        limit = w.y + CRON_SEARCH_YEARS;
        for (w.mi++;; w.mi++) {
                time_t t;

                r = seek_forward(e, &w, limit);
                if (r < 0)
                        return r;
                r = wall_to_instant(wall_seconds(&w), &t);
                if (r < 0)
                        return r;
                /* Inside a repeated hour, candidates can map before `after`
                 * (their first occurrence already passed). */
                if (t > after) {
                        *ret = t;
                        return 0;
                }
        }
}

/* The latest wall clock any instant before `before` showed: the clock at
 * before - 1, or more if a fall-back within the last 36 hours set it back
 * (the largest offset in force then bounds how far). */
static int latest_wall_before(time_t before, int64_t *ret) {
        static const int64_t probes[] = { 36 * 3600, 24 * 3600, 12 * 3600, 0 };
        time_t last = before - 1;
        int64_t omax = INT64_MIN;

        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                int64_t w;
                int r = local_wall((time_t)(last - probes[i]), &w);

                if (r < 0)
                        return r;
                if (w - (last - probes[i]) > omax)
                        omax = w - (last - probes[i]);
        }
        *ret = (int64_t)last + omax;
        return 0;
}

int cron_prev(const CronExpr *e, time_t before, time_t *ret) {
        int64_t wall;
        Wall w;
        int limit, r;
        time_t t = 0, n;

        r = latest_wall_before(before, &wall);
        if (r < 0)
                return r;
        w = wall_split(wall);
        limit = w.y - CRON_SEARCH_YEARS;
        for (;; w.mi--) {
                r = seek_backward(e, &w, limit);
                if (r < 0)
                        return r;
                r = wall_to_instant(wall_seconds(&w), &t);
                if (r < 0)
                        return r;
                /* an instant never decreases as W grows: the first one
                 * before `before` is the latest slot */
                if (t < before)
                        break;
        }
        /* If a zone's offset peaked between the probes (two changes within
         * a few hours, seen only in old history), the start may have been
         * too early and a later slot missed: step forward to it.  Otherwise
         * this is one cron_next() that confirms t is the latest slot. */
        while (cron_next(e, t, &n) == 0 && n < before)
                t = n;
        *ret = t;
        return 0;
}
