/* The daemon: everything `salesd run` does, wired on one sd-event loop.
 * Timers (cron schedule, heartbeat, clock changes), signals, the HTTP
 * endpoint and sd_notify all run on the loop thread; each run (and each
 * heartbeat write) executes on a worker thread that reports back through an
 * eventfd, so the loop never waits on Postgres or ClickHouse. */
#pragma once

#include "config.h"

/* Runs the daemon until SIGTERM/SIGINT.  Takes ownership of config.
 * Returns the process exit code (0 on a clean stop, 78 when the ClickHouse
 * schema does not match, 1 on internal failure). */
int manager_main(const char *config_path, Config *config);
