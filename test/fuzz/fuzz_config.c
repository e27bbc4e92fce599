/* Fuzz target: loading a configuration file (the YAML walk, every value
 * parser and validator, the size and depth limits), then printing what
 * loaded (check-config), which must load again. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

extern char **environ;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        /* only the file decides: no SALESD_* overrides, no credentials */
        for (char **e = environ; *e;)
                if (strncmp(*e, "SALESD_", 7) == 0 || strncmp(*e, "CREDENTIALS_DIRECTORY=", 22) == 0) {
                        char name[256];
                        snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
                        unsetenv(name);
                        e = environ;
                } else
                        e++;
        unsetenv("TZDIR");
        return 0;
}

/* The text as a file: a memfd, loaded through its /proc path. */
static int load_text(const void *data, size_t size, Config **ret, char *err, size_t errlen) {
        char path[64];
        int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        FUZZ_ASSERT(fd >= 0);
        FUZZ_ASSERT(size == 0 || write(fd, data, size) == (ssize_t)size);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        int r = config_load(path, ret, err, errlen);
        close(fd);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char err[8192], err2[8192];
        Config *c = NULL;
        int r = load_text(data, size, &c, err, sizeof(err));
        FUZZ_ASSERT(r == 0 ? c != NULL : r == -EINVAL && err[0] != '\0');
        if (r < 0)
                return 0;

        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        FUZZ_ASSERT(m);
        FUZZ_ASSERT(config_print(c, m) == 0);
        fclose(m);
        Config *again = NULL;
        r = load_text(text, len, &again, err2, sizeof(err2));
        if (r != 0)
                fprintf(stderr, "check-config printed:\n%s\nwhich does not load:\n%s\n", text, err2);
        FUZZ_ASSERT(r == 0);
        const char *why = NULL;
        FUZZ_ASSERT(config_reloadable(c, again, &why) || why != NULL);
        config_free(again);
        free(text);
        config_free(c);
        return 0;
}
