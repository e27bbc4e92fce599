/* The daily metrics of SPEC §2 and the change check of SPEC §3: which
 * recomputed days need a new row in daily_sales_stats, and with which
 * version.  Values are compared as exact numbers, never as text: a current
 * ClickHouse prints 3.1 where 18.16 prints 3.10. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "day.h"
#include "money.h"

typedef struct DayStats {
        Day day;
        uint64_t total_orders;
        uint64_t total_items_sold;
        Money total_revenue;
        Money total_cost;
        Money total_profit;
        Money average_order_value;
} DayStats;

typedef struct StoredDay {
        DayStats stats;
        uint64_t version;
} StoredDay;

/* Derives total_profit and average_order_value from the sums. */
void metrics_finish(DayStats *s);

/* Whether every value fits its ClickHouse column (UInt32, Decimal(15,2)).
 * On failure returns -ERANGE and names the day, column and value in err. */
int metrics_check_range(const DayStats *s, char *err, size_t errlen);

bool metrics_equal(const DayStats *a, const DayStats *b);

/* A stored version further ahead of the snapshot's clock than this cannot
 * have come from the source clock (a version is that clock, or a stored
 * version + 1): the row is corrupt or was not written by salesd, and no
 * version salesd writes can replace it.  A day of slack covers a source
 * clock stepped back and runs that overlap. */
#define METRICS_VERSION_AHEAD_MAX UINT64_C(86400000000)

/* For each computed day, the version to write it with, or 0 when it is
 * not written: the stored latest row (if any) holds the same metrics, or it
 * was computed from a newer snapshot than this run's (its version is greater
 * than snapshot_version: it stands, SPEC §4).  A written day gets
 * max(version, stored version + 1), so versions strictly increase per day;
 * version is the snapshot's clock, plus one per earlier attempt of the same
 * run, so that two attempts never share a version.  A stored version more
 * than METRICS_VERSION_AHEAD_MAX past snapshot_version is corruption: the
 * day is not written and, when ret_corrupt is not NULL, ret_corrupt[i]
 * holds that version (else 0).  stored may list days in any order and days
 * that were not computed.  Returns the number of days to write. */
size_t metrics_plan_writes(const DayStats *computed, size_t n, const StoredDay *stored, size_t n_stored,
                           uint64_t snapshot_version, uint64_t version, uint64_t *ret_versions, uint64_t *ret_corrupt);
