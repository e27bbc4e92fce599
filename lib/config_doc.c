/* See config_doc.h.  Defaults are written in the syntax a user writes: plain
 * YAML scalars where they are unambiguous, double-quoted otherwise. */
#include "config_doc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config_internal.h"
#include "macro.h"

#define EXAMPLE_COMMENT_COLUMN 30

/* Would YAML read s as the plain string s?  Blanks are quoted too, for
 * readability. */
static bool plain_ok(const char *s) {
        static const char *const special[] = { "true", "false", "yes", "no", "on", "off", "null", "~" };
        if (!*s || strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) || strpbrk(s, " \t\\\"") || strstr(s, ": "))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(special); i++)
                if (strcasecmp(s, special[i]) == 0)
                        return false;
        return true;
}

static int put_scalar(Buf *b, const char *s) {
        if (plain_ok(s))
                return buf_puts(b, s);
        int r = buf_puts(b, "\"");
        for (const char *p = s; r >= 0 && *p; p++)
                r = *p == '"' || *p == '\\' ? buf_printf(b, "\\%c", *p) : buf_append(b, p, 1);
        return r < 0 ? r : buf_puts(b, "\"");
}

/* The default as YAML: a list's comma-separated items in brackets. */
static int put_default(Buf *b, const KeyDef *k) {
        if (k->type != KEY_STRLIST || (k->scalar_ok && !strchr(k->def, ',')))
                return k->type != KEY_STRLIST && k->type != KEY_STRING ? buf_puts(b, k->def) : put_scalar(b, k->def);
        int r = buf_puts(b, "[");
        for (const char *p = k->def; r >= 0 && *p;) {
                size_t n = strcspn(p, ",");
                _cleanup_free_ char *item = strndup(p, n);
                if (!item)
                        return -ENOMEM;
                r = put_scalar(b, item);
                p += n;
                if (r >= 0 && *p && *++p)
                        r = buf_puts(b, ", ");
        }
        return r < 0 ? r : buf_puts(b, "]");
}

static const char *type_doc(const KeyDef *k) {
        if (k->doc_type)
                return k->doc_type;
        switch (k->type) {
        case KEY_STRING:
                return "string";
        case KEY_BOOL:
                return "bool";
        case KEY_UINT:
                return "integer";
        case KEY_INT64:
                return "int64";
        case KEY_DURATION:
                return "duration";
        case KEY_STRLIST:
                return "list of strings";
        case KEY_LOGLEVEL:
                return "log level";
        }
        return "value";
}

/* The "meaning" cell: the one-line doc, then what the table
 * knows (range, required, credential), then doc_more. */
static int put_meaning(Buf *b, const KeyDef *k) {
        char lo[32], hi[32];
        int r = buf_printf(b, "%s.", k->doc); /* as written: it may start with a name ("libpq", "error") */
        if (r >= 0 && k->type == KEY_UINT)
                r = buf_printf(b, " From %ju to %ju.", (uintmax_t)k->min, (uintmax_t)k->max);
        if (r >= 0 && k->type == KEY_DURATION)
                r = buf_printf(b, " From %s to %s.", duration_format(k->min, lo, sizeof(lo)),
                               duration_format(k->max, hi, sizeof(hi)));
        if (r >= 0 && k->required)
                r = buf_puts(b, " Must not be empty.");
        if (r >= 0 && k->credential)
                r = buf_printf(b, " When empty: the systemd credential `%s` if present (see Credentials).",
                               k->credential);
        if (r >= 0 && k->doc_more)
                r = buf_printf(b, " %s", k->doc_more);
        return r;
}

static int put_key_row(Buf *b, const KeyDef *k) {
        int r = buf_printf(b, "| `%s` | %s | `", k->name, type_doc(k));
        if (r >= 0)
                r = put_default(b, k);
        if (r >= 0)
                r = buf_printf(b, "` | %s | ", k->restart_only ? "restart" : "SIGHUP");
        if (r >= 0)
                r = put_meaning(b, k);
        return r < 0 ? r : buf_puts(b, " |\n");
}

