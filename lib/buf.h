/* A growable byte buffer, always NUL-terminated, for building queries and
 * TSV bodies.  Functions return 0 or -ENOMEM; a buffer that failed once
 * stays usable (its content up to the failure is intact). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

typedef struct Buf {
        char *data; /* NULL until the first append */
        size_t len;
        size_t cap;
} Buf;

int buf_append(Buf *b, const char *s, size_t n);
int buf_puts(Buf *b, const char *s);
int buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(Buf *b);
/* Hands the string over to the caller (never NULL on success: "" when empty). */
char *buf_steal(Buf *b);
void buf_free(Buf *b);
