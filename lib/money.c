/* See money.h. */
#include "money.h"

#include <errno.h>
#include <string.h>

/* |m| without overflow for any m, INT128_MIN included. */
static unsigned __int128 magnitude(Money m) {
        return m < 0 ? (unsigned __int128)0 - (unsigned __int128)m : (unsigned __int128)m;
}

int money_parse(const char *s, Money *ret) {
        const char *p = s;
        bool negative = false;
        unsigned __int128 v = 0;
        int int_digits = 0, frac_digits = 0;

        if (!s)
                return -EINVAL;
        if (*p == '-' || *p == '+') {
                negative = *p == '-';
                p++;
        }
        for (; *p >= '0' && *p <= '9'; p++, int_digits++) {
                v = v * 10 + (unsigned)(*p - '0');
                if (v > (unsigned __int128)MONEY_MAX / 100)
                        return -ERANGE;
        }
        v *= 100;
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++, frac_digits++) {
                        if (frac_digits == 0)
                                v += (unsigned)(*p - '0') * 10;
                        else if (frac_digits == 1)
                                v += (unsigned)(*p - '0');
                        else if (*p != '0')
                                return -EDOM;
                }
                if (frac_digits == 0)
                        return -EINVAL;
        }
        if (v > (unsigned __int128)MONEY_MAX)
                return -ERANGE;
        if (*p != '\0' || int_digits + frac_digits == 0 || int_digits == 0)
                return -EINVAL;
        *ret = negative ? -(Money)v : (Money)v;
        return 0;
}

char *money_format(Money m, char *buf, size_t len) {
        char tmp[MONEY_STRLEN];
        size_t i = sizeof(tmp);
        unsigned __int128 v = magnitude(m);
        int digits = 0;

        tmp[--i] = '\0';
        do {
                tmp[--i] = (char)('0' + (int)(v % 10));
                v /= 10;
                if (++digits == 2)
                        tmp[--i] = '.';
        } while (v > 0 || digits < 3);
        if (m < 0)
                tmp[--i] = '-';
        if (len > 0) {
                strncpy(buf, tmp + i, len - 1);
                buf[len - 1] = '\0';
        }
        return buf;
}

Money money_div_round(Money num, uint64_t den) {
        unsigned __int128 a = magnitude(num);
        unsigned __int128 q = a / den, r = a % den;
        if (r * 2 >= den)
                q++;
        return num < 0 ? (Money)((unsigned __int128)0 - q) : (Money)q;
}

Money money_sub(Money a, Money b) {
        Money r;
        if (__builtin_sub_overflow(a, b, &r))
                return b < 0 ? MONEY_MAX : MONEY_MIN;
        return r;
}

bool money_fits_decimal(Money m, unsigned precision) {
        if (precision > 38) /* 10^39 > 2^127: every Money fits */
                return true;
        Money limit = 1;
        for (unsigned i = 0; i < precision; i++)
                limit *= 10;
        return m < limit && m > -limit;
}
