/* The regression driver for the fuzz targets: feeds every file named on the
 * command line (a directory: every file in it) to the target linked in, once
 * each, as libFuzzer would.  Built with gcc under ASan/UBSan so `make test`
 * replays the committed corpora without clang. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, n = 0;
        uint8_t *buf = malloc(cap);
        for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
                n += got;
                if (n == cap) {
                        uint8_t *b = realloc(buf, cap *= 2);
                        if (!b)
                                free(buf);
                        buf = b;
                }
        }
        fclose(f);
        if (!buf)
                return -1;
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

/* A directory's files, in name order, so a failure is reproducible. */
static int run_dir(const char *dir, unsigned *count) {
        struct dirent **list;
        int n = scandir(dir, &list, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", dir, strerror(errno));
                return -1;
        }
        int r = 0;
        for (int i = 0; i < n; i++) {
                char path[4096];
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
                if (list[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(path) < 0)
                                r = -1;
                        (*count)++;
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        int r = 0;
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                        r |= run_dir(argv[i], &count);
                else {
                        r |= run_file(argv[i]);
                        count++;
                }
        }
        printf("%s: %u inputs replayed%s\n", argv[0], count, r ? ", some unreadable" : "");
        return r ? 1 : 0;
}
