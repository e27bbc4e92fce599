/* Near-real-time runs (notify.channel): a Postgres connection that LISTENs
 * on a channel, driven entirely by the sd-event loop through libpq's
 * non-blocking connect and input APIs, reconnecting after failures.  Each
 * notification calls back; the manager debounces and coalesces. */
#pragma once

#include <systemd/sd-event.h>

#include "config.h"

typedef struct Listener Listener;

/* Starts connecting at once.  c must outlive the listener (the manager
 * restarts the listener when the configuration is replaced). */
int listener_new(sd_event *e, const Config *c, void (*on_notify)(void *userdata), void *userdata, Listener **ret);

void listener_free(Listener *l);
