/* SPDX-License-Identifier: MIT */
/*
 * hvtrace trace format v1 and the library that writes and reads it.
 *
 * This is the one public header of libhvtrace.  It freezes the on-disk
 * layout (every struct named trace_disk_* is written byte for byte, little
 * endian, with no implicit padding: the _Static_asserts below pin their
 * sizes) and declares the writer and reader APIs.  docs/trace-format.md is
 * the prose version of the same contract, precise enough to write a
 * compatible writer in another language.
 *
 * A trace file is a sequence of zstd frames.  Decompressed and concatenated
 * they form the raw stream: a 16-byte preamble, then records, each a
 * trace_disk_rec header followed by `size` bytes of payload.  Readers skip
 * records whose type they do not know, so types can be added without a new
 * major version.
 */
#ifndef HVTRACE_TRACE_H
#define HVTRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libhvtrace stores structs as they are in memory: it needs a little-endian host"
#endif

/* ------------------------------------------------------------------------ */
/* Constants                                                                */
/* ------------------------------------------------------------------------ */

#define TRACE_MAGIC          "HVTRACE\x1a" /* 8 bytes, no terminator on disk */
#define TRACE_MAGIC_LEN      8
#define TRACE_FORMAT_VERSION 1 /* readers refuse a higher major version */
#define TRACE_FORMAT_MINOR   1 /* compatible additions within a major (1: WRITE records) */

/* Largest payload a reader accepts; anything larger is corrupt data. */
#define TRACE_MAX_RECORD (16u << 20)

/* Most bytes of guest memory one record written by this library carries. */
#define TRACE_WRITE_CHUNK (1u << 20)

/* Record types (trace_disk_rec.type).  Numbers are stable. */
enum trace_rec_type {
        TRACE_REC_HEADER = 1,  /* exactly once, first record */
        TRACE_REC_MEMORY = 2,  /* initial guest memory image, any number */
        TRACE_REC_EXIT = 3,    /* one VM exit with vCPU state (delta encoded) */
        TRACE_REC_INJECT = 4,  /* the recorder injected an interrupt */
        TRACE_REC_DELIVER = 5, /* the guest observed a delivery (probe) */
        TRACE_REC_CONSOLE = 6, /* bytes the guest wrote to the console port */
        TRACE_REC_END = 7,     /* the run ended; last record of a complete trace */
        TRACE_REC_RAISE = 8,   /* an interrupt became pending (request, --irq, kick) */
        TRACE_REC_WRITE = 9,   /* guest memory written during the run that ended at an exit */
        TRACE_REC_TYPE_COUNT
};

/* Normalized exit reasons (trace_disk_exit.reason).  Numbers are stable. */
enum trace_exit_reason {
        TRACE_EXIT_UNKNOWN = 0,    /* a backend reason with no normalized name */
        TRACE_EXIT_IO = 1,         /* port I/O */
        TRACE_EXIT_MMIO = 2,       /* access outside guest RAM */
        TRACE_EXIT_HLT = 3,        /* HLT */
        TRACE_EXIT_INTR = 4,       /* the host interrupted the run (signal, kick) */
        TRACE_EXIT_IRQ_WINDOW = 5, /* a requested interrupt window opened */
        TRACE_EXIT_DEBUG = 6,      /* single-step or breakpoint */
        TRACE_EXIT_SHUTDOWN = 7,   /* triple fault */
        TRACE_EXIT_FAIL_ENTRY = 8, /* hardware refused the VM entry */
        TRACE_EXIT_INTERNAL = 9,   /* backend internal error (e.g. emulation failure) */
        TRACE_EXIT_EXCEPTION = 10, /* a guest exception the backend reports as an exit */
        TRACE_EXIT_REASON_COUNT
};

/* Exit record flags (trace_disk_rec.flags of a TRACE_REC_EXIT). */
#define TRACE_XF_SEQ    0x0001u /* a uint64_t seq follows; else seq = previous + 1 */
#define TRACE_XF_TIME64 0x0002u /* uint32_t dt_hi, guest_hi follow: the high halves */

