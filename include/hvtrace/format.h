/* SPDX-License-Identifier: MIT */
/*
 * hvtrace trace format (major versions 1 and 2): the frozen on-disk layout.
 *
 * Every struct named hvt_disk_* is written byte for byte, little endian,
 * with no implicit padding: the static asserts at the end pin their sizes.
 * The numbers of every enum are stable.  docs/trace-format.md is the prose
 * version of the same contract, precise enough to write a compatible writer
 * in another language; <hvtrace/hvtrace.h> is the library that writes and
 * reads it.  This header compiles as C99 and later and as C++11 and later.
 *
 * A trace file is a sequence of zstd frames.  Decompressed and concatenated
 * they form the raw stream: a 16-byte preamble, then records, each a
 * hvt_disk_rec header followed by `size` bytes of payload.  Readers skip
 * records whose type they do not know, so types can be added without a new
 * major version.  Major version 2 is version 1 for a machine with several
 * vCPUs: the header counts them and HVT_REC_VCPU records say which vCPU the
 * records after them belong to; a single-vCPU trace is still written as 1.
 */
#ifndef HVTRACE_FORMAT_H
#define HVTRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hvtrace structs are stored as they are in memory: it needs a little-endian host"
#endif

/* A compile-time check in C11, C++11, and C99 (where it is a typedef). */
#if defined(__cplusplus)
#define HVT_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HVT_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else
#define HVT_STATIC_ASSERT_CAT2(a, b) a##b
#define HVT_STATIC_ASSERT_CAT(a, b)  HVT_STATIC_ASSERT_CAT2(a, b)
#define HVT_STATIC_ASSERT(cond, msg) \
        typedef char HVT_STATIC_ASSERT_CAT(hvt_static_assert_, __LINE__)[(cond) ? 1 : -1]
#endif

/* ------------------------------------------------------------------------ */
/* Constants                                                                */
/* ------------------------------------------------------------------------ */

#define HVT_MAGIC                "HVTRACE\x1a" /* 8 bytes, no terminator on disk */
#define HVT_MAGIC_LEN            8
#define HVT_FORMAT_VERSION       2 /* the highest major version: readers refuse a higher one */
#define HVT_FORMAT_VERSION_1VCPU 1 /* single-vCPU traces are written as this major version */
#define HVT_FORMAT_MINOR         3 /* compatible additions (1: WRITE, 2: NMI, 3: KVM records) */

/* Largest payload a reader accepts; anything larger is corrupt data. */
#define HVT_MAX_RECORD (16u << 20)

/* Record types (hvt_disk_rec.type).  Numbers are stable. */
enum hvt_rec_type {
        HVT_REC_HEADER = 1,  /* exactly once, first record */
        HVT_REC_MEMORY = 2,  /* initial guest memory image, any number */
        HVT_REC_EXIT = 3,    /* one VM exit with vCPU state (delta encoded) */
        HVT_REC_INJECT = 4,  /* the recorder injected an interrupt */
        HVT_REC_DELIVER = 5, /* the guest observed a delivery (probe) */
        HVT_REC_CONSOLE = 6, /* bytes the guest wrote to the console port */
        HVT_REC_END = 7,     /* the run ended; last record of a complete trace */
        HVT_REC_RAISE = 8,   /* an interrupt became pending (request, --irq, kick) */
        HVT_REC_WRITE = 9,   /* guest memory written during the run that ended at an exit */
        HVT_REC_VCPU = 10,   /* major 2: the records after it belong to another vCPU */
        HVT_REC_TYPE_COUNT
};

/*
 * A KVM call of the VMM that `hvrec exec` recorded (no minor version of its
 * own): a memory slot, an interrupt line, an MSI, an irqfd, guest-debug
 * settings.
 * Payload: struct hvt_disk_kvm.  hvt_reader_next skips it, as it skips
 * every type past HVT_REC_TYPE_COUNT; its layout is fixed here for readers
 * that want it.
 */
#define HVT_REC_KVM 11

