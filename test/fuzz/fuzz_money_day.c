/* Fuzz target: the exact-number and date parsers that read what Postgres and
 * ClickHouse print: money_parse, day_parse, text_parse_u64 and
 * watermark_parse.  Whatever parses formats back to a text that parses to the
 * same value; sums of two parsed amounts are defined (no overflow). */
#include <errno.h>

#include "day.h"
#include "fuzz.h"
#include "metrics.h"
#include "money.h"
#include "text.h"
#include "watermark.h"

static void check_money(const char *s) {
        Money m, again;
        char buf[MONEY_STRLEN];
        int r = money_parse(s, &m);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -EDOM || r == -ERANGE);
        if (r < 0)
                return;
        FUZZ_ASSERT(m <= MONEY_MAX && m >= MONEY_MIN);
        FUZZ_ASSERT(money_parse(money_format(m, buf, sizeof(buf)), &again) == 0 && again == m);
        DayStats d = { .total_orders = 3, .total_revenue = m, .total_cost = -m };
        metrics_finish(&d);
        FUZZ_ASSERT(d.total_profit == m + m);
        (void)money_fits_decimal(d.average_order_value, 15);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 256)
                return 0;
        char *s = fuzz_string(data, size), buf[WATERMARK_STRLEN];
        check_money(s);

        Day day, day2;
        if (day_parse(s, &day) == 0) {
                FUZZ_ASSERT(day_parse(day_format(day, buf), &day2) == 0 && day2 == day);
                FUZZ_ASSERT(strcmp(buf, s) == 0);
        }
        uint64_t u;
        int r = text_parse_u64(s, &u);
        FUZZ_ASSERT(r == 0 || r < 0);
        usec_t t, t2;
        if (watermark_parse(s, &t) == 0)
                FUZZ_ASSERT(watermark_parse(watermark_format(t, buf), &t2) == 0 && t2 == t);
        free(s);
        return 0;
}