/*
 * State field numbers.  Bit N of trace_disk_exit.state_mask says field N
 * changed since the previous exit record and its new value follows, in
 * increasing N.  Fields not present keep the previous record's value; before
 * the first exit record every field is zero.
 */
enum trace_field {
        TRACE_F_RAX = 0, /* 0..15: general registers, x86 encoding order, uint64_t */
        TRACE_F_RCX,
        TRACE_F_RDX,
        TRACE_F_RBX,
        TRACE_F_RSP,
        TRACE_F_RBP,
        TRACE_F_RSI,
        TRACE_F_RDI,
        TRACE_F_R8,
        TRACE_F_R9,
        TRACE_F_R10,
        TRACE_F_R11,
        TRACE_F_R12,
        TRACE_F_R13,
        TRACE_F_R14,
        TRACE_F_R15,
        TRACE_F_RIP = 16,    /* uint64_t */
        TRACE_F_RFLAGS = 17, /* uint64_t */
        TRACE_F_ES = 18,     /* 18..23: struct trace_disk_seg, x86 sreg order */
        TRACE_F_CS,
        TRACE_F_SS,
        TRACE_F_DS,
        TRACE_F_FS,
        TRACE_F_GS,
        TRACE_F_CR0 = 24, /* uint64_t */
        TRACE_F_CR2,
        TRACE_F_CR3,
        TRACE_F_CR4,
        TRACE_F_EFER,
        TRACE_F_GDT = 29, /* struct trace_disk_dtable */
        TRACE_F_IDT = 30,
        TRACE_F_INTR = 31, /* uint64_t: TRACE_INTR_* bits */
        TRACE_F_COUNT
};

/* Segment register indexes into trace_vcpu_state.seg (x86 encoding order). */
enum trace_sreg { TRACE_ES, TRACE_CS, TRACE_SS, TRACE_DS, TRACE_FS, TRACE_GS, TRACE_SREG_COUNT };

/* trace_disk_seg.attr bits: the descriptor's access rights, unpacked. */
#define TRACE_SEG_TYPE_MASK 0x000fu /* type field */
#define TRACE_SEG_S         0x0010u /* code/data (1) or system (0) */
#define TRACE_SEG_DPL_SHIFT 5       /* 2 bits */
#define TRACE_SEG_P         0x0080u /* present */
#define TRACE_SEG_AVL       0x0100u
#define TRACE_SEG_L         0x0200u /* 64-bit code */
#define TRACE_SEG_DB        0x0400u /* default operand size 32 */
#define TRACE_SEG_G         0x0800u /* 4 KiB granularity */
#define TRACE_SEG_UNUSABLE  0x1000u

/*
 * Interruptibility as the backend reported it at an exit or injection
 * (TRACE_F_INTR, trace_disk_inject.intr).  The low bits are the report; the
 * VALID bits say which parts of it the backend reports at all, so "no
 * shadow" and "backend cannot tell" are never confused.
 */
#define TRACE_INTR_STI_SHADOW    0x0001u /* blocking by STI */
#define TRACE_INTR_MOVSS_SHADOW  0x0002u /* blocking by MOV SS / POP SS */
#define TRACE_INTR_NMI_BLOCKED   0x0004u /* NMIs masked */
#define TRACE_INTR_READY         0x0008u /* ready for interrupt injection */
#define TRACE_INTR_IF            0x0010u /* RFLAGS.IF as the backend reported it */
#define TRACE_INTR_PENDING       0x0020u /* an injected interrupt is still queued */
#define TRACE_INTR_WINDOW_REQ    0x0040u /* the recorder had requested a window */
#define TRACE_INTR_VALID_SHADOW  0x0100u
#define TRACE_INTR_VALID_NMI     0x0200u
#define TRACE_INTR_VALID_READY   0x0400u
#define TRACE_INTR_VALID_IF      0x0800u
#define TRACE_INTR_VALID_PENDING 0x1000u

/* Guest CPU modes (header.guest_mode). */
enum trace_mode {
        TRACE_MODE_UNKNOWN = 0,
        TRACE_MODE_REAL = 1,      /* 16-bit real mode */
        TRACE_MODE_PROTECTED = 2, /* 32-bit protected mode, paging off */
        TRACE_MODE_LONG = 3,      /* 64-bit long mode, identity paging */
};

