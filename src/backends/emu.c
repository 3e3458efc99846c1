// SPDX-License-Identifier: MIT
/*
 * emu: a software x86 CPU on the Unicorn engine (2.x, QEMU's TCG inside).
 *
 * No hypervisor is needed, and a run is a pure function of the guest, the
 * options and the seed: kicks count instructions instead of microseconds.
 * The backend does what the hardware does for a VMM with a userspace
 * irqchip, in software (docs/backends.md, "emu"):
 *
 *  - A code hook runs before every instruction: the instruction boundary.
 *    It retires the previous instruction (interrupt shadow tracking: STI
 *    with IF=0, MOV SS / POP SS), ends the run where it must (kick, budget,
 *    single-step, interrupt window) and stops *before* port I/O and HLT.
 *  - Port I/O: the exit has RIP at the IN/OUT, nothing executed; the next
 *    run() executes it, IN taking the data the loop filled.  MMIO the same
 *    way: an access outside RAM aborts its instruction (Unicorn rolls the
 *    state back), and the next run() executes it again with a scratch page
 *    holding the data mapped at the address.
 *  - Writes to RAM: a memory hook sees the guest's stores, the backend
 *    notes its own (frames), and copies of the page tables show the bits
 *    QEMU's page walks set; take_writes reports them ("guest writes").
 *    The same hook lets the boundary hook recognise an instruction QEMU
 *    runs a second time after it stored into its own translation block.
 *  - Interrupts: Unicorn never delivers any (it has no interrupt logic),
 *    so queued vectors, software INT n and CPU exceptions are all
 *    delivered here, through the IVT or IDT as the CPU would, with double
 *    and triple fault escalation.  Queued vectors are delivered at the
 *    start of the next run() whatever IF and the shadow say: the
 *    recorder's policy decides when to inject.
 *
 * Unicorn's API sets segment registers by selector only and, in 2.0.1,
 * writes CR0/CR4 without updating QEMU's derived flags.  The backend
 * therefore reads and writes the segment caches, EFER and QEMU's hflags in
 * the CPU context blob (uc_context_save/restore), at offsets of QEMU's
 * CPUX86State that calibrate() checks against the API before the backend
 * is used: a Unicorn whose layout differs is refused, never guessed at.
 * Unicorn before 2.1 ignores the guest's page tables (linear = physical):
 * the backend reads memory the same way, and ends a run whose code the
 * tables map elsewhere (docs/backends.md, "emu", for the limits).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <unicorn/unicorn.h>

#include "../arch/x86.h"
#include "backend.h"

extern const struct backend_ops emu_backend_ops;

/*
 * LeakSanitizer builds (HVTRACE_SANITIZE): Unicorn 2.0.1 keeps the code
 * bitmaps QEMU builds when a store hits a page of translated code
 * (tb_invalidate_phys_page_fast) past uc_close.  A leak in the library, not
 * here; LSan reads its default suppressions from this hook.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
        return "leak:libunicorn.so\n";
}

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

#define IO_BUF       4096 /* string I/O is split in exits of at most this many bytes */
#define MMIO_MAX     4    /* MMIO accesses one instruction may make */
#define INSNS_PER_US 50   /* the nominal speed kick budgets are counted in */

#define WR_MAX 256  /* exact written ranges kept between two take_writes calls */
#define PT_MAX 1024 /* page-table pages the backend keeps a copy of (4 MiB) */

/*
 * What the instruction at a boundary is, as far as the backend cares
 * (K_UNTRACKED: it makes QEMU write guest memory where no hook sees it).
 */
enum kind { K_OTHER, K_STI, K_SSLOAD, K_HLT, K_IO, K_MODE, K_UNTRACKED };

/* Why the boundary hook (or another hook) stopped emulation. */
enum stop {
        STOP_NONE,
        STOP_EXIT,      /* x->reason is set: intr, irq-window or debug, RIP at the boundary */
        STOP_IO,        /* before a port I/O instruction */
        STOP_HLT,       /* before HLT */
        STOP_MMIO,      /* an access outside RAM aborted the instruction */
        STOP_EXCEPTION, /* INT n or a CPU exception: deliver it */
        STOP_COMPLETED, /* the pending I/O or MMIO instruction has completed */
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
        char version[64];

        /* Paging state for reading code at boundaries (refreshed after MOV CR, WRMSR). */
        struct x86_paging pg;
        struct x86_mem ram; /* base.mem, as page walks read it */
        bool identity;      /* Unicorn maps linear = physical whatever the page tables say */