static bool in_section(const KeyDef *k, const char *section) {
        size_t n = section ? strlen(section) : 0;
        if (!section)
                return !strchr(k->name, '.');
        return strncmp(k->name, section, n) == 0 && k->name[n] == '.';
}

static int put_section(Buf *b, const KeySection *s) {
        int r = s->name ? buf_printf(b, "### `%s` (%s)\n\n", s->name, s->title) : buf_puts(b, "### Top level\n\n");
        if (r >= 0)
                r = buf_puts(b, "| key | type | default | reload | meaning |\n|---|---|---|---|---|\n");
        for (size_t i = 0; r >= 0 && i < config_n_keys; i++)
                if (in_section(&config_keys[i], s->name))
                        r = put_key_row(b, &config_keys[i]);
        return r;
}

static int write_buf(FILE *f, const Buf *b) {
        if (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len)
                return -EIO;
        return fflush(f) == 0 ? 0 : -errno;
}

int config_doc_reference(FILE *f) {
        static const KeySection top = { NULL, NULL };
        _cleanup_(buf_free) Buf b = { 0 };
        int r = put_section(&b, &top);
        for (const KeySection *s = config_sections; r >= 0 && s->name; s++) {
                r = buf_puts(&b, "\n");
                if (r >= 0)
                        r = put_section(&b, s);
        }
        return r < 0 ? r : write_buf(f, &b);
}

static const char example_header[] =
        "# salesd configuration (/etc/salesd/salesd.yaml).\n"
        "#\n"
        "# Every key is shown with its default; delete what you do not change.\n"
        "# Durations: a number and a unit (ms, s, m, h, d), parts may be combined: 1h30m.\n"
        "# Any key can be overridden from the environment: SALESD_ + the key path in\n"
        "# capitals with '.' replaced by '_' (SALESD_POSTGRES_CONNINFO, SALESD_OVERLAP).\n"
        "# Validate with `salesd -c FILE check-config`. Reference: docs/configuration.md.\n"
        "# Generated from lib/config_keys.c by `make config-docs`.\n";

static int put_example_key(Buf *b, const KeyDef *k) {
        const char *dot = strchr(k->name, '.');
        size_t start = b->len;
        int r = buf_printf(b, "%s%s: ", dot ? "  " : "", dot ? dot + 1 : k->name);
        if (r >= 0)
                r = put_default(b, k);
        size_t width = b->len - start;
        if (r >= 0)
                r = buf_printf(b, "%*s# %s",
                               width + 2 < EXAMPLE_COMMENT_COLUMN ? (int)(EXAMPLE_COMMENT_COLUMN - width) : 2, "",
                               k->doc);
        if (r >= 0 && k->credential)
                r = buf_printf(b, "; else $CREDENTIALS_DIRECTORY/%s", k->credential);
        if (r >= 0 && k->restart_only)
                r = buf_puts(b, " (restart needed to change)");
        return r < 0 ? r : buf_puts(b, "\n");
}

int config_doc_example(FILE *f) {
        _cleanup_(buf_free) Buf b = { 0 };
        int r = buf_puts(&b, example_header);
        for (size_t i = 0; r >= 0 && i < config_n_keys; i++) {
                const KeyDef *k = &config_keys[i];
                const char *dot = strchr(k->name, '.');
                size_t n = dot ? (size_t)(dot - k->name) : 0;
                bool first = i == 0 || (dot && strncmp(config_keys[i - 1].name, k->name, n + 1) != 0);
                if (first)
                        r = dot ? buf_printf(&b, "\n%.*s:\n", (int)n, k->name) : buf_puts(&b, "\n");
                if (r >= 0)
                        r = put_example_key(&b, k);
        }
        return r < 0 ? r : write_buf(f, &b);
}

/* ---- salesd.yaml(5) ---- */

#define MAN_WIDTH 76 /* mandoc -Tlint wants text lines of at most 80 bytes */

/* Appends text as roff: backslashes escaped and, when code is set, `code`
 * spans in bold. */
