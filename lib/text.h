/* Text helpers shared by the modules that turn library and server output
 * into salesd's one-line messages, and read numbers that servers print. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Copies in to buf as one line: every run of white space (newlines, tabs)
 * becomes one space, leading and trailing space is dropped, and text that
 * does not fit ends in "...".  in may be NULL ("").  Returns buf. */
const char *text_one_line(const char *in, char *buf, size_t len);

/* Parses a whole unsigned decimal number (no sign, no space, no trailing
 * text).  Returns 0, -EINVAL when malformed or -ERANGE when too large. */
int text_parse_u64(const char *s, uint64_t *ret);

/* Copies in to buf as valid UTF-8: a byte that does not start a well-formed
 * sequence (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF) becomes '?', and a cut never splits a character.  Server
 * messages and error texts cut by bytes elsewhere may not be valid UTF-8;
 * JSON must be.  Returns buf. */
const char *text_utf8_sanitize(const char *in, char *buf, size_t len);
