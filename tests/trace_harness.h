// SPDX-License-Identifier: MIT
/* test_trace's harness: what trace_harness.c gives the tests (they fail the test on any error). */
#ifndef HVTEST_TRACE_HARNESS_H
#define HVTEST_TRACE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpers.h"

/* ---- small utilities ---- */

/* splitmix64: a seeded, portable PRNG. */
uint64_t th_rnd(uint64_t *s);
/* n bytes of th_rnd at dst. */
void th_rnd_bytes(uint64_t *s, void *dst, size_t n);
/* A whole file, malloc'd; its length in *len. */
uint8_t *th_read_file(const char *path, size_t *len);
/* Create or replace path with len bytes of data. */
void th_write_file(const char *path, const void *data, size_t len);
uint64_t th_file_size(const char *path);
void th_copy_file(const char *from, const char *to);
/* The reader's message must be one non-empty line naming the problem (containing needle if set). */
void th_check_msg(const struct hvt_reader *r, const char *needle);
/* "truncated after N records" in the reader's message: the N. */
uint64_t th_msg_truncated_count(const struct hvt_reader *r);

/* ---- zstd helpers and a raw-stream builder ---- */

/* A decompressed trace stream built record by record (p malloc'd, freed by the caller). */
struct th_rawbuf {
        uint8_t *p;
        size_t len, cap;
};

/* Append n bytes. */
void th_rb_put(struct th_rawbuf *b, const void *d, size_t n);
/* Append the preamble: magic, version and minor. */
void th_rb_preamble(struct th_rawbuf *b, uint16_t version, uint16_t minor);
/* Append a record of this type and flags with len bytes of payload. */
void th_rb_rec(struct th_rawbuf *b, uint16_t type, uint16_t flags, const void *payload, size_t len);
/* Append a HEADER record: 64 KiB of memory, entry 0x7c00, real mode. */
void th_rb_min_header(struct th_rawbuf *b);
/* Append a HLT exit with no state change and an explicit seq (flag SEQ). */
void th_rb_exit(struct th_rawbuf *b, uint64_t seq);
/* Append an END record: one exit, the guest halted. */
void th_rb_end(struct th_rawbuf *b);
/* Append an exit with no state change and no SEQ flag: the previous exit's seq + 1. */
void th_rb_exit_next(struct th_rawbuf *b);
/* Write one zstd frame of raw to path (no checksum: like a foreign writer could do). */
void th_compress_to(const char *path, const void *raw, size_t len);
/* Append a compressed frame of raw[0, len) to file. */
void th_append_frame(struct th_rawbuf *file, const void *raw, size_t len);
/* Decompress a whole sequence of frames with the streaming API (*out malloc'd).  0 or -1. */
int th_decompress_all(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len);
/* Offsets where each zstd frame of the file ends (at most max).  Returns the frame count. */
size_t th_frame_ends(const uint8_t *buf, size_t len, size_t *ends, size_t max);
/* Count the records in a decompressed piece; *whole: it ends on a record boundary. */
size_t th_count_records(const uint8_t *p, size_t len, bool *whole);

/* ---- vCPU state model (independent of the library's own field table) ---- */

/* Field f (enum hvt_field) of st. */
void *th_field_ptr(struct hvt_vcpu_state *st, unsigned f);
/* The size of field f: 16 for segments and descriptor tables, else 8. */
size_t th_fsize(unsigned f);
/* Bit f set for each field f that differs between a and b. */
uint32_t th_diff_mask(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b);
/* Whether two states are equal; if not, the first difference described in why. */
bool th_state_eq(const struct hvt_vcpu_state *got, const struct hvt_vcpu_state *want, char *why,
                 size_t n);
/* A state with every field random. */
void th_rand_state(uint64_t *s, struct hvt_vcpu_state *st);
/* Change field f, often only one part of it (e.g. a selector alone). */
void th_mutate_field(uint64_t *s, struct hvt_vcpu_state *st, unsigned f);

/* ---- writer / reader helpers ---- */

/* A writer on path with these frame options (bg: the background flush thread). */
struct hvt_writer *th_open_writer(const char *path, unsigned frame_records, unsigned frame_ms,
                                  int bg);
/* Write a header: 64 KiB of memory, entry 0x7c00, real mode. */
void th_write_min_header(struct hvt_writer *w);
/* Write an END record: exits, the guest exited, message msg. */
void th_write_end(struct hvt_writer *w, uint64_t exits, const char *msg);
void th_close_writer(struct hvt_writer *w);
/* A reader on path, which must open. */
struct hvt_reader *th_must_open(const char *path);
/* The next event must be read and be of this type. */
void th_expect_next(struct hvt_reader *r, struct hvt_event *ev, uint16_t type);
/* Compare a read exit with the one written (state, time, tail); ctx names it in failures. */
void th_check_exit(const struct hvt_exit *got, const struct hvt_exit *want, uint32_t want_changed,
                   const char *ctx);

/* ---- readers ---- */

/* hvt_reader_open's result; the reader (returned even on error) in *rp. */
int th_open_err(const char *path, struct hvt_reader **rp);
/* Opening path must fail with want and a one-line message containing needle (if set). */
void th_expect_open_fails(const char *path, int want, const char *needle);

/* Identity of a record, for comparing what a reader returns with what was written. */
struct th_rec_id {
        uint16_t type;
        uint64_t a, b;
};

/* Read a whole trace; at most `cap` ids are kept. */
struct th_readres {
        int open_err, err;
        size_t n;
        struct th_rec_id *ids;
        char msg[300];
        uint64_t records;
};

/*
 * Read the trace at path to its end, by path, into *res (ids: room for cap);
 * reading it from a file descriptor and from memory must give the same.
 */
void th_read_all(const char *path, struct th_readres *res, size_t cap);

#endif
