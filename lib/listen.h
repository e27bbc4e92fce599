/* The HTTP endpoint's listen address, "HOST:PORT" or "[IPV6]:PORT": one
 * parser for the configuration check and for the socket the daemon binds,
 * so a value the configuration accepts is one the daemon can bind. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

/* Checks the syntax without resolving anything.  HOST is an IPv4 address
 * (dotted decimal, each part 0-255), an IPv6 address in brackets, or a host
 * name (labels of letters, digits and '-', separated by '.'; a name whose
 * last label is all digits must be an IPv4 address, so "999.999.999.999" is
 * rejected); PORT is a number from 1 to 65535.  Returns 0 or -EINVAL and
 * fills err with "invalid listen address '...': why". */
int listen_address_check(const char *address, char *err, size_t errlen);

/* listen_address_check(), then resolves HOST to the socket address to bind
 * (numeric hosts without DNS; a name takes its first address).  Returns 0 or
 * -EINVAL with err filled; *ret_addr and *ret_len are untouched on failure. */
int listen_address_parse(const char *address, struct sockaddr_storage *ret_addr, socklen_t *ret_len, char *err,
                         size_t errlen);
