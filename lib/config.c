/* salesd.yaml: parsing, defaults, validation, environment overrides, secrets,
 * check-config output and reload policy, all driven by the one key table
 * below.  Adding a key means adding a row (and a Config field); the parser,
 * `check-config`, SALESD_* overrides, config_reloadable() and the
 * documentation test pick it up from there.
 *
 * Loading collects every problem instead of stopping at the first, because an
 * operator fixing a file wants the whole list at once.  Values are validated
 * where they are read (so a bad value in the file is reported even when the
 * environment overrides it); "must not be empty" is checked on the final
 * value, reported at the place that set it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cron.h"
#include "log.h"

#define MASK             "********"
#define SECRET_MAX_BYTES 65536

typedef enum KeyType {
        KEY_STRING,
        KEY_BOOL,
        KEY_UINT,
        KEY_INT64,
        KEY_DURATION,
        KEY_STRLIST,
        KEY_LOGLEVEL,
} KeyType;

/* Checks a non-empty string value; writes why it is wrong into msg. */
typedef int (*KeyCheck)(const char *value, char *msg, size_t msglen);

typedef struct KeyDef {
        const char *name; /* dotted path */
        KeyType type;
        const char *def; /* default, in the syntax of an environment override */
        bool reloadable;
        bool required;                    /* final value must not be empty */
        char *(*mask)(const char *value); /* hides a password the value may hold, for check-config */
        size_t offset;                    /* into Config */
        uint64_t min, max;                /* KEY_UINT, KEY_DURATION */
        KeyCheck check;
        const char *doc;
} KeyDef;

static int check_timezone(const char *v, char *msg, size_t len);
static int check_schedule(const char *v, char *msg, size_t len);
static int check_conninfo(const char *v, char *msg, size_t len);
static int check_table(const char *v, char *msg, size_t len);
static int check_url(const char *v, char *msg, size_t len);
static int check_ch_identifier(const char *v, char *msg, size_t len);
static int check_listen(const char *v, char *msg, size_t len);
static int check_channel(const char *v, char *msg, size_t len);
static int check_text(const char *v, char *msg, size_t len);
static char *mask_url(const char *url);
#define MASK_CONNINFO config_mask_conninfo

#define OFF(field) offsetof(Config, field)