/* Injection policies (header.inject_policy, inject.policy). */
enum trace_policy {
        TRACE_POLICY_WINDOW = 0,  /* inject only when ready; else request a window */
        TRACE_POLICY_EAGER = 1,   /* inject at the next exit with IF=1 */
        TRACE_POLICY_BLIND = 2,   /* inject at the next exit, whatever the state */
        TRACE_POLICY_BACKEND = 3, /* the backend's own irqchip decides */
        TRACE_POLICY_COUNT
};

/* Where a pending interrupt came from (raise.source, inject.source). */
enum trace_irq_source {
        TRACE_SRC_GUEST = 0,  /* the guest wrote the vector to port 0xE0 */
        TRACE_SRC_OPTION = 1, /* an --irq VECTOR@TRIGGER option */
        TRACE_SRC_KICK = 2,   /* a --kick timer with a vector */
        TRACE_SRC_COUNT
};

/* How an interrupt reached the backend (inject.method). */
enum trace_inject_method {
        TRACE_INJ_QUEUE = 0,    /* queued on the vCPU (KVM_INTERRUPT) */
        TRACE_INJ_LINE = 1,     /* an interrupt line was raised on an irqchip */
        TRACE_INJ_EMULATED = 2, /* the recorder delivered it in software */
};

/* How a delivery's vector was found (deliver.vector_from). */
enum trace_vector_from {
        TRACE_VEC_UNKNOWN = 0,
        TRACE_VEC_TABLE = 1,    /* exactly one IVT/IDT entry points at the handler */
        TRACE_VEC_INJECTED = 2, /* ambiguous table: the oldest undelivered injection */
};

/* Why the run ended (end.why). */
enum trace_end_why {
        TRACE_END_GUEST_EXIT = 1, /* the guest wrote its status to port 0xF4 */
        TRACE_END_HALT = 2,       /* HLT with nothing able to wake the vCPU */
        TRACE_END_CRASH = 3,      /* shutdown, fail-entry, internal error */
        TRACE_END_MAX_EXITS = 4,  /* --max-exits reached */
        TRACE_END_TIMEOUT = 5,    /* --timeout expired */
        TRACE_END_SIGNAL = 6,     /* a signal stopped the recorder (detail: which) */
        TRACE_END_ERROR = 7,      /* the recorder failed (its message says why) */
        TRACE_END_WHY_COUNT
};

/* Header flags (header.flags). */
#define TRACE_HDR_SINGLE_STEP \
        0x0001u /* every instruction exits: shadows may be cleared by KVM on Intel */
#define TRACE_HDR_KICKS 0x0002u /* asynchronous kicks interrupted the run */
/*
 * Every write to guest RAM (by the guest's instructions or by the CPU, e.g.
 * interrupt frames) is covered by TRACE_REC_WRITE records, from the first
 * run on.  Without it a reader cannot tell when code changed.
 */
#define TRACE_HDR_WRITES 0x0004u
/*
 * hvrec single-steps before injecting at an exit that does not show which
 * instruction ran last (a kick, an interrupt window), so that the
 * instruction before every delivery is recorded, not inferred.
 */
#define TRACE_HDR_STEP_INJECT 0x0008u

/* Backend capability flags (header.backend_caps). */
#define TRACE_CAP_SINGLE_STEP   0x0001u /* can single-step */
#define TRACE_CAP_REPORT_SHADOW 0x0002u /* reports STI / MOV SS shadows */
#define TRACE_CAP_REPORT_READY  0x0004u /* reports ready-for-injection */
#define TRACE_CAP_INJECT_QUEUE  0x0008u /* the recorder injects vectors itself */
#define TRACE_CAP_IRQCHIP       0x0010u /* an in-backend irqchip injects */
#define TRACE_CAP_KICK          0x0020u /* the run can be interrupted asynchronously */
#define TRACE_CAP_WINDOW        0x0040u /* can exit when an interrupt window opens */
#define TRACE_CAP_IO_EXITS      0x0080u /* every port I/O instruction exits (no device inside) */
#define TRACE_CAP_HLT_EXITS     0x0100u /* every HLT exits */
#define TRACE_CAP_WRITES        0x0200u /* can report guest writes to RAM (TRACE_HDR_WRITES) */

