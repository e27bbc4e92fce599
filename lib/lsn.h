/* Write-ahead log positions (SPEC §9): the text Postgres prints for a
 * pg_lsn ("16/B374D848") and the one comparison salesd needs, whether a
 * standby has replayed everything a primary had inserted at some moment. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t Lsn;

#define LSN_STRLEN 20 /* "FFFFFFFF/FFFFFFFF" */

/* Parses "X/Y" (hexadecimal halves, as pg_lsn prints); -EINVAL otherwise. */
int lsn_parse(const char *s, Lsn *ret);

char *lsn_format(Lsn l, char buf[LSN_STRLEN]);

/* Whether a standby whose pg_last_wal_replay_lsn() is `replayed` has
 * replayed every record inserted before the primary's
 * pg_current_wal_insert_lsn() `inserted`.  Mostly replayed >= inserted, but
 * at a page boundary the two functions disagree: the insert position is then
 * the first byte after the new page's header, while the replay position of
 * a record that ended exactly at the boundary is the page's start.  Offsets
 * up to a long page header (40 bytes) into a page hold no record end other
 * than the page's start (a record is at least 24 bytes), so replaying up to
 * the page start is enough there.  wal_block_size: the server's setting
 * (0: compare plainly). */
bool lsn_replayed(Lsn replayed, Lsn inserted, uint64_t wal_block_size);
