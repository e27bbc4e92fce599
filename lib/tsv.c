/* See tsv.h. */
#include "tsv.h"

#include <errno.h>
#include <string.h>

int tsv_append_escaped(Buf *b, const char *s) {
        int r = 0;
        for (const char *p = s; *p && r == 0; p++) {
                switch (*p) {
                case '\\':
                        r = buf_append(b, "\\\\", 2);
                        break;
                case '\t':
                        r = buf_append(b, "\\t", 2);
                        break;
                case '\n':
                        r = buf_append(b, "\\n", 2);
                        break;
                case '\r':
                        r = buf_append(b, "\\r", 2);
                        break;
                case '\'':
                        r = buf_append(b, "\\'", 2);
                        break;
                case '\b':
                        r = buf_append(b, "\\b", 2);
                        break;
                case '\f':
                        r = buf_append(b, "\\f", 2);
                        break;
                default:
                        r = buf_append(b, p, 1);
                        break;
                }
        }
        return r;
}

static int tsv_unescape(char *field) {
        char *w = field;
        for (char *p = field; *p; p++) {
                if (*p != '\\') {
                        *w++ = *p;
                        continue;
                }
                p++;
                switch (*p) {
                case 't':
                        *w++ = '\t';
                        break;
                case 'n':
                        *w++ = '\n';
                        break;
                case 'r':
                        *w++ = '\r';
                        break;
                case 'b':
                        *w++ = '\b';
                        break;
                case 'f':
                        *w++ = '\f';
                        break;
                case '0':
                        *w++ = '\0';
                        break;
                case '\0':
                        return -EINVAL;
                default:
                        *w++ = *p;
                        break; /* \\ \' \" and any other escaped byte */
                }
        }
        *w = '\0';
        return 0;
}

int tsv_split(char *line, char **fields, size_t max) {
        size_t n = 0;
        char *p = line;

        for (;;) {
                if (n == max)
                        return -E2BIG;
                fields[n++] = p;
                char *tab = strchr(p, '\t');
                if (tab)
                        *tab = '\0';
                if (tsv_unescape(fields[n - 1]) < 0)
                        return -EINVAL;
                if (!tab)
                        break;
                p = tab + 1;
        }
        return (int)n;
}

char *tsv_next_line(char **cursor) {
        char *line = *cursor;
        if (!line || *line == '\0')
                return NULL;
        char *nl = strchr(line, '\n');
        if (nl) {
                *nl = '\0';
                *cursor = nl + 1;
        } else
                *cursor = line + strlen(line);
        return line;
}
