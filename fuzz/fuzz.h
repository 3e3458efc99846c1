/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: inputs handed to code that reads a path (a
 * memfd named by /proc/self/fd/N), zstd framing of raw streams, and one
 * pass over a trace that checks the reader's documented contract and
 * digests every byte each event points at (so ASan sees every access).
 */
#ifndef HVFUZZ_H
#define HVFUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

/* A memfd holding one input; path names it for open(). */
struct fz_file {
        int fd;
        char path[40];
};

/* Make a memfd (aborts if the system cannot: the harness would be useless). */
void fz_file_init(struct fz_file *f, const char *name);

/* Replace the file's content with data. */
void fz_file_set(struct fz_file *f, const void *data, size_t len);

/*
 * Compress raw into zstd frames with checksums, as the writer does: one
 * frame if frame_raw is 0, else a frame every frame_raw raw bytes (cutting
 * records anywhere: frames carry no meaning in the raw stream).  Always at
 * least one frame.  Returns the size; *out stays valid until the next call.
 */
size_t fz_compress(const uint8_t *raw, size_t len, size_t frame_raw, const uint8_t **out);

/*
 * Decompress a whole zstd input into *out if it is nothing but complete,
 * valid frames yielding at most max bytes.  Returns the size, or -1.
 * *out stays valid until the next call.
 */
long fz_decompress(const uint8_t *in, size_t len, size_t max, const uint8_t **out);

/* What reading a trace produced. */
struct fz_summary {
        int open_err;    /* hvt_reader_open's result */
        int end_err;     /* what hvt_reader_next ended with (open_err if that failed) */
        uint64_t events; /* events returned, the header included */
        uint64_t digest; /* of every event's content, in order */
        int complete;    /* hvt_reader_complete */
};

/*
 * Read the trace at path to its end, aborting with a message on anything
 * the reader's contract (include/hvtrace/hvtrace.h, docs/trace-format.md
 * section 11) rules out.  input/len are the file's bytes, for the checks
 * that depend on them; read from memory (hvt_reader_open_memory) they must
 * give the same summary.
 */
void fz_read_trace(const char *path, const uint8_t *input, size_t len, struct fz_summary *s);

/* Print a contract violation and abort: libFuzzer keeps the input. */
__attribute__((noreturn, format(printf, 1, 2))) void fz_fail(const char *fmt, ...);

/*
 * Send the process's stdout to /dev/null and, unless HVFUZZ_VERBOSE is
 * set, the C library's stderr stream too; fz_fail and libFuzzer still
 * report on the real stderr.
 */
void fz_silence(void);

/* Run hvreplay with the given arguments (NULL-terminated); returns its status. */
int fz_hvreplay(const char *const *args);

#endif
