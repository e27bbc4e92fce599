/* See watermark.h.  The fixed shape makes comparison a string compare. */
#include "watermark.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "day.h"

#define SHAPE "YYYY-MM-DDTHH:MM:SS.ffffffZ"

int watermark_parse(const char *s, usec_t *ret) {
        static const char shape[] = SHAPE;
        char date[11];
        Day day;
        unsigned hh, mm, ss, us;

        if (!s || strlen(s) != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++) {
                bool digit = strchr("YMDHSf", shape[i]) != NULL;
                if (digit ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
                        return -EINVAL;
        }
        memcpy(date, s, 10);
        date[10] = '\0';
        if (day_parse(date, &day) < 0 || day < 0)
                return -EINVAL;
        if (sscanf(s + 11, "%2u:%2u:%2u.%6u", &hh, &mm, &ss, &us) != 4 || hh > 23 || mm > 59 || ss > 59)
                return -EINVAL;
        *ret = (usec_t)day * USEC_PER_DAY + hh * USEC_PER_HOUR + mm * USEC_PER_MINUTE + ss * USEC_PER_SEC + us;
        return 0;
}

char *watermark_format(usec_t t, char buf[WATERMARK_STRLEN]) {
        char date[DAY_STRLEN];
        usec_t in_day = t % USEC_PER_DAY;
        day_format((Day)(t / USEC_PER_DAY), date);
        snprintf(buf, WATERMARK_STRLEN, "%sT%02u:%02u:%02u.%06uZ", date, (unsigned)(in_day / USEC_PER_HOUR),
                 (unsigned)(in_day / USEC_PER_MINUTE % 60), (unsigned)(in_day / USEC_PER_SEC % 60),
                 (unsigned)(in_day % USEC_PER_SEC));
        return buf;
}

int watermark_since(const char *watermark, usec_t overlap, char ret[WATERMARK_STRLEN]) {
        usec_t t;
        if (!watermark || !*watermark) {
                snprintf(ret, WATERMARK_STRLEN, "-infinity");
                return 0;
        }
        int r = watermark_parse(watermark, &t);
        if (r < 0)
                return r;
        if (overlap > t)
                snprintf(ret, WATERMARK_STRLEN, "-infinity");
        else
                watermark_format(t - overlap, ret);
        return 0;
}

bool watermark_next(const char *current, const char *max_changed, const char *guard, char ret[WATERMARK_STRLEN]) {
        usec_t next, g, now;

        /* No rows at all, or only rows stamped where no watermark can be
         * (before 1970, BC: Postgres's to_char() prints no era): nothing
         * that could be stored and read back. */
        if (!max_changed || watermark_parse(max_changed, &next) < 0)
                return false;
        /* Rows of the open transaction carry updated_at ≥ its start, and the
         * next run looks for rows *later than* the watermark: stop one
         * microsecond before the start so a row stamped exactly then counts. */
        if (guard && watermark_parse(guard, &g) == 0 && g > 0 && g <= next)
                next = g - 1;
        if (current && watermark_parse(current, &now) == 0 && next <= now)
                return false;
        watermark_format(next, ret);
        return true;
}
