/* Validators of string values, named by the key table's check column.  Each
 * gets a non-empty value and explains a bad one in terms an operator can act
 * on; user values are quoted through config_value_quote() so one error stays
 * one line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "cron.h"
#include "listen.h"
#include "macro.h"
#include "text.h"

int config_check_text(const char *v, char *msg, size_t len) {
        size_t n = strlen(v);
        _cleanup_free_ char *utf8 = malloc(n + 1);
        if (!utf8)
                return -ENOMEM;
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        snprintf(msg, len, "contains a control character");
                        return -EINVAL;
                }
        /* It ends up in JSON (/healthz) and Prometheus labels: UTF-8 only. */
        if (strcmp(text_utf8_sanitize(v, utf8, n + 1), v) != 0) {
                snprintf(msg, len, "is not valid UTF-8 text");
                return -EINVAL;
        }
        return 0;
}

static const char *zoneinfo_dir(void) {
        /* glibc reads zones from $TZDIR when set, so the check must look there too. */
        const char *d = getenv("TZDIR");
        return d && *d ? d : "/usr/share/zoneinfo";
}

/* zoneinfo also holds tables like zone.tab; only TZif files are zones. */
static bool is_tzif(const char *path) {
        char magic[4] = { 0 };
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, magic, sizeof(magic));
        close(fd);
        return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