static int put_roff(Buf *b, const char *text, bool code) {
        bool bold = false;
        int r = 0;
        for (const char *p = text; r >= 0 && *p; p++) {
                if (code && *p == '`') {
                        bold = !bold;
                        r = buf_puts(b, bold ? "\\fB" : "\\fR");
                } else
                        r = *p == '\\' ? buf_puts(b, "\\e") : buf_append(b, p, 1);
        }
        return r < 0 || !bold ? r : buf_puts(b, "\\fR");
}

/* Appends a roff paragraph's text, broken at blanks into lines of at most
 * MAN_WIDTH bytes; a line that would start with a control character gets a
 * zero-width escape first. */
static int put_wrapped(Buf *b, const char *roff) {
        int r = 0;
        size_t col = 0;
        for (const char *p = roff; r >= 0 && *p;) {
                p += strspn(p, " ");
                size_t n = strcspn(p, " ");
                if (n == 0)
                        break;
                if (col > 0 && col + 1 + n > MAN_WIDTH) {
                        r = buf_puts(b, "\n");
                        col = 0;
                } else if (col > 0) {
                        r = buf_puts(b, " ");
                        col++;
                }
                if (r >= 0 && col == 0 && (*p == '.' || *p == '\''))
                        r = buf_puts(b, "\\&");
                if (r >= 0)
                        r = buf_append(b, p, n);
                col += n;
                p += n;
        }
        return r < 0 || col == 0 ? r : buf_puts(b, "\n");
}

/* A paragraph from Markdown-ish text (`code` in bold). */
static int put_man_text(Buf *b, const char *text) {
        _cleanup_(buf_free) Buf roff = { 0 };
        int r = put_roff(&roff, text, true);
        return r < 0 ? r : put_wrapped(b, roff.data);
}

static int put_man_key(Buf *b, const KeyDef *k) {
        _cleanup_(buf_free) Buf def = { 0 }, body = { 0 };
        int r = buf_printf(b, ".TP\n.B %s\n", k->name);
        if (r >= 0)
                r = put_default(&def, k);
        if (r >= 0)
                r = buf_printf(&body, "%s, default \\fB", type_doc(k));
        if (r >= 0)
                r = put_roff(&body, def.data, false);
        if (r >= 0)
                r = buf_printf(&body, "\\fR; %s. ", k->restart_only ? "a change needs a restart" : "reloadable");
        if (r >= 0) {
                _cleanup_(buf_free) Buf meaning = { 0 };
                r = put_meaning(&meaning, k);
                if (r >= 0)
                        r = put_roff(&body, meaning.data, true);
        }
        return r < 0 ? r : put_wrapped(b, body.data);
}

static int put_man_section(Buf *b, const KeySection *s) {
        int r = s->name ? buf_printf(b, ".SS \"%s (%s)\"\n", s->name, s->title) : buf_puts(b, ".SS \"Top level\"\n");
        for (size_t i = 0; r >= 0 && i < config_n_keys; i++)
                if (in_section(&config_keys[i], s->name))
                        r = put_man_key(b, &config_keys[i]);
        return r;
}

static const char *const man_description[] = {
        "salesd reads one YAML file, `/etc/salesd/salesd.yaml` unless `salesd -c FILE` names another. "
        "It is one mapping: the top-level keys, and one nested mapping per section (`postgres`, `clickhouse`, "
        "`http`, `notify`). Below, a key in a section is written with its section, `postgres.conninfo` for "
        "`conninfo` inside `postgres`.",
        "Every key is optional and has the default shown. Unknown keys, values of the wrong shape, repeated keys "
        "and YAML syntax errors are errors; salesd reports every problem, each with file, line and column. "
        "`salesd -c FILE check-config` validates a file and prints the effective configuration, secrets masked, "
        "and exits 78 when the configuration is invalid.",
        "Strings are plain or quoted YAML scalars. Booleans: `true`/`false`, `yes`/`no`, `on`/`off`. Durations: "
        "a whole number and a unit, `ms`, `s`, `m`, `h` or `d`; parts may be combined, largest first: `250ms`, "
        "`1h30m`. Lists: a YAML sequence, `[completed, shipped]`.",
        "A reloadable key takes effect on `SIGHUP` (`systemctl reload salesd`). A reload that changes a key that "
        "needs a restart, or that holds any invalid value, is rejected as a whole and the configuration in force "
        "stays.",
};

