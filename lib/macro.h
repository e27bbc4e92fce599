/* Small ownership helpers in the style of systemd's: a local declared with
 * _cleanup_free_ (or _cleanup_(fn)) is released on every path out of its
 * scope, and TAKE_PTR hands it over to a caller or an owning struct without
 * a goto ladder.  Every cleanup function accepts NULL. */
#pragma once

#include <stdlib.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _unused_       __attribute__((unused))
#define ELEMENTSOF(x)  (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)      ((a) < (b) ? (a) : (b))
#define MAX(a, b)      ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **)p);
}

/* Returns *pp and sets it to NULL, so a _cleanup_ local no longer frees it. */
#define TAKE_PTR(p)                         \
        ({                                  \
                __typeof__(p) _taken = (p); \
                (p) = NULL;                 \
                _taken;                     \
        })

/* Defines fnp(type **p) calling fn(*p): for use with _cleanup_(fnp). */
#define DEFINE_POINTER_CLEANUP_FUNC(type, fn) \
        static inline void fn##p(type **p) {  \
                if (*p)                       \
                        fn(*p);               \
        }