/* Normalized exit reasons (hvt_disk_exit.reason).  Numbers are stable. */
enum hvt_exit_reason {
        HVT_EXIT_UNKNOWN = 0,    /* a backend reason with no normalized name */
        HVT_EXIT_IO = 1,         /* port I/O */
        HVT_EXIT_MMIO = 2,       /* access outside guest RAM */
        HVT_EXIT_HLT = 3,        /* HLT */
        HVT_EXIT_INTR = 4,       /* the host interrupted the run (signal, kick) */
        HVT_EXIT_IRQ_WINDOW = 5, /* a requested interrupt window opened */
        HVT_EXIT_DEBUG = 6,      /* single-step or breakpoint */
        HVT_EXIT_SHUTDOWN = 7,   /* triple fault */
        HVT_EXIT_FAIL_ENTRY = 8, /* hardware refused the VM entry */
        HVT_EXIT_INTERNAL = 9,   /* backend internal error (e.g. emulation failure) */
        HVT_EXIT_EXCEPTION = 10, /* a guest exception the backend reports as an exit */
        HVT_EXIT_REASON_COUNT
};

/* Exit record flags (hvt_disk_rec.flags of a HVT_REC_EXIT). */
#define HVT_XF_SEQ    0x0001u /* a uint64_t seq follows; else seq = previous + 1 */
#define HVT_XF_TIME64 0x0002u /* uint32_t dt_hi, guest_hi follow: the high halves */

/*
 * State field numbers.  Bit N of hvt_disk_exit.state_mask says field N
 * changed since the previous exit record and its new value follows, in
 * increasing N.  Fields not present keep the previous record's value; before
 * the first exit record every field is zero.
 */
enum hvt_field {
        HVT_F_RAX = 0, /* 0..15: general registers, x86 encoding order, uint64_t */
        HVT_F_RCX,
        HVT_F_RDX,
        HVT_F_RBX,
        HVT_F_RSP,
        HVT_F_RBP,
        HVT_F_RSI,
        HVT_F_RDI,
        HVT_F_R8,
        HVT_F_R9,
        HVT_F_R10,
        HVT_F_R11,
        HVT_F_R12,
        HVT_F_R13,
        HVT_F_R14,
        HVT_F_R15,
        HVT_F_RIP = 16,    /* uint64_t */
        HVT_F_RFLAGS = 17, /* uint64_t */
        HVT_F_ES = 18,     /* 18..23: struct hvt_disk_seg, x86 sreg order */
        HVT_F_CS,
        HVT_F_SS,
        HVT_F_DS,
        HVT_F_FS,
        HVT_F_GS,
        HVT_F_CR0 = 24, /* uint64_t */
        HVT_F_CR2,
        HVT_F_CR3,
        HVT_F_CR4,
        HVT_F_EFER,
        HVT_F_GDT = 29, /* struct hvt_disk_dtable */
        HVT_F_IDT = 30,
        HVT_F_INTR = 31, /* uint64_t: HVT_INTR_* bits */
        HVT_F_COUNT
};

/* Segment register indexes into hvt_vcpu_state.seg (x86 encoding order). */
enum hvt_sreg { HVT_ES, HVT_CS, HVT_SS, HVT_DS, HVT_FS, HVT_GS, HVT_SREG_COUNT };

/* hvt_disk_seg.attr bits: the descriptor's access rights, unpacked. */
#define HVT_SEG_TYPE_MASK 0x000fu /* type field */
#define HVT_SEG_S         0x0010u /* code/data (1) or system (0) */
#define HVT_SEG_DPL_SHIFT 5       /* 2 bits */
#define HVT_SEG_P         0x0080u /* present */
#define HVT_SEG_AVL       0x0100u
#define HVT_SEG_L         0x0200u /* 64-bit code */
#define HVT_SEG_DB        0x0400u /* default operand size 32 */
#define HVT_SEG_G         0x0800u /* 4 KiB granularity */
#define HVT_SEG_UNUSABLE  0x1000u

/*
 * Interruptibility as the backend reported it at an exit or injection
 * (HVT_F_INTR, hvt_disk_inject.intr).  The low bits are the report; the
 * VALID bits say which parts of it the backend reports at all, so "no
 * shadow" and "backend cannot tell" are never confused.
 */
