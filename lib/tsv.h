/* ClickHouse's TabSeparated format: one row per line, fields split by tabs,
 * with backslash escapes for the bytes that would break that framing. */
#pragma once

#include <stddef.h>

#include "buf.h"

/* Appends s escaped for a TSV field (\\ \t \n \r \0 \' and \b \f). */
int tsv_append_escaped(Buf *b, const char *s);

/* Splits one line (without its '\n') in place into fields, unescaping each.
 * Returns the number of fields, or -E2BIG when there are more than max,
 * -EINVAL for a dangling backslash. */
int tsv_split(char *line, char **fields, size_t max);

/* Iterates over the lines of a TSV body in place: returns the next line
 * (NUL-terminated, without '\n') and advances *cursor, or NULL at the end.
 * A final line without '\n' is returned too; an empty body has no lines. */
char *tsv_next_line(char **cursor);
