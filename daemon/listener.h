/* Near-real-time runs (notify.channel): a Postgres connection that LISTENs
 * on a channel, reconnecting after failures.  The connect (name resolution
 * included) happens on a short-lived thread, bounded like every salesd
 * connection (pg.h: connect_timeout, keepalives, tcp_user_timeout); the
 * established connection is driven by the sd-event loop with libpq's
 * non-blocking input API, so the loop never waits on the network.  Each
 * notification calls back; the manager debounces and coalesces. */
#pragma once

#include <systemd/sd-event.h>

#include "config.h"

typedef struct Listener Listener;

/* Starts connecting at once.  c must outlive the listener (the manager
 * restarts the listener when the configuration is replaced). */
int listener_new(sd_event *e, const Config *c, void (*on_notify)(void *userdata), void *userdata, Listener **ret);

void listener_free(Listener *l);