#define HVT_INTR_STI_SHADOW    0x0001u /* blocking by STI */
#define HVT_INTR_MOVSS_SHADOW  0x0002u /* blocking by MOV SS / POP SS */
#define HVT_INTR_NMI_BLOCKED   0x0004u /* NMIs masked */
#define HVT_INTR_READY         0x0008u /* ready for interrupt injection */
#define HVT_INTR_IF            0x0010u /* RFLAGS.IF as the backend reported it */
#define HVT_INTR_PENDING       0x0020u /* an injected interrupt is still queued */
#define HVT_INTR_WINDOW_REQ    0x0040u /* the recorder had requested a window */
#define HVT_INTR_VALID_SHADOW  0x0100u
#define HVT_INTR_VALID_NMI     0x0200u
#define HVT_INTR_VALID_READY   0x0400u
#define HVT_INTR_VALID_IF      0x0800u
#define HVT_INTR_VALID_PENDING 0x1000u

/* Guest CPU modes (header.guest_mode). */
enum hvt_mode {
        HVT_MODE_UNKNOWN = 0,
        HVT_MODE_REAL = 1,      /* 16-bit real mode */
        HVT_MODE_PROTECTED = 2, /* 32-bit protected mode, paging off */
        HVT_MODE_LONG = 3,      /* 64-bit long mode, identity paging */
};

/* Injection policies (header.inject_policy, inject.policy). */
enum hvt_policy {
        HVT_POLICY_WINDOW = 0,  /* inject only when ready; else request a window */
        HVT_POLICY_EAGER = 1,   /* inject at the next exit with IF=1 */
        HVT_POLICY_BLIND = 2,   /* inject at the next exit, whatever the state */
        HVT_POLICY_BACKEND = 3, /* the backend's own irqchip decides */
        HVT_POLICY_COUNT
};

/* Where a pending interrupt came from (raise.source, inject.source). */
enum hvt_irq_source {
        HVT_SRC_GUEST = 0,  /* the guest wrote the vector to port 0xE0 */
        HVT_SRC_OPTION = 1, /* an --irq VECTOR@TRIGGER option */
        HVT_SRC_KICK = 2,   /* a --kick timer with a vector */
        HVT_SRC_VMM = 3,    /* a VMM under `hvrec exec` injected it */
        HVT_SRC_COUNT
};

/* How an interrupt reached the backend (inject.method). */
enum hvt_inject_method {
        HVT_INJ_QUEUE = 0,    /* queued on the vCPU (KVM_INTERRUPT) */
        HVT_INJ_LINE = 1,     /* an interrupt line was raised on an irqchip */
        HVT_INJ_EMULATED = 2, /* the recorder delivered it in software */
        HVT_INJ_NMI = 3,      /* a non-maskable interrupt (KVM_NMI; emu's own NMI delivery) */
};

/* What kind of interrupt became pending (raise.kind; format minor 2, 0 before). */
enum hvt_irq_kind {
        HVT_IRQ_MASKABLE = 0, /* an external interrupt of raise.vector */
        HVT_IRQ_NMI = 1,      /* a non-maskable interrupt (vector 2) */
};

/* How a delivery's vector was found (deliver.vector_from). */
enum hvt_vector_from {
        HVT_VEC_UNKNOWN = 0,
        HVT_VEC_TABLE = 1,    /* exactly one IVT/IDT entry points at the handler */
        HVT_VEC_INJECTED = 2, /* ambiguous table: the oldest undelivered injection */
};

/* Why the run ended (end.why). */
enum hvt_end_why {
        HVT_END_GUEST_EXIT = 1, /* the guest wrote its status to port 0xF4 */
        HVT_END_HALT = 2,       /* HLT with nothing able to wake the vCPU */
        HVT_END_CRASH = 3,      /* shutdown, fail-entry, internal error */
        HVT_END_MAX_EXITS = 4,  /* --max-exits reached */
        HVT_END_TIMEOUT = 5,    /* --timeout expired */
        HVT_END_SIGNAL = 6,     /* a signal stopped the recorder (detail: which) */
        HVT_END_ERROR = 7,      /* the recorder failed (its message says why) */
        HVT_END_WHY_COUNT
};

/* Header flags (header.flags). */
#define HVT_HDR_SINGLE_STEP \
        0x0001u               /* every instruction exits: shadows may be cleared by KVM on Intel */
#define HVT_HDR_KICKS 0x0002u /* asynchronous kicks interrupted the run */
/*
 * Every write to guest RAM (by the guest's instructions or by the CPU, e.g.
 * interrupt frames) is covered by HVT_REC_WRITE records, from the first
 * run on.  Without it a reader cannot tell when code changed.
 */
