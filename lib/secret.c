/* See secret.h.  The buffer is one page larger than the limit so a file at
 * the limit is told apart from a bigger one without a second read. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

void secret_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

/* The whole read buffer is wiped, not just up to the first NUL. */
static void read_buffer_freep(char **p) {
        if (!*p)
                return;
        explicit_bzero(*p, SECRET_MAX_BYTES + 1);
        free(*p);
}

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}

/* Reads up to SECRET_MAX_BYTES + 1 bytes; returns the count or -errno. */
static ssize_t read_all(int fd, char *buf) {
        size_t n = 0;
        while (n <= SECRET_MAX_BYTES) {
                ssize_t r = read(fd, buf + n, SECRET_MAX_BYTES + 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        return (ssize_t)n;
}

int secret_read(const char *path, const char *shown, char **ret, char *err, size_t errlen) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot read '%s': %s", shown, strerror(-r));
                return r;
        }
        _cleanup_(read_buffer_freep) char *buf = malloc(SECRET_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t got = read_all(fd, buf);
        if (got < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", shown, strerror((int)-got));
                return (int)got;
        }
        size_t n = (size_t)got;
        if (n > SECRET_MAX_BYTES) {
                snprintf(err, errlen, "'%s' is larger than %d bytes", shown, SECRET_MAX_BYTES);
                return -EFBIG;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        if (n == 0 || memchr(buf, '\0', n)) {
                snprintf(err, errlen, n == 0 ? "'%s' is empty" : "'%s' contains a NUL byte", shown);
                return -EINVAL;
        }
        /* A secret goes into HTTP headers and libpq's conninfo: a line break
         * inside it would inject a header into every request. */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
                        snprintf(err, errlen,
                                 "'%s' contains a control character (a line break or tab inside the secret); put "
                                 "the secret alone on one line",
                                 shown);
                        return -EINVAL;
                }
        char *s = strdup(buf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