        /* Interruptibility. */
        uint64_t shadow; /* HVT_INTR_*_SHADOW covering the instruction at RIP */
        bool queued;
        uint8_t vector;
        bool window, single_step;
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

static struct emu_backend *to_emu(struct backend *b)
{
        return (struct emu_backend *)b;
}

/* ---- the context blob ------------------------------------------------------ */

static uint64_t env_u64(const struct emu_backend *e, size_t off)
{
        uint64_t v;

        memcpy(&v, e->env + off, sizeof(v));
        return v;
}

static uint32_t env_u32(const struct emu_backend *e, size_t off)
{
        uint32_t v;

        memcpy(&v, e->env + off, sizeof(v));
        return v;
}

static void env_put64(struct emu_backend *e, size_t off, uint64_t v)
{
        memcpy(e->env + off, &v, sizeof(v));
}

static void env_put32(struct emu_backend *e, size_t off, uint32_t v)
{
        memcpy(e->env + off, &v, sizeof(v));
}

static void env_seg(const struct emu_backend *e, unsigned i, struct qseg *s)
{
        memcpy(s, e->env + ENV_SEGS + i * sizeof(*s), sizeof(*s));
}

static void env_put_seg(struct emu_backend *e, unsigned i, const struct qseg *s)
{
        memcpy(e->env + ENV_SEGS + i * sizeof(*s), s, sizeof(*s));
}

/* Make ctx hold the current state. */
static int snap_get(struct emu_backend *e)
{
        if (e->snap)
                return 0;
        if (uc_context_save(e->uc, e->ctx) != UC_ERR_OK)
                return -EIO;
        e->snap = true;
        return 0;
}

/* Load ctx, as modified, into the CPU. */
static int snap_put(struct emu_backend *e)
{
        return uc_context_restore(e->uc, e->ctx) == UC_ERR_OK ? 0 : -EIO;
}

static uint64_t reg_read(struct emu_backend *e, int id)
{
        uint64_t v = 0;

        uc_reg_read(e->uc, id, &v);
        return v;
}

static void reg_write(struct emu_backend *e, int id, uint64_t v)
{
        uc_reg_write(e->uc, id, &v);
        e->snap = false;
}

/* QEMU's derived flags for the state in ctx (cpu_x86_load_seg_cache and friends). */
static uint32_t hflags_for(const struct emu_backend *e, uint64_t rflags)
{
        uint64_t cr0 = env_u64(e, ENV_CR), cr4 = env_u64(e, ENV_CR + 32);
        uint64_t efer = env_u64(e, ENV_EFER);
        uint32_t hf = env_u32(e, ENV_HFLAGS) & ~HF_DERIVED;
        struct qseg cs, ss, ds, es;
        bool pe = cr0 & X86_CR0_PE;

        env_seg(e, HVT_CS, &cs);
        env_seg(e, HVT_SS, &ss);
        env_seg(e, HVT_DS, &ds);
        env_seg(e, HVT_ES, &es);
        if (pe)
                hf |= HF_PE | ((ss.flags >> X86_DESC_DPL_SHIFT) & 3);
        hf |= (uint32_t)((cr0 >> 1) & 7) << HF_MP_SHIFT;
        if (efer & X86_EFER_LMA)
                hf |= HF_LMA;
        if ((efer & X86_EFER_LMA) && (cs.flags & X86_DESC_L))
                hf |= HF_CS32 | HF_CS64;
        else if (cs.flags & X86_DESC_DB)
                hf |= HF_CS32;
        if (ss.flags & X86_DESC_DB)
                hf |= HF_SS32;
        if (!(hf & HF_CS64) &&
            (!pe || (rflags & X86_RFLAGS_VM) || !(hf & HF_CS32) || (ds.base | es.base | ss.base)))
                hf |= HF_ADDSEG;
        if (cr4 & X86_CR4_OSFXSR)
                hf |= HF_OSFXSR;
        if (cr4 & X86_CR4_SMAP)
                hf |= HF_SMAP;
        return hf;
}

static uint16_t attr_of(uint32_t flags, bool pe)
{
        uint16_t attr = (uint16_t)(((flags >> 8) & 0xff) | ((flags >> 12) & 0xf00));

        if (pe && !(flags & X86_DESC_P))
                attr |= HVT_SEG_UNUSABLE;
        return attr;
}

static uint32_t flags_of(uint16_t attr)
{
        return ((uint32_t)(attr & 0xff) << 8) | ((uint32_t)(attr & 0xf00) << 12);
}

/*
 * Check that the blob is the CPUX86State this file knows, against what the
 * API reads and writes.  Leaves the CPU in an unspecified state.
 */
static int calibrate(struct emu_backend *e, char *why, size_t len)
{
        static const int gprs[16] = {
                UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
        };
        size_t size = uc_context_size(e->uc);
        uc_x86_mmr gdt = { 0, 0x123456789a0ull, 0x1234, 0 },
                   idt = { 0, 0xfedcba98760ull, 0x4321, 0 };
        uc_x86_msr msr = { X86_MSR_EFER, 0 };
        uint64_t v, cr2 = 0xc2c2c2c2000ull, cr3 = 0x3c3c3000ull;
        struct qseg fs;
        size_t off;

        for (unsigned i = 0; i < 16; i++) {
                v = 0x0101010101010101ull * (i + 1) ^ 0x5a5a0000a5a5ull;
                uc_reg_write(e->uc, gprs[i], &v);
        }
        v = 0x7e57c0de1234ull;
        uc_reg_write(e->uc, UC_X86_REG_RIP, &v);
        uc_reg_write(e->uc, UC_X86_REG_GDTR, &gdt);
        uc_reg_write(e->uc, UC_X86_REG_IDTR, &idt);
        uc_reg_write(e->uc, UC_X86_REG_CR2, &cr2);
        uc_reg_write(e->uc, UC_X86_REG_CR3, &cr3);
        for (unsigned i = 0; i < 4; i++) {
                v = 0xd0d0d0d0d0d0d000ull + i;
                uc_reg_write(e->uc, UC_X86_REG_DR0 + (int)i, &v);
        }
        if (uc_context_save(e->uc, e->ctx) != UC_ERR_OK)
                goto bad;
        /* The blob starts after the context's own header: find the registers. */
        for (off = 0; off <= 64 && off + ENV_MIN_SIZE <= size; off += 8) {
                memcpy(&v, (uint8_t *)e->ctx + off, 8);
                if (v == (0x0101010101010101ull ^ 0x5a5a0000a5a5ull))
                        break;
        }
        if (off > 64 || off + ENV_MIN_SIZE > size)
                goto bad;
        e->env = (uint8_t *)e->ctx + off;
        e->env_size = size - off;
        for (unsigned i = 0; i < 16; i++)
                if (env_u64(e, ENV_REGS + 8 * i) !=
                    (0x0101010101010101ull * (i + 1) ^ 0x5a5a0000a5a5ull))
                        goto bad;
        if (env_u64(e, ENV_EIP) != 0x7e57c0de1234ull || env_u64(e, ENV_GDT + 8) != gdt.base ||
            env_u32(e, ENV_GDT + 16) != gdt.limit || env_u64(e, ENV_IDT + 8) != idt.base ||
            env_u32(e, ENV_IDT + 16) != idt.limit || env_u64(e, ENV_CR + 16) != cr2 ||
            (env_u64(e, ENV_CR + 24) & 0xffffffff) != cr3)
                goto bad;
        /*
         * The exception state QEMU keeps next to dr[]: the error code of the
         * last exception, and old_exception, which the engine's own #DF
         * logic reads and only QEMU's interrupt delivery (never run by
         * Unicorn) resets to -1.  After a reset it is -1.
         */
        for (e->dr_off = ENV_EFER + 8; e->dr_off + 4 * 8 + DR_OLD_EXC <= e->env_size;
             e->dr_off += 8)
                if (env_u64(e, e->dr_off) == 0xd0d0d0d0d0d0d000ull)
                        break;
        if (e->dr_off + 4 * 8 + DR_OLD_EXC > e->env_size)
                goto bad;
        for (unsigned i = 1; i < 4; i++)
                if (env_u64(e, e->dr_off + 8 * i) != 0xd0d0d0d0d0d0d000ull + i)
                        goto bad;
        if (env_u32(e, e->dr_off + DR_OLD_EXC) != 0xffffffffu)
                goto bad;
        for (unsigned i = 0; i < 4; i++)
                env_put64(e, e->dr_off + 8 * i, 0);
        /* EFER and the segment caches: written in the blob, read through the API. */
        env_put64(e, ENV_EFER, 0x500);
        memset(&fs, 0, sizeof(fs));
        fs.selector = 0x1234;
        fs.base = 0xabcde000;
        fs.limit = 0xfffff;
        env_put_seg(e, HVT_FS, &fs);
        if (snap_put(e))
                goto bad;
        e->snap = true;
        if (uc_reg_read(e->uc, UC_X86_REG_MSR, &msr) != UC_ERR_OK || msr.value != 0x500 ||
            reg_read(e, UC_X86_REG_FS_BASE) != fs.base ||
            (reg_read(e, UC_X86_REG_FS) & 0xffff) != fs.selector)
                goto bad;
        return 0;
bad:
        snprintf(why, len,
                 "Unicorn %s: its x86 CPU state is not laid out as this backend knows "
                 "(QEMU 5 CPUX86State)",
                 e->version + 8);
        return -ENOTSUP;
}

/* ---- guest memory as the CPU sees it -------------------------------------- */

static bool phys_ok(const struct emu_backend *e, uint64_t pa, uint64_t n)
{
        return pa < e->base.mem_size && n <= e->base.mem_size - pa;
}

/* The guest page tables' translation of linear la (paging on). */
static bool walk(const struct emu_backend *e, uint64_t la, uint64_t *pa)
{
        return !x86_walk(&e->pg, la, x86_mem_entry, &e->ram, pa, NULL, NULL);
}

/*
 * Guest-physical address of linear la, as Unicorn translates it: Unicorn
 * before 2.1 ignores the page tables and maps linear = physical (upstream
 * issue #1953), so the backend reads and writes guest memory the same way.
 */
static bool translate(const struct emu_backend *e, uint64_t la, uint64_t *pa)
{
        if (e->identity && (e->pg.cr0 & X86_CR0_PG)) {
                *pa = la;
                return true;
        }
        if (!(e->pg.cr0 & X86_CR0_PG)) {
                *pa = (e->pg.efer & X86_EFER_LMA) ? la : la & 0xffffffffull;
                return true;
        }
        return walk(e, la, pa);
}

/* Read up to n bytes of RAM at linear la; returns how many were readable. */
static size_t read_linear(const struct emu_backend *e, uint64_t la, void *buf, size_t n)
{
        size_t got = 0;

        while (got < n) {
                uint64_t pa, chunk = PAGE_SIZE - ((la + got) & (PAGE_SIZE - 1));

                if (chunk > n - got)
                        chunk = n - got;
                if (!translate(e, la + got, &pa) || !phys_ok(e, pa, chunk))
                        break;
                memcpy((uint8_t *)buf + got, e->base.mem + pa, chunk);
                got += chunk;
        }
        return got;
}

/* ---- guest writes ------------------------------------------------------------ */

/*
 * take_writes must never miss a write to RAM.  Writes come from three places:
 *  - guest instructions: a UC_HOOK_MEM_WRITE hook over every address sees
 *    each store before it happens, also one that a fault or an MMIO access
 *    then abandons (reported all the same: coarser, never short);
 *  - the backend itself: interrupt and exception frames and descriptor
 *    accessed bits, all through write_linear;
 *  - QEMU's page walks, which set accessed and dirty bits in the page
 *    tables with no hook at all: the backend keeps a copy of every page
 *    the tables are made of and compares (pt_*).
 * Up to WR_MAX ranges are kept exactly; beyond that (a guest scattering
 * stores between two exits) the rest is tracked by page in a bitmap.
 * Addresses outside RAM (MMIO, and the scratch pages mapped there while an
 * MMIO instruction completes) are not RAM writes and are dropped.
 */

static bool bit_test(const uint64_t *map, uint64_t i)
{
        return (map[i / 64] >> (i % 64)) & 1;
}

static uint64_t map_words(const struct emu_backend *e)
{
        return (e->base.mem_size / PAGE_SIZE + 63) / 64;
}

static void wr_set_pages(struct emu_backend *e, uint64_t lo, uint64_t hi)
{
        for (uint64_t p = lo / PAGE_SIZE; p <= (hi - 1) / PAGE_SIZE; p++)
                e->wr_pages[p / 64] |= 1ull << (p % 64);
        if (lo / PAGE_SIZE / 64 < e->wr_wlo)
                e->wr_wlo = lo / PAGE_SIZE / 64;
        if ((hi - 1) / PAGE_SIZE / 64 + 1 > e->wr_whi)
                e->wr_whi = (hi - 1) / PAGE_SIZE / 64 + 1;
}

static int wrange_cmp(const void *a, const void *b)
{
        const struct wrange *x = a, *y = b;

        return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort wr[] and merge the ranges that overlap or touch. */
static void wr_compact(struct emu_backend *e)
{
        unsigned n = 0;

        if (e->nwr < 2)
                return;
        qsort(e->wr, e->nwr, sizeof(e->wr[0]), wrange_cmp);
        for (unsigned i = 1; i < e->nwr; i++) {
                if (e->wr[i].lo <= e->wr[n].hi) {
                        if (e->wr[i].hi > e->wr[n].hi)
                                e->wr[n].hi = e->wr[i].hi;
                } else {
                        e->wr[++n] = e->wr[i];
                }
        }
        e->nwr = n + 1;
}

/* RAM [lo, hi) was (or may have been) written. */
static void wr_add(struct emu_backend *e, uint64_t lo, uint64_t hi)
{
        if (e->wr_coarse) {
                wr_set_pages(e, lo, hi);
                return;
        }
        /* A store mostly extends one of the last few ranges (a stack, a string, a variable). */
        for (unsigned i = e->nwr, k = 0; i-- > 0 && k < 4; k++) {
                struct wrange *r = &e->wr[i];

                if (lo <= r->hi && hi >= r->lo) {
                        if (lo < r->lo)
                                r->lo = lo;
                        if (hi > r->hi)
                                r->hi = hi;
                        return;
                }
        }
        if (e->nwr == WR_MAX) {
                wr_compact(e);
                if (e->nwr > WR_MAX * 3 / 4) {
                        for (unsigned i = 0; i < e->nwr; i++)
                                wr_set_pages(e, e->wr[i].lo, e->wr[i].hi);
                        e->nwr = 0;
                        e->wr_coarse = true;
                        wr_set_pages(e, lo, hi);
                        return;
                }
        }
        e->wr[e->nwr].lo = lo;
        e->wr[e->nwr].hi = hi;
        e->nwr++;
}

/* Guest-physical [pa, pa + len) was written: the part of it in RAM counts. */
static void wr_note(struct emu_backend *e, uint64_t pa, uint64_t len)
{
        uint64_t hi;

        if (!len || pa >= e->base.mem_size)
                return;
        hi = len > e->base.mem_size - pa ? e->base.mem_size : pa + len;
        if (e->npt)
                for (uint64_t p = pa / PAGE_SIZE; p <= (hi - 1) / PAGE_SIZE; p++)
                        if (bit_test(e->pt_map, p))
                                e->pt_rescan = true;
        wr_add(e, pa, hi);
}

/* Linear [la, la + len) was written, page by page as the CPU translates it. */
static void wr_note_linear(struct emu_backend *e, uint64_t la, uint64_t len)
{
        while (len) {
                uint64_t pa, chunk = PAGE_SIZE - (la & (PAGE_SIZE - 1));

                if (chunk > len)
                        chunk = len;
                /* Not mapped: the store faults and writes nothing there. */
                if (translate(e, la, &pa))
                        wr_note(e, pa, chunk);
                la += chunk;
                len -= chunk;
        }
}

/* Forget page-table page i (making room): report it first if it may have changed. */
static void pt_drop(struct emu_backend *e, unsigned i)
{
        struct pt_page *p = &e->pt[i];
        uint64_t n = p->gpa / PAGE_SIZE;

        if (p->fresh || memcmp(p->copy, e->base.mem + p->gpa, PAGE_SIZE))
                wr_add(e, p->gpa, p->gpa + PAGE_SIZE);
        e->pt_map[n / 64] &= ~(1ull << (n % 64));
        free(p->copy);
        *p = e->pt[--e->npt];
}

/*
 * The table page at gpa is read as a table of `level` (1: the last) under
 * the paging state being enumerated: keep a copy of it.  False when there
 * is nothing more to visit from it (outside RAM, already visited at that
 * level, or no room left, which loses tracking).
 */
static bool pt_keep(struct emu_backend *e, uint64_t gpa, unsigned level)
{
        struct pt_page *p = NULL;

        if (!phys_ok(e, gpa, PAGE_SIZE))
                return false;
        if (bit_test(e->pt_map, gpa / PAGE_SIZE)) {
                for (unsigned i = 0; i < e->npt && !p; i++)
                        if (e->pt[i].gpa == gpa)
                                p = &e->pt[i];
        }
        if (p) {
                if (p->gen != e->pt_gen) {
                        p->gen = e->pt_gen;
                        p->levels = 0;
                } else if (p->levels & (1u << level)) {
                        return false;
                }
                p->levels |= (uint8_t)(1u << level);
                return true;
        }
        if (e->npt == PT_MAX) {
                /* Make room from pages the current tables no longer use. */
                for (unsigned i = 0; i < e->npt; i++) {
                        if (e->pt[i].gen != e->pt_gen) {
                                pt_drop(e, i);
                                break;
                        }
                }
                if (e->npt == PT_MAX) {
                        e->wr_lost = -ENOSPC;
                        return false;
                }
        }
        p = &e->pt[e->npt];
        p->copy = malloc(PAGE_SIZE);
        if (!p->copy) {
                e->wr_lost = -ENOMEM;
                return false;
        }
        e->npt++;
        p->gpa = gpa;
        p->gen = e->pt_gen;
        p->levels = (uint8_t)(1u << level);
        /* The CPU may have set bits in it before this: all of it counts as written once. */
        p->fresh = true;
        e->pt_map[gpa / PAGE_SIZE / 64] |= 1ull << (gpa / PAGE_SIZE % 64);
        return true;
}

/*
 * Visit the n entries of esize bytes at offset off of table page gpa at
 * `level` and the tables they point to.  A page-size bit ends the descent
 * where it maps a large page (any level above 1 with 8-byte entries, the
 * directory with 4-byte ones when CR4.PSE is set).
 */
static void pt_visit(struct emu_backend *e, const struct x86_paging *pg, uint64_t gpa,
                     unsigned level, unsigned esize, uint64_t off, unsigned n)
{
        if (!pt_keep(e, gpa, level) || level == 1)
                return;
        for (unsigned i = 0; i < n; i++) {
                uint64_t v = 0;

                memcpy(&v, e->base.mem + gpa + off + (uint64_t)i * esize, esize);
                if (!(v & X86_PTE_P) ||
                    ((v & X86_PTE_PS) && (esize == 8 || (pg->cr4 & X86_CR4_PSE))))
                        continue;
                if (esize == 8)
                        pt_visit(e, pg, v & X86_PTE_ADDR, level - 1, 8, 0, 512);
                else
                        pt_visit(e, pg, v & X86_PTE32_ADDR, level - 1, 4, 0, 1024);
        }
}

/* Find (and copy) every page the page tables of paging state pg are made of. */
static void pt_enumerate(struct emu_backend *e, const struct x86_paging *pg)
{
        if (!(pg->cr0 & X86_CR0_PG))
                return;
        e->pt_gen++;
        if (pg->efer & X86_EFER_LMA)
                pt_visit(e, pg, pg->cr3 & X86_PTE_ADDR, (pg->cr4 & X86_CR4_LA57) ? 5 : 4, 8, 0,
                         512);
        else if (pg->cr4 & X86_CR4_PAE)
                pt_visit(e, pg, pg->cr3 & X86_PTE32_ADDR, 3, 8, pg->cr3 & X86_PAE_CR3 & 0xfff, 4);
        else
                pt_visit(e, pg, pg->cr3 & X86_PTE32_ADDR, 2, 4, 0, 1024);
}

/* Report what changed in the page-table pages since their copies were made. */
static void pt_compare(struct emu_backend *e)
{
        for (unsigned i = 0; i < e->npt; i++) {
                struct pt_page *p = &e->pt[i];
                const uint8_t *now = e->base.mem + p->gpa;
                unsigned lo = 0, hi = PAGE_SIZE;

                if (!p->fresh) {
                        if (!memcmp(p->copy, now, PAGE_SIZE))
                                continue;
                        while (p->copy[lo] == now[lo])
                                lo++;
                        while (p->copy[hi - 1] == now[hi - 1])
                                hi--;
                }
                /* (wr_add, not wr_note: accessed and dirty bits change no table's shape) */
                wr_add(e, p->gpa + lo, p->gpa + hi);
                memcpy(p->copy, now, PAGE_SIZE);
                p->fresh = false;
        }
}

/*
 * Read the paging state after anything that may have changed it.  Under a
 * new state the CPU reads other pages as tables: find them while this state
 * holds (a walk may already have set bits in them: their first comparison
 * reports them whole).
 */
static void mode_refresh(struct emu_backend *e)
{
        uc_x86_msr msr = { X86_MSR_EFER, 0 };
        struct x86_paging now;

        e->pg.cr0 = reg_read(e, UC_X86_REG_CR0);
        e->pg.cr3 = reg_read(e, UC_X86_REG_CR3);
        e->pg.cr4 = reg_read(e, UC_X86_REG_CR4);
        uc_reg_read(e->uc, UC_X86_REG_MSR, &msr);
        e->pg.efer = msr.value;
        memset(&now, 0, sizeof(now));
        if (e->pg.cr0 & X86_CR0_PG) {
                now.cr0 = X86_CR0_PG;
                now.cr3 = e->pg.cr3;
                now.cr4 = e->pg.cr4 & (X86_CR4_PAE | X86_CR4_PSE | X86_CR4_LA57);
                now.efer = e->pg.efer & X86_EFER_LMA;
        }
        if (!memcmp(&now, &e->pt_cfg, sizeof(now)))
                return;
        if (e->pt_rescan) /* tables written under the old state: what they reach now */
                pt_enumerate(e, &e->pt_cfg);
        e->pt_rescan = false;
        e->pt_cfg = now;
        pt_enumerate(e, &now);
}

/* Write n bytes at linear la through Unicorn (so translated code there is dropped). */
static bool write_linear(struct emu_backend *e, uint64_t la, const void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                uint64_t pa, chunk = PAGE_SIZE - ((la + done) & (PAGE_SIZE - 1));

                if (chunk > n - done)
                        chunk = n - done;
                if (!translate(e, la + done, &pa) || !phys_ok(e, pa, chunk) ||
                    uc_mem_write(e->uc, pa, (const uint8_t *)buf + done, chunk) != UC_ERR_OK)
                        return false;
                wr_note(e, pa, chunk);
                done += chunk;
        }
        return true;
}

/* ---- instructions ------------------------------------------------------------ */

struct insn {
        unsigned kind;
        uint8_t op, imm; /* opcode, and the byte after it */
        bool opsize, adsize, rep;
        int seg;      /* segment override, -1 if none */
        unsigned len; /* prefixes + opcode */
};

/*
 * What a first byte is: a prefix, an opcode of enum kind (or one whose kind
 * the next byte decides: LOOK), or 0 for nothing the backend cares about.
 * One table serves the hot-path filter (interesting) and decode.
 */
#define B_PREFIX 0x80
#define B_LOOK   0x40

static const uint8_t first_byte[256] = {
        [0x26] = B_PREFIX, [0x2e] = B_PREFIX, [0x36] = B_PREFIX, [0x3e] = B_PREFIX,
        [0x64] = B_PREFIX, [0x65] = B_PREFIX, [0x66] = B_PREFIX, [0x67] = B_PREFIX,
        [0xf0] = B_PREFIX, [0xf2] = B_PREFIX, [0xf3] = B_PREFIX, [0x0f] = B_LOOK,
        [0x8e] = B_LOOK, /* MOV CRn/WRMSR/LMSW; MOV SS */
        [0x17] = K_SSLOAD, [0xf4] = K_HLT,    [0xfb] = K_STI,    [0x6c] = K_IO,
        [0x6d] = K_IO,     [0x6e] = K_IO,     [0x6f] = K_IO,     [0xe4] = K_IO,
        [0xe5] = K_IO,     [0xe6] = K_IO,     [0xe7] = K_IO,     [0xec] = K_IO,
        [0xed] = K_IO,     [0xee] = K_IO,     [0xef] = K_IO,
};

/* First bytes worth a closer look: prefixes, REX, and the opcodes of enum kind. */
static bool interesting(uint8_t b)
{
        return first_byte[b] || (b & 0xf0) == 0x40;
}

/*
 * Decode as much as the backend needs.  size is the instruction's length
 * from Unicorn (used to tell a REX prefix from INC/DEC without knowing the
 * mode: only in 64-bit code does 0x40..0x4f start a longer instruction).
 */
static void decode(const uint8_t *p, size_t n, uint64_t size, struct insn *in)
{
        static const int segs[] = {
                [0x26] = HVT_ES + 1, [0x2e] = HVT_CS + 1, [0x36] = HVT_SS + 1,
                [0x3e] = HVT_DS + 1, [0x64] = HVT_FS + 1, [0x65] = HVT_GS + 1
        };
        size_t i = 0;

        memset(in, 0, sizeof(*in));
        in->seg = -1;
        for (; i < n && i < 14; i++) {
                uint8_t b = p[i];

                if (b == 0x66)
                        in->opsize = true;
                else if (b == 0x67)
                        in->adsize = true;
                else if (b == 0xf2 || b == 0xf3)
                        in->rep = true;
                else if (b < sizeof(segs) / sizeof(segs[0]) && segs[b])
                        in->seg = segs[b] - 1;
                else if (!(first_byte[b] & B_PREFIX))
                        break; /* LOCK is the prefix left */
        }
        if (i < n && (p[i] & 0xf0) == 0x40 && size > i + 1 && size <= 15)
                i++; /* REX */
        if (i >= n)
                return;
        in->op = p[i];
        in->imm = i + 1 < n ? p[i + 1] : 0;
        in->len = (unsigned)i + 1;
        switch (in->op) {
        case 0x8e: in->kind = ((in->imm >> 3) & 7) == HVT_SS ? K_SSLOAD : K_OTHER; break;
        case 0x0f:
                /* VMRUN, VMSAVE: QEMU writes the VMCB and host save area unhooked. */
                if (in->imm == 0x01 && i + 2 < n && (p[i + 2] == 0xd8 || p[i + 2] == 0xdb))
                        in->kind = K_UNTRACKED;
                /* MOV CRn, LMSW, WRMSR: the paging mode may change. */
                else if (in->imm == 0x22 || in->imm == 0x30 ||
                         (in->imm == 0x01 && i + 2 < n && ((p[i + 2] >> 3) & 7) == 6))
                        in->kind = K_MODE;
                break;
        default:
                if (!(first_byte[in->op] & (B_PREFIX | B_LOOK)))
                        in->kind = first_byte[in->op];
                break;
        }
}

/* The instruction at linear la (size from Unicorn; -1 if unknown). */
static void insn_at(const struct emu_backend *e, uint64_t la, uint64_t size, struct insn *in)
{
        uint8_t buf[16];
        size_t n = read_linear(e, la, buf, sizeof(buf));

        decode(buf, n, size, in);
}

/* ---- the hooks ------------------------------------------------------------------ */

static void stop_at(struct emu_backend *e, enum stop why, uint64_t linear)
{
        e->stop = why;
        e->stop_linear = linear;
        uc_emu_stop(e->uc);
}

static void stop_exit(struct emu_backend *e, uint16_t reason, uint64_t linear)
{
        e->x->reason = reason;
        stop_at(e, STOP_EXIT, linear);
}

static uint64_t next_random(struct emu_backend *e)
{
        e->rng ^= e->rng >> 12;
        e->rng ^= e->rng << 25;
        e->rng ^= e->rng >> 27;
        return e->rng * 2685821657736338717ull;
}

/* 50%..150% of the nominal instruction count of usec. */
static void arm_budget(struct emu_backend *e)
{
        uint64_t n = e->budget_usec * INSNS_PER_US;

        e->budget = n / 2 + next_random(e) % (n + 1);
        if (!e->budget)
                e->budget = 1;
        e->budget_used = 0;
}

/* The instruction that began at the last boundary has completed. */
static void retire(struct emu_backend *e)
{
        e->prev_valid = false;
        e->insns++;
        e->budget_used++;
        switch (e->prev_kind) {
        case K_STI: e->shadow = e->prev_if ? 0 : HVT_INTR_STI_SHADOW; break;
        case K_SSLOAD:
                /* Of consecutive SS loads only the first makes a shadow. */
                e->shadow =
                        (e->prev_shadow & HVT_INTR_MOVSS_SHADOW) ? 0 : HVT_INTR_MOVSS_SHADOW;
                break;
        case K_MODE:
                mode_refresh(e);
                e->shadow = 0;
                break;
        case K_UNTRACKED:
                e->wr_lost = -ENOTSUP;
                e->shadow = 0;
                break;
        default: e->shadow = 0; break;
        }
}

static void begin_insn(struct emu_backend *e, unsigned kind, bool if_set)
{
        e->prev_valid = true;
        e->prev_kind = (uint8_t)kind;
        e->prev_if = if_set;
        e->prev_shadow = e->shadow;
}

static uint64_t mask_bits(unsigned bits)
{
        return bits == 64 ? ~0ull : (1ull << bits) - 1;
}

/*
 * While the pending instruction completes: false as long as the hook is
 * still inside it (its first boundary, further REP iterations), true at
 * the boundary after it.
 */
static bool completion_over(struct emu_backend *e, uint64_t addr)
{
        if (!e->cstarted) {
                if (addr != e->pend_linear) {
                        /* Not where it was reported (cannot happen): forget it. */
                        e->completing = false;
                        e->pend = PEND_NONE;
                        return true;
                }
                e->cstarted = true;
                begin_insn(e, e->pend == PEND_IO ? K_IO : K_OTHER, false);
                return false;
        }
        if (e->pend == PEND_IO && addr == e->pend_linear) {
                if (e->io.done < e->io.count)
                        return false; /* the next iteration of a REP INS/OUTS */
                if (e->io.rep && !(reg_read(e, UC_X86_REG_RCX) & mask_bits(e->io.addr_bits)))
                        return false; /* the REP's last check of rCX: nothing left */
        }
        e->completing = false;
        e->pend = PEND_NONE;
        retire(e);
        return true;
}

static void on_insn(uc_engine *uc, uint64_t addr, uint32_t size, void *user)
{
        struct emu_backend *e = user;
        struct insn in;
        bool if_set = false;

        (void)uc;
        if (e->stop != STOP_NONE) {
                uc_emu_stop(e->uc);
                return;
        }
        /*
         * A store into the translation block being executed (code the
         * instruction itself or one before or after it in the block) makes
         * QEMU abandon the instruction before the store, restore RIP, and
         * run it again, alone in a new block: this hook runs a second time
         * for the same boundary.  That is no new instruction: counting it
         * as one would end a single-step there every time, forever.  What
         * tells it from an instruction that legitimately comes back to
         * itself: a REP string iteration has decremented rCX, a CALL to
         * itself has moved rSP, and a branch to itself stores nothing.
         * (QEMU's x86 code writes registers only after an instruction's
         * stores, so that a faulting store leaves them unchanged: rCX and rSP
         * at the first store are those at the boundary.)  The bytes that
         * run then, and after, are the new ones.
         */
        if (e->prev_valid && addr == e->cur && e->wr_attempt &&
            reg_read(e, UC_X86_REG_RCX) == e->wr_rcx && reg_read(e, UC_X86_REG_RSP) == e->wr_rsp) {
                e->wr_attempt = false;
                return;
        }
        e->wr_attempt = false;
        e->cur = addr;
        e->cur_len = size;
        if (e->completing) {
                if (!completion_over(e, addr))
                        return;
                if (e->stop_after) {
                        stop_at(e, STOP_COMPLETED, addr);
                        return;
                }
        }
        if (e->prev_valid)
                retire(e);

        /* Stops between instructions. */
        if (e->kick_req) {
                stop_exit(e, HVT_EXIT_INTR, addr);
                return;
        }
        if (e->single_step && e->insns) {
                stop_exit(e, HVT_EXIT_DEBUG, addr);
                return;
        }
        if (e->budget_on && e->budget_used >= e->budget) {
                e->x->kicked = true;
                arm_budget(e);
                stop_exit(e, HVT_EXIT_INTR, addr);
                return;
        }
        if (e->window && !e->shadow && (reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF)) {
                stop_exit(e, HVT_EXIT_IRQ_WINDOW, addr);
                return;
        }

        /* Stops before an instruction, and what it will do to the shadow. */
        {
                uint64_t pa;

                /* The fast path: most first bytes say nothing interesting follows. */
                in.kind = K_OTHER;
                if (!translate(e, addr, &pa) || !phys_ok(e, pa, 1) || interesting(e->base.mem[pa]))
                        insn_at(e, addr, size, &in);
        }
        switch (in.kind) {
        case K_IO: stop_at(e, STOP_IO, addr); return;
        case K_HLT: stop_at(e, STOP_HLT, addr); return;
        case K_STI: if_set = reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF; break;
        default: break;
        }
        begin_insn(e, in.kind, if_set);
}

/*
 * Whether a store to linear [la, la + n) may land in the translation block
 * being executed: one holding the current instruction spans at most the
 * page before it, its own and the next.  With real paging a store through
 * another mapping of the same page may too.
 */
static bool may_hit_block(const struct emu_backend *e, uint64_t la, uint64_t n)
{
        uint64_t page = e->cur & PAGE_MASK, lo = page ? page - PAGE_SIZE : 0;

        if (!e->identity && (e->pg.cr0 & X86_CR0_PG))
                return true;
        return la + n > lo && la < page + 2 * PAGE_SIZE;
}

/* Before every store to any address (RAM, MMIO or a scratch page). */
static void on_write(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                     void *user)
{
        struct emu_backend *e = user;
        uint64_t n = size > 0 ? (uint64_t)size : 1;

        (void)uc;
        (void)type;
        (void)value;
        /* What on_insn needs to tell a re-run instruction (only a store into code makes one). */
        if (!e->wr_attempt && may_hit_block(e, addr, n)) {
                e->wr_attempt = true;
                e->wr_rcx = reg_read(e, UC_X86_REG_RCX);
                e->wr_rsp = reg_read(e, UC_X86_REG_RSP);
        }
        wr_note_linear(e, addr, n);
}

static uint32_t on_in(uc_engine *uc, uint32_t port, int size, void *user)
{
        struct emu_backend *e = user;
        uint32_t v = 0xffffffff;

        (void)uc;
        (void)port;
        if (e->completing && e->pend == PEND_IO && e->io.dir == HVT_IO_IN &&
            e->io.done < e->io.count && (unsigned)size == e->io.size) {
                v = 0;
                memcpy(&v, e->io_data + (size_t)e->io.done * e->io.size, e->io.size);
                e->io.done++;
        }
        return v;
}

static void on_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user)
{
        struct emu_backend *e = user;

        (void)uc;
        (void)port;
        (void)size;
        (void)value;
        if (e->completing && e->pend == PEND_IO && e->io.dir == HVT_IO_OUT &&
            e->io.done < e->io.count)
                e->io.done++;
}

