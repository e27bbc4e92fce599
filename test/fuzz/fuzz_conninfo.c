/* Fuzz target: the masking of secrets for logs, check-config and /healthz
 * (config_mask_conninfo, config_mask_url) and the checks of conninfo, URL and
 * listen values.  Invariant: a password libpq's own parser finds in a
 * conninfo never appears in its masked form (unless the same text is also
 * some other, shown, part of it). */
#include <errno.h>
#include <libpq-fe.h>

#include "config.h"
#include "config_internal.h"
#include "fuzz.h"

/* The password libpq sees, when it is distinctive enough to look for: not
 * a part of what may be shown, "keyword=value" of every other option and
 * "password=********". */
static char *findable_password(const char *conninfo) {
        PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
        if (!opts)
                return NULL;
        char *pw = NULL, *shown = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&shown, &len);
        FUZZ_ASSERT(m);
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "password") != 0)
                        fprintf(m, "%s=%s ", o->keyword, o->val ? o->val : "");
                else if (o->val && strlen(o->val) >= 4)
                        pw = strdup(o->val);
        fputs("password=" CONFIG_MASK, m);
        fclose(m);
        if (pw && strstr(shown, pw)) {
                free(pw);
                pw = NULL;
        }
        free(shown);
        PQconninfoFree(opts);
        return pw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        char *s = fuzz_string(data, size), msg[512];
        char *masked = config_mask_conninfo(s);
        FUZZ_ASSERT(masked);
        char *pw = findable_password(s);
        if (pw && strstr(masked, pw))
                fprintf(stderr, "password '%s' shown in '%s'\n", pw, masked);
        FUZZ_ASSERT(!pw || !strstr(masked, pw));
        free(pw);
        free(masked);

        int r = config_check_conninfo(s, msg, sizeof(msg));
        FUZZ_ASSERT(r == 0 || r == -ENOMEM || (r == -EINVAL && msg[0]));
        if (*s) {
                r = config_check_url(s, msg, sizeof(msg));
                FUZZ_ASSERT(r == 0 || r == -ENOMEM || (r == -EINVAL && msg[0]));
                r = config_check_listen(s, msg, sizeof(msg));
                FUZZ_ASSERT(r == 0 || r == -ENOMEM || (r == -EINVAL && msg[0]));
        }
        free(config_mask_url(s));
        free(s);
        return 0;
}