int config_check_timezone(const char *v, char *msg, size_t len) {
        char q[128], path[PATH_MAX];
        struct stat st;

        if (v[0] == '/' || strstr(v, "..") || config_check_text(v, msg, len) < 0 || strchr(v, ' ')) {
                snprintf(msg, len, "invalid time zone '%s' (use an IANA name such as Europe/Berlin)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), v);
        if (stat(path, &st) < 0) {
                const char *tzdir = getenv("TZDIR");
                char d[128];
                if (tzdir && *tzdir)
                        /* the environment, not the file, is at fault */
                        snprintf(msg, len,
                                 "unknown time zone '%s': no such zone in '%s', the directory the environment "
                                 "variable TZDIR names (unset TZDIR, or set it to the zone files' directory such as "
                                 "/usr/share/zoneinfo)",
                                 config_value_quote(v, q, sizeof(q)), config_value_quote(tzdir, d, sizeof(d)));
                else
                        snprintf(msg, len, "unknown time zone '%s' (no such zone in %s)",
                                 config_value_quote(v, q, sizeof(q)), zoneinfo_dir());
                return -EINVAL;
        }
        if (S_ISDIR(st.st_mode)) {
                snprintf(msg, len, "'%s' is a directory of time zones, not a time zone (e.g. Europe/Berlin)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        if (!is_tzif(path)) {
                snprintf(msg, len, "'%s' is not a time zone file (use an IANA name such as Europe/Berlin)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

int config_check_schedule(const char *v, char *msg, size_t len) {
        char cerr[256] = "", q[128];
        _cleanup_(cron_freep) CronExpr *e = NULL;

        if (cron_parse(v, &e, cerr, sizeof(cerr)) < 0) {
                snprintf(msg, len, "invalid schedule '%s': %s (use 5 cron fields, e.g. \"0 */6 * * *\")",
                         config_value_quote(v, q, sizeof(q)), cerr[0] ? cerr : "cannot parse");
                return -EINVAL;
        }
        /* "0 0 30 2 *" parses but never fires: the daemon would never run. */
        time_t next;
        if (cron_next(e, time(NULL), &next) == -ERANGE) {
                snprintf(msg, len,
                         "schedule '%s' never fires (no such date in the next 8 years; check the day and "
                         "month fields)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

static bool is_ident_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c) {
        return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* A Postgres identifier salesd can use without quoting. */
static bool ident_ok(const char *s, size_t n) {
        if (n == 0 || n > 63 || !is_ident_start(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_ident_char(s[i]) && s[i] != '$')
                        return false;
        return true;
}

int config_check_table(const char *v, char *msg, size_t len) {
        char q[128];
        const char *dot = strchr(v, '.');
        bool ok = dot ? ident_ok(v, (size_t)(dot - v)) && ident_ok(dot + 1, strlen(dot + 1)) : ident_ok(v, strlen(v));
        if (!ok) {
                snprintf(msg, len,
                         "invalid table name '%s' (use [schema.]name with letters, digits and _; "
                         "create a view for other names)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

int config_check_channel(const char *v, char *msg, size_t len) {
        char q[128];
        if (!ident_ok(v, strlen(v))) {
                snprintf(msg, len, "invalid channel name '%s' (use letters, digits and _, at most 63)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

int config_check_ch_identifier(const char *v, char *msg, size_t len) {
        char q[128];
        bool ok = is_ident_start(v[0]);
        for (const char *p = v; *p && ok; p++)
                ok = is_ident_char(*p);
        if (!ok) {
                snprintf(msg, len, "invalid database name '%s' (use letters, digits and _)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

/* A <remote_servers> element name, quoted as an identifier in ON CLUSTER. */
int config_check_ch_cluster(const char *v, char *msg, size_t len) {
        char q[128];
        if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(v)) {
                snprintf(msg, len, "invalid cluster name '%s' (use letters, digits, _ and -)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

/* Goes inside a string literal of the DDL: no quotes, backslashes or
 * blanks; absolute, without a trailing slash (the table name follows). */
int config_check_zookeeper_path(const char *v, char *msg, size_t len) {
        char q[128];
        if (v[0] != '/' || v[strlen(v) - 1] == '/' || strpbrk(v, "'\\\"` \t") || config_check_text(v, msg, len) < 0) {
                snprintf(msg, len,
                         "invalid zookeeper path '%s' (an absolute path such as /clickhouse/tables/{shard}/{database}, "
                         "without a trailing slash, quotes, backslashes or blanks)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

char *config_mask_url(const char *url) {
        const char *scheme = strstr(url, "://");
        const char *start = scheme ? scheme + 3 : url;
        size_t auth_len = strcspn(start, "/?#");
        const char *at = memchr(start, '@', auth_len);
        const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
        if (!colon)
                return strdup(url);
        char *out = NULL;
        if (asprintf(&out, "%.*s%s%s", (int)(colon + 1 - url), url, CONFIG_MASK, at) < 0)
                return NULL;
        return out;
}

int config_check_url(const char *v, char *msg, size_t len) {
        char q[128];
        const char *host = NULL;

        if (strncmp(v, "http://", 7) == 0)
                host = v + 7;
        else if (strncmp(v, "https://", 8) == 0)
                host = v + 8;
        if (!host || !*host || *host == '/' || strpbrk(v, " \t") || config_check_text(v, msg, len) < 0) {
                _cleanup_free_ char *masked = config_mask_url(v);
                snprintf(msg, len, "invalid url '%s' (use http://HOST:PORT or https://HOST:PORT)",
                         config_value_quote(masked ? masked : "", q, sizeof(q)));
                return -EINVAL;
        }
        /* Settings and credentials have keys of their own: a query string
         * (?password=...) or fragment would be printed by check-config and
         * reach /healthz. */
        if (strpbrk(v, "?#")) {
                snprintf(msg, len,
                         "a query string or fragment in the url is not supported (use http://HOST:PORT; set "
                         "clickhouse.user, clickhouse.password_file and clickhouse.database instead)");
                return -EINVAL;
        }
        /* Credentials belong in clickhouse.user and a password file, not in
         * a URL that ends up in process listings and shell histories. */
        const char *end = host + strcspn(host, "/?#");
        if (memchr(host, '@', (size_t)(end - host))) {
                snprintf(msg, len,
                         "user or password in the url is not supported (set clickhouse.user and "
                         "clickhouse.password_file instead)");
                return -EINVAL;
        }
        return 0;
}

/* The parser is the daemon's own (listen.c), so what passes here binds. */
int config_check_listen(const char *v, char *msg, size_t len) {
        char q[128], why[256];
        if (listen_address_check(v, why, sizeof(why)) < 0) {
                snprintf(msg, len,
                         "invalid listen address '%s' (use HOST:PORT or [IPV6]:PORT with a port from 1 to 65535, "
                         "or \"\" for no HTTP endpoint)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}