static bool on_unmapped(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                        void *user)
{
        struct emu_backend *e = user;
        uint64_t v = (uint64_t)value;

        (void)uc;
        if (e->stop != STOP_NONE)
                return false;
        if (type != UC_MEM_READ_UNMAPPED && type != UC_MEM_WRITE_UNMAPPED) {
                e->fault_addr = addr; /* a fetch outside RAM: an internal error */
                return false;
        }
        memset(&e->mmio, 0, sizeof(e->mmio));
        e->mmio.addr = addr;
        e->mmio.len = size < 1 ? 1 : size > 8 ? 8 : (uint32_t)size;
        e->mmio.is_write = type == UC_MEM_WRITE_UNMAPPED;
        if (e->mmio.is_write)
                memcpy(e->mmio.data, &v, e->mmio.len);
        e->stop = STOP_MMIO;
        e->stop_linear = e->cur;
        e->prev_valid = false; /* the instruction runs again once the access is served */
        return false;
}

static void on_intr(uc_engine *uc, uint32_t intno, void *user)
{
        struct emu_backend *e = user;

        if (e->stop == STOP_NONE) {
                e->exc_vector = intno;
                e->stop = STOP_EXCEPTION;
                e->stop_linear = e->cur;
                e->prev_valid = false;
        }
        uc_emu_stop(uc);
}

