/* Fuzz target: cron expressions.  Whatever parses, cron_next() and
 * cron_prev() agree on the set of slots around a few instants in a few zones
 * (see cron.h): prev < t < next, nothing between them, and each search ends
 * within a bounded number of steps. */
#include <errno.h>
#include <time.h>

#include "cron.h"
#include "fuzz.h"

static const char *const zones[] = { "UTC", "Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns" };
static const time_t instants[] = { 1711846800 /* 2024-03-31T01:00Z, a spring-forward */,
                                   1729990800 /* 2024-10-27T01:00Z, a fall-back */, 951782400 /* 2000-02-29 */,
                                   4102444740 /* 2099-12-31T23:59Z */ };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 512)
                return 0;
        char *s = fuzz_string(data, size);
        char err[256];
        CronExpr *e = NULL;
        int r = cron_parse(s, &e, err, sizeof(err));
        FUZZ_ASSERT(r == 0 ? e != NULL : r == -EINVAL && err[0] != '\0');
        if (r == 0) {
                unsigned h = 0;
                for (size_t i = 0; i < size; i++)
                        h = h * 31 + data[i];
                setenv("TZ", zones[h % (sizeof(zones) / sizeof(zones[0]))], 1);
                tzset();
                for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
                        time_t t = instants[i] + (time_t)(h % 86400), next = 0, prev = 0, n2 = 0;
                        unsigned long steps = cron_search_steps();
                        int rn = cron_next(e, t, &next), rp = cron_prev(e, t, &prev);
                        FUZZ_ASSERT(cron_search_steps() - steps < 20000);
                        FUZZ_ASSERT(rn == 0 || rn == -ERANGE);
                        FUZZ_ASSERT(rp == 0 || rp == -ERANGE);
                        if (rn == 0)
                                FUZZ_ASSERT(next > t);
                        if (rp == 0) {
                                FUZZ_ASSERT(prev < t);
                                /* nothing between the previous slot and t (the
                                 * next one may lie beyond cron_next's 8 years) */
                                int r2 = cron_next(e, prev, &n2);
                                FUZZ_ASSERT(r2 == 0 || r2 == -ERANGE);
                                if (r2 == 0)
                                        FUZZ_ASSERT(n2 >= t);
                                if (r2 == 0 && rn == 0)
                                        FUZZ_ASSERT(n2 == next || n2 == t);
                        }
                }
        }
        cron_free(e);
        free(s);
        return 0;
}