/* Header string keys (trace_disk_str.key). */
enum trace_str_key {
        TRACE_STR_TOOL_VERSION = 1,
        TRACE_STR_BACKEND = 2,
        TRACE_STR_BACKEND_VERSION = 3,
        TRACE_STR_CPU_VENDOR = 4,
        TRACE_STR_CPU_MODEL = 5,
        TRACE_STR_KERNEL = 6,
        TRACE_STR_CMDLINE = 7, /* argv, each argument NUL-terminated */
        TRACE_STR_GUEST = 8,   /* the guest file as given */
        TRACE_STR_COUNT
};

/* ------------------------------------------------------------------------ */
/* On-disk structures (frozen)                                              */
/* ------------------------------------------------------------------------ */

/* The first 16 bytes of the decompressed stream. */
struct trace_disk_preamble {
        char magic[TRACE_MAGIC_LEN];
        uint16_t version; /* TRACE_FORMAT_VERSION */
        uint16_t minor;   /* TRACE_FORMAT_MINOR */
        uint32_t reserved;
};

/* Every record starts with this; `size` bytes of payload follow. */
struct trace_disk_rec {
        uint16_t type;  /* enum trace_rec_type */
        uint16_t flags; /* per type */
        uint32_t size;  /* payload bytes, <= TRACE_MAX_RECORD */
};

/* TRACE_REC_HEADER payload: this, then trace_disk_str items to the end. */
struct trace_disk_header {
        uint64_t load_addr;         /* where the guest image was loaded */
        uint64_t entry;             /* first RIP */
        uint64_t mem_size;          /* guest RAM bytes, mapped at physical 0 */
        uint64_t seed;              /* --seed: every random choice derives from it */
        uint64_t start_realtime_ns; /* CLOCK_REALTIME at the start, for humans */
        uint32_t guest_mode;        /* enum trace_mode at the entry */
        uint32_t flags;             /* TRACE_HDR_* */
        uint32_t backend_caps;      /* TRACE_CAP_* */
        uint16_t inject_policy;     /* enum trace_policy */
        uint16_t reserved;
};

struct trace_disk_str {
        uint16_t key; /* enum trace_str_key; unknown keys are skipped */
        uint16_t len; /* bytes of text that follow, no terminator */
};

/* TRACE_REC_MEMORY payload: this, then the bytes at gpa. */
struct trace_disk_memory {
        uint64_t gpa;
        uint64_t reserved;
};

struct trace_disk_seg {
        uint64_t base;
        uint32_t limit; /* byte granular (already scaled by G) */
        uint16_t selector;
        uint16_t attr; /* TRACE_SEG_* */
};

struct trace_disk_dtable {
        uint64_t base;
        uint16_t limit;
        uint16_t reserved[3];
};

/*
 * TRACE_REC_EXIT payload:
 *   struct trace_disk_exit
 *   uint64_t seq                      if rec.flags & TRACE_XF_SEQ
 *   uint32_t dt_hi, guest_hi          if rec.flags & TRACE_XF_TIME64
 *   the changed state fields          in increasing field number
 *   insn_len bytes of instruction     read at CS:RIP when the exit was taken
 *   the exit's own data               by reason, to the end of the payload:
 *       IO: trace_disk_io + size*count data bytes
 *       MMIO: trace_disk_mmio; FAIL_ENTRY: trace_disk_fail_entry;
 *       INTERNAL: trace_disk_internal + ndata uint64_t; DEBUG: trace_disk_debug;
 *       EXCEPTION: trace_disk_exception; anything else: nothing.
 */
struct trace_disk_exit {
        uint32_t dt_ns;      /* ns since the previous exit (first: since the header) */
        uint32_t guest_ns;   /* ns spent running the guest before this exit */
        uint32_t state_mask; /* bit N: field N follows */
        uint16_t reason;     /* enum trace_exit_reason */
        uint8_t insn_len;    /* 0..15 */
        uint8_t reserved;
        uint32_t raw_reason; /* the backend's own exit code */
};

