/* salesd-config-doc: a build tool, not installed.  Writes to stdout what
 * `make config-docs` puts into the repository and `make config-docs-check`
 * compares with it:
 *
 *   salesd-config-doc reference DOC   DOC with the generated key reference
 *                                     spliced in between its marker lines
 *   salesd-config-doc example         the example config/salesd.yaml
 *   salesd-config-doc man DATE VERSION  the manual page docs/salesd.yaml.5
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_doc.h"
#include "macro.h"

/* The whole file as a string, through a memory stream. */
static int read_file(const char *path, char **ret) {
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        char *data = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&data, &len);
        int r = m ? 0 : -ENOMEM;
        char chunk[4096];
        size_t n;
        while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        if (r == 0 && ferror(f))
                r = -EIO;
        fclose(f);
        if (m && fclose(m) != 0 && r == 0)
                r = -ENOMEM;
        if (r < 0) {
                free(data);
                return r;
        }
        *ret = data;
        return 0;
}

static int reference(const char *path) {
        _cleanup_free_ char *doc = NULL, *generated = NULL, *out = NULL;
        size_t len = 0;
        char err[256];

        int r = read_file(path, &doc);
        if (r < 0) {
                fprintf(stderr, "salesd-config-doc: cannot read '%s': %s\n", path, strerror(-r));
                return r;
        }
        FILE *m = open_memstream(&generated, &len);
        if (!m)
                return -ENOMEM;
        r = config_doc_reference(m);
        if (fclose(m) != 0 || r < 0)
                return r < 0 ? r : -ENOMEM;
        r = config_doc_splice(doc, generated, &out, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "salesd-config-doc: %s: %s\n", path, r == -ENOMEM ? strerror(ENOMEM) : err);
                return r;
        }
        fputs(out, stdout);
        return fflush(stdout) == 0 ? 0 : -errno;
}

int main(int argc, char **argv) {
        int r;
        if (argc == 3 && strcmp(argv[1], "reference") == 0)
                r = reference(argv[2]);
        else if (argc == 2 && strcmp(argv[1], "example") == 0)
                r = config_doc_example(stdout);
        else if (argc == 4 && strcmp(argv[1], "man") == 0)
                r = config_doc_man(stdout, argv[2], argv[3]);
        else {
                fprintf(stderr, "usage: salesd-config-doc reference DOC | example | man DATE VERSION\n");
                return 64;
        }
        if (r < 0)
                fprintf(stderr, "salesd-config-doc: %s\n", strerror(-r));
        return r < 0 ? 1 : 0;
}
