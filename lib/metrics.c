/* See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define DECIMAL_PRECISION 15

void metrics_finish(DayStats *s) {
        /* Parsed sums cannot overflow here (money.h); any others saturate
         * and fail metrics_check_range() instead of wrapping. */
        s->total_profit = money_sub(s->total_revenue, s->total_cost);
        s->average_order_value = s->total_orders ? money_div_round(s->total_revenue, s->total_orders) : 0;
}

int metrics_check_range(const DayStats *s, char *err, size_t errlen) {
        char day[DAY_STRLEN], v[MONEY_STRLEN];
        const struct {
                const char *name;
                Money value;
        } money_columns[] = {
                { "total_revenue", s->total_revenue },
                { "total_cost", s->total_cost },
                { "total_profit", s->total_profit },
                { "average_order_value", s->average_order_value },
        };

        if (s->total_orders > UINT32_MAX || s->total_items_sold > UINT32_MAX) {
                bool orders = s->total_orders > UINT32_MAX;
                snprintf(err, errlen, "day %s: %s %" PRIu64 " does not fit ClickHouse column type UInt32",
                         day_format(s->day, day), orders ? "total_orders" : "total_items_sold",
                         orders ? s->total_orders : s->total_items_sold);
                return -ERANGE;
        }
        for (size_t i = 0; i < sizeof(money_columns) / sizeof(money_columns[0]); i++)
                if (!money_fits_decimal(money_columns[i].value, DECIMAL_PRECISION)) {
                        snprintf(err, errlen, "day %s: %s %s does not fit ClickHouse column type Decimal(15, 2)",
                                 day_format(s->day, day), money_columns[i].name,
                                 money_format(money_columns[i].value, v, sizeof(v)));
                        return -ERANGE;
                }
        return 0;
}

bool metrics_equal(const DayStats *a, const DayStats *b) {
        return a->day == b->day && a->total_orders == b->total_orders && a->total_items_sold == b->total_items_sold &&
               a->total_revenue == b->total_revenue && a->total_cost == b->total_cost &&
               a->total_profit == b->total_profit && a->average_order_value == b->average_order_value;
}

size_t metrics_plan_writes(const DayStats *computed, size_t n, const StoredDay *stored, size_t n_stored,
                           uint64_t snapshot_version, uint64_t version, uint64_t *ret_versions, uint64_t *ret_corrupt) {
        size_t writes = 0;
        for (size_t i = 0; i < n; i++) {
                const StoredDay *latest = NULL;
                for (size_t j = 0; j < n_stored; j++)
                        if (stored[j].stats.day == computed[i].day && (!latest || stored[j].version > latest->version))
                                latest = &stored[j];
                ret_versions[i] = 0;
                if (ret_corrupt)
                        ret_corrupt[i] = 0;
                if (latest && latest->version > snapshot_version &&
                    latest->version - snapshot_version > METRICS_VERSION_AHEAD_MAX) {
                        if (ret_corrupt)
                                ret_corrupt[i] = latest->version;
                        continue;
                }
                if (latest && (metrics_equal(&latest->stats, &computed[i]) || latest->version > snapshot_version))
                        continue;
                ret_versions[i] = latest && latest->version >= version ? latest->version + 1 : version;
                writes++;
        }
        return writes;
}