#define TRACE_IO_IN  0
#define TRACE_IO_OUT 1

struct trace_disk_io {
        uint16_t port;
        uint8_t size;   /* 1, 2 or 4 */
        uint8_t dir;    /* TRACE_IO_IN / TRACE_IO_OUT */
        uint32_t count; /* >1 for string I/O */
};

struct trace_disk_mmio {
        uint64_t addr;
        uint32_t len;
        uint8_t is_write;
        uint8_t reserved[3];
        uint8_t data[8];
};

struct trace_disk_fail_entry {
        uint64_t hw_reason;
        uint32_t cpu;
        uint32_t reserved;
};

#define TRACE_INTERNAL_MAX_DATA 16

struct trace_disk_internal {
        uint32_t suberror;
        uint32_t ndata; /* <= TRACE_INTERNAL_MAX_DATA uint64_t follow */
};

struct trace_disk_debug {
        uint32_t exception; /* 1 (#DB) or 3 (#BP) */
        uint32_t reserved;
        uint64_t pc;
        uint64_t dr6;
        uint64_t dr7;
};

struct trace_disk_exception {
        uint32_t vector;
        uint32_t error_code;
        uint64_t cr2;
};

/* TRACE_REC_INJECT payload. */
struct trace_disk_inject {
        uint64_t after_seq; /* the exit this injection followed */
        uint64_t rip;       /* vCPU state when the recorder injected */
        uint64_t rflags;
        uint64_t cs_base;
        uint64_t handler; /* linear address the IVT/IDT gave for the vector, 0 if none */
        uint32_t intr;    /* backend-reported TRACE_INTR_* at that moment */
        uint16_t cs;
        uint8_t vector;
        uint8_t policy; /* enum trace_policy */
        uint8_t method; /* enum trace_inject_method */
        uint8_t source; /* enum trace_irq_source */
        uint8_t reserved[6];
};

/* TRACE_REC_RAISE payload: an interrupt became pending in the recorder. */
struct trace_disk_raise {
        uint64_t seq; /* the exit at which it was raised */
        uint8_t vector;
        uint8_t source; /* enum trace_irq_source */
        uint8_t reserved[6];
};

/* TRACE_REC_DELIVER payload: what the guest's delivery probe saw. */
struct trace_disk_deliver {
        uint64_t seq;     /* the probe's exit */
        uint64_t ip;      /* interrupted IP/EIP/RIP from the frame */
        uint64_t flags;   /* interrupted FLAGS from the frame */
        uint64_t sp;      /* stack pointer before the interrupt (frame + its size) */
        uint64_t cs_base; /* linear base of the interrupted CS */
        uint64_t handler; /* linear address of the handler's probe instruction */
        uint16_t cs;      /* interrupted CS from the frame */
        uint16_t ss;
        uint8_t vector;
        uint8_t vector_from; /* enum trace_vector_from */
        uint8_t frame_bits;  /* 16, 32 or 64: how the frame was read */
        uint8_t dflags;      /* TRACE_DELIVER_* (format minor 1; 0 before) */
};

/* trace_disk_deliver.dflags */
#define TRACE_DELIVER_CS_BASE_UNKNOWN 0x01u /* the frame's CS names no readable descriptor */

/*
 * TRACE_REC_WRITE payload: this, then the bytes of [gpa, gpa + len) as they
 * stood when exit `seq` was taken.  During the run that ended with exit
 * `seq` (after exit seq-1, or from the start for the first exit) the guest
 * wrote somewhere in that range: a reader knows the new bytes from exit
 * `seq` on and cannot tell which of them held what during that run.
 * Written right after the exit record, before its other records.  A range
 * may be coarser than the writes (a whole dirty page).
 */
struct trace_disk_write {
        uint64_t seq;
        uint64_t gpa;
};

/* TRACE_REC_CONSOLE payload: this, then the bytes. */
struct trace_disk_console {
        uint64_t seq; /* the exit that wrote them */
};

