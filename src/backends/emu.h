// SPDX-License-Identifier: MIT
/* emu backend, internal: its state and what emu.c, emu_cpu.c and emu_deliver.c share. */
#ifndef HV_BACKENDS_EMU_H
#define HV_BACKENDS_EMU_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "../arch/x86.h"
#include "backend.h"

#define PAGE_SIZE 4096ull
#define PAGE_MASK (~(PAGE_SIZE - 1))

/* ---- QEMU's CPUX86State, the part the backend touches ------------------- */

#define ENV_REGS     0 /* target_ulong regs[16] */
#define ENV_EIP      128
#define ENV_HFLAGS   176 /* uint32_t */
#define ENV_SEGS     184 /* SegmentCache segs[6], x86 sreg order */
#define ENV_TR       352
#define ENV_GDT      376
#define ENV_IDT      400
#define ENV_CR       424 /* target_ulong cr[5] */
#define ENV_EFER     560
#define ENV_MIN_SIZE 568
/*
 * Further on, found at run time from target_ulong dr[8] (the API writes DR0-3):
 * int error_code; int exception_is_int; target_ulong exception_next_eip;
 * target_ulong dr[8]; void *cpu_breakpoint[4]; int old_exception.
 */
#define DR_ERROR_CODE (-16)
#define DR_OLD_EXC    96

struct qseg { /* QEMU's SegmentCache */
        uint32_t selector;
        uint32_t pad;
        uint64_t base;
        uint32_t limit;
        uint32_t flags; /* the descriptor's high dword: type<<8, S, DPL, P, AVL, L, B, G */
};
_Static_assert(sizeof(struct qseg) == 24, "SegmentCache");

#define HF_CPL_MASK 0x3u
#define HF_INHIBIT  (1u << 3)
#define HF_CS32     (1u << 4)
#define HF_SS32     (1u << 5)
#define HF_ADDSEG   (1u << 6)
#define HF_PE       (1u << 7)
#define HF_MP_SHIFT 9 /* MP, EM, TS: bits 9..11 from CR0 bits 1..3 */
#define HF_LMA      (1u << 14)
#define HF_CS64     (1u << 15)
#define HF_OSFXSR   (1u << 22)
#define HF_SMAP     (1u << 23)
#define HF_DERIVED                                                                                \
        (HF_CPL_MASK | HF_INHIBIT | HF_CS32 | HF_SS32 | HF_ADDSEG | HF_PE | (7u << HF_MP_SHIFT) | \
         HF_LMA | HF_CS64 | HF_OSFXSR | HF_SMAP)

/* ---- the backend ------------------------------------------------------------ */

#define IO_BUF   4096 /* string I/O is split in exits of at most this many bytes */
#define MMIO_MAX 4    /* MMIO accesses one instruction may make */

#define WR_MAX 256  /* exact written ranges kept between two take_writes calls */
#define PT_MAX 1024 /* page-table pages the backend keeps a copy of (4 MiB) */

/* Why the boundary hook (or another hook) stopped emulation. */
enum stop {
        STOP_NONE,
        STOP_EXIT,      /* x->reason is set: intr, irq-window or debug, RIP at the boundary */
        STOP_IO,        /* before a port I/O instruction */
        STOP_HLT,       /* before HLT */
        STOP_MMIO,      /* an access outside RAM aborted the instruction */
        STOP_EXCEPTION, /* INT n or a CPU exception: deliver it */
        STOP_COMPLETED, /* the pending I/O or MMIO instruction has completed */
        STOP_NMI,       /* a pending NMI may be delivered at this boundary */
        STOP_DR7_EXEC,  /* before a MOV DR7 arming an instruction breakpoint */
};

/* Event types for delivery. */
enum event { EV_EXT, EV_SOFT, EV_FAULT };

struct mmio_access {
        uint64_t addr;
        uint32_t len;
        bool is_write;
        uint8_t data[8];
};

/* Guest-physical [lo, hi). */
struct wrange {
        uint64_t lo, hi;
};

/* A page of the guest's page tables and what it held at the last take_writes. */
struct pt_page {
        uint64_t gpa;
        uint8_t *copy;
        uint32_t gen;   /* the enumeration that last found it */
        uint8_t levels; /* as which table levels it was found then */
        bool fresh;     /* no copy to compare with yet: report the whole page */
};

