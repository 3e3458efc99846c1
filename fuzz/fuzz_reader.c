// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the trace reader on a whole file as found on disk (zstd
 * frames, possibly damaged, cut or not zstd at all).  Every input is read to
 * its end under the contract checks of fz_read_trace.  When the input is
 * nothing but complete, valid zstd frames, its raw stream is also read back
 * from a single frame: frame boundaries carry no meaning (docs/trace-format.md
 * section 2), so both readings must return the same events and the same
 * result.
 */
#include <string.h>

#include "fuzz.h"

/* Decompressed streams larger than this are not re-read (a bomb costs time, not bugs). */
#define MAX_RAW (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct fz_file file, single;
        struct fz_summary a, b;
        const uint8_t *raw, *z;
        size_t zlen;
        long n;

        if (!file.path[0]) {
                fz_file_init(&file, "trace");
                fz_file_init(&single, "single");
        }
        fz_file_set(&file, data, size);
        fz_read_trace(file.path, data, size, &a);

        n = fz_decompress(data, size, MAX_RAW, &raw);
        if (n < 0 || a.open_err == HVT_ERR_NOT_TRACE)
                return 0;
        zlen = fz_compress(raw, (size_t)n, 0, &z);
        fz_file_set(&single, z, zlen);
        fz_read_trace(single.path, z, zlen, &b);
        if (a.open_err != b.open_err || a.end_err != b.end_err || a.events != b.events ||
            a.digest != b.digest)
                fz_fail("the same raw stream read differently from its frames (open %d, end %d, "
                        "%llu events) and from one frame (open %d, end %d, %llu events)%s",
                        a.open_err, a.end_err, (unsigned long long)a.events, b.open_err, b.end_err,
                        (unsigned long long)b.events,
                        a.digest != b.digest ? ", event contents differ" : "");
        return 0;
}
