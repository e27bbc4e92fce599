/* Typed configuration values: parsing a key's text (from the file or the
 * environment) into its Config field, and the questions the loader, the
 * reload policy and config_free ask about a field.  Everything is driven by
 * the key's type in the table; no key is named here. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "log.h"
#include "macro.h"
#include "text.h"

void *config_field(Config *c, const KeyDef *k) {
        return (char *)c + k->offset;
}

const void *config_field_const(const Config *c, const KeyDef *k) {
        return (const char *)c + k->offset;
}

void config_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

DEFINE_POINTER_CLEANUP_FUNC(char *, config_strv_free)

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

const char *config_value_quote(const char *v, char *buf, size_t len) {
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

const char *config_value_type_name(const KeyDef *k) {
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

int config_value_check_item(const KeyDef *k, const char *item, char *msg, size_t len) {
        if (!*item) {
                snprintf(msg, len, "list items must not be empty");
                return -EINVAL;
        }
        return k->check ? k->check(item, msg, len) : 0;
}

int config_value_set_list(Config *c, const KeyDef *k, char **items, char *msg, size_t len) {
        for (char **p = items; *p; p++)
                if (config_value_check_item(k, *p, msg, len) < 0)
                        return -EINVAL;
        char ***dst = config_field(c, k);
        config_strv_free(*dst);
        *dst = items;
        return 0;
}

static int set_string(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        if (*v && k->check && k->check(v, msg, len) < 0)
                return -EINVAL;
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        char **dst = config_field(c, k);
        free(*dst);
        *dst = s;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" };
        static const char *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
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

static int set_bool(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128];
        bool b;
        if (parse_bool(v, &b) < 0) {
                snprintf(msg, len, "invalid boolean '%s' (use true or false)", config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        *(bool *)config_field(c, k) = b;
        return 0;
}

static int set_uint(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128];
        uint64_t n = 0;
        if (text_parse_u64(v, &n) < 0 || n < k->min || n > k->max) {
                snprintf(msg, len, "invalid number '%s' (use a whole number from %" PRIu64 " to %" PRIu64 ")",
                         config_value_quote(v, q, sizeof(q)), k->min, k->max);
                return -EINVAL;
        }
        *(unsigned *)config_field(c, k) = (unsigned)n;
        return 0;
}

static int set_int64(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128], *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || isspace((unsigned char)*v) || *end || errno != 0) {
                snprintf(msg, len, "invalid integer '%s' (use a whole number from %" PRId64 " to %" PRId64 ")",
                         config_value_quote(v, q, sizeof(q)), INT64_MIN, INT64_MAX);
                return -EINVAL;
        }
        *(int64_t *)config_field(c, k) = (int64_t)n;
        return 0;
}

static int set_duration(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128], a[32], b[32];
        usec_t d;
        int r = duration_parse(v, &d);
        if (r == -ERANGE || (r == 0 && (d < k->min || d > k->max))) {
                snprintf(msg, len, "duration '%s' out of range (use %s to %s)", config_value_quote(v, q, sizeof(q)),
                         duration_format(k->min, a, sizeof(a)), duration_format(k->max, b, sizeof(b)));
                return -EINVAL;
        }
        if (r < 0) {
                snprintf(msg, len, "invalid duration '%s' (use a number and one of ms, s, m, h, d)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        *(usec_t *)config_field(c, k) = d;
        return 0;
}

static int set_loglevel(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        char q[128];
        int p = log_level_from_string(v);
        if (p < 0) {
                snprintf(msg, len, "invalid log level '%s' (use error, warning, notice, info or debug)",
                         config_value_quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        *(int *)config_field(c, k) = p;
        return 0;
}

/* Comma-separated, blanks around items ignored: "completed, shipped". */
static int set_strlist(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        size_t n = 1, i = 0;
        for (const char *p = v; *p; p++)
                n += *p == ',';
        _cleanup_(config_strv_freep) char **items = calloc(n + 1, sizeof(char *));
        if (!items)
                return -ENOMEM;
        for (const char *p = v; *v; p++) {
                size_t l = strcspn(p, ",");
                const char *s = p, *e = p + l;
                while (s < e && isspace((unsigned char)*s))
                        s++;
                while (e > s && isspace((unsigned char)e[-1]))
                        e--;
                items[i] = strndup(s, (size_t)(e - s));
                if (!items[i++])
                        return -ENOMEM;
                p += l;
                if (!*p)
                        break;
        }
        int r = config_value_set_list(c, k, items, msg, len);
        if (r < 0)
                return r;
        TAKE_PTR(items);
        return 0;
}

int config_value_set(Config *c, const KeyDef *k, const char *v, char *msg, size_t len) {
        switch (k->type) {
        case KEY_STRING:
                return set_string(c, k, v, msg, len);
        case KEY_BOOL:
                return set_bool(c, k, v, msg, len);
        case KEY_UINT:
                return set_uint(c, k, v, msg, len);
        case KEY_INT64:
                return set_int64(c, k, v, msg, len);
        case KEY_DURATION:
                return set_duration(c, k, v, msg, len);
        case KEY_LOGLEVEL:
                return set_loglevel(c, k, v, msg, len);
        case KEY_STRLIST:
                return set_strlist(c, k, v, msg, len);
        }
        return -EINVAL;
}

bool config_value_empty(const Config *c, const KeyDef *k) {
        if (k->type == KEY_STRING) {
                char *const *s = config_field_const(c, k);
                return !*s || !**s;
        }
        if (k->type == KEY_STRLIST) {
                char **const *v = config_field_const(c, k);
                return strv_length(*v) == 0;
        }
        return false;
}

bool config_value_equal(const Config *a, const Config *b, const KeyDef *k) {
        const void *va = config_field_const(a, k), *vb = config_field_const(b, k);
        switch (k->type) {
        case KEY_STRING: {
                const char *sa = *(char *const *)va, *sb = *(char *const *)vb;
                return strcmp(sa ? sa : "", sb ? sb : "") == 0;
        }
        case KEY_STRLIST:
                return strv_equal(*(char **const *)va, *(char **const *)vb);
        case KEY_BOOL:
                return *(const bool *)va == *(const bool *)vb;
        case KEY_UINT:
                return *(const unsigned *)va == *(const unsigned *)vb;
        case KEY_INT64:
                return *(const int64_t *)va == *(const int64_t *)vb;
        case KEY_DURATION:
                return *(const usec_t *)va == *(const usec_t *)vb;
        case KEY_LOGLEVEL:
                return *(const int *)va == *(const int *)vb;
        }
        return false;
}

void config_value_free(Config *c, const KeyDef *k) {
        if (k->type == KEY_STRING) {
                char **s = config_field(c, k);
                free(*s);
                *s = NULL;
        } else if (k->type == KEY_STRLIST) {
                char ***v = config_field(c, k);
                config_strv_free(*v);
                *v = NULL;
        }
}