struct emu_backend {
        struct backend base;
        uc_engine *uc;
        uc_context *ctx;
        uint8_t *env;            /* QEMU's CPUX86State inside ctx */
        size_t env_size, dr_off; /* its size in ctx; where dr[] is */
        bool snap;               /* ctx holds the current CPU state */
        bool ran;
        bool aborted; /* Unicorn called abort(): the engine must not be entered again */
        char version[64];

        /* Paging state for reading code at boundaries (refreshed after MOV CR, WRMSR). */
        struct x86_paging pg;
        struct x86_mem ram; /* base.mem, as page walks read it */
        bool identity;      /* Unicorn maps linear = physical whatever the page tables say */

        /* Interruptibility. */
        uint64_t shadow; /* HVT_INTR_*_SHADOW covering the instruction at RIP */
        bool queued;
        uint8_t vector;
        /* An NMI pending (delivered when allowed, or at the next entry if nmi_now), and blocking.
         */
        bool nmi_pending, nmi_now, nmi_blocked;
        bool window, single_step;
        bool bp_on, bp_hit;          /* set_breakpoint; the run stopped at it */
        uint64_t bp_linear, bp_skip; /* ... at; the boundary the run starts at (~0: none) */
        volatile sig_atomic_t kick_req;

        /* Deterministic kicks. */
        bool budget_on;
        uint64_t budget_usec, rng, budget, budget_used;

        /* The instruction that began at the last boundary and runs now. */
        bool prev_valid;
        uint8_t prev_kind;
        bool prev_if;
        uint64_t prev_shadow;
        uint64_t cur, cur_len; /* linear address and length of the last boundary */

        /* The run in progress. */
        struct backend_exit *x;
        uint64_t insns; /* instructions retired in this run */
        enum stop stop;
        uint64_t stop_linear;
        uint32_t exc_vector;
        uint64_t fault_addr;

        /* An I/O or MMIO instruction reported but not yet executed. */
        enum { PEND_NONE, PEND_IO, PEND_MMIO } pend;
        uint64_t pend_linear;
        bool completing, cstarted, stop_after;
        struct {
                uint16_t port;
                uint8_t size, dir, addr_bits;
                bool rep;
                uint32_t count, done;
        } io;
        uint8_t io_data[IO_BUF];
        struct mmio_access mmio;           /* the access of the last MMIO exit */
        struct mmio_access done[MMIO_MAX]; /* accesses of the pending instruction, resolved */
        unsigned ndone;
        uint8_t *scratch; /* MMIO_MAX pages mapped over MMIO while completing */
        uint8_t *expect;  /* ... and what they must hold afterwards */
        uint64_t scratch_at[MMIO_MAX];
        uint64_t flush_at; /* a page above RAM, mapped and unmapped to flush the TLB */
        unsigned nscratch;

        /* RAM written since the last take_writes ("guest writes" below). */
        struct wrange wr[WR_MAX];
        unsigned nwr;
        bool wr_coarse;          /* wr_pages, not wr[], holds what was written */
        uint64_t *wr_pages;      /* one bit per RAM page */
        uint64_t wr_wlo, wr_whi; /* words of wr_pages that may have bits set */
        int wr_lost;             /* -errno once a write went where the backend cannot see */
        bool wr_attempt;         /* the instruction begun at the last boundary stored near... */
        uint64_t wr_rcx, wr_rsp; /* ...its code, with these rCX and rSP then (may_hit_block) */
        struct pt_page pt[PT_MAX];
        unsigned npt;
        uint64_t *pt_map; /* one bit per RAM page: in pt[] */
        uint32_t pt_gen;
        struct x86_paging pt_cfg; /* the paging state pt[] was last enumerated for */
        bool pt_rescan;           /* a table page was written: the tables may reach new pages */
};

/* The emu backend behind b. */
static inline struct emu_backend *emu_of(struct backend *b)
{
        return (struct emu_backend *)b;
}

/* ---- the context blob ------------------------------------------------------ */

/*
 * Fields of QEMU's CPUX86State in ctx at byte offset off (ENV_*): read,
 * written (then loaded into the CPU by emu_snap_put), and segment caches by
 * x86 sreg index.  ctx must hold the current state (emu_snap_get).
 */
