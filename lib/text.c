/* See text.h. */
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *text_one_line(const char *in, char *buf, size_t len) {
        size_t j = 0;
        if (len == 0)
                return buf;
        for (size_t i = 0; in && in[i]; i++) {
                char c = isspace((unsigned char)in[i]) ? ' ' : in[i];
                if (c == ' ' && (j == 0 || buf[j - 1] == ' '))
                        continue;
                if (j + 1 >= len && c == ' ')
                        continue; /* only trailing space may follow: decided by the next character */
                if (j + 1 >= len) {
                        size_t dots = len > 4 ? 3 : len - 1;
                        j = len - 1 - dots;
                        memcpy(buf + j, "...", dots);
                        j += dots;
                        buf[j] = '\0';
                        return buf;
                }
                buf[j++] = c;
        }
        while (j > 0 && buf[j - 1] == ' ')
                j--;
        buf[j] = '\0';
        return buf;
}

int text_parse_u64(const char *s, uint64_t *ret) {
        char *end;
        if (!s || !isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        return 0;
}
