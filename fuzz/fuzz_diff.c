// SPDX-License-Identifier: MIT
/*
 * Fuzz target: hvreplay diff on two fuzzed traces.  The input is two raw
 * streams one after the other; B starts at the second occurrence of the
 * preamble magic (no second magic: B is A).  Seeds pair recordings of one
 * guest (fuzz/corpus/pair), so mutations start from traces diff can align.
 * Each side is compressed here (A as one frame, B in small frames).  diff
 * must return a documented status, 2 whenever a side does not read to its
 * end.
 */
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        fz_silence();
        return 0;
}

/* Compress raw into f and read it; returns whether it reads to a clean end. */
static int side(struct fz_file *f, const uint8_t *raw, size_t len, size_t frame)
{
        struct fz_summary s;
        const uint8_t *z;
        size_t zlen = fz_compress(raw, len, frame, &z);

        fz_file_set(f, z, zlen);
        fz_read_trace(f->path, z, zlen, &s);
        return s.open_err == HVT_OK && s.end_err == HVT_END_OF_TRACE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const variants[][8] = {
                { "diff", NULL },
                { "diff", "--all", "--json", "--context", "0", NULL },
                { "diff", "--ignore-reason", "", "--io-rip", "raw", "--all", NULL },
        };
        static struct fz_file a, b;
        const uint8_t *second = NULL;
        size_t alen = size;
        int readable;

        if (!a.path[0]) {
                fz_file_init(&a, "a");
                fz_file_init(&b, "b");
        }
        if (size > HVT_MAGIC_LEN)
                second = memmem(data + 1, size - 1, HVT_MAGIC, HVT_MAGIC_LEN);
        if (second)
                alen = (size_t)(second - data);
        readable = side(&a, data, alen, 0);
        if (second)
                readable &= side(&b, second, size - alen, 1 + size % 61);
        else
                readable &= side(&b, data, size, 1 + size % 61);

        for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                const char *args[12];
                int n = 0, st;

                for (const char *const *w = variants[v]; *w; w++)
                        args[n++] = *w;
                args[n++] = a.path;
                args[n++] = b.path;
                args[n] = NULL;
                st = fz_hvreplay(args);
                if (st < 0 || st > 2)
                        fz_fail("hvreplay diff (variant %zu) returned %d", v, st);
                if (!readable && st != 2)
                        fz_fail("hvreplay diff (variant %zu) returned %d, a side does not read "
                                "to its end",
                                v, st);
        }
        return 0;
}
