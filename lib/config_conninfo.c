/* libpq connection strings in the configuration: validation whose errors
 * never carry a password fragment, and masking for check-config and logs.
 * Both use libpq's own parser (PQconninfoParse), so what counts as a
 * password here is exactly what libpq would send. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_internal.h"
#include "macro.h"

DEFINE_POINTER_CLEANUP_FUNC(PQconninfoOption, PQconninfoFree)
DEFINE_POINTER_CLEANUP_FUNC(char, PQfreemem)

static bool is_keyword(const PQconninfoOption *defs, const char *s, size_t n) {
        for (const PQconninfoOption *d = defs; d && d->keyword; d++)
                if (strlen(d->keyword) == n && strncmp(d->keyword, s, n) == 0)
                        return true;
        return false;
}

/* libpq's parse errors quote fragments of the string, and a fragment can be
 * (part of) a password.  Keep only fragments that are conninfo keywords or
 * punctuation, replace the rest. */
static void scrub_libpq_message(const char *in, char *out, size_t len) {
        _cleanup_(PQconninfoFreep) PQconninfoOption *defs = PQconndefaults();
        size_t o = 0;

        for (const char *p = in; *p && o + 1 < len;) {
                const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
                if (!end) {
                        if (*p != '\n')
                                out[o++] = *p;
                        p++;
                        continue;
                }
                size_t flen = (size_t)(end - p - 1);
                bool keep = flen <= 1 || is_keyword(defs, p + 1, flen);
                const char *src = keep ? p : "\"...\"";
                size_t slen = keep ? flen + 2 : 5;
                for (size_t i = 0; i < slen && o + 1 < len; i++)
                        out[o++] = src[i];
                p = end + 1;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '.'))
                o--;
        out[o] = '\0';
}

int config_check_conninfo(const char *v, char *msg, size_t len) {
        _cleanup_(PQfreememp) char *pqerr = NULL;
        _cleanup_(PQconninfoFreep) PQconninfoOption *opts = PQconninfoParse(v, &pqerr);
        if (!opts) {
                char clean[256];
                scrub_libpq_message(pqerr ? pqerr : "out of memory", clean, sizeof(clean));
                /* Never echo the value: it may hold a password. */
                snprintf(msg, len,
                         "invalid libpq connection string: %s (use keyword=value pairs or a postgresql:// URI)", clean);
                return -EINVAL;
        }
        return 0;
}

/* keyword=value syntax: a value with blanks, quotes or backslashes (or an
 * empty one) goes in single quotes with ' and \ escaped. */
static int emit_value(Buf *b, const char *v) {
        if (*v && !strpbrk(v, " \t\n\r\f\v'\\"))
                return buf_puts(b, v);
        int r = buf_puts(b, "'");
        for (const char *p = v; r >= 0 && *p; p++)
                r = *p == '\'' || *p == '\\' ? buf_printf(b, "\\%c", *p) : buf_append(b, p, 1);
        return r < 0 ? r : buf_puts(b, "'");
}

static char *emit_masked(const PQconninfoOption *opts) {
        _cleanup_(buf_free) Buf b = { 0 };
        int r = 0;
        for (const PQconninfoOption *o = opts; r >= 0 && o->keyword; o++) {
                if (!o->val)
                        continue;
                r = buf_printf(&b, "%s%s=", b.len > 0 ? " " : "", o->keyword);
                if (r >= 0)
                        r = strcmp(o->keyword, "password") == 0 ? buf_puts(&b, CONFIG_MASK) : emit_value(&b, o->val);
        }
        return r < 0 ? NULL : buf_steal(&b);
}

char *config_mask_conninfo(const char *conninfo) {
        if (!conninfo)
                return NULL;
        _cleanup_(PQconninfoFreep) PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
        /* libpq cannot say where a password is in text it cannot parse. */
        if (!opts)
                return strdup(CONFIG_MASK);
        bool has_password = false;
        for (const PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val)
                        has_password = true;
        /* Without a password the text is shown as written, URI or not. */
        return has_password ? emit_masked(opts) : strdup(conninfo);
}
