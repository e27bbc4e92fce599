/* check-config output: the effective configuration as YAML that
 * config_load() accepts, every key with its one-line doc as a comment.  A
 * key with a mask column is shown masked; a resolved secret only as
 * "(set)" / "(not set)". */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"
#include "macro.h"

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

static int print_string(FILE *f, const KeyDef *k, const char *s) {
        if (!k->mask) {
                print_quoted(f, s ? s : "");
                return 0;
        }
        _cleanup_free_ char *masked = k->mask(s ? s : "");
        if (!masked)
                return -ENOMEM;
        print_quoted(f, masked);
        return 0;
}

static int print_list(FILE *f, const KeyDef *k, char *const *items) {
        int r = 0;
        if (k->scalar_ok && items && items[0] && !items[1]) /* one URL prints as it is usually written */
                return print_string(f, k, items[0]);
        fputc('[', f);
        for (size_t j = 0; r == 0 && items && items[j]; j++) {
                if (j > 0)
                        fputs(", ", f);
                r = print_string(f, k, items[j]);
        }
        fputc(']', f);
        return r;
}

static int print_value(FILE *f, const Config *c, const KeyDef *k) {
        const void *v = config_field_const(c, k);
        char buf[64];
        switch (k->type) {
        case KEY_STRING:
                return print_string(f, k, *(char *const *)v);
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
        case KEY_STRLIST:
                return print_list(f, k, *(char **const *)v);
        }
        return 0;
}

/* "postgres:" before the first key of each section. */
static void print_section_header(FILE *f, const KeyDef *k, const KeyDef *prev) {
        const char *dot = strchr(k->name, '.');
        if (!dot)
                return;
        size_t n = (size_t)(dot - k->name);
        if (prev && strncmp(prev->name, k->name, n + 1) == 0)
                return;
        fprintf(f, "%.*s:\n", (int)n, k->name);
}

int config_print(const Config *c, FILE *f) {
        fprintf(f, "# salesd effective configuration");
        if (c->path)
                fprintf(f, " (%s)", c->path);
        fprintf(f, "\n# secrets are never shown\n");

        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyDef *k = &config_keys[i];
                const char *dot = strchr(k->name, '.');
                const char *indent = dot ? "  " : "";
                print_section_header(f, k, i > 0 ? &config_keys[i - 1] : NULL);
                fprintf(f, "%s# %s%s\n%s%s: ", indent, k->doc, k->restart_only ? " (restart needed to change)" : "",
                        indent, dot ? dot + 1 : k->name);
                int r = print_value(f, c, k);
                if (r < 0)
                        return r;
                if (k->secret) {
                        char *const *secret = (char *const *)((const char *)c + k->secret_offset);
                        fprintf(f, "  # %s: %s", k->secret, *secret ? "(set)" : "(not set)");
                }
                fputc('\n', f);
        }
        if (fflush(f) != 0 || ferror(f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}
