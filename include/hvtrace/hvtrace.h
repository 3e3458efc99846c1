/* SPDX-License-Identifier: MIT */
/*
 * libhvtrace: the library that writes and reads hvtrace traces.
 *
 * The on-disk format it writes is frozen in <hvtrace/format.h>, which this
 * header includes; this one declares the in-memory view of a trace and the
 * writer and reader APIs.  Every public name starts with hvt_ or HVT_.
 * Compiles as C99 and later and as C++11 and later.
 *
 * Results: every function that can fail returns an int, 0 (or a documented
 * non-negative value) on success and a negative code on failure: -errno for
 * a system error (-ENOENT, -EIO, -ENOMEM, -ENOSPC, ...) or one of the
 * HVT_ERR_* codes below for a trace that is not readable.  hvt_strerror
 * names them all.
 *
 * Link with pkg-config (`pkg-config --cflags --libs hvtrace`, add --static
 * for libhvtrace.a) or CMake (find_package(hvtrace): hvtrace::hvtrace, the
 * shared library, or hvtrace::hvtrace_static).  The ABI policy is in
 * docs/trace-format.md, section 13.
 */
#ifndef HVTRACE_HVTRACE_H
#define HVTRACE_HVTRACE_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/format.h>
#include <hvtrace/version.h>

/*
 * Marks the library's API.  The library is built with hidden visibility, so
 * only these declarations are exported from libhvtrace.so; for a static
 * build and for users it expands to nothing.
 */
#if defined(HVTRACE_BUILDING_SHARED) && defined(__GNUC__)
#define HVT_API __attribute__((visibility("default")))
#else
#define HVT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Most bytes of guest memory one record written by this library carries. */
#define HVT_WRITE_CHUNK (1u << 20)

/* ------------------------------------------------------------------------ */
/* In-memory view                                                           */
/* ------------------------------------------------------------------------ */

/* The full vCPU state at an exit, as the reader reconstructs it. */
struct hvt_vcpu_state {
        uint64_t gpr[16]; /* HVT_F_RAX.. order */
        uint64_t rip;
        uint64_t rflags;
        struct hvt_disk_seg seg[HVT_SREG_COUNT];
        uint64_t cr0, cr2, cr3, cr4, efer;
        struct hvt_disk_dtable gdt, idt;
        uint64_t intr; /* HVT_INTR_* */
};

/* The header with its strings resolved (owned by the reader or the caller). */
struct hvt_header {
        struct hvt_disk_header h;
        const char *str[HVT_STR_COUNT]; /* by enum hvt_str_key; "" if absent */
        const char *const *argv;        /* the command line, argc entries */
        int argc;
};

struct hvt_exit {
        uint64_t seq;
        uint64_t time_ns;  /* since the header */
        uint64_t guest_ns; /* time in the guest before this exit */
        uint16_t reason;   /* enum hvt_exit_reason */
        uint32_t raw_reason;
        uint32_t changed; /* state_mask as recorded: what changed since the last exit */
        struct hvt_vcpu_state st;
        uint8_t insn_len;
        uint8_t insn[15];
        union {
                struct {
                        struct hvt_disk_io io;
                        const uint8_t *data; /* size*count bytes */
                } io;
                struct hvt_disk_mmio mmio;
                struct hvt_disk_fail_entry fail_entry;
                struct {
                        struct hvt_disk_internal internal;
                        uint64_t data[HVT_INTERNAL_MAX_DATA];
                } internal;
                struct hvt_disk_debug debug;
                struct hvt_disk_exception exception;
        } u;
};

struct hvt_memory {
        uint64_t gpa;
        const uint8_t *data;
        size_t len;
};

struct hvt_console {
        uint64_t seq;
        const uint8_t *data;
        size_t len;
};

struct hvt_write {
        uint64_t seq; /* the exit whose run wrote the range */
        uint64_t gpa;
        const uint8_t *data; /* the range's bytes at that exit */
        size_t len;
};

struct hvt_end {
        struct hvt_disk_end e;
        const char *message; /* NUL-terminated */
};

/* One decoded record.  Pointers stay valid until the next hvt_reader_next. */
struct hvt_event {
        uint16_t type;  /* enum hvt_rec_type */
        uint64_t index; /* record number in the stream, from 0 (the header) */
        union {
                struct hvt_header header;
                struct hvt_memory memory;
                struct hvt_exit exit;
                struct hvt_disk_inject inject;
                struct hvt_disk_raise raise;
                struct hvt_disk_deliver deliver;
                struct hvt_console console;
                struct hvt_write write;
                struct hvt_end end;
        };
};

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The library's own version, HVT_VERSION_ENCODE(major, minor, patch), and
 * as a string ("0.1.0"): compare them with HVT_VERSION and
 * HVT_VERSION_STRING, the version of the headers a program was built with.
 */