static bool on_invalid(uc_engine *uc, void *user)
{
        on_intr(uc, X86_EXC_UD, user);
        return true;
}

/* ---- interrupt and exception delivery ---------------------------------------------- */

enum deliver_result { DELIVERED, FAULTED, UNSUPPORTED };

struct fault {
        unsigned vector;
        uint32_t error;
};

static enum deliver_result fault(struct fault *f, unsigned vector, uint32_t error)
{
        f->vector = vector;
        f->error = error;
        return FAULTED;
}

/* A code segment descriptor from the GDT for an interrupt's target CS. */
static enum deliver_result load_code_desc(struct emu_backend *e, uint16_t sel, unsigned cpl,
                                          bool want64, struct qseg *cs, struct fault *f)
{
        uint64_t gbase = env_u64(e, ENV_GDT + 8);
        uint32_t glimit = env_u32(e, ENV_GDT + 16), hi;
        uint16_t at = sel & X86_SEL_INDEX, err = sel & (uint16_t)~X86_SEL_RPL;
        uint8_t d[8];
        unsigned dpl;

        if (sel & X86_SEL_TI)
                return UNSUPPORTED; /* LDT */
        if (!at || (uint32_t)at + 7 > glimit || read_linear(e, gbase + at, d, 8) != 8)
                return fault(f, X86_EXC_GP, err);
        hi = x86_desc_hi(d);
        if (!(hi & X86_DESC_S) || !(hi & (X86_TYPE_CODE << X86_DESC_TYPE_SHIFT)))
                return fault(f, X86_EXC_GP, err); /* not a code segment */
        dpl = (hi >> X86_DESC_DPL_SHIFT) & 3;
        if (dpl > cpl)
                return fault(f, X86_EXC_GP, err);
        if (dpl < cpl && !(hi & (X86_TYPE_CONFORMING << X86_DESC_TYPE_SHIFT)))
                return UNSUPPORTED; /* a privilege change needs a stack switch */
        if (!(hi & X86_DESC_P))
                return fault(f, X86_EXC_NP, err);
        if (want64 && (!(hi & X86_DESC_L) || (hi & X86_DESC_DB)))
                return fault(f, X86_EXC_GP, err);
        if (!(hi & (X86_TYPE_ACCESSED << X86_DESC_TYPE_SHIFT))) {
                /* Set the accessed bit, as the CPU does. */
                uint8_t b = d[5] | X86_TYPE_ACCESSED;

                write_linear(e, gbase + at + 5, &b, 1);
        }
        memset(cs, 0, sizeof(*cs));
        cs->selector = (uint32_t)(err | cpl);
        cs->base = x86_desc_base(d);
        cs->limit = x86_desc_limit(d);
        cs->flags = hi & X86_DESC_ATTRS;
        return DELIVERED;
}

