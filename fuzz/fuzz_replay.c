// SPDX-License-Identifier: MIT
/*
 * Fuzz target: hvreplay's commands on a fuzzed trace, run through its own
 * command dispatch.  The input is a trace file (zstd, used as it is) or a
 * raw stream (anything else, compressed into one frame here so mutations
 * reach the records).  Every command must return a documented status, and
 * the one the trace's readability implies: dump and stats 0 exactly when
 * the reader reaches a clean end, check and diff 2 when it does not
 * ("2 bad usage or a trace that could not be read completely"), and a
 * trace compared with itself never diverges.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        fz_silence();
        return 0;
}

/*
 * A command's status: 0, 1 (only where findings exist) or 2; 2 whenever
 * the trace does not read to its end; with exact, 0 whenever it does.
 */
static void expect(const char *what, int status, bool findings, bool exact, bool readable)
{
        if (status < 0 || status > 2 || (!findings && status == 1))
                fz_fail("hvreplay %s returned %d", what, status);
        if (!readable && status != 2)
                fz_fail("hvreplay %s returned %d on a trace that does not read to its end", what,
                        status);
        if (exact && readable && status != 0)
                fz_fail("hvreplay %s returned %d on a trace that reads to its end", what, status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct fz_file file, copy;
        const char *p, *q;
        struct fz_summary s;
        const uint8_t *z = data;
        size_t zlen = size;
        bool readable;
        int st;

        if (!file.path[0]) {
                fz_file_init(&file, "trace");
                fz_file_init(&copy, "copy");
        }
        if (size < 4 || memcmp(data, zstd_magic, 4))
                zlen = fz_compress(data, size, 0, &z);
        fz_file_set(&file, z, zlen);
        fz_file_set(&copy, z, zlen);
        fz_read_trace(file.path, z, zlen, &s);
        readable = s.open_err == HVT_OK && s.end_err == HVT_END_OF_TRACE;
        p = file.path;
        q = copy.path;

        /* dump and stats fail exactly when reading does. */
        st = fz_hvreplay((const char *[]){ "dump", p, NULL });
        expect("dump", st, false, true, readable);
        st = fz_hvreplay((const char *[]){ "dump", "--format", "jsonl", p, NULL });
        expect("dump --format jsonl", st, false, true, readable);
        st = fz_hvreplay((const char *[]){ "stats", p, NULL });
        expect("stats", st, false, true, readable);
        st = fz_hvreplay((const char *[]){ "stats", "--format", "json", p, NULL });
        expect("stats --format json", st, false, true, readable);

        /*
         * check may find violations (1).  It is the costly command, so each
         * input gets one of its option sets, picked by the input's size.
         */
        switch (size % 3) {
        case 0: st = fz_hvreplay((const char *[]){ "check", p, NULL }); break;
        case 1:
                st = fz_hvreplay((const char *[]){ "check", "--json", "--without-steps", p, NULL });
                break;
        default:
                st = fz_hvreplay((const char *[]){ "check", "--summary", "--max-findings", "1", p,
                                                   q, NULL });
        }
        expect("check", st, true, false, readable);

        /* A trace is the same guest run as itself: no divergence. */
        st = fz_hvreplay((const char *[]){ "diff", p, q, NULL });
        expect("diff of a trace with itself", st, false, false, readable);
        return 0;
}
