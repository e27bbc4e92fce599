/* Tests of lib/listen.c, the one listen-address parser of the configuration
 * check and the HTTP endpoint: a table of addresses, each with whether the
 * syntax check accepts it, the family and port it resolves to, and the
 * reason given when it does not. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "listen.h"

static const struct {
        const char *address;
        int family;       /* -1: rejected */
        unsigned port;    /* when accepted */
        const char *addr; /* numeric form when accepted, NULL: a name */
        const char *why;  /* part of the error when rejected */
} cases[] = {
        { "127.0.0.1:8787", AF_INET, 8787, "127.0.0.1", NULL },
        { "0.0.0.0:65535", AF_INET, 65535, "0.0.0.0", NULL },
        { "10.1.2.3:1", AF_INET, 1, "10.1.2.3", NULL },
        { "[::1]:8787", AF_INET6, 8787, "::1", NULL },
        { "[::]:80", AF_INET6, 80, "::", NULL },
        { "[2001:db8::7]:9090", AF_INET6, 9090, "2001:db8::7", NULL },
        { "[::ffff:127.0.0.1]:80", AF_INET6, 80, "::ffff:127.0.0.1", NULL },
        { "localhost:8787", AF_UNSPEC, 8787, NULL, NULL },
        /* syntax */
        { "", -1, 0, NULL, "expected HOST:PORT" },
        { "127.0.0.1", -1, 0, NULL, "expected HOST:PORT" },
        { ":8787", -1, 0, NULL, "expected HOST:PORT" },
        { "::1:8787", -1, 0, NULL, "write IPv6 addresses in brackets" },
        { "[::1]8787", -1, 0, NULL, "expected [IPV6]:PORT" },
        { "[::1]", -1, 0, NULL, "expected [IPV6]:PORT" },
        { "[::1:8787", -1, 0, NULL, "expected [IPV6]:PORT" },
        { "[]:8787", -1, 0, NULL, "bad IPv6 address" },
        { "[zz]:80", -1, 0, NULL, "bad IPv6 address" },
        { "[localhost]:80", -1, 0, NULL, "bad IPv6 address" },
        { "[127.0.0.1]:80", -1, 0, NULL, "bad IPv6 address" },
        /* ports */
        { "127.0.0.1:", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:0", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:65536", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:070000", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:abc", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:80x", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "127.0.0.1:+80", -1, 0, NULL, "port must be a number from 1 to 65535" },
        { "host:http", -1, 0, NULL, "port must be a number from 1 to 65535" },
        /* hosts: numbers must be an IPv4 address, names DNS labels */
        { "999.999.999.999:8787", -1, 0, NULL, "bad IPv4 address" },
        { "256.0.0.1:80", -1, 0, NULL, "bad IPv4 address" },
        { "127.1:80", -1, 0, NULL, "bad IPv4 address" },
        { "1234:80", -1, 0, NULL, "bad IPv4 address" },
        { "-host:80", -1, 0, NULL, "bad host name" },
        { "host-:80", -1, 0, NULL, "bad host name" },
        { "a..b:80", -1, 0, NULL, "bad host name" },
        { "my_host:80", -1, 0, NULL, "bad host name" },
        { "a b:80", -1, 0, NULL, "bad host name" },
};

static void test_check_table(void **state) {
        char err[512];
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                err[0] = '\0';
                int r = listen_address_check(cases[i].address, err, sizeof(err));
                if (cases[i].family >= 0) {
                        if (r != 0)
                                fail_msg("'%s' rejected: %s", cases[i].address, err);
                        continue;
                }
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d, want -EINVAL", cases[i].address, r);
                char want[256];
                snprintf(want, sizeof(want), "invalid listen address '%s': ", cases[i].address);
                if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, cases[i].why))
                        fail_msg("'%s': unexpected error '%s' (want '%s')", cases[i].address, err, cases[i].why);
        }
}

static unsigned port_of(const struct sockaddr_storage *a) {
        if (a->ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)a)->sin_port);
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

static void test_parse_table(void **state) {
        char err[512];
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct sockaddr_storage a;
                socklen_t len = 0;
                memset(&a, 0xaa, sizeof(a));
                int r = listen_address_parse(cases[i].address, &a, &len, err, sizeof(err));
                if (cases[i].family < 0) {
                        /* The same verdict and reason as the check: one parser. */
                        assert_int_equal(r, -EINVAL);
                        assert_non_null(strstr(err, cases[i].why));
                        assert_int_equal(len, 0);
                        continue;
                }
                if (r != 0)
                        fail_msg("'%s': %s", cases[i].address, err);
                assert_int_equal(port_of(&a), cases[i].port);
                if (!cases[i].addr) {
                        assert_true(a.ss_family == AF_INET || a.ss_family == AF_INET6);
                        continue;
                }
                assert_int_equal(a.ss_family, cases[i].family);
                char text[INET6_ADDRSTRLEN];
                const void *raw = a.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&a)->sin_addr
                                                         : (const void *)&((struct sockaddr_in6 *)&a)->sin6_addr;
                assert_non_null(inet_ntop(a.ss_family, raw, text, sizeof(text)));
                assert_string_equal(text, cases[i].addr);
                assert_int_equal(len,
                                 a.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        }
}

/* A name that passes the syntax check but does not resolve fails only in
 * the parse, with the resolver's reason. */
static void test_unresolvable_name(void **state) {
        char err[512];
        struct sockaddr_storage a;
        socklen_t len = 0;
        (void)state;
        assert_int_equal(listen_address_check("no-such-host.invalid:80", err, sizeof(err)), 0);
        assert_int_equal(listen_address_parse("no-such-host.invalid:80", &a, &len, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "invalid listen address 'no-such-host.invalid:80': cannot resolve "
                                    "'no-such-host.invalid': "));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check_table),
                cmocka_unit_test(test_parse_table),
                cmocka_unit_test(test_unresolvable_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