/* Exceptions whose frame has an error code (outside real mode). */
static bool pushes_error(unsigned v)
{
        return v == X86_EXC_DF || (v >= X86_EXC_TS && v <= X86_EXC_PF) || v == X86_EXC_AC ||
               v == X86_EXC_CP;
}

/*
 * Push an interrupt frame of `bits` below *sp on stack s: slots [0, n) of
 * vals (enum x86_frame_slot order), each the frame's width, and under them
 * the error code *err unless err is NULL.  All or nothing (little-endian
 * host); a frame that does not fit is #SS.
 */
static enum deliver_result push_frame(struct emu_backend *e, const struct x86_stack *s,
                                      uint64_t *sp, unsigned bits, const uint64_t *vals, unsigned n,
                                      const uint64_t *err, struct fault *f)
{
        uint64_t nsp = x86_stack_move(s, *sp, -(int64_t)x86_frame_size(bits, err != NULL, n));
        unsigned w = bits / 8;
        uint8_t probe[8];

        /* Slot by slot, top down: a 16-bit SP wraps inside the segment between two. */
        for (int pass = 0; pass < 2; pass++) {
                for (unsigned k = n + 1; k-- > 0;) {
                        const uint64_t *v = k ? &vals[k - 1] : err;
                        uint64_t la;

                        if (!v)
                                continue;
                        la = x86_stack_la(s, nsp,
                                          k ? x86_frame_slot(bits, err != NULL, k - 1).off : 0);
                        if (pass ? !write_linear(e, la, v, w) : read_linear(e, la, probe, w) != w)
                                return fault(f, X86_EXC_SS, 0);
                }
        }
        *sp = nsp;
        return DELIVERED;
}

/* Enter the handler: CS:RIP, RSP and RFLAGS as the delivery left them. */
static enum deliver_result enter(struct emu_backend *e, const struct qseg *cs, uint64_t rip,
                                 uint64_t rsp, uint64_t rflags)
{
        env_put_seg(e, HVT_CS, cs);
        env_put64(e, ENV_EIP, rip);
        env_put64(e, ENV_REGS + 8 * 4, rsp);
        env_put32(e, ENV_HFLAGS, hflags_for(e, rflags));
        env_put32(e, e->dr_off + DR_OLD_EXC, 0xffffffffu); /* delivered: none in flight */
        if (snap_put(e))
                return UNSUPPORTED;
        reg_write(e, UC_X86_REG_RFLAGS, rflags);
        return DELIVERED;
}

/*
 * Deliver `vector` through the IVT or IDT at the current RIP (already the
 * return address), the way the current mode does.  Only same-privilege
 * delivery is supported (ring-0 guests); task gates, LDT selectors and IST
 * stacks are reported as UNSUPPORTED rather than approximated.
 */
static enum deliver_result deliver(struct emu_backend *e, unsigned vector, enum event type,
                                   uint32_t error, struct fault *f)
{
        uint64_t cr0 = env_u64(e, ENV_CR), efer = env_u64(e, ENV_EFER);
        uint64_t idt = env_u64(e, ENV_IDT + 8), rip = env_u64(e, ENV_EIP), at;
        uint32_t idt_limit = env_u32(e, ENV_IDT + 16), hf = env_u32(e, ENV_HFLAGS);
        uint64_t rflags = reg_read(e, UC_X86_REG_RFLAGS), rsp = env_u64(e, ENV_REGS + 8 * 4);
        unsigned mode = x86_mode(cr0, efer), cpl = hf & HF_CPL_MASK, size = x86_gate_size(mode);
        /* A fault on the gate names it: vector, IDT, and whether the event was external. */
        uint32_t gate_err = vector * 8 + X86_ERRC_IDT + (type == EV_EXT ? X86_ERRC_EXT : 0);
        uint64_t vals[X86_FRAME_SLOTS] = { 0 }, err = error;
        bool has_err = mode != HVT_MODE_REAL && type == EV_FAULT && pushes_error(vector);
        struct x86_stack stack;
        struct qseg cs, ss, ncs;
        enum deliver_result r;
        struct x86_gate g;
        uint8_t raw[16];

        env_seg(e, HVT_CS, &cs);
        env_seg(e, HVT_SS, &ss);
        if (!x86_gate_addr(mode, idt, idt_limit, vector, &at) ||
            read_linear(e, at, raw, size) != size)
                return fault(f, X86_EXC_GP, gate_err);
        x86_gate_decode(mode, raw, &g);
        if (mode == HVT_MODE_REAL) {
                vals[X86_FRAME_IP] = rip & 0xffff;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags & 0xffff;
                stack = (struct x86_stack){ .base = ss.base, .mask = 0xffff };
                r = push_frame(e, &stack, &rsp, 16, vals, 3, NULL, f);
                if (r != DELIVERED)
                        return r;
                cs.selector = g.selector;
                cs.base = (uint64_t)g.selector << 4;
                rflags &= ~(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF);
                return enter(e, &cs, g.offset, rsp, rflags);
        }
        if (mode == HVT_MODE_PROTECTED && g.type == X86_GATE_TASK)
                return UNSUPPORTED;
        if (!g.bits)
                return fault(f, X86_EXC_GP, gate_err); /* no interrupt or trap gate */
        if (type == EV_SOFT && g.dpl < cpl)
                return fault(f, X86_EXC_GP, vector * 8 + X86_ERRC_IDT);
        if (!g.present)
                return fault(f, X86_EXC_NP, gate_err);
        if (g.ist)
                return UNSUPPORTED; /* IST stack */
        r = load_code_desc(e, g.selector, cpl, mode == HVT_MODE_LONG, &ncs, f);
        if (r != DELIVERED)
                return r;
        if (mode == HVT_MODE_PROTECTED) {
                uint64_t wmask = g.bits == 32 ? 0xffffffffull : 0xffff;

                if (g.offset > ncs.limit)
                        return fault(f, X86_EXC_GP, 0);
                vals[X86_FRAME_IP] = rip & wmask;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags & wmask;
                stack = (struct x86_stack){
                        .base = ss.base,
                        .mask = (ss.flags & X86_DESC_DB) ? 0xffffffffull : 0xffff,
                };
                r = push_frame(e, &stack, &rsp, g.bits, vals, 3, has_err ? &err : NULL, f);
        } else {
                vals[X86_FRAME_IP] = rip;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags;
                vals[X86_FRAME_SP] = rsp;
                vals[X86_FRAME_SS] = ss.selector;
                stack = (struct x86_stack){ .base = 0, .mask = ~0ull };
                rsp &= ~0xfull; /* the CPU aligns the stack before the frame */
                r = push_frame(e, &stack, &rsp, 64, vals, x86_frame_slots(64, false, false),
                               has_err ? &err : NULL, f);
        }
        if (r != DELIVERED)
                return r;
        rflags &= ~(X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM);
        if (!g.trap)
                rflags &= ~X86_RFLAGS_IF;
        return enter(e, &ncs, g.offset, rsp, rflags);
}

static bool contributory(unsigned v)
{
        return v == 0 || (v >= X86_EXC_TS && v <= X86_EXC_GP); /* #DE, #TS, #NP, #SS, #GP */
}

/*
 * Deliver an event, escalating faults met on the way as the CPU does
 * (benign then the new fault; contributory or #PF twice: #DF; a fault
 * delivering #DF: shutdown).  Returns 0 when the guest took it, else fills
 * the exit that ends the run (shutdown, or an exception this backend
 * cannot deliver).
 */
static int raise_event(struct emu_backend *e, unsigned vector, enum event type, uint32_t error,
                       struct backend_exit *x)
{
        for (int round = 0; round < 4; round++) {
                struct fault f = { 0 };
                enum deliver_result r;

                if (snap_get(e))
                        break;
                r = deliver(e, vector, type, error, &f);
                if (r == DELIVERED) {
                        e->shadow = 0;
                        e->prev_valid = false;
                        return 0;
                }
                if (r == UNSUPPORTED) {
                        x->reason = HVT_EXIT_EXCEPTION;
                        x->raw = HVT_EXIT_EXCEPTION;
                        x->u.exception.vector = vector;
                        x->u.exception.error_code = error;
                        x->u.exception.cr2 = reg_read(e, UC_X86_REG_CR2);
                        return 1;
                }
                if (vector == X86_EXC_DF)
                        break;
                if (type == EV_FAULT && (contributory(vector) || vector == X86_EXC_PF) &&
                    (contributory(f.vector) || (vector == X86_EXC_PF && f.vector == X86_EXC_PF))) {
                        vector = X86_EXC_DF;
                        error = 0;
                } else {
                        vector = f.vector;
                        error = f.error;
                }
                type = EV_FAULT;
        }
        x->reason = HVT_EXIT_SHUTDOWN;
        x->raw = HVT_EXIT_SHUTDOWN;
        return 1;
}

