/* What every fuzz target shares.  A target defines LLVMFuzzerTestOneInput()
 * (and may define LLVMFuzzerInitialize()); it is linked either with
 * libFuzzer (clang, `make fuzz`) or with replay.c, which feeds it every file
 * of its committed corpus under ASan/UBSan (gcc, `make fuzz-replay`, part of
 * `make test`).  A broken invariant calls FUZZ_ASSERT, which aborts: both
 * drivers report the input. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                                            \
        do {                                                                                         \
                if (!(cond)) {                                                                       \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                     \
                }                                                                                    \
        } while (0)

/* The input as a NUL-terminated string (cut at its first NUL); free() it. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}