HVT_API unsigned hvt_version(void);
HVT_API const char *hvt_version_string(void);

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The library's own results.  Errors are negative, below -20000 so they
 * never meet an errno value; every number is stable.
 */
enum hvt_err {
        HVT_OK = 0,                 /* success; hvt_reader_next: an event was returned */
        HVT_END_OF_TRACE = 1,       /* hvt_reader_next: the stream ended cleanly */
        HVT_ERR_EMPTY = -20001,     /* the trace is empty (0 bytes) */
        HVT_ERR_NOT_TRACE = -20002, /* not zstd, or no hvtrace magic */
        HVT_ERR_VERSION = -20003,   /* a format version this reader does not know */
        HVT_ERR_CORRUPT = -20004,   /* data that cannot be a valid trace */
        HVT_ERR_TRUNCATED = -20005, /* the stream stops inside a frame or record */
};

/*
 * A fixed description of a result: of HVT_OK, HVT_END_OF_TRACE, an
 * HVT_ERR_* code or -errno (the C library's text, e.g. "No such file or
 * directory" for -ENOENT); "unknown error N" for a number that is none of
 * these.  The text is never NULL and stays valid (for an unknown number,
 * until the calling thread's next call).
 */
HVT_API const char *hvt_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

/* Short stable names ("io", "sti-shadow", ...) for the enums; "?" if out of range. */
HVT_API const char *hvt_rec_type_name(unsigned type);
HVT_API const char *hvt_exit_reason_name(unsigned reason);
HVT_API const char *hvt_mode_name(unsigned mode);
HVT_API const char *hvt_policy_name(unsigned policy);
HVT_API const char *hvt_source_name(unsigned source);
HVT_API const char *hvt_end_why_name(unsigned why);
HVT_API const char *hvt_field_name(unsigned field);
HVT_API const char *hvt_sreg_name(unsigned sreg);
/* Parse a policy name; returns the enum value or -EINVAL. */
HVT_API int hvt_policy_parse(const char *name);
/* "none", "sti", "mov-ss" or "sti+mov-ss" for HVT_INTR_* bits. */
HVT_API const char *hvt_shadow_name(uint64_t intr);

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

struct hvt_writer;

/*
 * Writer options, a sized struct: set `size` to sizeof(struct
 * hvt_writer_opts) and leave what you do not set at 0 (its default).  The
 * size tells the library which fields the caller knows, so later versions
 * can add fields at the end without breaking programs built earlier:
 *
 *     struct hvt_writer_opts o = { .size = sizeof(o), .level = 9 };   (C)
 *     hvt_writer_opts o{}; o.size = sizeof o; o.level = 9;              (C++)
 *
 * A size smaller than this first version's is -EINVAL; a larger one (a
 * program built against newer headers) is accepted if every byte past the
 * fields this library knows is 0, else -E2BIG.  Zero the whole struct
 * (an initializer does).
 */
struct hvt_writer_opts {
        size_t size;            /* sizeof(struct hvt_writer_opts) */
        int level;              /* zstd level; 0 means the default (3) */
        unsigned frame_records; /* end a frame after this many records; 0: 4096 */
        unsigned frame_ms;      /* ... or this many ms after its first record; 0: 250 */
        int background_flush;   /* nonzero: a thread ends idle frames on time */
        /*
         * 0 or 1: a single-vCPU trace (format major version 1); 2 to
         * UINT16_MAX: a multi-vCPU trace (major version 2), see
         * hvt_writer_vcpu.
         */
        unsigned vcpus;
};

/*
 * Create `path` (truncating it) and write the preamble.  opts may be NULL
 * (every default).  With background_flush, a thread ends the current frame
 * once it is frame_ms old even when no record arrives, so a writer that
 * blocks (a guest spinning with no exits) still leaves every record on disk
 * within frame_ms.  Returns 0, -EINVAL / -E2BIG for bad options (a zstd
 * level out of range, a wrong size), or -errno.
 */
HVT_API int hvt_writer_open(struct hvt_writer **wp, const char *path,
                            const struct hvt_writer_opts *opts);

/*
 * As hvt_writer_open on an open file descriptor, which the writer owns
 * from the call on, whatever the result: hvt_writer_close closes it, and
 * a failed call has closed it already.
 */
