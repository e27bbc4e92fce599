/* Secrets (passwords, tokens) read from files: a *_file key's file or a
 * systemd credential.  A secret is the file's content without trailing
 * newlines; its memory is wiped when freed. */
#pragma once

#include <stddef.h>

#define SECRET_MAX_BYTES 65536

/* Reads the secret in path.  Returns 0, or a negative errno and fills err
 * with what is wrong, naming the file as shown (the caller's quoting of
 * path) and never its content: "cannot read '<shown>': <strerror>",
 * "'<shown>' is empty", "'<shown>' contains a NUL byte", "'<shown>'
 * contains a control character ...", "'<shown>' is larger than 65536
 * bytes".  *ret is untouched on failure. */
int secret_read(const char *path, const char *shown, char **ret, char *err, size_t errlen);

/* Wipes and frees s; accepts NULL. */
void secret_free(char *s);
