// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the trace reader on a raw stream (preamble and records, as a
 * writer in another language would produce), so mutations reach the record
 * parser instead of breaking zstd checksums.  The harness compresses the
 * input twice, as one frame and as frames of a few bytes cut anywhere, and
 * both files must read the same (docs/trace-format.md section 2: frame
 * boundaries carry no meaning, a record may span frames).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct fz_file one, many;
        struct fz_summary a, b;
        const uint8_t *z;
        size_t zlen, frame;

        if (!one.path[0]) {
                fz_file_init(&one, "one-frame");
                fz_file_init(&many, "many-frames");
        }
        zlen = fz_compress(data, size, 0, &z);
        fz_file_set(&one, z, zlen);
        fz_read_trace(one.path, z, zlen, &a);

        /* Frame length from the input's size: 1 to 61 bytes, so cuts fall everywhere. */
        frame = 1 + size % 61;
        zlen = fz_compress(data, size, frame, &z);
        fz_file_set(&many, z, zlen);
        fz_read_trace(many.path, z, zlen, &b);

        if (a.open_err != b.open_err || a.end_err != b.end_err || a.events != b.events ||
            a.digest != b.digest)
                fz_fail("one frame: open %d, end %d, %llu events; frames of %zu bytes: open %d, "
                        "end %d, %llu events%s",
                        a.open_err, a.end_err, (unsigned long long)a.events, frame, b.open_err,
                        b.end_err, (unsigned long long)b.events,
                        a.digest != b.digest ? "; event contents differ" : "");
        return 0;
}