/* TRACE_REC_END payload: this, then a message (no terminator). */
struct trace_disk_end {
        uint64_t exits;    /* exit records written */
        uint64_t wall_ns;  /* run duration */
        uint64_t last_rip; /* RIP at the last exit */
        uint32_t why;      /* enum trace_end_why */
        int32_t status;    /* hvrec's exit status */
        uint32_t detail;   /* per why: signal number, the guest's status value, raw reason */
        uint32_t reserved;
};

_Static_assert(sizeof(struct trace_disk_preamble) == 16, "preamble is frozen");
_Static_assert(sizeof(struct trace_disk_rec) == 8, "record header is frozen");
_Static_assert(sizeof(struct trace_disk_header) == 56, "header is frozen");
_Static_assert(sizeof(struct trace_disk_str) == 4, "string item is frozen");
_Static_assert(sizeof(struct trace_disk_memory) == 16, "memory record is frozen");
_Static_assert(sizeof(struct trace_disk_seg) == 16, "segment is frozen");
_Static_assert(sizeof(struct trace_disk_dtable) == 16, "descriptor table is frozen");
_Static_assert(sizeof(struct trace_disk_exit) == 20, "exit record is frozen");
_Static_assert(sizeof(struct trace_disk_io) == 8, "io data is frozen");
_Static_assert(sizeof(struct trace_disk_mmio) == 24, "mmio data is frozen");
_Static_assert(sizeof(struct trace_disk_fail_entry) == 16, "fail-entry data is frozen");
_Static_assert(sizeof(struct trace_disk_internal) == 8, "internal-error data is frozen");
_Static_assert(sizeof(struct trace_disk_debug) == 32, "debug data is frozen");
_Static_assert(sizeof(struct trace_disk_exception) == 16, "exception data is frozen");
_Static_assert(sizeof(struct trace_disk_inject) == 56, "inject record is frozen");
_Static_assert(sizeof(struct trace_disk_raise) == 16, "raise record is frozen");
_Static_assert(sizeof(struct trace_disk_deliver) == 56, "deliver record is frozen");
_Static_assert(sizeof(struct trace_disk_write) == 16, "write record is frozen");
_Static_assert(sizeof(struct trace_disk_console) == 8, "console record is frozen");
_Static_assert(sizeof(struct trace_disk_end) == 40, "end record is frozen");

/* ------------------------------------------------------------------------ */
/* In-memory view                                                           */
/* ------------------------------------------------------------------------ */

/* The full vCPU state at an exit, as the reader reconstructs it. */
struct trace_vcpu_state {
        uint64_t gpr[16]; /* TRACE_F_RAX.. order */
        uint64_t rip;
        uint64_t rflags;
        struct trace_disk_seg seg[TRACE_SREG_COUNT];
        uint64_t cr0, cr2, cr3, cr4, efer;
        struct trace_disk_dtable gdt, idt;
        uint64_t intr; /* TRACE_INTR_* */
};

/* The header with its strings resolved (owned by the reader or the caller). */
struct trace_header {
        struct trace_disk_header h;
        const char *str[TRACE_STR_COUNT]; /* by enum trace_str_key; "" if absent */
        const char *const *argv;          /* the command line, argc entries */
        int argc;
};

struct trace_exit {
        uint64_t seq;
        uint64_t time_ns;  /* since the header */
        uint64_t guest_ns; /* time in the guest before this exit */
        uint16_t reason;   /* enum trace_exit_reason */
        uint32_t raw_reason;
        uint32_t changed; /* state_mask as recorded: what changed since the last exit */
        struct trace_vcpu_state st;
        uint8_t insn_len;
        uint8_t insn[15];
        union {
                struct {
                        struct trace_disk_io io;
                        const uint8_t *data; /* size*count bytes */
                } io;
                struct trace_disk_mmio mmio;
                struct trace_disk_fail_entry fail_entry;
                struct {
                        struct trace_disk_internal internal;
                        uint64_t data[TRACE_INTERNAL_MAX_DATA];
                } internal;
                struct trace_disk_debug debug;
                struct trace_disk_exception exception;
        } u;
};

struct trace_memory {
        uint64_t gpa;
        const uint8_t *data;
        size_t len;
};