/* ---- state ----------------------------------------------------------------------- */

/* RIP for linear address la in the current code segment. */
static uint64_t rip_of(const struct emu_backend *e, uint64_t la)
{
        uint32_t hf = env_u32(e, ENV_HFLAGS);
        struct qseg cs;

        if (hf & HF_CS64)
                return la;
        env_seg(e, HVT_CS, &cs);
        return (la - cs.base) & ((hf & HF_CS32) ? 0xffffffffull : 0xffff);
}

/*
 * Put RIP at linear la.  Unicorn's code hook leaves the linear address in
 * EIP (wrong whenever the CS base is not 0): every stop in the hook goes
 * through here.
 */
static int set_rip_linear(struct emu_backend *e, uint64_t la)
{
        uint64_t rip;

        if (snap_get(e))
                return -EIO;
        rip = rip_of(e, la);
        if (env_u64(e, ENV_EIP) != rip) {
                env_put64(e, ENV_EIP, rip);
                return snap_put(e);
        }
        return 0;
}

static uint64_t intr_bits(const struct emu_backend *e, uint64_t rflags)
{
        uint64_t intr = HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY | HVT_INTR_VALID_IF |
                        HVT_INTR_VALID_PENDING | e->shadow;

        if (rflags & X86_RFLAGS_IF)
                intr |= HVT_INTR_IF;
        if (e->queued)
                intr |= HVT_INTR_PENDING;
        if ((rflags & X86_RFLAGS_IF) && !e->shadow && !e->queued)
                intr |= HVT_INTR_READY;
        if (e->window)
                intr |= HVT_INTR_WINDOW_REQ;
        return intr;
}

static int emu_get_state(struct backend *b, struct hvt_vcpu_state *st)
{
        struct emu_backend *e = to_emu(b);
        bool pe;

        if (snap_get(e))
                return -EIO;
        memset(st, 0, sizeof(*st));
        memcpy(st->gpr, e->env + ENV_REGS, sizeof(st->gpr));
        st->rip = env_u64(e, ENV_EIP);
        st->rflags = reg_read(e, UC_X86_REG_RFLAGS);
        st->cr0 = env_u64(e, ENV_CR);
        st->cr2 = env_u64(e, ENV_CR + 16);
        st->cr3 = env_u64(e, ENV_CR + 24);
        st->cr4 = env_u64(e, ENV_CR + 32);
        st->efer = env_u64(e, ENV_EFER);
        pe = st->cr0 & X86_CR0_PE;
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                struct qseg s;

                env_seg(e, i, &s);
                st->seg[i].selector = (uint16_t)s.selector;
                st->seg[i].base = s.base;
                st->seg[i].limit = s.limit;
                st->seg[i].attr = attr_of(s.flags, pe);
        }
        st->gdt.base = env_u64(e, ENV_GDT + 8);
        st->gdt.limit = (uint16_t)env_u32(e, ENV_GDT + 16);
        st->idt.base = env_u64(e, ENV_IDT + 8);
        st->idt.limit = (uint16_t)env_u32(e, ENV_IDT + 16);
        st->intr = intr_bits(e, st->rflags);
        return 0;
}

static int emu_set_state(struct backend *b, const struct hvt_vcpu_state *st)
{
        struct emu_backend *e = to_emu(b);
        uint64_t rflags = st->rflags | 2;

        if (snap_get(e))
                return -EIO;
        if ((st->efer & X86_EFER_LMA) && (!(st->cr0 & X86_CR0_PG) || !(st->cr4 & X86_CR4_PAE)))
                return -EINVAL; /* long mode needs paging with PAE */
        memcpy(e->env + ENV_REGS, st->gpr, sizeof(st->gpr));
        env_put64(e, ENV_EIP, st->rip);
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                struct qseg s;

                memset(&s, 0, sizeof(s));
                s.selector = st->seg[i].selector;
                s.base = st->seg[i].base;
                s.limit = st->seg[i].limit;
                s.flags = flags_of(st->seg[i].attr);
                env_put_seg(e, i, &s);
        }
        env_put64(e, ENV_CR, st->cr0);
        env_put64(e, ENV_CR + 16, st->cr2);
        env_put64(e, ENV_CR + 24, st->cr3);
        env_put64(e, ENV_CR + 32, st->cr4);
        env_put64(e, ENV_EFER, st->efer);
        env_put64(e, ENV_GDT + 8, st->gdt.base);
        env_put32(e, ENV_GDT + 16, st->gdt.limit);
        env_put64(e, ENV_IDT + 8, st->idt.base);
        env_put32(e, ENV_IDT + 16, st->idt.limit);
        env_put32(e, ENV_HFLAGS, hflags_for(e, rflags));
        if (snap_put(e))
                return -EIO;
        reg_write(e, UC_X86_REG_RFLAGS, rflags);
        /* Translations made under the old state must go. */
        uc_ctl_flush_tlb(e->uc);
        if (e->ran &&
            uc_mem_map_ptr(e->uc, e->flush_at, PAGE_SIZE, UC_PROT_ALL, e->scratch) == UC_ERR_OK)
                uc_mem_unmap(e->uc, e->flush_at, PAGE_SIZE);
        e->shadow = (st->intr & HVT_INTR_VALID_SHADOW)
                            ? st->intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW)
                            : 0;
        if (e->shadow == (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW))
                e->shadow = HVT_INTR_MOVSS_SHADOW;
        e->pend = PEND_NONE;
        e->ndone = 0;
        e->prev_valid = false;
        mode_refresh(e);
        return 0;
}

/* ---- exits ----------------------------------------------------------------------- */

static void exit_internal(struct emu_backend *e, struct backend_exit *x, uc_err err, uint64_t addr)
{
        x->reason = HVT_EXIT_INTERNAL;
        x->raw = (uint32_t)err;
        x->u.internal.suberror = 1; /* emulation failure */
        x->u.internal.ndata = 3;
        x->u.internal.data[0] = (uint64_t)err;
        x->u.internal.data[1] = addr;
        x->u.internal.data[2] = reg_read(e, UC_X86_REG_RIP);
}

static unsigned code_bits(const struct emu_backend *e)
{
        uint32_t hf = env_u32(e, ENV_HFLAGS);

        return (hf & HF_CS64) ? 64 : (hf & HF_CS32) ? 32 : 16;
}

/*
 * The I/O exit for the instruction at linear la, not yet executed.
 * Returns false for a REP with a zero count: no I/O, no exit.
 */
static bool io_exit(struct emu_backend *e, uint64_t la, struct backend_exit *x)
{
        unsigned bits = code_bits(e), opbits, adbits;
        uint64_t rcx, rsi;
        struct insn in;

        insn_at(e, la, e->cur_len, &in);
        opbits = bits == 16 ? (in.opsize ? 32 : 16) : (in.opsize ? 16 : 32);
        adbits = bits == 64   ? (in.adsize ? 32 : 64)
                 : bits == 32 ? (in.adsize ? 16 : 32)
                              : (in.adsize ? 32 : 16);
        memset(&e->io, 0, sizeof(e->io));
        e->io.size = (in.op & 1) ? (uint8_t)(opbits / 8) : 1;
        e->io.addr_bits = (uint8_t)adbits;
        e->io.dir = (in.op == 0xe4 || in.op == 0xe5 || in.op == 0xec || in.op == 0xed ||
                     in.op == 0x6c || in.op == 0x6d)
                            ? HVT_IO_IN
                            : HVT_IO_OUT;
        e->io.port =
                (in.op >= 0xe4 && in.op <= 0xe7) ? in.imm : (uint16_t)env_u64(e, ENV_REGS + 8 * 2);
        e->io.count = 1;
        if (in.op >= 0x6c && in.op <= 0x6f && in.rep) {
                e->io.rep = true;
                rcx = env_u64(e, ENV_REGS + 8 * 1) & mask_bits(adbits);
                if (!rcx) {
                        e->io.count = 0; /* runs without any I/O: no exit */
                        e->pend = PEND_IO;
                        e->pend_linear = la;
                        return false;
                }
                e->io.count = rcx > IO_BUF / e->io.size ? IO_BUF / e->io.size : (uint32_t)rcx;
        }
        memset(e->io_data, 0xff, sizeof(e->io_data));
        if (e->io.dir == HVT_IO_OUT && (in.op == 0x6e || in.op == 0x6f)) {
                /* OUTS: the data comes from seg:rSI, up or down by DF. */
                unsigned sreg = in.seg >= 0 ? (unsigned)in.seg : HVT_DS;
                bool down = reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF;
                struct qseg s;

                env_seg(e, sreg, &s);
                if (bits == 64 && sreg != HVT_FS && sreg != HVT_GS)
                        s.base = 0;
                rsi = env_u64(e, ENV_REGS + 8 * 6);
                for (uint32_t i = 0; i < e->io.count; i++) {
                        uint64_t off = (rsi + (down ? -(uint64_t)i : (uint64_t)i) * e->io.size) &
                                       mask_bits(adbits);

                        read_linear(e, s.base + off, e->io_data + (size_t)i * e->io.size,
                                    e->io.size);
                }
        } else if (e->io.dir == HVT_IO_OUT) {
                memcpy(e->io_data, e->env + ENV_REGS, e->io.size); /* AL, AX or EAX */
        } else {
                memset(e->io_data, 0, (size_t)e->io.count * e->io.size);
        }
        e->pend = PEND_IO;
        e->pend_linear = la;
        x->reason = HVT_EXIT_IO;
        x->raw = HVT_EXIT_IO;
        x->u.io.port = e->io.port;
        x->u.io.size = e->io.size;
        x->u.io.dir = e->io.dir;
        x->u.io.count = e->io.count;
        x->u.io.data = e->io_data;
        return true;
}

static void mmio_exit(struct emu_backend *e, struct backend_exit *x)
{
        e->pend = PEND_MMIO;
        e->pend_linear = e->stop_linear;
        x->reason = HVT_EXIT_MMIO;
        x->raw = HVT_EXIT_MMIO;
        x->u.mmio.addr = e->mmio.addr;
        x->u.mmio.len = e->mmio.len;
        x->u.mmio.is_write = e->mmio.is_write;
        x->u.mmio.data = e->mmio.data;
}