static inline uint64_t emu_env_u64(const struct emu_backend *e, size_t off)
{
        uint64_t v;

        memcpy(&v, e->env + off, sizeof(v));
        return v;
}

static inline uint32_t emu_env_u32(const struct emu_backend *e, size_t off)
{
        uint32_t v;

        memcpy(&v, e->env + off, sizeof(v));
        return v;
}

static inline void emu_env_put64(struct emu_backend *e, size_t off, uint64_t v)
{
        memcpy(e->env + off, &v, sizeof(v));
}

static inline void emu_env_put32(struct emu_backend *e, size_t off, uint32_t v)
{
        memcpy(e->env + off, &v, sizeof(v));
}

static inline void emu_env_seg(const struct emu_backend *e, unsigned i, struct qseg *s)
{
        memcpy(s, e->env + ENV_SEGS + i * sizeof(*s), sizeof(*s));
}

static inline void emu_env_put_seg(struct emu_backend *e, unsigned i, const struct qseg *s)
{
        memcpy(e->env + ENV_SEGS + i * sizeof(*s), s, sizeof(*s));
}

/* A register through Unicorn's API (0 if it cannot be read). */
static inline uint64_t emu_reg_read(struct emu_backend *e, int id)
{
        uint64_t v = 0;

        uc_reg_read(e->uc, id, &v);
        return v;
}

/* Write a register through Unicorn's API: ctx no longer holds the current state. */
static inline void emu_reg_write(struct emu_backend *e, int id, uint64_t v)
{
        uc_reg_write(e->uc, id, &v);
        e->snap = false;
}

/* ---- emu_cpu.c: the context blob and the state ---- */

/* Make ctx hold the current CPU state (a no-op while it does).  0 or -EIO. */
int emu_snap_get(struct emu_backend *e);
/* Load ctx, as modified, into the CPU.  0 or -EIO. */
int emu_snap_put(struct emu_backend *e);
/* QEMU's derived flags (hflags) for the state in ctx with these RFLAGS. */
uint32_t emu_hflags_for(const struct emu_backend *e, uint64_t rflags);
/*
 * Find the CPUX86State in a fresh engine's context blob and check it against
 * the API.  0, or -ENOTSUP with why filled; leaves the CPU in an unspecified state.
 */
int emu_calibrate(struct emu_backend *e, char *why, size_t len);

/* Unicorn's ids of the 64-bit general registers, in x86 encoding order (RAX, RCX, ...). */
extern const int emu_gprs[16];
/* RIP for linear address la in the current code segment (ctx must be current). */
uint64_t emu_rip_of(const struct emu_backend *e, uint64_t la);
/* Put RIP at linear la (the code hook reports linear addresses).  0 or -EIO. */
int emu_set_rip_linear(struct emu_backend *e, uint64_t la);
/* The get_state op.  0 or -EIO. */
int emu_get_state(struct backend *b, struct hvt_vcpu_state *st);
/* The set_state op.  0, -EINVAL (long mode without PAE paging) or -EIO. */
int emu_set_state(struct backend *b, const struct hvt_vcpu_state *st);

/* ---- emu_deliver.c: interrupt and exception delivery ---- */

/*
 * Deliver vector (of type, with error code error if it has one) through the
 * IVT or IDT at the current RIP, escalating faults met on the way.  0 when the
 * guest took it, 1 with *x filled when it ends the run (shutdown, or an
 * exception the backend cannot deliver).
 */
int emu_raise_event(struct emu_backend *e, unsigned vector, enum event type, uint32_t error,
                    struct backend_exit *x);

/* ---- emu.c: guest memory ---- */

/* Read up to n bytes of RAM at linear la; returns how many were readable. */
size_t emu_read_linear(const struct emu_backend *e, uint64_t la, void *buf, size_t n);
/* Write n bytes at linear la through Unicorn, noting the write; false if not all of it is RAM. */
bool emu_write_linear(struct emu_backend *e, uint64_t la, const void *buf, size_t n);
/* Read the paging state after anything that may have changed it (MOV CR, WRMSR, set_state). */
void emu_mode_refresh(struct emu_backend *e);

#endif