#define HVT_HDR_WRITES 0x0004u
/*
 * hvrec single-steps before injecting at an exit that does not show which
 * instruction ran last (a kick, an interrupt window), so that the
 * instruction before every delivery is recorded, not inferred.
 */
#define HVT_HDR_STEP_INJECT 0x0008u

/* Backend capability flags (header.backend_caps). */
#define HVT_CAP_SINGLE_STEP   0x0001u /* can single-step */
#define HVT_CAP_REPORT_SHADOW 0x0002u /* reports STI / MOV SS shadows */
#define HVT_CAP_REPORT_READY  0x0004u /* reports ready-for-injection */
#define HVT_CAP_INJECT_QUEUE  0x0008u /* the recorder injects vectors itself */
#define HVT_CAP_IRQCHIP       0x0010u /* an in-backend irqchip injects */
#define HVT_CAP_KICK          0x0020u /* the run can be interrupted asynchronously */
#define HVT_CAP_WINDOW        0x0040u /* can exit when an interrupt window opens */
#define HVT_CAP_IO_EXITS      0x0080u /* every port I/O instruction exits (no device inside) */
#define HVT_CAP_HLT_EXITS     0x0100u /* every HLT exits */
#define HVT_CAP_WRITES        0x0200u /* can report guest writes to RAM (HVT_HDR_WRITES) */

/* Header string keys (hvt_disk_str.key). */
enum hvt_str_key {
        HVT_STR_TOOL_VERSION = 1,
        HVT_STR_BACKEND = 2,
        HVT_STR_BACKEND_VERSION = 3,
        HVT_STR_CPU_VENDOR = 4,
        HVT_STR_CPU_MODEL = 5,
        HVT_STR_KERNEL = 6,
        HVT_STR_CMDLINE = 7, /* argv, each argument NUL-terminated */
        HVT_STR_GUEST = 8,   /* the guest file as given */
        HVT_STR_COUNT
};

/* ------------------------------------------------------------------------ */
/* On-disk structures (frozen)                                              */
/* ------------------------------------------------------------------------ */

/* The first 16 bytes of the decompressed stream. */
struct hvt_disk_preamble {
        char magic[HVT_MAGIC_LEN];
        uint16_t version; /* HVT_FORMAT_VERSION */
        uint16_t minor;   /* HVT_FORMAT_MINOR */
        uint32_t reserved;
};

/* Every record starts with this; `size` bytes of payload follow. */
struct hvt_disk_rec {
        uint16_t type;  /* enum hvt_rec_type */
        uint16_t flags; /* per type */
        uint32_t size;  /* payload bytes, <= HVT_MAX_RECORD */
};

/* HVT_REC_HEADER payload: this, then hvt_disk_str items to the end. */
struct hvt_disk_header {
        uint64_t load_addr;         /* where the guest image was loaded */
        uint64_t entry;             /* first RIP */
        uint64_t mem_size;          /* guest RAM bytes, mapped at physical 0 */
        uint64_t seed;              /* --seed: every random choice derives from it */
        uint64_t start_realtime_ns; /* CLOCK_REALTIME at the start, for humans */
        uint32_t guest_mode;        /* enum hvt_mode at the entry */
        uint32_t flags;             /* HVT_HDR_* */
        uint32_t backend_caps;      /* HVT_CAP_* */
        uint16_t inject_policy;     /* enum hvt_policy */
        uint16_t vcpus;             /* major 2: the vCPU count, 2 or more; major 1: 0 */
};

struct hvt_disk_str {
        uint16_t key; /* enum hvt_str_key; unknown keys are skipped */
        uint16_t len; /* bytes of text that follow, no terminator */
};

/* HVT_REC_MEMORY payload: this, then the bytes at gpa. */
struct hvt_disk_memory {
        uint64_t gpa;
        uint64_t reserved;
};

struct hvt_disk_seg {
        uint64_t base;
        uint32_t limit; /* byte granular (already scaled by G) */
        uint16_t selector;
        uint16_t attr; /* HVT_SEG_* */
};

struct hvt_disk_dtable {
        uint64_t base;
        uint16_t limit;
        uint16_t reserved[3];
};