static const char *const man_environment[] = {
        "Every key can be overridden by a variable named `SALESD_` and the key path in capitals with `.` replaced "
        "by `_`: `SALESD_POSTGRES_CONNINFO`, `SALESD_OVERLAP`. The value has the syntax of the file without YAML "
        "quoting; a list is comma-separated. Overrides are applied after the file and win.",
        "`CREDENTIALS_DIRECTORY`, set by systemd's `LoadCredential=`: where the secrets `pg-password`, "
        "`ch-password` and `http-token` are looked up when no `*_file` key names a file.",
};

static int put_man_paragraphs(Buf *b, const char *const *paras, size_t n) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (i > 0)
                        r = buf_puts(b, ".PP\n");
                if (r >= 0)
                        r = put_man_text(b, paras[i]);
        }
        return r;
}

int config_doc_man(FILE *f, const char *date, const char *version) {
        static const KeySection top = { NULL, NULL };
        _cleanup_(buf_free) Buf b = { 0 };
        int r = buf_printf(&b,
                           ".\\\" Generated from lib/config_keys.c by `make config-docs`; do not edit.\n"
                           ".TH SALESD.YAML 5 \"%s\" \"salesd %s\" \"File Formats\"\n"
                           ".SH NAME\n"
                           "salesd.yaml \\- configuration file of salesd\n"
                           ".SH SYNOPSIS\n"
                           ".I /etc/salesd/salesd.yaml\n"
                           ".SH DESCRIPTION\n",
                           date, version);
        if (r >= 0)
                r = put_man_paragraphs(&b, man_description, ELEMENTSOF(man_description));
        if (r >= 0)
                r = buf_puts(&b, ".SH KEYS\n");
        if (r >= 0)
                r = put_man_section(&b, &top);
        for (const KeySection *s = config_sections; r >= 0 && s->name; s++)
                r = put_man_section(&b, s);
        if (r >= 0)
                r = buf_puts(&b, ".SH ENVIRONMENT\n");
        if (r >= 0)
                r = put_man_paragraphs(&b, man_environment, ELEMENTSOF(man_environment));
        if (r >= 0)
                r = buf_puts(&b, ".SH FILES\n"
                                 ".TP\n.I /etc/salesd/salesd.yaml\n"
                                 "The configuration file.\n"
                                 ".TP\n.I /etc/salesd/credentials/\n"
                                 "Root-only secret files the unit hands in with\n.BR LoadCredential= .\n"
                                 ".TP\n.I /usr/share/salesd/salesd.yaml.example\n"
                                 "Every key at its default, with a one-line comment.\n"
                                 ".SH SEE ALSO\n"
                                 ".BR salesd (8),\n"
                                 ".BR systemd.exec (5)\n");
        return r < 0 ? r : write_buf(f, &b);
}

/* The start of the line holding marker at or after from, or NULL. */
static const char *find_marker_line(const char *doc, const char *from, const char *marker) {
        for (const char *p = strstr(from, marker); p; p = strstr(p + 1, marker))
                if (p == doc || p[-1] == '\n')
                        return p;
        return NULL;
}

int config_doc_splice(const char *doc, const char *generated, char **ret, char *err, size_t errlen) {
        const char *begin = find_marker_line(doc, doc, CONFIG_DOC_BEGIN);
        const char *end = begin ? find_marker_line(doc, begin, CONFIG_DOC_END) : NULL;
        if (!begin || !end) {
                snprintf(err, errlen, "marker line '%s' missing", begin ? CONFIG_DOC_END : CONFIG_DOC_BEGIN);
                return -EINVAL;
        }
        const char *after_begin = begin + strcspn(begin, "\n");
        after_begin += *after_begin == '\n';
        _cleanup_(buf_free) Buf b = { 0 };
        int r = buf_append(&b, doc, (size_t)(after_begin - doc));
        if (r >= 0)
                r = buf_puts(&b, generated);
        if (r >= 0)
                r = buf_puts(&b, end);
        if (r < 0)
                return r;
        *ret = buf_steal(&b);
        return 0;
}
