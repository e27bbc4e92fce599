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

/* Length of the well-formed UTF-8 sequence at p (1-4), or 0 if there is none. */
static size_t utf8_sequence(const unsigned char *p) {
        unsigned c = p[0];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* bounds of the second byte */

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
                hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                lo = c == 0xf0 ? 0x90 : 0x80;
                hi = c == 0xf4 ? 0x8f : 0xbf; /* at most U+10FFFF */
        } else
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return n;
}

const char *text_utf8_sanitize(const char *in, char *buf, size_t len) {
        const unsigned char *p = (const unsigned char *)(in ? in : "");
        size_t j = 0;

        if (len == 0)
                return buf;
        while (*p) {
                size_t n = utf8_sequence(p);
                if (j + (n ? n : 1) >= len)
                        break;
                if (n == 0) {
                        buf[j++] = '?';
                        p++;
                        continue;
                }
                memcpy(buf + j, p, n);
                j += n;
                p += n;
        }
        buf[j] = '\0';
        return buf;
}