static const KeyDef keys[] = {
        { "instance", KEY_STRING, "", false, false, NULL, OFF(instance), 0, 0, check_text,
          "name of this instance in salesd_runs and salesd_heartbeat; empty: the hostname" },
        { "timezone", KEY_STRING, "UTC", true, true, NULL, OFF(timezone), 0, 0, check_timezone,
          "IANA time zone that decides the calendar day and the schedule" },
        { "schedule", KEY_STRING, "0 */6 * * *", true, true, NULL, OFF(schedule), 0, 0, check_schedule,
          "5-field cron expression, evaluated in timezone" },
        { "run_on_start", KEY_BOOL, "true", true, false, NULL, OFF(run_on_start), 0, 0, NULL,
          "run once when the daemon starts" },
        { "overlap", KEY_DURATION, "15m", true, false, NULL, OFF(overlap), 0, 7 * USEC_PER_DAY, NULL,
          "watermark look-back for late-committing transactions" },
        { "reconcile_days", KEY_UINT, "1", true, false, NULL, OFF(reconcile_days), 0, 3660, NULL,
          "previous days recomputed on every run" },
        { "heartbeat_interval", KEY_DURATION, "60s", true, false, NULL, OFF(heartbeat_interval), USEC_PER_SEC,
          USEC_PER_DAY, NULL, "how often the heartbeat row is written" },
        { "log_level", KEY_LOGLEVEL, "info", true, false, NULL, OFF(log_level), 0, 0, NULL,
          "error, warning, notice, info or debug" },
        { "postgres.conninfo", KEY_STRING, "host=127.0.0.1 port=5432 dbname=shop user=salesd", true, true,
          MASK_CONNINFO, OFF(postgres.conninfo), 0, 0, check_conninfo,
          "libpq connection string (keyword=value or URI)" },
        { "postgres.password_file", KEY_STRING, "", true, false, NULL, OFF(postgres.password_file), 0, 0, check_text,
          "file holding the Postgres password" },
        { "postgres.orders_table", KEY_STRING, "public.orders", true, true, NULL, OFF(postgres.orders_table), 0, 0,
          check_table, "orders table or view ([schema.]name)" },
        { "postgres.order_items_table", KEY_STRING, "public.order_items", true, true, NULL,
          OFF(postgres.order_items_table), 0, 0, check_table, "order items table or view ([schema.]name)" },
        { "postgres.tombstones_table", KEY_STRING, "", true, false, NULL, OFF(postgres.tombstones_table), 0, 0,
          check_table, "tombstone table ([schema.]name); empty: no tombstones" },
        { "postgres.completed_statuses", KEY_STRLIST, "completed", true, true, NULL, OFF(postgres.completed_statuses),
          0, 0, check_text, "order statuses that count as sales" },
        { "postgres.statement_timeout", KEY_DURATION, "5m", true, false, NULL, OFF(postgres.statement_timeout), 0,
          24 * USEC_PER_DAY, NULL, "per-statement timeout on the source; 0: none" },
        { "postgres.lock_key", KEY_INT64, "7345001", true, false, NULL, OFF(postgres.lock_key), 0, 0, NULL,
          "advisory lock key shared by all instances" },
        { "clickhouse.url", KEY_STRING, "http://127.0.0.1:8123", true, true, mask_url, OFF(clickhouse.url), 0, 0,
          check_url, "ClickHouse HTTP interface" },
        { "clickhouse.database", KEY_STRING, "default", true, true, NULL, OFF(clickhouse.database), 0, 0,
          check_ch_identifier, "database holding the salesd tables" },
        { "clickhouse.user", KEY_STRING, "default", true, true, NULL, OFF(clickhouse.user), 0, 0, check_text,
          "ClickHouse user" },
        { "clickhouse.password_file", KEY_STRING, "", true, false, NULL, OFF(clickhouse.password_file), 0, 0,
          check_text, "file holding the ClickHouse password" },
        { "clickhouse.timeout", KEY_DURATION, "30s", true, false, NULL, OFF(clickhouse.timeout), USEC_PER_MSEC,
          USEC_PER_DAY, NULL, "timeout of one ClickHouse request" },
        { "clickhouse.retries", KEY_UINT, "5", true, false, NULL, OFF(clickhouse.retries), 0, 100, NULL,
          "retries of a failed request, exponential backoff with jitter" },
        { "http.listen", KEY_STRING, "127.0.0.1:8787", false, false, NULL, OFF(http.listen), 0, 0, check_listen,
          "HOST:PORT or [V6]:PORT of the HTTP endpoint; empty: no endpoint" },
        { "http.token_file", KEY_STRING, "", true, false, NULL, OFF(http.token_file), 0, 0, check_text,
          "file holding the bearer token for POST /run" },
        { "notify.channel", KEY_STRING, "", false, false, NULL, OFF(notify.channel), 0, 0, check_channel,
          "Postgres LISTEN channel that triggers a run; empty: off" },
        { "notify.debounce", KEY_DURATION, "2s", true, false, NULL, OFF(notify.debounce), 0, USEC_PER_HOUR, NULL,
          "quiet time after a notification before the run starts" },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* Where a key's current value came from, to point errors found later at it. */
typedef struct Origin {
        unsigned line, column; /* 1-based; 0 = not from the file */
        char env[64];          /* "" = not from the environment */
} Origin;

typedef struct Loader {
        const char *path;
        Config *config;
        Origin origin[N_KEYS];
        char *err;
        size_t errlen;
        size_t used;
        unsigned errors;
} Loader;

/* ---------------------------------------------------------------- helpers */

static void *field(Config *c, const KeyDef *k) {
        return (char *)c + k->offset;
}

static const void *field_const(const Config *c, const KeyDef *k) {
        return (const char *)c + k->offset;
}

static void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

/* Copies a user value for an error message: quoted by the caller, control
 * characters escaped so one error stays one line, long values shortened. */
static const char *quote_value(const char *v, char *buf, size_t len) {
        size_t o = 0;
        if (len == 0)
                return "";
        for (const unsigned char *p = (const unsigned char *)v; *p && o + 5 < len; p++) {
                if (o >= 80) {
                        o += (size_t)snprintf(buf + o, len - o, "...");
                        break;
                }
                if (*p < 0x20 || *p == 0x7f)
                        o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
                else
                        buf[o++] = (char)*p;
        }
        buf[o < len ? o : len - 1] = '\0';
        return buf;
}

static void loader_add(Loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loader_add(Loader *l, const char *fmt, ...) {
        va_list ap;

        l->errors++;
        if (!l->err || l->errlen == 0 || l->used + 1 >= l->errlen)
                return;
        if (l->used > 0)
                l->err[l->used++] = '\n';
        va_start(ap, fmt);
        int r = vsnprintf(l->err + l->used, l->errlen - l->used, fmt, ap);
        va_end(ap);
        if (r < 0)
                r = 0;
        l->used += (size_t)r;
        if (l->used >= l->errlen)
                l->used = l->errlen - 1;
        l->err[l->used] = '\0';
}

/* Reports a problem with key k at its origin (file position, environment
 * variable or, when it holds the default, just the file). */
static void loader_key_error(Loader *l, size_t ki, const char *msg) {
        const Origin *o = &l->origin[ki];
        if (o->env[0])
                loader_add(l, "environment %s: %s", o->env, msg);
        else if (o->line > 0)
                loader_add(l, "%s:%u:%u: key '%s': %s", l->path, o->line, o->column, keys[ki].name, msg);
        else
                loader_add(l, "%s: key '%s': %s", l->path, keys[ki].name, msg);
}

static void env_name(const KeyDef *k, char *buf, size_t len) {
        size_t o = 0;
        const char *prefix = "SALESD_";
        for (const char *p = prefix; *p && o + 1 < len; p++)
                buf[o++] = *p;
        for (const char *p = k->name; *p && o + 1 < len; p++)
                buf[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        buf[o] = '\0';
}

static bool is_ident_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c) {
        return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* ------------------------------------------------------------- validators */

static int check_text(const char *v, char *msg, size_t len) {
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        snprintf(msg, len, "contains a control character");
                        return -EINVAL;
                }
        return 0;
}

static const char *zoneinfo_dir(void) {
        /* glibc reads zones from $TZDIR when set, so the check must look there too. */
        const char *d = getenv("TZDIR");
        return d && *d ? d : "/usr/share/zoneinfo";
}

static int check_timezone(const char *v, char *msg, size_t len) {
        char q[128], path[PATH_MAX];
        struct stat st;

        if (v[0] == '/' || strstr(v, "..") || check_text(v, msg, len) < 0 || strchr(v, ' ')) {
                snprintf(msg, len, "invalid time zone '%s' (use an IANA name such as Europe/Berlin)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), v);
        if (stat(path, &st) < 0) {
                snprintf(msg, len, "unknown time zone '%s' (no such zone in %s)", quote_value(v, q, sizeof(q)),
                         zoneinfo_dir());
                return -EINVAL;
        }
        if (S_ISDIR(st.st_mode)) {
                snprintf(msg, len, "'%s' is a directory of time zones, not a time zone (e.g. Europe/Berlin)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        /* zoneinfo also holds tables like zone.tab; only TZif files are zones. */
        char magic[4] = { 0 };
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
        if (fd >= 0)
                close(fd);
        if (n != 4 || memcmp(magic, "TZif", 4) != 0) {
                snprintf(msg, len, "'%s' is not a time zone file (use an IANA name such as Europe/Berlin)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

static int check_schedule(const char *v, char *msg, size_t len) {
        char cerr[256] = "", q[128];
        CronExpr *e = NULL;

        int r = cron_parse(v, &e, cerr, sizeof(cerr));
        if (r < 0) {
                snprintf(msg, len, "invalid schedule '%s': %s (use 5 cron fields, e.g. \"0 */6 * * *\")",
                         quote_value(v, q, sizeof(q)), cerr[0] ? cerr : "cannot parse");
                return -EINVAL;
        }
        cron_free(e);
        return 0;
}

/* libpq's parse errors quote fragments of the string, and a fragment can be
 * (part of) a password.  Keep only fragments that are conninfo keywords or
 * punctuation, replace the rest. */
static void scrub_libpq_message(const char *in, char *out, size_t len) {
        PQconninfoOption *defs = PQconndefaults();
        size_t o = 0;

        for (const char *p = in; *p && o + 1 < len;) {
                if (*p != '"') {
                        if (*p != '\n')
                                out[o++] = *p;
                        p++;
                        continue;
                }
                const char *end = strchr(p + 1, '"');
                if (!end) {
                        out[o++] = *p++;
                        continue;
                }
                size_t flen = (size_t)(end - p - 1);
                bool keep = flen <= 1;
                for (PQconninfoOption *d = defs; d && d->keyword && !keep; d++)
                        if (strlen(d->keyword) == flen && strncmp(d->keyword, p + 1, flen) == 0)
                                keep = true;
                const char *src = keep ? p : "\"...\"";
                size_t slen = keep ? flen + 2 : 5;
                for (size_t i = 0; i < slen && o + 1 < len; i++)
                        out[o++] = src[i];
                p = end + 1;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '.'))
                o--;
        out[o] = '\0';
        if (defs)
                PQconninfoFree(defs);
}

static int check_conninfo(const char *v, char *msg, size_t len) {
        char *pqerr = NULL;

        PQconninfoOption *opts = PQconninfoParse(v, &pqerr);
        if (!opts) {
                char clean[256];
                scrub_libpq_message(pqerr ? pqerr : "out of memory", clean, sizeof(clean));
                /* Never echo the value: it may hold a password. */
                snprintf(msg, len,
                         "invalid libpq connection string: %s (use keyword=value pairs or a postgresql:// URI)", clean);
                PQfreemem(pqerr);
                return -EINVAL;
        }
        PQconninfoFree(opts);
        return 0;
}

static bool ident_ok(const char *s, size_t n) {
        if (n == 0 || n > 63 || !is_ident_start(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_ident_char(s[i]) && s[i] != '$')
                        return false;
        return true;
}

static int check_table(const char *v, char *msg, size_t len) {
        char q[128];
        const char *dot = strchr(v, '.');
        bool ok = dot ? ident_ok(v, (size_t)(dot - v)) && ident_ok(dot + 1, strlen(dot + 1)) : ident_ok(v, strlen(v));
        if (!ok) {
                snprintf(msg, len,
                         "invalid table name '%s' (use [schema.]name with letters, digits and _; "
                         "create a view for other names)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

static int check_channel(const char *v, char *msg, size_t len) {
        char q[128];
        if (!ident_ok(v, strlen(v))) {
                snprintf(msg, len, "invalid channel name '%s' (use letters, digits and _, at most 63)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

static int check_ch_identifier(const char *v, char *msg, size_t len) {
        char q[128];
        bool ok = is_ident_start(v[0]);
        for (const char *p = v; *p && ok; p++)
                ok = is_ident_char(*p);
        if (!ok) {
                snprintf(msg, len, "invalid database name '%s' (use letters, digits and _)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

/* Copies a URL with the password of any user:password@ part masked. */
static char *mask_url(const char *url) {
        const char *scheme = strstr(url, "://");
        const char *start = scheme ? scheme + 3 : url;
        size_t auth_len = strcspn(start, "/?#");
        const char *at = memchr(start, '@', auth_len);
        const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
        if (!colon)
                return strdup(url);
        size_t head = (size_t)(colon + 1 - url);
        size_t n = head + strlen(MASK) + strlen(at) + 1;
        char *out = malloc(n);
        if (!out)
                return NULL;
        snprintf(out, n, "%.*s%s%s", (int)head, url, MASK, at);
        return out;
}

static int check_url(const char *v, char *msg, size_t len) {
        char q[128];
        const char *host = NULL;

        if (strncmp(v, "http://", 7) == 0)
                host = v + 7;
        else if (strncmp(v, "https://", 8) == 0)
                host = v + 8;
        if (!host || !*host || *host == '/' || strpbrk(v, " \t") || check_text(v, msg, len) < 0) {
                char *masked = mask_url(v);
                snprintf(msg, len, "invalid url '%s' (use http://HOST:PORT or https://HOST:PORT)",
                         quote_value(masked ? masked : "", q, sizeof(q)));
                free(masked);
                return -EINVAL;
        }
        /* Credentials belong in clickhouse.user and a password file, not in
         * a URL that ends up in process listings and shell histories. */
        const char *end = host + strcspn(host, "/?#");
        const char *at = memchr(host, '@', (size_t)(end - host));
        if (at) {
                snprintf(msg, len,
                         "user or password in the url is not supported (set clickhouse.user and "
                         "clickhouse.password_file instead)");
                return -EINVAL;
        }
        return 0;
}

static bool port_ok(const char *p) {
        if (!*p || strlen(p) > 5)
                return false;
        unsigned n = 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                n = n * 10 + (unsigned)(*p - '0');
        }
        return n >= 1 && n <= 65535;
}

static bool hostname_ok(const char *h, size_t n) {
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
                        return false;
        return true;
}

static int check_listen(const char *v, char *msg, size_t len) {
        char q[128], host[256];
        const char *port;
        bool ok = false;

        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (close && close[1] == ':' && (size_t)(close - v - 1) < sizeof(host)) {
                        struct in6_addr a6;
                        memcpy(host, v + 1, (size_t)(close - v - 1));
                        host[close - v - 1] = '\0';
                        port = close + 2;
                        ok = inet_pton(AF_INET6, host, &a6) == 1 && port_ok(port);
                }
        } else {
                const char *colon = strrchr(v, ':');
                if (colon && memchr(v, ':', (size_t)(colon - v)) == NULL)
                        ok = hostname_ok(v, (size_t)(colon - v)) && port_ok(colon + 1);
        }
        if (!ok) {
                snprintf(msg, len,
                         "invalid listen address '%s' (use HOST:PORT or [IPV6]:PORT with a port from 1 to 65535, "
                         "or \"\" for no HTTP endpoint)",
                         quote_value(v, q, sizeof(q)));
                return -EINVAL;
        }
        return 0;
}

/* ----------------------------------------------------------- value setters */

static const char *type_name(const KeyDef *k) {
        switch (k->type) {
        case KEY_STRING:
                return "a string";
        case KEY_BOOL:
                return "true or false";
        case KEY_UINT:
                return "a whole number";
        case KEY_INT64:
                return "an integer";
        case KEY_DURATION:
                return "a duration";
        case KEY_STRLIST:
                return "a list of strings";
        case KEY_LOGLEVEL:
                return "a log level";
        }
        return "a value";
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" };
        static const char *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < 3; i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int list_item_check(const KeyDef *k, const char *item, char *msg, size_t len) {
        if (!*item) {
                snprintf(msg, len, "list items must not be empty");
                return -EINVAL;
        }
        return k->check ? k->check(item, msg, len) : 0;
}

/* Takes ownership of items on success. */
static int set_list(Config *c, const KeyDef *k, char **items, char *msg, size_t len) {
        for (char **p = items; *p; p++)
                if (list_item_check(k, *p, msg, len) < 0)
                        return -EINVAL;
        char ***dst = field(c, k);
        strv_free(*dst);
        *dst = items;
        return 0;
}

/* Parses a scalar (from the file or the environment) for key k and stores it.
 * Lists arrive here only from the environment, comma-separated. */
static int set_scalar(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128], a[32], b[32];

        switch (k->type) {
        case KEY_STRING: {
                if (*v && k->check && k->check(v, msg, len) < 0)
                        return -EINVAL;
                char *s = strdup(v);
                if (!s)
                        return -ENOMEM;
                char **dst = field(c, k);
                free(*dst);
                *dst = s;
                return 0;
        }
        case KEY_BOOL: {
                bool b_;
                if (parse_bool(v, &b_) < 0) {
                        snprintf(msg, len, "invalid boolean '%s' (use true or false)", quote_value(v, q, sizeof(q)));
                        return -EINVAL;
                }
                *(bool *)field(c, k) = b_;
                return 0;
        }
        case KEY_UINT: {
                uint64_t n = 0;
                bool ok = *v != '\0' && strlen(v) <= 10;
                for (const char *p = v; *p && ok; p++) {
                        ok = *p >= '0' && *p <= '9';
                        n = n * 10 + (uint64_t)(*p - '0');
                }
                if (!ok || n < k->min || n > k->max) {
                        snprintf(msg, len, "invalid number '%s' (use a whole number from %" PRIu64 " to %" PRIu64 ")",
                                 quote_value(v, q, sizeof(q)), k->min, k->max);
                        return -EINVAL;
                }
                *(unsigned *)field(c, k) = (unsigned)n;
                return 0;
        }
        case KEY_INT64: {
                char *end = NULL;
                errno = 0;
                long long n = strtoll(v, &end, 10);
                if (!*v || isspace((unsigned char)*v) || *end || errno != 0) {
                        snprintf(msg, len, "invalid integer '%s' (use a whole number from %" PRId64 " to %" PRId64 ")",
                                 quote_value(v, q, sizeof(q)), INT64_MIN, INT64_MAX);
                        return -EINVAL;
                }
                *(int64_t *)field(c, k) = (int64_t)n;
                return 0;
        }
        case KEY_DURATION: {
                usec_t d;
                int r = duration_parse(v, &d);
                if (r == -ERANGE || (r == 0 && (d < k->min || d > k->max))) {
                        snprintf(msg, len, "duration '%s' out of range (use %s to %s)", quote_value(v, q, sizeof(q)),
                                 duration_format(k->min, a, sizeof(a)), duration_format(k->max, b, sizeof(b)));
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(msg, len, "invalid duration '%s' (use a number and one of ms, s, m, h, d)",
                                 quote_value(v, q, sizeof(q)));
                        return -EINVAL;
                }
                *(usec_t *)field(c, k) = d;
                return 0;
        }
        case KEY_LOGLEVEL: {
                int p = log_level_from_string(v);
                if (p < 0) {
                        snprintf(msg, len, "invalid log level '%s' (use error, warning, notice, info or debug)",
                                 quote_value(v, q, sizeof(q)));
                        return -EINVAL;
                }
                *(int *)field(c, k) = p;
                return 0;
        }
        case KEY_STRLIST: {
                /* Comma-separated, blanks around items ignored: "completed, shipped". */
                size_t n = 1;
                for (const char *p = v; *p; p++)
                        n += *p == ',';
                char **items = calloc(n + 1, sizeof(char *));
                if (!items)
                        return -ENOMEM;
                size_t i = 0;
                const char *p = v;
                if (*v) {
                        for (;;) {
                                size_t l = strcspn(p, ",");
                                const char *s = p, *e = p + l;
                                while (s < e && isspace((unsigned char)*s))
                                        s++;
                                while (e > s && isspace((unsigned char)e[-1]))
                                        e--;
                                items[i] = strndup(s, (size_t)(e - s));
                                if (!items[i]) {
                                        strv_free(items);
                                        return -ENOMEM;
                                }
                                i++;
                                if (!p[l])
                                        break;
                                p += l + 1;
                        }
                }
                int r = set_list(c, k, items, msg, len);
                if (r < 0)
                        strv_free(items);
                return r;
        }
        }
        return -EINVAL;
}

static bool value_empty(const Config *c, const KeyDef *k) {
        if (k->type == KEY_STRING) {
                char *const *s = field_const(c, k);
                return !*s || !**s;
        }
        if (k->type == KEY_STRLIST) {
                char **const *v = field_const(c, k);
                return strv_length(*v) == 0;
        }
        return false;
}

/* ------------------------------------------------------------- YAML walk */

static size_t key_index(const char *name) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (strcmp(keys[i].name, name) == 0)
                        return i;
        return N_KEYS;
}

static bool is_section(const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; i < N_KEYS; i++)
                if (strncmp(keys[i].name, name, n) == 0 && keys[i].name[n] == '.')
                        return true;
        return false;
}

static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return SIZE_MAX;
        size_t row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

/* Suggests the closest known key or section for a typo, or NULL. */
static const char *suggest(const char *name, char *buf, size_t len) {
        size_t best = 3;
        const char *found = NULL;

        for (size_t i = 0; i < N_KEYS; i++) {
                /* Compare against the key and against each of its section prefixes. */
                const char *k = keys[i].name;
                for (const char *dot = k;; dot++) {
                        if (*dot == '.' || *dot == '\0') {
                                size_t l = (size_t)(dot - k);
                                if (l < len) {
                                        char cand[128];
                                        memcpy(cand, k, l);
                                        cand[l] = '\0';
                                        size_t d = edit_distance(name, cand);
                                        if (d < best) {
                                                best = d;
                                                snprintf(buf, len, "%s", cand);
                                                found = buf;
                                        }
                                }
                        }
                        if (*dot == '\0')
                                break;
                }
        }
        return found;
}

static const char *node_kind(const yaml_node_t *n) {
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        default:
                return "a single value";
        }
}

static bool scalar_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = (const char *)n->data.scalar.value;
        return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void loader_node_error(Loader *l, const yaml_node_t *n, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void loader_node_error(Loader *l, const yaml_node_t *n, const char *key, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        loader_add(l, "%s:%zu:%zu: key '%s': %s", l->path, n->start_mark.line + 1, n->start_mark.column + 1, key, msg);
}

static void apply_leaf(Loader *l, yaml_document_t *doc, size_t ki, yaml_node_t *v) {
        const KeyDef *k = &keys[ki];
        char msg[512];
        int r;

        if (k->type == KEY_STRLIST) {
                if (v->type != YAML_SEQUENCE_NODE) {
                        loader_node_error(l, v, k->name, "expected a list of strings such as [completed], got %s",
                                          node_kind(v));
                        return;
                }
                size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
                char **items = calloc(n + 1, sizeof(char *));
                if (!items) {
                        loader_add(l, "%s: out of memory", l->path);
                        return;
                }
                size_t i = 0;
                for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                        yaml_node_t *item = yaml_document_get_node(doc, *it);
                        if (!item || item->type != YAML_SCALAR_NODE) {
                                loader_node_error(l, item ? item : v, k->name, "list items must be strings, got %s",
                                                  item ? node_kind(item) : "nothing");
                                strv_free(items);
                                return;
                        }
                        items[i] = strdup((const char *)item->data.scalar.value);
                        if (!items[i]) {
                                strv_free(items);
                                loader_add(l, "%s: out of memory", l->path);
                                return;
                        }
                        /* Checked here, not in set_list, to point at the item itself. */
                        if (list_item_check(k, items[i], msg, sizeof(msg)) < 0) {
                                loader_node_error(l, item, k->name, "%s", msg);
                                strv_free(items);
                                return;
                        }
                        i++;
                }
                r = set_list(l->config, k, items, msg, sizeof(msg));
                if (r < 0) {
                        strv_free(items);
                        loader_node_error(l, v, k->name, "%s", msg);
                        return;
                }
        } else {
                if (v->type != YAML_SCALAR_NODE) {
                        loader_node_error(l, v, k->name, "expected %s, got %s", type_name(k), node_kind(v));
                        return;
                }
                const char *text = (const char *)v->data.scalar.value;
                if (scalar_is_null(v)) {
                        if (k->type != KEY_STRING) {
                                loader_node_error(l, v, k->name, "expected %s, got nothing", type_name(k));
                                return;
                        }
                        text = "";
                }
                r = set_scalar(l->config, k, text, msg, sizeof(msg));
                if (r < 0) {
                        loader_node_error(l, v, k->name, "%s", r == -ENOMEM ? "out of memory" : msg);
                        return;
                }
        }
        l->origin[ki] =
                (Origin){ .line = (unsigned)v->start_mark.line + 1, .column = (unsigned)v->start_mark.column + 1 };
}

static void walk_mapping(Loader *l, yaml_document_t *doc, yaml_node_t *map, const char *prefix) {
        for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
                yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
                yaml_node_t *vn = yaml_document_get_node(doc, pair->value);
                if (!kn || !vn)
                        continue;
                if (kn->type != YAML_SCALAR_NODE) {
                        loader_add(l, "%s:%zu:%zu: keys must be plain names, got %s", l->path, kn->start_mark.line + 1,
                                   kn->start_mark.column + 1, node_kind(kn));
                        continue;
                }
                const char *name = (const char *)kn->data.scalar.value;
                char full[256], q[128];
                snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);

                /* libyaml accepts repeated keys; silently taking the last one
                 * would hide a mistake. */
                bool dup = false;
                for (yaml_node_pair_t *prev = map->data.mapping.pairs.start; prev < pair && !dup; prev++) {
                        yaml_node_t *pk = yaml_document_get_node(doc, prev->key);
                        if (pk && pk->type == YAML_SCALAR_NODE &&
                            strcmp((const char *)pk->data.scalar.value, name) == 0) {
                                loader_add(l, "%s:%zu:%zu: key '%s': duplicate key (first set on line %zu)", l->path,
                                           kn->start_mark.line + 1, kn->start_mark.column + 1,
                                           quote_value(full, q, sizeof(q)), pk->start_mark.line + 1);
                                dup = true;
                        }
                }
                if (dup)
                        continue;

                size_t ki = key_index(full);
                if (ki < N_KEYS) {
                        apply_leaf(l, doc, ki, vn);
                } else if (is_section(full)) {
                        if (vn->type == YAML_MAPPING_NODE)
                                walk_mapping(l, doc, vn, full);
                        else if (!scalar_is_null(vn))
                                loader_node_error(l, vn, full, "expected a mapping of settings, got %s", node_kind(vn));
                } else {
                        char s[128];
                        const char *hint = suggest(full, s, sizeof(s));
                        loader_add(l, "%s:%zu:%zu: unknown key '%s'%s%s%s", l->path, kn->start_mark.line + 1,
                                   kn->start_mark.column + 1, quote_value(full, q, sizeof(q)),
                                   hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
                }
        }
}

static void loader_syntax_error(Loader *l, const yaml_parser_t *parser) {
        const char *problem = parser->problem ? parser->problem : "cannot parse";
        if (parser->context)
                loader_add(l, "%s:%zu:%zu: yaml syntax error: %s %s that starts at line %zu, column %zu", l->path,
                           parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem, parser->context,
                           parser->context_mark.line + 1, parser->context_mark.column + 1);
        else
                loader_add(l, "%s:%zu:%zu: yaml syntax error: %s", l->path, parser->problem_mark.line + 1,
                           parser->problem_mark.column + 1, problem);
}

static int load_yaml(Loader *l, FILE *f) {
        yaml_parser_t parser;
        yaml_document_t doc;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_file(&parser, f);

        if (!yaml_parser_load(&parser, &doc)) {
                loader_syntax_error(l, &parser);
                yaml_parser_delete(&parser);
                return -EINVAL;
        }

        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root) {
                if (root->type == YAML_MAPPING_NODE)
                        walk_mapping(l, &doc, root, NULL);
                else if (!scalar_is_null(root))
                        loader_add(l, "%s:%zu:%zu: expected a mapping of settings at the top level, got %s", l->path,
                                   root->start_mark.line + 1, root->start_mark.column + 1, node_kind(root));

                /* One file, one document: a second one would be silently ignored. */
                yaml_document_t next;
                if (!yaml_parser_load(&parser, &next)) {
                        loader_syntax_error(l, &parser);
                } else {
                        yaml_node_t *nr = yaml_document_get_root_node(&next);
                        if (nr)
                                loader_add(l, "%s:%zu:%zu: only one YAML document is allowed", l->path,
                                           nr->start_mark.line + 1, nr->start_mark.column + 1);
                        yaml_document_delete(&next);
                }
        }
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return 0;
}

/* --------------------------------------------------------------- secrets */

/* Reads a secret file.  Errors name the file, never its content. */
static int read_secret(const char *path, char **ret, char *msg, size_t len) {
        char q[256];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                snprintf(msg, len, "cannot read '%s': %s", quote_value(path, q, sizeof(q)), strerror(e));
                return -e;
        }
        char *buf = malloc(SECRET_MAX_BYTES + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        size_t n = 0;
        for (;;) {
                ssize_t r = read(fd, buf + n, SECRET_MAX_BYTES + 1 - n);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        snprintf(msg, len, "cannot read '%s': %s", quote_value(path, q, sizeof(q)), strerror(e));
                        close(fd);
                        free(buf);
                        return -e;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
                if (n > SECRET_MAX_BYTES)
                        break;
        }
        close(fd);
        if (n > SECRET_MAX_BYTES) {
                snprintf(msg, len, "'%s' is larger than %d bytes", quote_value(path, q, sizeof(q)), SECRET_MAX_BYTES);
                free(buf);
                return -EFBIG;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        if (n == 0 || memchr(buf, '\0', n)) {
                snprintf(msg, len, n == 0 ? "'%s' is empty" : "'%s' contains a NUL byte",
                         quote_value(path, q, sizeof(q)));
                explicit_bzero(buf, SECRET_MAX_BYTES + 1);
                free(buf);
                return -EINVAL;
        }
        char *s = strdup(buf);
        explicit_bzero(buf, SECRET_MAX_BYTES + 1);
        free(buf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static void resolve_secret(Loader *l, const char *file_key, const char *credential, char **ret) {
        size_t ki = key_index(file_key);
        char *const *file = field_const(l->config, &keys[ki]);
        char msg[512];

        if (*file && **file) {
                if (read_secret(*file, ret, msg, sizeof(msg)) < 0)
                        loader_key_error(l, ki, msg);
                return;
        }

        /* systemd LoadCredential= puts secrets here; absent files simply mean
         * the credential is not configured. */
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir)
                return;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, credential);
        if (access(path, F_OK) < 0)
                return;
        if (read_secret(path, ret, msg, sizeof(msg)) < 0)
                loader_add(l, "%s: key '%s' (credential '%s'): %s", l->path, file_key, credential, msg);
}

/* ------------------------------------------------------------- public API */

void config_free(Config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < N_KEYS; i++) {
                if (keys[i].type == KEY_STRING)
                        free(*(char **)field(c, &keys[i]));
                else if (keys[i].type == KEY_STRLIST)
                        strv_free(*(char ***)field(c, &keys[i]));
        }
        free(c->path);
        if (c->postgres.password)
                explicit_bzero(c->postgres.password, strlen(c->postgres.password));
        if (c->clickhouse.password)
                explicit_bzero(c->clickhouse.password, strlen(c->clickhouse.password));
        if (c->http.token)
                explicit_bzero(c->http.token, strlen(c->http.token));
        free(c->postgres.password);
        free(c->clickhouse.password);
        free(c->http.token);
        free(c);
}

static void apply_environment(Loader *l) {
        for (size_t i = 0; i < N_KEYS; i++) {
                char name[64], msg[512];
                env_name(&keys[i], name, sizeof(name));
                const char *v = getenv(name);
                if (!v)
                        continue;
                int r = set_scalar(l->config, &keys[i], v, msg, sizeof(msg));
                if (r < 0) {
                        loader_add(l, "environment %s: %s", name, r == -ENOMEM ? "out of memory" : msg);
                        continue;
                }
                l->origin[i] = (Origin){ 0 };
                snprintf(l->origin[i].env, sizeof(l->origin[i].env), "%s", name);
        }
}

int config_load(const char *path, Config **ret, char *err, size_t errlen) {
        Loader l = { .path = path, .err = err, .errlen = errlen };
        char msg[512];
        int r;

        if (err && errlen)
                err[0] = '\0';

        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        l.config = c;
        c->path = strdup(path);
        if (!c->path) {
                config_free(c);
                return -ENOMEM;
        }

        for (size_t i = 0; i < N_KEYS; i++) {
                r = set_scalar(c, &keys[i], keys[i].def, msg, sizeof(msg));
                /* The defaults are part of the table; a bad one is a bug. */
                if (r < 0) {
                        loader_add(&l, "%s: internal error: default of key '%s': %s", path, keys[i].name, msg);
                        config_free(c);
                        return r == -ENOMEM ? r : -EINVAL;
                }
        }

        FILE *f = fopen(path, "re");
        if (!f) {
                int e = errno;
                loader_add(&l, "%s: cannot open configuration file: %s", path, strerror(e));
                config_free(c);
                return -e;
        }
        r = load_yaml(&l, f);
        fclose(f);
        if (r == -ENOMEM) {
                config_free(c);
                return r;
        }

        apply_environment(&l);

        for (size_t i = 0; i < N_KEYS; i++)
                if (keys[i].required && value_empty(c, &keys[i]))
                        loader_key_error(&l, i, "must not be empty");

        if (!c->instance[0]) {
                char host[256] = "";
                if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
                        loader_add(&l, "%s: key 'instance': empty and the hostname is unknown (set instance)", path);
                else {
                        char *s = strdup(host);
                        if (!s) {
                                config_free(c);
                                return -ENOMEM;
                        }
                        free(c->instance);
                        c->instance = s;
                }
        }

        resolve_secret(&l, "postgres.password_file", "pg-password", &c->postgres.password);
        resolve_secret(&l, "clickhouse.password_file", "ch-password", &c->clickhouse.password);
        resolve_secret(&l, "http.token_file", "http-token", &c->http.token);

        if (l.errors > 0) {
                config_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

/* Writes s as a YAML double-quoted scalar. */
static void print_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(f, "\\x%02x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

static const char *secret_state(const char *s) {
        return s ? "(set)" : "(not set)";
}

int config_print(const Config *c, FILE *f) {
        const char *section = NULL;
        size_t section_len = 0;
        char buf[64];

        fprintf(f, "# salesd effective configuration");
        if (c->path)
                fprintf(f, " (%s)", c->path);
        fprintf(f, "\n# secrets are never shown\n");

        for (size_t i = 0; i < N_KEYS; i++) {
                const KeyDef *k = &keys[i];
                const char *dot = strchr(k->name, '.');
                const char *leaf = dot ? dot + 1 : k->name;
                if (dot && (!section || section_len != (size_t)(dot - k->name) ||
                            strncmp(section, k->name, section_len) != 0)) {
                        section = k->name;
                        section_len = (size_t)(dot - k->name);
                        fprintf(f, "%.*s:\n", (int)section_len, section);
                }
                fprintf(f, "%s# %s%s\n%s%s: ", dot ? "  " : "", k->doc,
                        k->reloadable ? "" : " (restart needed to change)", dot ? "  " : "", leaf);

                const void *v = field_const(c, k);
                switch (k->type) {
                case KEY_STRING: {
                        const char *s = *(char *const *)v ? *(char *const *)v : "";
                        char *masked = k->mask ? k->mask(s) : NULL;
                        if (k->mask && !masked)
                                return -ENOMEM;
                        print_quoted(f, masked ? masked : s);
                        free(masked);
                        break;
                }
                case KEY_BOOL:
                        fputs(*(const bool *)v ? "true" : "false", f);
                        break;
                case KEY_UINT:
                        fprintf(f, "%u", *(const unsigned *)v);
                        break;
                case KEY_INT64:
                        fprintf(f, "%" PRId64, *(const int64_t *)v);
                        break;
                case KEY_DURATION:
                        fputs(duration_format(*(const usec_t *)v, buf, sizeof(buf)), f);
                        break;
                case KEY_LOGLEVEL:
                        fputs(log_level_to_string(*(const int *)v), f);
                        break;
                case KEY_STRLIST: {
                        char *const *items = *(char **const *)v;
                        fputc('[', f);
                        for (size_t j = 0; items && items[j]; j++) {
                                if (j > 0)
                                        fputs(", ", f);
                                print_quoted(f, items[j]);
                        }
                        fputc(']', f);
                        break;
                }
                }

                if (strcmp(k->name, "postgres.password_file") == 0)
                        fprintf(f, "  # password: %s", secret_state(c->postgres.password));
                else if (strcmp(k->name, "clickhouse.password_file") == 0)
                        fprintf(f, "  # password: %s", secret_state(c->clickhouse.password));
                else if (strcmp(k->name, "http.token_file") == 0)
                        fprintf(f, "  # token: %s", secret_state(c->http.token));
                fputc('\n', f);
        }
        if (fflush(f) != 0 || ferror(f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

bool config_reloadable(const Config *old_config, const Config *new_config, const char **why) {
        if (why)
                *why = NULL;
        for (size_t i = 0; i < N_KEYS; i++) {
                const KeyDef *k = &keys[i];
                if (k->reloadable)
                        continue;
                const void *a = field_const(old_config, k), *b = field_const(new_config, k);
                bool same;
                switch (k->type) {
                case KEY_STRING: {
                        const char *sa = *(char *const *)a, *sb = *(char *const *)b;
                        same = strcmp(sa ? sa : "", sb ? sb : "") == 0;
                        break;
                }
                case KEY_STRLIST:
                        same = strv_equal(*(char **const *)a, *(char **const *)b);
                        break;
                case KEY_BOOL:
                        same = *(const bool *)a == *(const bool *)b;
                        break;
                case KEY_UINT:
                        same = *(const unsigned *)a == *(const unsigned *)b;
                        break;
                case KEY_INT64:
                        same = *(const int64_t *)a == *(const int64_t *)b;
                        break;
                case KEY_DURATION:
                        same = *(const usec_t *)a == *(const usec_t *)b;
                        break;
                case KEY_LOGLEVEL:
                        same = *(const int *)a == *(const int *)b;
                        break;
                default:
                        same = false;
                }
                if (!same) {
                        if (why)
                                *why = k->name;
                        return false;
                }
        }
        return true;
}

const char *const *config_known_keys(void) {
        /* Derived from the table so the documentation check can never drift from it. */
        static const char *names[N_KEYS + 1];
        if (!names[0])
                for (size_t i = 0; i < N_KEYS; i++)
                        names[i] = keys[i].name;
        return names;
}

/* ------------------------------------------------------ conninfo masking */

typedef struct MaskBuf {
        char *s;
        size_t len, cap;
        bool oom;
} MaskBuf;

static void buf_add(MaskBuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = (b->len + n + 1) * 2;
                char *p = realloc(b->s, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void buf_str(MaskBuf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* URI query keywords are percent-decoded by libpq, so "pass%77ord" counts. */
static bool uri_keyword_is_password(const char *s, size_t n) {
        char dec[32];
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (o + 1 >= sizeof(dec))
                        return false;
                if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        dec[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else
                        dec[o++] = s[i];
        }
        dec[o] = '\0';
        return strcmp(dec, "password") == 0;
}

static void mask_uri(MaskBuf *b, const char *s) {
        const char *p = strstr(s, "://") + 3;
        buf_add(b, s, (size_t)(p - s));

        /* Like libpq: the user info ends at the first '@' before any '/'. */
        size_t auth = strcspn(p, "@/");
        if (p[auth] == '@') {
                const char *colon = memchr(p, ':', auth);
                if (colon) {
                        buf_add(b, p, (size_t)(colon + 1 - p));
                        buf_str(b, MASK);
                } else
                        buf_add(b, p, auth);
                buf_add(b, "@", 1);
                p += auth + 1;
        }
        const char *q = strchr(p, '?');
        if (!q) {
                buf_str(b, p);
                return;
        }
        buf_add(b, p, (size_t)(q + 1 - p));
        p = q + 1;
        while (*p) {
                size_t n = strcspn(p, "&");
                const char *eq = memchr(p, '=', n);
                if (eq && uri_keyword_is_password(p, (size_t)(eq - p))) {
                        buf_add(b, p, (size_t)(eq + 1 - p));
                        buf_str(b, MASK);
                } else
                        buf_add(b, p, n);
                p += n;
                if (*p == '&') {
                        buf_add(b, "&", 1);
                        p++;
                }
        }
}

static void mask_keywords(MaskBuf *b, const char *s) {
        const char *p = s;
        while (*p) {
                if (isspace((unsigned char)*p)) {
                        buf_add(b, p++, 1);
                        continue;
                }
                const char *kw = p;
                while (*p && *p != '=' && !isspace((unsigned char)*p))
                        p++;
                size_t kwlen = (size_t)(p - kw);
                const char *after_kw = p;
                while (isspace((unsigned char)*p))
                        p++;
                if (*p != '=') {
                        /* Not a keyword=value pair: libpq rejects it, so hide the
                         * rest rather than guess where a password might be. */
                        buf_add(b, kw, kwlen);
                        if (*after_kw)
                                buf_str(b, " " MASK);
                        return;
                }
                p++;
                buf_add(b, kw, (size_t)(p - kw));
                while (isspace((unsigned char)*p))
                        buf_add(b, p++, 1);
                const char *val = p;
                if (*p == '\'') {
                        p++;
                        while (*p && *p != '\'') {
                                if (*p == '\\' && p[1])
                                        p++;
                                p++;
                        }
                        if (*p == '\'')
                                p++;
                } else {
                        while (*p && !isspace((unsigned char)*p)) {
                                if (*p == '\\' && p[1])
                                        p++;
                                p++;
                        }
                }
                if (kwlen == 8 && strncmp(kw, "password", 8) == 0)
                        buf_str(b, MASK);
                else
                        buf_add(b, val, (size_t)(p - val));
        }
}

char *config_mask_conninfo(const char *conninfo) {
        MaskBuf b = { 0 };
        if (!conninfo)
                return NULL;
        buf_add(&b, "", 0);
        if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0)
                mask_uri(&b, conninfo);
        else
                mask_keywords(&b, conninfo);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}