HVT_API int hvt_writer_fdopen(struct hvt_writer **wp, int fd, const struct hvt_writer_opts *opts);

/*
 * Write the header record: must come first.  The header's vcpus field is
 * the writer's (opts.vcpus in a multi-vCPU trace, 0 in a single-vCPU one),
 * whatever h says.  Returns 0 or -errno.
 */
HVT_API int hvt_write_header(struct hvt_writer *w, const struct hvt_header *h);

/*
 * Write guest memory at gpa.  All-zero pages are skipped (readers start from
 * zeroed memory) and large ranges are split.  Returns 0 or -errno.
 */
HVT_API int hvt_write_memory(struct hvt_writer *w, uint64_t gpa, const void *data, size_t len);

/*
 * Select the vCPU that the exit, inject, raise, deliver and console records
 * written after this call belong to; memory, write, header and end records
 * are machine-wide.  Writes a VCPU record only when the selection changes;
 * a new writer has vCPU 0 selected.  Exit seqs must increase within each
 * vCPU (a machine-wide counter, so that a seq names one exit, is best).
 * The selection is the writer's, not the calling thread's: threads writing
 * for different vCPUs hold one lock of their own across the selection and
 * the records that follow it.  Returns 0, -EINVAL if vcpu >= opts.vcpus
 * (vCPU 0 is always valid), or -errno.
 */
HVT_API int hvt_writer_vcpu(struct hvt_writer *w, uint32_t vcpu);

/*
 * Write an exit.  e->st is delta-encoded against the previous exit written
 * for the selected vCPU; e->seq may be anything (consecutive numbers cost
 * nothing); e->changed is ignored.  Returns 0 or -errno (-EMSGSIZE for a record over
 * HVT_MAX_RECORD).
 */
HVT_API int hvt_write_exit(struct hvt_writer *w, const struct hvt_exit *e);

/* The records of section 9 of docs/trace-format.md.  Each returns 0 or -errno. */
HVT_API int hvt_write_inject(struct hvt_writer *w, const struct hvt_disk_inject *in);
HVT_API int hvt_write_raise(struct hvt_writer *w, const struct hvt_disk_raise *r);
HVT_API int hvt_write_deliver(struct hvt_writer *w, const struct hvt_disk_deliver *d);
HVT_API int hvt_write_console(struct hvt_writer *w, uint64_t seq, const void *data, size_t len);
/*
 * Guest RAM [gpa, gpa + len) written during the run that ended with exit
 * seq, and its content at that exit (HVT_REC_WRITE).  Call it right after
 * hvt_write_exit for that exit.  A range longer than HVT_WRITE_CHUNK
 * is split into records of at most that many bytes at consecutive
 * addresses (as memory records are), so the writer never buffers more;
 * len 0 writes one record with no data (data may then be NULL).
 * Returns 0, -EINVAL if data is NULL with len > 0 or the range wraps past
 * 2^64, or -errno.
 */
HVT_API int hvt_write_write(struct hvt_writer *w, uint64_t seq, uint64_t gpa, const void *data,
                            size_t len);
/* The END record, with a message (NULL: none).  Returns 0 or -errno. */
HVT_API int hvt_write_end(struct hvt_writer *w, const struct hvt_disk_end *e, const char *message);

/*
 * Write an event as hvt_reader_next returned it, so a filter or converter
 * can copy a trace record by record (changing what it wants on the way).
 * Header strings the reader gave as "" (absent) stay absent.  The event goes
 * to the selected vCPU: to copy a multi-vCPU trace, open the writer with
 * hvt_reader_vcpus() vCPUs and call hvt_writer_vcpu(w, hvt_reader_vcpu(r))
 * before each event.  Returns 0, -EINVAL for a type this writer does not
 * know, or -errno.
 */
HVT_API int hvt_write_event(struct hvt_writer *w, const struct hvt_event *ev);

/*
 * Write a record of any type with a raw payload (for extensions and tests).
 * Returns 0 or -errno.
 */
HVT_API int hvt_write_raw(struct hvt_writer *w, uint16_t type, uint16_t flags, const void *payload,
                          size_t len);

/* End the current zstd frame and push it to the file.  Returns 0 or -errno. */
HVT_API int hvt_writer_flush(struct hvt_writer *w);

/* Compressed bytes written to the file so far (after the last flush). */
HVT_API uint64_t hvt_writer_bytes(const struct hvt_writer *w);
/* Records written so far. */
HVT_API uint64_t hvt_writer_records(const struct hvt_writer *w);