/*
 * HVT_REC_EXIT payload:
 *   struct hvt_disk_exit
 *   uint64_t seq                      if rec.flags & HVT_XF_SEQ
 *   uint32_t dt_hi, guest_hi          if rec.flags & HVT_XF_TIME64
 *   the changed state fields          in increasing field number
 *   insn_len bytes of instruction     read at CS:RIP when the exit was taken
 *   the exit's own data               by reason, to the end of the payload:
 *       IO: hvt_disk_io + size*count data bytes
 *       MMIO: hvt_disk_mmio; FAIL_ENTRY: hvt_disk_fail_entry;
 *       INTERNAL: hvt_disk_internal + ndata uint64_t; DEBUG: hvt_disk_debug;
 *       EXCEPTION: hvt_disk_exception; anything else: nothing.
 */
struct hvt_disk_exit {
        uint32_t dt_ns;      /* ns since the previous exit (first: since the header) */
        uint32_t guest_ns;   /* ns spent running the guest before this exit */
        uint32_t state_mask; /* bit N: field N follows */
        uint16_t reason;     /* enum hvt_exit_reason */
        uint8_t insn_len;    /* 0..15 */
        uint8_t reserved;
        uint32_t raw_reason; /* the backend's own exit code */
};

#define HVT_IO_IN  0
#define HVT_IO_OUT 1

struct hvt_disk_io {
        uint16_t port;
        uint8_t size;   /* 1, 2 or 4 */
        uint8_t dir;    /* HVT_IO_IN / HVT_IO_OUT */
        uint32_t count; /* >1 for string I/O */
};

struct hvt_disk_mmio {
        uint64_t addr;
        uint32_t len;
        uint8_t is_write;
        uint8_t reserved[3];
        uint8_t data[8];
};

struct hvt_disk_fail_entry {
        uint64_t hw_reason;
        uint32_t cpu;
        uint32_t reserved;
};

#define HVT_INTERNAL_MAX_DATA 16

struct hvt_disk_internal {
        uint32_t suberror;
        uint32_t ndata; /* <= HVT_INTERNAL_MAX_DATA uint64_t follow */
};

struct hvt_disk_debug {
        uint32_t exception; /* 1 (#DB) or 3 (#BP) */
        uint32_t reserved;
        uint64_t pc;
        uint64_t dr6;
        uint64_t dr7;
};

struct hvt_disk_exception {
        uint32_t vector;
        uint32_t error_code;
        uint64_t cr2;
};

/* HVT_REC_INJECT payload. */
struct hvt_disk_inject {
        uint64_t after_seq; /* the exit this injection followed */
        uint64_t rip;       /* vCPU state when the recorder injected */
        uint64_t rflags;
        uint64_t cs_base;
        uint64_t handler; /* linear address the IVT/IDT gave for the vector, 0 if none */
        uint32_t intr;    /* backend-reported HVT_INTR_* at that moment */
        uint16_t cs;
        uint8_t vector;
        uint8_t policy; /* enum hvt_policy */
        uint8_t method; /* enum hvt_inject_method */
        uint8_t source; /* enum hvt_irq_source */
        uint8_t reserved[6];
};

/* HVT_REC_RAISE payload: an interrupt became pending in the recorder. */
struct hvt_disk_raise {
        uint64_t seq; /* the exit at which it was raised */
        uint8_t vector;
        uint8_t source; /* enum hvt_irq_source */
        uint8_t kind;   /* enum hvt_irq_kind (format minor 2; 0 before) */
        uint8_t reserved[5];
};

/* HVT_REC_DELIVER payload: what the guest's delivery probe saw. */
struct hvt_disk_deliver {
        uint64_t seq;     /* the probe's exit */
        uint64_t ip;      /* interrupted IP/EIP/RIP from the frame */
        uint64_t flags;   /* interrupted FLAGS from the frame */
        uint64_t sp;      /* stack pointer before the interrupt (frame + its size) */
        uint64_t cs_base; /* linear base of the interrupted CS */
        uint64_t handler; /* linear address of the handler's probe instruction */
        uint16_t cs;      /* interrupted CS from the frame */
        uint16_t ss;
        uint8_t vector;
        uint8_t vector_from; /* enum hvt_vector_from */
        uint8_t frame_bits;  /* 16, 32 or 64: how the frame was read */
        uint8_t dflags;      /* HVT_DELIVER_* (format minor 1; 0 before) */
};