/* Map scratch pages holding the served accesses of the pending MMIO instruction. */
static int scratch_map(struct emu_backend *e)
{
        e->nscratch = 0;
        for (unsigned i = 0; i < e->ndone; i++) {
                const struct mmio_access *a = &e->done[i];

                for (uint64_t p = a->addr & PAGE_MASK; p < a->addr + a->len; p += PAGE_SIZE) {
                        unsigned k = 0;

                        while (k < e->nscratch && e->scratch_at[k] != p)
                                k++;
                        if (k < e->nscratch)
                                continue;
                        if (k == MMIO_MAX || p < e->base.mem_size)
                                return -1;
                        memset(e->scratch + k * PAGE_SIZE, 0xff, PAGE_SIZE);
                        if (uc_mem_map_ptr(e->uc, p, PAGE_SIZE, UC_PROT_ALL,
                                           e->scratch + k * PAGE_SIZE) != UC_ERR_OK)
                                return -1;
                        e->scratch_at[e->nscratch++] = p;
                }
        }
        /* Reads find their data; the page must look the same afterwards, writes aside. */
        for (int pass = 0; pass < 2; pass++) {
                for (unsigned i = 0; i < e->ndone; i++) {
                        const struct mmio_access *a = &e->done[i];

                        for (uint32_t j = 0; j < a->len; j++) {
                                uint64_t at = a->addr + j;

                                for (unsigned k = 0; k < e->nscratch; k++) {
                                        if ((at & PAGE_MASK) != e->scratch_at[k])
                                                continue;
                                        size_t o = k * PAGE_SIZE + (at & 0xfff);

                                        if (pass == 0 && !a->is_write)
                                                e->scratch[o] = a->data[j];
                                        if (pass == 1 && a->is_write)
                                                e->expect[o] = a->data[j];
                                }
                        }
                }
                if (pass == 0)
                        memcpy(e->expect, e->scratch, e->nscratch * PAGE_SIZE);
        }
        return 0;
}

/*
 * Unmap the scratch pages.  A write the instruction made to them beyond the
 * served accesses (the write of a read-modify-write) becomes an MMIO write
 * exit after the instruction: true then, with x filled.
 */
static bool scratch_unmap(struct emu_backend *e, struct backend_exit *x)
{
        bool extra = false;

        for (unsigned k = 0; k < e->nscratch; k++) {
                uint8_t *now = e->scratch + k * PAGE_SIZE, *want = e->expect + k * PAGE_SIZE;

                uc_mem_unmap(e->uc, e->scratch_at[k], PAGE_SIZE);
                if (extra || !x || !memcmp(now, want, PAGE_SIZE))
                        continue;
                for (unsigned j = 0; j < PAGE_SIZE; j++) {
                        unsigned n = 0;

                        if (now[j] == want[j])
                                continue;
                        while (n < 8 && j + n < PAGE_SIZE && now[j + n] != want[j + n])
                                n++;
                        memset(&e->mmio, 0, sizeof(e->mmio));
                        e->mmio.addr = e->scratch_at[k] + j;
                        e->mmio.len = n;
                        e->mmio.is_write = true;
                        memcpy(e->mmio.data, now + j, n);
                        x->reason = HVT_EXIT_MMIO;
                        x->raw = HVT_EXIT_MMIO;
                        x->u.mmio.addr = e->mmio.addr;
                        x->u.mmio.len = n;
                        x->u.mmio.is_write = true;
                        x->u.mmio.data = e->mmio.data;
                        extra = true;
                        break;
                }
        }
        e->nscratch = 0;
        return extra;
}

/* Leave the completion of the pending instruction (stopped for another reason). */
static void completion_abort(struct emu_backend *e)
{
        e->completing = false;
        scratch_unmap(e, NULL);
}

/* An exception raised by the instruction at stop_linear: deliver it. */
static int on_exception(struct emu_backend *e, struct backend_exit *x)
{
        unsigned v = e->exc_vector;
        uint64_t la = e->stop_linear, ret;
        enum event type = EV_FAULT;
        struct insn in;

        if (snap_get(e))
                return -EIO;
        if (v > 255) {
                exit_internal(e, x, UC_ERR_EXCEPTION, v);
                return 1;
        }
        insn_at(e, la, e->cur_len, &in);
        if ((in.op == 0xcd && in.imm == v) || (in.op == 0xcc && v == X86_EXC_BP) ||
            (in.op == 0xce && v == X86_EXC_OF) || (in.op == 0xf1 && v == X86_EXC_DB)) {
                type = EV_SOFT; /* INT n, INT3, INTO, INT1: return past the instruction */
                ret = rip_of(e, la + in.len + (in.op == 0xcd ? 1 : 0));
                e->insns++;
                e->budget_used++;
        } else {
                /*
                 * Unicorn leaves RIP at the faulting instruction (as its linear
                 * address or its offset) for a fault the last boundary's
                 * instruction raised; anything else is a fault raised before the
                 * next boundary (fetching the next instruction) or a trap (#DB
                 * after TF): then RIP already says where to return.
                 */
                ret = env_u64(e, ENV_EIP);
                if (ret == la || ret == rip_of(e, la))
                        ret = rip_of(e, la);
        }
        if (e->completing)
                completion_abort(e);
        e->pend = PEND_NONE;
        env_put64(e, ENV_EIP, ret);
        if (snap_put(e))
                return -EIO;
        /* The error code QEMU computed (#GP, #PF, ...): pushed where the vector has one. */
        return raise_event(e, v, type, env_u32(e, e->dr_off + DR_ERROR_CODE), x);
}

