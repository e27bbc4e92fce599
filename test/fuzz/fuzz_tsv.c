/* Fuzz target: ClickHouse's TabSeparated answers: splitting lines and
 * fields, unescaping, and the stored-row parser (sink_parse_day), on any
 * bytes a server (or something posing as one) might send.  Escaping a
 * field and splitting it again gives the field back. */
#include <errno.h>

#include "buf.h"
#include "fuzz.h"
#include "sink.h"
#include "tsv.h"

static void check_round_trip(char **fields, int n) {
        Buf b = { 0 };
        for (int i = 0; i < n; i++) {
                FUZZ_ASSERT(i == 0 || buf_puts(&b, "\t") == 0);
                FUZZ_ASSERT(tsv_append_escaped(&b, fields[i]) == 0);
        }
        char empty[1] = "", *again[17];
        int m = tsv_split(b.data ? b.data : empty, again, 17);
        FUZZ_ASSERT(m == (n == 0 ? 1 : n));
        for (int i = 0; i < n; i++)
                FUZZ_ASSERT(strcmp(again[i], fields[i]) == 0);
        buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *body = fuzz_string(data, size), *cursor = body;
        for (char *line; (line = tsv_next_line(&cursor));) {
                FUZZ_ASSERT(!strchr(line, '\n'));
                char *copy = strdup(line), err[256] = "";
                StoredDay d;
                FUZZ_ASSERT(copy);
                int r = sink_parse_day(copy, &d, err, sizeof(err));
                FUZZ_ASSERT(r == 0 || (r == -EINVAL && err[0]));
                free(copy);

                char *fields[16];
                int n = tsv_split(line, fields, 16);
                FUZZ_ASSERT(n == -E2BIG || n == -EINVAL || (n >= 1 && n <= 16));
                if (n > 0)
                        check_round_trip(fields, n);
        }
        free(body);
        return 0;
}