/* hvt_disk_deliver.dflags */
#define HVT_DELIVER_CS_BASE_UNKNOWN 0x01u /* the frame's CS names no readable descriptor */
/* The delivery answers an NMI injection (inject.method HVT_INJ_NMI), not a maskable vector 2. */
#define HVT_DELIVER_NMI 0x02u

/*
 * HVT_REC_WRITE payload: this, then the bytes of [gpa, gpa + len) as they
 * stood when exit `seq` was taken.  During the run that ended with exit
 * `seq` (after exit seq-1, or from the start for the first exit) the guest
 * wrote somewhere in that range: a reader knows the new bytes from exit
 * `seq` on and cannot tell which of them held what during that run.
 * Written right after the exit record, before its other records.  A range
 * may be coarser than the writes (a whole dirty page).
 */
struct hvt_disk_write {
        uint64_t seq;
        uint64_t gpa;
};

/* HVT_REC_CONSOLE payload: this, then the bytes. */
struct hvt_disk_console {
        uint64_t seq; /* the exit that wrote them */
};

/* What a HVT_REC_KVM record is (hvt_disk_kvm.what) and what its a, b, c hold. */
enum hvt_kvm_what {
        HVT_KVM_SLOT = 1,        /* KVM_SET_USER_MEMORY_REGION: id slot, a gpa, b size (0:
                                    deleted), c the VMM's host address, flags KVM_MEM_* */
        HVT_KVM_IRQ_LINE = 2,    /* KVM_IRQ_LINE(_STATUS): id the GSI, a the level */
        HVT_KVM_MSI = 3,         /* KVM_SIGNAL_MSI: a address, b data, id devid, flags */
        HVT_KVM_IRQFD = 4,       /* KVM_IRQFD: id the GSI, a the eventfd, flags KVM_IRQFD_FLAG_* */
        HVT_KVM_GUEST_DEBUG = 5, /* KVM_SET_GUEST_DEBUG: flags control, a DR7, b DR0, c DR1 */
};

/* HVT_REC_KVM payload. */
struct hvt_disk_kvm {
        uint64_t seq;  /* exits written before the call (on any vCPU) */
        uint32_t what; /* enum hvt_kvm_what */
        uint32_t id;
        uint32_t flags;
        uint32_t vcpu; /* the vCPU whose fd took the call, or 0 for a VM-wide call */
        uint64_t a, b, c;
};

/*
 * HVT_REC_VCPU payload (major 2 only): the exits, injections, raises,
 * deliveries and console records that follow, up to the next VCPU record,
 * are vCPU `vcpu`'s (< header.vcpus).  The stream starts on vCPU 0.  Each
 * vCPU has its own delta-decoding state (fields, seq, time).
 */
struct hvt_disk_vcpu {
        uint32_t vcpu;
        uint32_t reserved;
};

/* HVT_REC_END payload: this, then a message (no terminator). */
struct hvt_disk_end {
        uint64_t exits;    /* exit records written */
        uint64_t wall_ns;  /* run duration */
        uint64_t last_rip; /* RIP at the last exit */
        uint32_t why;      /* enum hvt_end_why */
        int32_t status;    /* hvrec's exit status */
        uint32_t detail;   /* per why: signal number, the guest's status value, raw reason */
        uint32_t reserved;
};

HVT_STATIC_ASSERT(sizeof(struct hvt_disk_preamble) == 16, "preamble is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_rec) == 8, "record header is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_header) == 56, "header is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_str) == 4, "string item is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_memory) == 16, "memory record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_seg) == 16, "segment is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_dtable) == 16, "descriptor table is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_exit) == 20, "exit record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_io) == 8, "io data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_mmio) == 24, "mmio data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_fail_entry) == 16, "fail-entry data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_internal) == 8, "internal-error data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_debug) == 32, "debug data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_exception) == 16, "exception data is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_inject) == 56, "inject record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_raise) == 16, "raise record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_deliver) == 56, "deliver record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_write) == 16, "write record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_console) == 8, "console record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_end) == 40, "end record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_kvm) == 48, "KVM record is frozen");
HVT_STATIC_ASSERT(sizeof(struct hvt_disk_vcpu) == 8, "vcpu record is frozen");

#endif /* HVTRACE_FORMAT_H */
