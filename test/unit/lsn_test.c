/* WAL positions: parsing Postgres's text, and the replay comparison at
 * page boundaries (table-driven). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lsn.h"

static void test_parse(void **state) {
        (void)state;
        static const struct {
                const char *in;
                int r;
                Lsn want;
        } cases[] = {
                { "0/0", 0, 0 },
                { "16/B374D848", 0, 0x16B374D848ULL },
                { "0/3000148", 0, 0x3000148 },
                { "ffffffff/FFFFFFFF", 0, UINT64_MAX },
                { "1/0", 0, 1ULL << 32 },
                { "", -EINVAL, 0 },
                { "0", -EINVAL, 0 },
                { "/1", -EINVAL, 0 },
                { "1/", -EINVAL, 0 },
                { "1/2/3", -EINVAL, 0 },
                { "1/2 ", -EINVAL, 0 },
                { "G/1", -EINVAL, 0 },
                { "100000000/0", -EINVAL, 0 },
                { "-1/0", -EINVAL, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Lsn got = 12345;
                assert_int_equal(lsn_parse(cases[i].in, &got), cases[i].r);
                if (cases[i].r == 0) {
                        char buf[LSN_STRLEN];
                        assert_true(got == cases[i].want);
                        /* round trip: what we print parses back (upper case, like Postgres) */
                        Lsn again = 0;
                        assert_int_equal(lsn_parse(lsn_format(got, buf), &again), 0);
                        assert_true(again == got);
                } else
                        assert_true(got == 12345);
        }
        assert_int_equal(lsn_parse(NULL, &(Lsn){ 0 }), -EINVAL);
        char buf[LSN_STRLEN];
        assert_string_equal(lsn_format(0x16B374D848ULL, buf), "16/B374D848");
        assert_string_equal(lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
}

static void test_replayed(void **state) {
        (void)state;
        const uint64_t page = 8192, base = 0x3000000; /* a multiple of the page */
        static const struct {
                uint64_t replayed, inserted; /* offsets from base */
                bool want;
        } cases[] = {
                { 0x148, 0x148, true },         /* exactly there */
                { 0x150, 0x148, true },         /* past it */
                { 0x140, 0x148, false },        /* a record short */
                { 8192, 8192 + 24, true },      /* a record ended at the boundary: the insert position is after
                                                   the new page's short header */
                { 8191 - 7, 8192 + 24, false }, /* the record before it */
                { 8192, 8192 + 40, true },      /* a segment's first page: long header */
                { 8192, 8192 + 48, false },     /* a record past the header is not replayed yet */
                { 8192 + 32, 8192 + 32, true }, /* a continuation ending right after the header */
                { 8000, 8192 + 24, false },     /* well before the page */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_int_equal(lsn_replayed(base + cases[i].replayed, base + cases[i].inserted, page), cases[i].want);
        /* without the block size: plain comparison */
        assert_false(lsn_replayed(base + 8192, base + 8192 + 24, 0));
        assert_true(lsn_replayed(base + 8192 + 24, base + 8192 + 24, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_replayed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
