/* See lsn.h. */
#include "lsn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#define LONG_PAGE_HEADER 40 /* SizeOfXLogLongPHD on 64-bit builds; the short one is 24 */

static int parse_half(const char *s, const char **ret_end, uint32_t *ret) {
        uint64_t v = 0;
        const char *p = s;
        for (; *p; p++) {
                unsigned d;
                if (*p >= '0' && *p <= '9')
                        d = (unsigned)(*p - '0');
                else if (*p >= 'A' && *p <= 'F')
                        d = (unsigned)(*p - 'A' + 10);
                else if (*p >= 'a' && *p <= 'f')
                        d = (unsigned)(*p - 'a' + 10);
                else
                        break;
                v = v * 16 + d;
                if (v > UINT32_MAX)
                        return -EINVAL;
        }
        if (p == s)
                return -EINVAL;
        *ret_end = p;
        *ret = (uint32_t)v;
        return 0;
}

int lsn_parse(const char *s, Lsn *ret) {
        uint32_t hi, lo;
        const char *p;
        if (!s || parse_half(s, &p, &hi) < 0 || *p != '/' || parse_half(p + 1, &p, &lo) < 0 || *p)
                return -EINVAL;
        *ret = (Lsn)hi << 32 | lo;
        return 0;
}

char *lsn_format(Lsn l, char buf[LSN_STRLEN]) {
        snprintf(buf, LSN_STRLEN, "%" PRIX32 "/%" PRIX32, (uint32_t)(l >> 32), (uint32_t)l);
        return buf;
}

bool lsn_replayed(Lsn replayed, Lsn inserted, uint64_t wal_block_size) {
        if (replayed >= inserted)
                return true;
        if (wal_block_size == 0)
                return false;
        uint64_t offset = inserted % wal_block_size;
        return offset <= LONG_PAGE_HEADER && replayed >= inserted - offset;
}
