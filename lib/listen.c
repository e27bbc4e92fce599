/* See listen.h.  The address is split into host and port once
 * (listen_split); the check and the resolver share that split, so the two
 * can never disagree about what a valid address is. */
#include "listen.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"

#define LISTEN_HOST_MAX 253

typedef struct ListenSplit {
        char host[LISTEN_HOST_MAX + 1];
        const char *port; /* points into the address */
        int family;       /* AF_INET6 for "[...]", AF_INET for an IPv4 literal, AF_UNSPEC for a name */
} ListenSplit;

static int listen_error(const char *address, const char *why, char *err, size_t errlen) {
        snprintf(err, errlen, "invalid listen address '%s': %s", address, why);
        return -EINVAL;
}

static bool label_ok(const char *s, size_t n) {
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-')
                        return false;
        return true;
}

/* A host name of DNS labels.  A last label of digits only makes it an IPv4
 * literal (RFC 1123 §2.1), which inet_pton must then accept. */
static int host_kind(const char *host, int *ret_family) {
        const char *last = host;
        for (const char *p = host;; p++) {
                if (*p != '.' && *p != '\0')
                        continue;
                if (!label_ok(last, (size_t)(p - last)))
                        return -EINVAL;
                if (*p == '\0')
                        break;
                last = p + 1;
        }
        if (strspn(last, "0123456789") != strlen(last)) {
                *ret_family = AF_UNSPEC;
                return 0;
        }
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) != 1)
                return -ERANGE;
        *ret_family = AF_INET;
        return 0;
}

static bool port_ok(const char *p) {
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 5 || p[digits] != '\0')
                return false;
        unsigned n = 0;
        for (; *p; p++)
                n = n * 10 + (unsigned)(*p - '0');
        return n >= 1 && n <= 65535;
}

static int split_bracketed(const char *address, ListenSplit *s, char *err, size_t errlen) {
        struct in6_addr a6;
        const char *rb = strchr(address, ']');
        if (!rb || rb[1] != ':')
                return listen_error(address, "expected [IPV6]:PORT", err, errlen);
        size_t n = (size_t)(rb - address - 1);
        if (n == 0 || n >= sizeof(s->host))
                return listen_error(address, "bad IPv6 address", err, errlen);
        memcpy(s->host, address + 1, n);
        s->host[n] = '\0';
        if (inet_pton(AF_INET6, s->host, &a6) != 1)
                return listen_error(address, "bad IPv6 address", err, errlen);
        s->port = rb + 2;
        s->family = AF_INET6;
        return 0;
}

static int split_plain(const char *address, ListenSplit *s, char *err, size_t errlen) {
        const char *colon = strrchr(address, ':');
        if (!colon || colon == address)
                return listen_error(address, "expected HOST:PORT, e.g. '127.0.0.1:8787'", err, errlen);
        size_t n = (size_t)(colon - address);
        if (memchr(address, ':', n))
                return listen_error(address, "write IPv6 addresses in brackets, e.g. '[::1]:8787'", err, errlen);
        if (n >= sizeof(s->host))
                return listen_error(address, "host name too long", err, errlen);
        memcpy(s->host, address, n);
        s->host[n] = '\0';
        int r = host_kind(s->host, &s->family);
        if (r == -ERANGE)
                return listen_error(address, "bad IPv4 address", err, errlen);
        if (r < 0)
                return listen_error(address, "bad host name (use letters, digits, '-' and '.')", err, errlen);
        s->port = colon + 1;
        return 0;
}

static int listen_split(const char *address, ListenSplit *s, char *err, size_t errlen) {
        int r = address[0] == '[' ? split_bracketed(address, s, err, errlen) : split_plain(address, s, err, errlen);
        if (r < 0)
                return r;
        if (!port_ok(s->port))
                return listen_error(address, "port must be a number from 1 to 65535", err, errlen);
        return 0;
}

int listen_address_check(const char *address, char *err, size_t errlen) {
        ListenSplit s;
        return listen_split(address, &s, err, errlen);
}

DEFINE_POINTER_CLEANUP_FUNC(struct addrinfo, freeaddrinfo)

int listen_address_parse(const char *address, struct sockaddr_storage *ret_addr, socklen_t *ret_len, char *err,
                         size_t errlen) {
        ListenSplit s;
        int r = listen_split(address, &s, err, errlen);
        if (r < 0)
                return r;

        struct addrinfo hints = {
                .ai_family = s.family,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_NUMERICSERV | (s.family == AF_UNSPEC ? 0 : AI_NUMERICHOST),
        };
        _cleanup_(freeaddrinfop) struct addrinfo *res = NULL;
        int gai = getaddrinfo(s.host, s.port, &hints, &res);
        if (gai != 0 || !res || res->ai_addrlen > sizeof(*ret_addr)) {
                snprintf(err, errlen, "invalid listen address '%s': cannot resolve '%s': %s", address, s.host,
                         gai != 0 ? gai_strerror(gai) : "no address");
                return -EINVAL;
        }
        memcpy(ret_addr, res->ai_addr, res->ai_addrlen);
        *ret_len = res->ai_addrlen;
        return 0;
}
