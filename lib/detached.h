/* Short-lived helper threads nobody joins: a Postgres cancel request, a
 * LISTEN connection attempt.  They are counted so that the process can let
 * them finish before exit() runs the libraries' destructors (OpenSSL's,
 * libpq's) under their feet. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Runs fn(arg) on a new detached thread.  Returns 0 or a negative errno
 * (then fn is not called and arg is still the caller's). */
int detached_start(void *(*fn)(void *arg), void *arg);

/* Waits until no thread started by detached_start() is running, at most
 * timeout_usec.  Returns true when none is left. */
bool detached_wait(uint64_t timeout_usec);