/*
 * Flush, stop the flush thread, close the file and free the writer (NULL
 * is a no-op).  Returns 0 or -errno: the first write error the writer met,
 * or the flush's or close's.
 */
HVT_API int hvt_writer_close(struct hvt_writer *w);

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

struct hvt_reader;

/*
 * Open a trace, check the magic and version and read the header.  Returns
 * 0, an HVT_ERR_* code, or -errno (-ENOENT, -EACCES, -EIO, -ENOMEM ...).
 * On error, if rp is not NULL and memory allows, *rp is still set to a
 * reader whose hvt_reader_message explains it (close it); with rp NULL the
 * call only gives the verdict.
 */
HVT_API int hvt_reader_open(struct hvt_reader **rp, const char *path);

/*
 * As hvt_reader_open on a file descriptor open for reading (a file, a pipe,
 * a socket), read with blocking reads from its current offset to its end.
 * The reader owns fd from the call on, whatever the result:
 * hvt_reader_close closes it, and a call that leaves no reader has closed
 * it already.
 */
HVT_API int hvt_reader_fdopen(struct hvt_reader **rp, int fd);

/*
 * As hvt_reader_open on a trace held in memory: the len bytes at data, the
 * compressed file as it is on disk.  Nothing is copied: the caller keeps
 * the buffer alive and unchanged until hvt_reader_close.  data may be NULL
 * when len is 0 (an empty trace); else NULL is -EINVAL.
 */
HVT_API int hvt_reader_open_memory(struct hvt_reader **rp, const void *data, size_t len);

/*
 * Next record into *ev.  Returns HVT_OK with an event, HVT_END_OF_TRACE at
 * the clean end of the stream (an END record was read), or a negative
 * error: HVT_ERR_CORRUPT, HVT_ERR_TRUNCATED or -errno.  After a truncation
 * or corruption error every complete record before it has been returned,
 * and hvt_reader_message says how many.  Errors and the end are sticky:
 * the same result is returned again.  The header is returned as the first
 * event.
 */
HVT_API int hvt_reader_next(struct hvt_reader *r, struct hvt_event *ev);

/* The header (valid after a successful open, until close). */
HVT_API const struct hvt_header *hvt_reader_header(const struct hvt_reader *r);

/*
 * One line explaining the last error, e.g. "truncated after 4096 records
 * (incomplete zstd frame)".  Valid until the next call on r; r may be NULL
 * (an open that could not allocate the reader).
 */
HVT_API const char *hvt_reader_message(const struct hvt_reader *r);

/* Records returned so far. */
HVT_API uint64_t hvt_reader_records(const struct hvt_reader *r);

/*
 * The number of vCPUs the trace declares: header.vcpus in a major version 2
 * trace (2 or more), 1 in a version 1 trace.  Valid after a successful open.
 */
HVT_API uint32_t hvt_reader_vcpus(const struct hvt_reader *r);

/*
 * The vCPU of the event the last hvt_reader_next returned: the one the
 * last VCPU record selected for an exit, inject, raise, deliver or console
 * event; 0 for machine-wide records (header, memory, write, end) and in a
 * version 1 trace.  VCPU records themselves are never returned as events.
 */
HVT_API uint32_t hvt_reader_vcpu(const struct hvt_reader *r);

/* Whether the trace ended with an END record (complete): 1 or 0. */
HVT_API int hvt_reader_complete(const struct hvt_reader *r);

/* Free the reader and close its file descriptor, if it has one (NULL: no-op). */
HVT_API void hvt_reader_close(struct hvt_reader *r);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Whether field f (enum hvt_field) of a and b differ: 1 or 0 (0 for a bad f). */
HVT_API int hvt_state_field_differs(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b,
                                    unsigned f);

/* Size in bytes of field f on disk (0 for a bad f). */
HVT_API size_t hvt_field_size(unsigned f);

/* The mode implied by CR0.PE and EFER.LMA: enum hvt_mode. */
HVT_API unsigned hvt_state_mode(const struct hvt_vcpu_state *st);

/* The code size at RIP (16, 32 or 64) from the mode and CS.L / CS.D. */
HVT_API unsigned hvt_state_code_bits(const struct hvt_vcpu_state *st);

/* Linear address of CS:RIP (the CS base is ignored in 64-bit code). */
HVT_API uint64_t hvt_state_pc(const struct hvt_vcpu_state *st);

#ifdef __cplusplus
}
#endif

#endif /* HVTRACE_HVTRACE_H */