struct trace_console {
        uint64_t seq;
        const uint8_t *data;
        size_t len;
};

struct trace_write {
        uint64_t seq; /* the exit whose run wrote the range */
        uint64_t gpa;
        const uint8_t *data; /* the range's bytes at that exit */
        size_t len;
};

struct trace_end {
        struct trace_disk_end e;
        const char *message; /* NUL-terminated */
};

/* One decoded record.  Pointers stay valid until the next trace_reader_next. */
struct trace_event {
        uint16_t type;  /* enum trace_rec_type */
        uint64_t index; /* record number in the stream, from 0 (the header) */
        union {
                struct trace_header header;
                struct trace_memory memory;
                struct trace_exit exit;
                struct trace_disk_inject inject;
                struct trace_disk_raise raise;
                struct trace_disk_deliver deliver;
                struct trace_console console;
                struct trace_write write;
                struct trace_end end;
        };
};

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

/* Short stable names ("io", "sti-shadow", ...) for the enums; "?" if out of range. */
const char *trace_rec_type_name(unsigned type);
const char *trace_exit_reason_name(unsigned reason);
const char *trace_mode_name(unsigned mode);
const char *trace_policy_name(unsigned policy);
const char *trace_source_name(unsigned source);
const char *trace_end_why_name(unsigned why);
const char *trace_field_name(unsigned field);
const char *trace_sreg_name(unsigned sreg);
/* Parse a policy name; returns the enum value or -1. */
int trace_policy_parse(const char *name);
/* "none", "sti", "mov-ss" or "sti+mov-ss" for TRACE_INTR_* bits. */
const char *trace_shadow_name(uint64_t intr);

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

struct trace_writer;

struct trace_writer_opts {
        int level;              /* zstd level; 0 means the default (3) */
        unsigned frame_records; /* end a frame after this many records; 0: 4096 */
        unsigned frame_ms;      /* ... or this many ms after its first record; 0: 250 */
        int background_flush;   /* nonzero: a thread ends idle frames on time */
};

/*
 * Create `path` (truncating it) and write the preamble.  With
 * background_flush, a thread ends the current frame once it is frame_ms old
 * even when no record arrives, so a writer that blocks (a guest spinning
 * with no exits) still leaves every record on disk within frame_ms.
 * Returns 0 or -errno.
 */
int trace_writer_open(struct trace_writer **wp, const char *path,
                      const struct trace_writer_opts *opts);

/* As trace_writer_open on an open file descriptor, which the writer then owns. */
int trace_writer_fdopen(struct trace_writer **wp, int fd, const struct trace_writer_opts *opts);

/* Write the header record: must come first.  Returns 0 or -errno. */
int trace_write_header(struct trace_writer *w, const struct trace_header *h);

/*
 * Write guest memory at gpa.  All-zero pages are skipped (readers start from
 * zeroed memory) and large ranges are split.  Returns 0 or -errno.
 */
int trace_write_memory(struct trace_writer *w, uint64_t gpa, const void *data, size_t len);

/*
 * Write an exit.  e->st is delta-encoded against the previous exit written;
 * e->seq may be anything (consecutive numbers cost nothing); e->changed is
 * ignored.  Returns 0 or -errno.
 */
int trace_write_exit(struct trace_writer *w, const struct trace_exit *e);

int trace_write_inject(struct trace_writer *w, const struct trace_disk_inject *in);
int trace_write_raise(struct trace_writer *w, const struct trace_disk_raise *r);
int trace_write_deliver(struct trace_writer *w, const struct trace_disk_deliver *d);
int trace_write_console(struct trace_writer *w, uint64_t seq, const void *data, size_t len);
/*
 * Guest RAM [gpa, gpa + len) written during the run that ended with exit
 * seq, and its content at that exit (TRACE_REC_WRITE).  Call it right after
 * trace_write_exit for that exit.  A range longer than TRACE_WRITE_CHUNK
 * is split into records of at most that many bytes at consecutive
 * addresses (as memory records are), so the writer never buffers more;
 * len 0 writes one record with no data (data may then be NULL).
 * Returns 0, -EINVAL if data is NULL with len > 0 or the range wraps past
 * 2^64, or -errno.
 */
