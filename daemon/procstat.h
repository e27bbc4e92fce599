/* The standard Prometheus process_* metrics of this process, read from
 * /proc/self (start time, CPU time, resident memory) and the fd table.  Called
 * by the loop thread for each /metrics request: a handful of small reads. */
#pragma once

#include "health.h"

/* Fills ret (fields that cannot be read stay 0).  0, or negative errno when
 * /proc/self/stat is unreadable. */
int procstat_read(HealthProcess *ret);