/* The run loop: emulate until a stop that is an exit. */
static int run_until_exit(struct emu_backend *e, struct backend_exit *x)
{
        for (;;) {
                uint64_t rip;
                uc_err err;
                int r;

                if (snap_get(e))
                        return -EIO;
                rip = env_u64(e, ENV_EIP);
                e->stop = STOP_NONE;
                e->fault_addr = 0;
                e->wr_attempt = false;
                err = uc_emu_start(e->uc, rip, 0, 0, 0);
                e->snap = false;
                e->ran = true;

                switch (e->stop) {
                case STOP_EXIT:
                        if (set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        x->raw = x->reason;
                        if (x->reason == HVT_EXIT_INTR && !x->kicked)
                                e->kick_req = 0;
                        if (x->reason == HVT_EXIT_DEBUG) {
                                x->u.debug.exception = 1;
                                x->u.debug.pc = e->stop_linear;
                                x->u.debug.dr6 = X86_DR6_FIXED | X86_DR6_BS;
                                x->u.debug.dr7 = X86_DR7_FIXED;
                        }
                        return 0;
                case STOP_IO:
                        if (set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        if (io_exit(e, e->stop_linear, x))
                                return 0;
                        /* REP with rCX = 0: it runs, as a completion with nothing to move. */
                        e->completing = true;
                        e->cstarted = false;
                        e->stop_after = false;
                        continue;
                case STOP_HLT:
                        /* HLT executes here: the exit has RIP past it, like KVM's. */
                        if (set_rip_linear(e, e->stop_linear + e->cur_len))
                                return -EIO;
                        e->insns++;
                        e->budget_used++;
                        e->shadow = 0;
                        x->reason = HVT_EXIT_HLT;
                        x->raw = HVT_EXIT_HLT;
                        return 0;
                case STOP_MMIO:
                        /* Unicorn rolled the instruction back; EIP may hold its linear address. */
                        if (set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        if (e->completing)
                                completion_abort(e); /* another access: served next time too */
                        else
                                e->ndone = 0;
                        mmio_exit(e, x);
                        return 0;
                case STOP_EXCEPTION:
                        r = on_exception(e, x);
                        if (r)
                                return r < 0 ? r : 0;
                        if (e->kick_req) {
                                /* An exception storm must not outlast --timeout or ^C. */
                                e->kick_req = 0;
                                x->reason = HVT_EXIT_INTR;
                                x->raw = HVT_EXIT_INTR;
                                return 0;
                        }
                        continue;
                case STOP_COMPLETED:
                        if (set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        if (scratch_unmap(e, x))
                                return 0;
                        e->ndone = 0;
                        if (e->kick_req) {
                                e->kick_req = 0;
                                x->reason = HVT_EXIT_INTR;
                                x->raw = HVT_EXIT_INTR;
                                return 0;
                        }
                        if (e->queued) {
                                e->queued = false;
                                if (raise_event(e, e->vector, EV_EXT, 0, x))
                                        return 0;
                                /* Single-step: the step is the handler's first instruction. */
                                e->insns = 0;
                        }
                        continue;
                case STOP_NONE:
                default:
                        if (e->completing)
                                completion_abort(e);
                        exit_internal(e, x, err != UC_ERR_OK ? err : UC_ERR_EXCEPTION,
                                      e->fault_addr ? e->fault_addr : e->cur);
                        return 0;
                }
        }
}

/*
 * With Unicorn ignoring the page tables, a guest whose tables map its code
 * elsewhere runs something else than the recorder reads: end the run there
 * rather than record a trace that contradicts itself.
 */
static void check_paging(struct emu_backend *e, struct backend_exit *x)
{
        uint64_t la, pa = 0;
        struct qseg cs;

        if (!e->identity || !(e->pg.cr0 & X86_CR0_PG) || snap_get(e))
                return;
        env_seg(e, HVT_CS, &cs);
        la = env_u64(e, ENV_EIP) + ((env_u32(e, ENV_HFLAGS) & HF_CS64) ? 0 : cs.base);
        if (walk(e, la, &pa) && pa == la)
                return;
        if (x->reason == HVT_EXIT_SHUTDOWN || x->reason == HVT_EXIT_INTERNAL)
                return;
        e->pend = PEND_NONE;
        exit_internal(e, x, UC_ERR_MAP, la);
        x->u.internal.data[2] = pa;
}

static int run_once(struct emu_backend *e, struct backend_exit *x)
{
        memset(x, 0, sizeof(*x));
        e->x = x;
        e->insns = 0;
        mode_refresh(e);
        if (e->pend != PEND_NONE) {
                /* First execute the reported instruction, with the data the loop filled. */
                e->completing = true;
                e->cstarted = false;
                e->io.done = 0;
                e->stop_after = e->queued || e->pend == PEND_MMIO;
                if (e->pend == PEND_MMIO) {
                        if (e->ndone == MMIO_MAX) {
                                exit_internal(e, x, UC_ERR_MAP, e->mmio.addr);
                                return 0;
                        }
                        e->done[e->ndone++] = e->mmio;
                        if (scratch_map(e)) {
                                completion_abort(e);
                                exit_internal(e, x, UC_ERR_MAP, e->mmio.addr);
                                return 0;
                        }
                }
                return run_until_exit(e, x);
        }
        if (e->kick_req) {
                e->kick_req = 0;
                x->reason = HVT_EXIT_INTR;
                x->raw = HVT_EXIT_INTR;
                return 0;
        }
        if (e->queued) {
                e->queued = false;
                if (raise_event(e, e->vector, EV_EXT, 0, x))
                        return 0;
        }
        return run_until_exit(e, x);
}

static int emu_run(struct backend *b, struct backend_exit *x)
{
        struct emu_backend *e = to_emu(b);
        int r = run_once(e, x);

        if (!r)
                check_paging(e, x);
        return r;
}

/* ---- the rest of the interface ------------------------------------------------- */

static int emu_inject(struct backend *b, uint8_t vector)
{
        struct emu_backend *e = to_emu(b);

        if (e->queued)
                return -EBUSY;
        e->queued = true;
        e->vector = vector;
        return 0;
}

static int emu_request_window(struct backend *b, bool on)
{
        to_emu(b)->window = on;
        return 0;
}

static int emu_set_single_step(struct backend *b, bool on)
{
        to_emu(b)->single_step = on;
        return 0;
}

static void emu_kick(struct backend *b)
{
        to_emu(b)->kick_req = 1; /* async-signal-safe: the boundary hook polls it */
}

static int emu_set_kick_budget(struct backend *b, uint64_t usec, uint64_t seed)
{
        struct emu_backend *e = to_emu(b);

        if (!usec || usec > UINT64_MAX / INSNS_PER_US)
                return -EINVAL;
        e->budget_on = true;
        e->budget_usec = usec;
        e->rng = seed * 0x9e3779b97f4a7c15ull + 1;
        if (!e->rng)
                e->rng = 1;
        arm_budget(e);
        return 0;
}

static int emu_take_writes(struct backend *b, void (*fn)(void *ctx, uint64_t gpa, uint64_t len),
                           void *ctx)
{
        struct emu_backend *e = to_emu(b);

        if (e->pt_rescan) {
                e->pt_rescan = false;
                pt_enumerate(e, &e->pt_cfg);
        }
        pt_compare(e);
        if (e->wr_lost)
                return e->wr_lost;
        if (e->wr_coarse) {
                for (uint64_t w = e->wr_wlo; w < e->wr_whi; w++) {
                        while (e->wr_pages[w]) {
                                unsigned bit = (unsigned)__builtin_ctzll(e->wr_pages[w]);
                                uint64_t first = w * 64 + bit, last = first;

                                /* A run of pages, across words too. */
                                while (last + 1 < e->base.mem_size / PAGE_SIZE &&
                                       bit_test(e->wr_pages, last + 1))
                                        last++;
                                for (uint64_t p = first; p <= last; p++)
                                        e->wr_pages[p / 64] &= ~(1ull << (p % 64));
                                fn(ctx, first * PAGE_SIZE, (last - first + 1) * PAGE_SIZE);
                        }
                }
                e->wr_wlo = UINT64_MAX;
                e->wr_whi = 0;
                e->wr_coarse = false;
        } else {
                wr_compact(e);
                for (unsigned i = 0; i < e->nwr; i++)
                        fn(ctx, e->wr[i].lo, e->wr[i].hi - e->wr[i].lo);
        }
        e->nwr = 0;
        return 0;
}

static void unicorn_version(char *buf, size_t len)
{
        unsigned v = uc_version(NULL, NULL);

        snprintf(buf, len, "Unicorn %u.%u.%u", (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff);
}

static void emu_destroy(struct backend *b)
{
        struct emu_backend *e = to_emu(b);

        if (!e)
                return;
        if (e->ctx)
                uc_context_free(e->ctx);
        if (e->uc)
                uc_close(e->uc);
        if (e->base.mem && e->base.mem != MAP_FAILED)
                munmap(e->base.mem, e->base.mem_size);
        if (e->scratch)
                munmap(e->scratch, 2 * MMIO_MAX * PAGE_SIZE);
        for (unsigned i = 0; i < e->npt; i++)
                free(e->pt[i].copy);
        free(e->wr_pages);
        free(e->pt_map);
        free(e);
}

/* A reset-like starting state: real mode, CS:IP = F000:FFF0. */
static int reset_state(struct emu_backend *e)
{
        struct hvt_vcpu_state st;

        memset(&st, 0, sizeof(st));
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                st.seg[i].limit = 0xffff;
                st.seg[i].attr = (i == HVT_CS ? 0xb : 0x3) | HVT_SEG_S | HVT_SEG_P;
        }
        st.seg[HVT_CS].selector = 0xf000;
        st.seg[HVT_CS].base = 0xffff0000;
        st.rip = 0xfff0;
        st.rflags = 2;
        st.cr0 = 0x60000010;
        st.gdt.limit = 0xffff;
        st.idt.limit = 0xffff;
        return emu_set_state(&e->base, &st);
}

static int open_engine(struct emu_backend *e, char *why, size_t len)
{
        uc_err err;

        unicorn_version(e->version, sizeof(e->version));
        if ((uc_version(NULL, NULL) >> 24) != 2) {
                snprintf(why, len, "%s: this backend needs Unicorn 2", e->version);
                return -ENOTSUP;
        }
        e->identity = (uc_version(NULL, NULL) >> 16) < 0x0201;
        err = uc_open(UC_ARCH_X86, UC_MODE_64, &e->uc);
        if (err != UC_ERR_OK) {
                e->uc = NULL;
                snprintf(why, len, "%s: uc_open: %s", e->version, uc_strerror(err));
                return -ENOTSUP;
        }
        if (uc_context_alloc(e->uc, &e->ctx) != UC_ERR_OK) {
                e->ctx = NULL;
                snprintf(why, len, "%s: uc_context_alloc failed", e->version);
                return -ENOMEM;
        }
        return calibrate(e, why, len);
}

static int emu_probe(char *why, size_t len)
{
        struct emu_backend *e = calloc(1, sizeof(*e));
        int err;

        if (!e)
                return -ENOMEM;
        err = open_engine(e, why, len);
        if (!err)
                snprintf(why, len, "%s", e->version);
        emu_destroy(&e->base);
        return err;
}

static int emu_create(const struct backend_config *cfg, struct backend **out, char *why, size_t len)
{
        struct emu_backend *e = calloc(1, sizeof(*e));
        uc_hook h;
        uc_err err = UC_ERR_OK;
        int r;

        if (!e)
                return -ENOMEM;
        if (!cfg->mem_size || cfg->mem_size % PAGE_SIZE) {
                snprintf(why, len, "guest memory must be a positive multiple of 4 KiB");
                free(e);
                return -EINVAL;
        }
        r = open_engine(e, why, len);
        if (r) {
                emu_destroy(&e->base);
                return r;
        }
        e->base.mem_size = cfg->mem_size;
        e->ram.size = cfg->mem_size;
        e->base.mem = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        e->scratch = mmap(NULL, 2 * MMIO_MAX * PAGE_SIZE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (e->base.mem == MAP_FAILED || e->scratch == MAP_FAILED) {
                r = -errno;
                snprintf(why, len, "cannot map %llu bytes of guest memory: %s",
                         (unsigned long long)cfg->mem_size, strerror(errno));
                if (e->scratch == MAP_FAILED)
                        e->scratch = NULL;
                emu_destroy(&e->base);
                return r;
        }
        e->wr_pages = calloc(map_words(e), sizeof(uint64_t));
        e->pt_map = calloc(map_words(e), sizeof(uint64_t));
        e->wr_wlo = UINT64_MAX;
        if (!e->wr_pages || !e->pt_map) {
                snprintf(why, len, "out of memory");
                emu_destroy(&e->base);
                return -ENOMEM;
        }
        e->ram.ram = e->base.mem;
        e->expect = e->scratch + MMIO_MAX * PAGE_SIZE;
        e->flush_at = (cfg->mem_size + PAGE_SIZE) & PAGE_MASK;
        err = uc_mem_map_ptr(e->uc, 0, cfg->mem_size, UC_PROT_ALL, e->base.mem);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_CODE, (void *)on_insn, e, 1, 0);
        /*
         * Installed from the start whether or not take_writes is called: the
         * boundary hook needs it to recognise a re-run instruction, and it
         * costs little next to the boundary hook (docs/backends.md, "emu").
         */
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_MEM_WRITE, (void *)on_write, e, 1, 0);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)on_in, e, 1, 0, UC_X86_INS_IN);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)on_out, e, 1, 0, UC_X86_INS_OUT);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_MEM_UNMAPPED, (void *)on_unmapped, e, 1, 0);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_INTR, (void *)on_intr, e, 1, 0);
        if (err == UC_ERR_OK)
                err = uc_hook_add(e->uc, &h, UC_HOOK_INSN_INVALID, (void *)on_invalid, e, 1, 0);
        /* No stop address: runs end only where the hooks say. */
        if (err == UC_ERR_OK)
                err = uc_ctl_exits_enable(e->uc);
        if (err != UC_ERR_OK) {
                snprintf(why, len, "%s: setting up the engine: %s", e->version, uc_strerror(err));
                emu_destroy(&e->base);
                return -ENOTSUP;
        }
        e->snap = false;
        r = reset_state(e);
        if (r) {
                snprintf(why, len, "%s: cannot set the reset state", e->version);
                emu_destroy(&e->base);
                return r;
        }
        e->base.ops = &emu_backend_ops;
        *out = &e->base;
        return 0;
}

static void emu_version(struct backend *b, char *buf, size_t len)
{
        snprintf(buf, len, "%s, software CPU", to_emu(b)->version);
}

const struct backend_ops emu_backend_ops = {
        .name = "emu",
        .summary = "software x86 CPU on Unicorn: deterministic, no /dev/kvm needed",
        .caps = HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY |
                HVT_CAP_INJECT_QUEUE | HVT_CAP_KICK | HVT_CAP_WINDOW | HVT_CAP_IO_EXITS |
                HVT_CAP_HLT_EXITS | HVT_CAP_WRITES,
        .probe = emu_probe,
        .create = emu_create,
        .destroy = emu_destroy,
        .version = emu_version,
        .get_state = emu_get_state,
        .set_state = emu_set_state,
        .run = emu_run,
        .inject = emu_inject,
        .request_window = emu_request_window,
        .set_single_step = emu_set_single_step,
        .kick = emu_kick,
        .set_kick_budget = emu_set_kick_budget,
        .take_writes = emu_take_writes,
};