int trace_write_write(struct trace_writer *w, uint64_t seq, uint64_t gpa, const void *data,
                      size_t len);
int trace_write_end(struct trace_writer *w, const struct trace_disk_end *e, const char *message);

/*
 * Write an event as trace_reader_next returned it, so a filter or converter
 * can copy a trace record by record (changing what it wants on the way).
 * Header strings the reader gave as "" (absent) stay absent.  Returns 0,
 * -EINVAL for a type this writer does not know, or -errno.
 */
int trace_write_event(struct trace_writer *w, const struct trace_event *ev);

/* Write a record of any type with a raw payload (for extensions and tests). */
int trace_write_raw(struct trace_writer *w, uint16_t type, uint16_t flags, const void *payload,
                    size_t len);

/* End the current zstd frame and push it to the file.  Returns 0 or -errno. */
int trace_writer_flush(struct trace_writer *w);

/* Compressed bytes written to the file so far (after the last flush). */
uint64_t trace_writer_bytes(const struct trace_writer *w);
/* Records written so far. */
uint64_t trace_writer_records(const struct trace_writer *w);

/* Flush, stop the flush thread, close the file.  Returns 0 or -errno. */
int trace_writer_close(struct trace_writer *w);

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

/* Reader results.  The numbers are stable. */
enum trace_err {
        TRACE_OK = 0,            /* an event was returned */
        TRACE_END_OF_TRACE = 1,  /* no more records; the stream ended cleanly */
        TRACE_ERR_IO = 2,        /* the file could not be opened or read */
        TRACE_ERR_EMPTY = 3,     /* the file is empty */
        TRACE_ERR_NOT_TRACE = 4, /* not zstd, or no hvtrace magic */
        TRACE_ERR_VERSION = 5,   /* a format version this reader does not know */
        TRACE_ERR_CORRUPT = 6,   /* data that cannot be a valid trace */
        TRACE_ERR_TRUNCATED = 7, /* the stream stops inside a frame or record */
        TRACE_ERR_NOMEM = 8,
        TRACE_ERR_COUNT
};

/* A fixed description of an error code. */
const char *trace_strerror(int err);

struct trace_reader;

/*
 * Open a trace, check the magic and version and read the header.  On error
 * returns the enum trace_err and, if rp is not NULL and memory allows, still
 * sets *rp to a reader whose trace_reader_message explains it (close it).
 */
int trace_reader_open(struct trace_reader **rp, const char *path);

/*
 * Next record into *ev.  Returns TRACE_OK, TRACE_END_OF_TRACE or an error.
 * After a truncation or corruption error every complete record before it
 * has been returned, and trace_reader_message says how many.  The header
 * is returned as the first event.
 */
int trace_reader_next(struct trace_reader *r, struct trace_event *ev);

/* The header (valid after a successful open, until close). */
const struct trace_header *trace_reader_header(const struct trace_reader *r);

/* One line explaining the last error, e.g. "truncated after 4096 records". */
const char *trace_reader_message(const struct trace_reader *r);

/* Records returned so far. */
uint64_t trace_reader_records(const struct trace_reader *r);

/* Whether the trace ended with an END record (complete). */
int trace_reader_complete(const struct trace_reader *r);

void trace_reader_close(struct trace_reader *r);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Whether field f (enum trace_field) of a and b differ. */
int trace_state_field_differs(const struct trace_vcpu_state *a, const struct trace_vcpu_state *b,
                              unsigned f);

/* Size in bytes of field f on disk. */
size_t trace_field_size(unsigned f);

/* The mode implied by CR0.PE and EFER.LMA: enum trace_mode. */
unsigned trace_state_mode(const struct trace_vcpu_state *st);

/* The code size at RIP (16, 32 or 64) from the mode and CS.L / CS.D. */
unsigned trace_state_code_bits(const struct trace_vcpu_state *st);

/* Linear address of CS:RIP (the CS base is ignored in 64-bit code). */
uint64_t trace_state_pc(const struct trace_vcpu_state *st);

#ifdef __cplusplus
}
#endif

#endif /* HVTRACE_TRACE_H */
