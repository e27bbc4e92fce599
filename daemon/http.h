/* The daemon's HTTP endpoint (SPEC §7) on libmicrohttpd, driven from the
 * sd-event loop: MHD runs in external-select mode with its epoll fd added to
 * the loop, so handlers run on the loop thread and read the manager's state
 * without locks, and a slow client never blocks a run.  Clients are bounded:
 * 32 connections, 8 per address, 5 s per request however slowly it trickles
 * in (docs/operations.md, "HTTP connection limits"). */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

typedef struct HttpServer HttpServer;

typedef struct HttpHandlers {
        void *userdata;
        /* Each returns the HTTP status and a malloc'd body (the server frees it). */
        int (*healthz)(void *userdata, char **ret_body);
        int (*readyz)(void *userdata, char **ret_body);
        int (*metrics)(void *userdata, char **ret_body);
        /* POST /run after the token matched: queue a run (coalesced). */
        void (*run)(void *userdata);
} HttpHandlers;

/* listen: "HOST:PORT", "[V6]:PORT".  token: NULL or "" = POST /run answers
 * 403.  On failure returns -errno and fills err ("cannot listen on '...': ..."). */
int http_server_new(sd_event *e, const char *listen, const char *token, const HttpHandlers *handlers, HttpServer **ret,
                    char *err, size_t errlen);

/* Replaces the bearer token (SIGHUP); NULL disables POST /run. */
int http_server_set_token(HttpServer *s, const char *token);

void http_server_free(HttpServer *s);
