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
 *    recorder's policy decides when to inject.  NMIs are held at the
 *    boundary hook while a MOV SS shadow or blocking by an earlier NMI
 *    (until an IRET retires) covers it, unless injected to be delivered
 *    at once (the eager and blind policies).
 *
 * Unicorn's API sets segment registers by selector only and, in 2.0.1,
 * writes CR0/CR4 without updating QEMU's derived flags.  The backend
 * therefore reads and writes the segment caches, EFER and QEMU's hflags in
 * the CPU context blob (uc_context_save/restore), at offsets of QEMU's
 * CPUX86State that emu_calibrate() checks against the API before the backend
 * is used: a Unicorn whose layout differs is refused, never guessed at.
 * Unicorn before 2.1 ignores the guest's page tables (linear = physical):
 * the backend reads memory the same way, and ends a run whose code the
 * tables map elsewhere (docs/backends.md, "emu", for the limits).
 *
 * This file holds the hooks, guest memory and writes, the run loop and the
 * ops; emu_cpu.c the CPU-state layer (the context blob, get/set state),
 * emu_deliver.c interrupt and exception delivery, emu.h what they share.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <unicorn/unicorn.h>

#include "emu.h"

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

#define INSNS_PER_US 50 /* the nominal speed kick budgets are counted in */

/*
 * What the instruction at a boundary is, as far as the backend cares
 * (K_UNTRACKED: it makes QEMU write guest memory where no hook sees it).
 */
enum kind { K_OTHER, K_STI, K_SSLOAD, K_HLT, K_IO, K_MODE, K_UNTRACKED, K_IRET, K_DRWRITE };

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
size_t emu_read_linear(const struct emu_backend *e, uint64_t la, void *buf, size_t n)
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
void emu_mode_refresh(struct emu_backend *e)
{
        uc_x86_msr msr = { X86_MSR_EFER, 0 };
        struct x86_paging now;

        e->pg.cr0 = emu_reg_read(e, UC_X86_REG_CR0);
        e->pg.cr3 = emu_reg_read(e, UC_X86_REG_CR3);
        e->pg.cr4 = emu_reg_read(e, UC_X86_REG_CR4);
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
bool emu_write_linear(struct emu_backend *e, uint64_t la, const void *buf, size_t n)
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
        uint8_t modrm;   /* K_DRWRITE: the ModRM byte */
        bool rex_b;      /* a REX prefix with B set */
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
        [0xed] = K_IO,     [0xee] = K_IO,     [0xef] = K_IO,     [0xcf] = K_IRET,
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
        static const int segs[] = { [0x26] = HVT_ES + 1, [0x2e] = HVT_CS + 1, [0x36] = HVT_SS + 1,
                                    [0x3e] = HVT_DS + 1, [0x64] = HVT_FS + 1, [0x65] = HVT_GS + 1 };
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
                in->rex_b = p[i++] & 1; /* REX */
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
                else if (in->imm == 0x23 && i + 2 < n) {
                        in->kind = K_DRWRITE; /* MOV DRn, r */
                        in->modrm = p[i + 2];
                }
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
        size_t n = emu_read_linear(e, la, buf, sizeof(buf));

        decode(buf, n, size, in);
}

/*
 * Whether MOV DRn, r in `in` writes DR7 with an instruction breakpoint
 * enabled (R/W 00).  Unicorn 2.0.1 crashes hvrec (SIGSEGV in its
 * translated code) on such a write, even for an address never reached;
 * data breakpoints it takes and ignores.
 */
static bool arms_exec_breakpoint(struct emu_backend *e, const struct insn *in)
{
        uint64_t dr7;

        if (((in->modrm >> 3) & 7) != 7)
                return false;
        dr7 = emu_reg_read(e, emu_gprs[(in->modrm & 7) + (in->rex_b ? 8 : 0)]);
        return x86_dr7_exec_breakpoints(dr7);
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
                e->shadow = (e->prev_shadow & HVT_INTR_MOVSS_SHADOW) ? 0 : HVT_INTR_MOVSS_SHADOW;
                break;
        case K_MODE:
                emu_mode_refresh(e);
                e->shadow = 0;
                break;
        case K_UNTRACKED:
                e->wr_lost = -ENOTSUP;
                e->shadow = 0;
                break;
        case K_IRET:
                /* Blocking by NMI ends with the next IRET (SDM Vol. 3A 6.7.1). */
                e->nmi_blocked = false;
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
                if (e->io.rep && !(emu_reg_read(e, UC_X86_REG_RCX) & mask_bits(e->io.addr_bits)))
                        return false; /* the REP's last check of rCX: nothing left */
        }
        e->completing = false;
        e->pend = PEND_NONE;
        retire(e);
        return true;
}

/*
 * Whether an NMI may be delivered at the current boundary: not after an
 * earlier NMI until its IRET (SDM Vol. 3A 6.7.1), not in a MOV SS / POP SS
 * shadow (6.8.3), whatever IF says.  An STI shadow does not block it here:
 * the SDM allows, not requires, that (Vol. 2B, STI), and docs/backends.md
 * says emu does not.
 */
static bool nmi_allowed(const struct emu_backend *e)
{
        return !e->nmi_blocked && !(e->shadow & HVT_INTR_MOVSS_SHADOW);
}

/* Deliver the pending NMI now; returns 1 when that ended the run (x filled). */
static int deliver_nmi(struct emu_backend *e, struct backend_exit *x)
{
        e->nmi_pending = false;
        e->nmi_now = false;
        if (emu_raise_event(e, X86_EXC_NMI, EV_EXT, 0, x))
                return 1;
        e->nmi_blocked = true;
        return 0;
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
            emu_reg_read(e, UC_X86_REG_RCX) == e->wr_rcx &&
            emu_reg_read(e, UC_X86_REG_RSP) == e->wr_rsp) {
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
        if (e->bp_on && addr == e->bp_linear && !(e->insns == 0 && addr == e->bp_skip)) {
                e->bp_hit = true;
                stop_exit(e, HVT_EXIT_DEBUG, addr);
                return;
        }
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
        if (e->nmi_pending && nmi_allowed(e)) {
                stop_at(e, STOP_NMI, addr);
                return;
        }
        if (e->window && !e->shadow && (emu_reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF)) {
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
        case K_DRWRITE:
                if (arms_exec_breakpoint(e, &in)) {
                        stop_at(e, STOP_DR7_EXEC, addr);
                        return;
                }
                break;
        case K_STI: if_set = emu_reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF; break;
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
                e->wr_rcx = emu_reg_read(e, UC_X86_REG_RCX);
                e->wr_rsp = emu_reg_read(e, UC_X86_REG_RSP);
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

/* ---- exits ----------------------------------------------------------------------- */

static void exit_internal(struct emu_backend *e, struct backend_exit *x, uc_err err, uint64_t addr)
{
        x->reason = HVT_EXIT_INTERNAL;
        x->raw = (uint32_t)err;
        x->u.internal.suberror = 1; /* emulation failure */
        x->u.internal.ndata = 3;
        x->u.internal.data[0] = (uint64_t)err;
        x->u.internal.data[1] = addr;
        x->u.internal.data[2] = emu_reg_read(e, UC_X86_REG_RIP);
}

static unsigned code_bits(const struct emu_backend *e)
{
        uint32_t hf = emu_env_u32(e, ENV_HFLAGS);

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
        e->io.port = (in.op >= 0xe4 && in.op <= 0xe7) ? in.imm
                                                      : (uint16_t)emu_env_u64(e, ENV_REGS + 8 * 2);
        e->io.count = 1;
        if (in.op >= 0x6c && in.op <= 0x6f && in.rep) {
                e->io.rep = true;
                rcx = emu_env_u64(e, ENV_REGS + 8 * 1) & mask_bits(adbits);
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
                bool down = emu_reg_read(e, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF;
                struct qseg s;

                emu_env_seg(e, sreg, &s);
                if (bits == 64 && sreg != HVT_FS && sreg != HVT_GS)
                        s.base = 0;
                rsi = emu_env_u64(e, ENV_REGS + 8 * 6);
                for (uint32_t i = 0; i < e->io.count; i++) {
                        uint64_t off = (rsi + (down ? -(uint64_t)i : (uint64_t)i) * e->io.size) &
                                       mask_bits(adbits);

                        emu_read_linear(e, s.base + off, e->io_data + (size_t)i * e->io.size,
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

        if (emu_snap_get(e))
                return -EIO;
        if (v > 255) {
                exit_internal(e, x, UC_ERR_EXCEPTION, v);
                return 1;
        }
        insn_at(e, la, e->cur_len, &in);
        if ((in.op == 0xcd && in.imm == v) || (in.op == 0xcc && v == X86_EXC_BP) ||
            (in.op == 0xce && v == X86_EXC_OF) || (in.op == 0xf1 && v == X86_EXC_DB)) {
                type = EV_SOFT; /* INT n, INT3, INTO, INT1: return past the instruction */
                ret = emu_rip_of(e, la + in.len + (in.op == 0xcd ? 1 : 0));
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
                ret = emu_env_u64(e, ENV_EIP);
                if (ret == la || ret == emu_rip_of(e, la))
                        ret = emu_rip_of(e, la);
        }
        if (e->completing)
                completion_abort(e);
        e->pend = PEND_NONE;
        emu_env_put64(e, ENV_EIP, ret);
        if (emu_snap_put(e))
                return -EIO;
        /* The error code QEMU computed (#GP, #PF, ...): pushed where the vector has one. */
        return emu_raise_event(e, v, type, emu_env_u32(e, e->dr_off + DR_ERROR_CODE), x);
}

/*
 * Unicorn 2.0.1's TCG calls abort() on some code it cannot translate (seen:
 * "tcg fatal error" on a 64-bit guest run in real mode).  What a guest
 * executes is data, not an error of ours: the run ends as an emulation
 * failure the trace records, instead of hvrec dying without an END record.
 * The engine is unusable afterwards (e->aborted keeps everything but
 * reading the last saved state away from it).  The handler stays
 * installed; outside uc_emu_start it restores the default and re-raises.
 */
static __thread sigjmp_buf *abort_jmp;

/* The raw code of that exit: not a uc_err, so a reader can tell it apart. */
#define EMU_RAW_ABORT 0xab0u
/* The raw code of the exit before a MOV DR7 arming an instruction breakpoint. */
#define EMU_RAW_DR7_EXEC 0xd7e0u

static void on_sigabrt(int sig)
{
        if (abort_jmp)
                siglongjmp(*abort_jmp, 1);
        signal(sig, SIG_DFL);
        raise(sig);
}

static uc_err start_guarded(struct emu_backend *e, uint64_t rip)
{
        static bool installed;
        sigjmp_buf jb;
        volatile uc_err err = UC_ERR_EXCEPTION;

        if (!installed) {
                struct sigaction sa = { .sa_handler = on_sigabrt };

                sigemptyset(&sa.sa_mask);
                sigaction(SIGABRT, &sa, NULL);
                installed = true;
        }
        if (sigsetjmp(jb, 1) == 0) {
                abort_jmp = &jb;
                err = uc_emu_start(e->uc, rip, 0, 0, 0);
        } else {
                e->aborted = true;
        }
        abort_jmp = NULL;
        return err;
}

/* The run loop: emulate until a stop that is an exit. */
static int run_until_exit(struct emu_backend *e, struct backend_exit *x)
{
        for (;;) {
                uint64_t rip;
                uc_err err;
                int r;

                if (emu_snap_get(e))
                        return -EIO;
                rip = emu_env_u64(e, ENV_EIP);
                e->stop = STOP_NONE;
                e->fault_addr = 0;
                e->wr_attempt = false;
                err = start_guarded(e, rip);
                e->ran = true;
                if (e->aborted) {
                        /* The context saved before the run is the last sound state. */
                        x->reason = HVT_EXIT_INTERNAL;
                        x->raw = EMU_RAW_ABORT;
                        x->u.internal.suberror = 1; /* emulation failure */
                        x->u.internal.ndata = 3;
                        x->u.internal.data[0] = EMU_RAW_ABORT;
                        x->u.internal.data[1] = rip;
                        x->u.internal.data[2] = rip;
                        return 0;
                }
                e->snap = false;

                switch (e->stop) {
                case STOP_EXIT:
                        if (emu_set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        x->raw = x->reason;
                        if (x->reason == HVT_EXIT_INTR && !x->kicked)
                                e->kick_req = 0;
                        if (x->reason == HVT_EXIT_DEBUG) {
                                bool bp = e->bp_hit;

                                x->u.debug.exception = 1;
                                x->u.debug.pc = e->stop_linear;
                                x->u.debug.dr6 = X86_DR6_FIXED | (bp ? X86_DR6_B0 : X86_DR6_BS);
                                x->u.debug.dr7 = X86_DR7_FIXED | (bp ? X86_DR7_L0 : 0);
                        }
                        return 0;
                case STOP_IO:
                        if (emu_set_rip_linear(e, e->stop_linear))
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
                        if (emu_set_rip_linear(e, e->stop_linear + e->cur_len))
                                return -EIO;
                        e->insns++;
                        e->budget_used++;
                        e->shadow = 0;
                        x->reason = HVT_EXIT_HLT;
                        x->raw = HVT_EXIT_HLT;
                        return 0;
                case STOP_MMIO:
                        /* Unicorn rolled the instruction back; EIP may hold its linear address. */
                        if (emu_set_rip_linear(e, e->stop_linear))
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
                        if (emu_set_rip_linear(e, e->stop_linear))
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
                        if (e->nmi_pending && (e->nmi_now || nmi_allowed(e))) {
                                if (deliver_nmi(e, x))
                                        return 0;
                                e->insns = 0;
                        } else if (e->queued) {
                                e->queued = false;
                                if (emu_raise_event(e, e->vector, EV_EXT, 0, x))
                                        return 0;
                                /* Single-step: the step is the handler's first instruction. */
                                e->insns = 0;
                        }
                        continue;
                case STOP_NMI:
                        if (emu_set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        if (deliver_nmi(e, x))
                                return 0;
                        continue;
                case STOP_DR7_EXEC:
                        /* Not run: an emulation failure the trace records, not a crash. */
                        if (emu_set_rip_linear(e, e->stop_linear))
                                return -EIO;
                        exit_internal(e, x, UC_ERR_EXCEPTION, e->stop_linear);
                        x->raw = EMU_RAW_DR7_EXEC;
                        x->u.internal.data[0] = EMU_RAW_DR7_EXEC;
                        return 0;
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

        if (!e->identity || !(e->pg.cr0 & X86_CR0_PG) || emu_snap_get(e))
                return;
        emu_env_seg(e, HVT_CS, &cs);
        la = emu_env_u64(e, ENV_EIP) + ((emu_env_u32(e, ENV_HFLAGS) & HF_CS64) ? 0 : cs.base);
        if (walk(e, la, &pa) && pa == la)
                return;
        if (x->reason == HVT_EXIT_SHUTDOWN || x->reason == HVT_EXIT_INTERNAL)
                return;
        e->pend = PEND_NONE;
        exit_internal(e, x, UC_ERR_MAP, la);
        x->u.internal.data[2] = pa;
}

/* The linear address of the boundary the run starts at, when nothing runs before it. */
static uint64_t start_boundary(struct emu_backend *e)
{
        struct qseg cs;

        if (e->pend != PEND_NONE || e->queued || emu_snap_get(e))
                return ~0ull;
        emu_env_seg(e, HVT_CS, &cs);
        return emu_env_u64(e, ENV_EIP) + ((emu_env_u32(e, ENV_HFLAGS) & HF_CS64) ? 0 : cs.base);
}

static int run_once(struct emu_backend *e, struct backend_exit *x)
{
        memset(x, 0, sizeof(*x));
        e->x = x;
        e->insns = 0;
        emu_mode_refresh(e);
        e->bp_skip = e->bp_on ? start_boundary(e) : ~0ull;
        e->bp_hit = false;
        if (e->pend != PEND_NONE) {
                /* First execute the reported instruction, with the data the loop filled. */
                e->completing = true;
                e->cstarted = false;
                e->io.done = 0;
                e->stop_after = e->queued || e->nmi_pending || e->pend == PEND_MMIO;
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
        if (e->nmi_pending && e->nmi_now) {
                /* Eager or blind: now, whatever blocks it (else on_insn waits for leave). */
                if (deliver_nmi(e, x))
                        return 0;
        } else if (e->queued) {
                e->queued = false;
                if (emu_raise_event(e, e->vector, EV_EXT, 0, x))
                        return 0;
        }
        return run_until_exit(e, x);
}

static int emu_run(struct backend *b, struct backend_exit *x)
{
        struct emu_backend *e = emu_of(b);
        int r;

        if (e->aborted)
                return -EIO;
        r = run_once(e, x);

        if (!r)
                check_paging(e, x);
        return r;
}

/* ---- the rest of the interface ------------------------------------------------- */

static int emu_inject(struct backend *b, uint8_t vector)
{
        struct emu_backend *e = emu_of(b);

        if (e->queued)
                return -EBUSY;
        e->queued = true;
        e->vector = vector;
        return 0;
}

static int emu_inject_nmi(struct backend *b, bool now)
{
        struct emu_backend *e = emu_of(b);

        if (e->nmi_pending)
                return -EBUSY;
        e->nmi_pending = true;
        e->nmi_now = now;
        return 0;
}

static int emu_request_window(struct backend *b, bool on)
{
        emu_of(b)->window = on;
        return 0;
}

static int emu_set_single_step(struct backend *b, bool on)
{
        emu_of(b)->single_step = on;
        return 0;
}

static int emu_set_breakpoint(struct backend *b, bool on, uint64_t linear)
{
        struct emu_backend *e = emu_of(b);

        e->bp_on = on;
        e->bp_linear = linear;
        return 0;
}

static void emu_kick(struct backend *b)
{
        emu_of(b)->kick_req = 1; /* async-signal-safe: the boundary hook polls it */
}

static int emu_set_kick_budget(struct backend *b, uint64_t usec, uint64_t seed)
{
        struct emu_backend *e = emu_of(b);

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
        struct emu_backend *e = emu_of(b);

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
        struct emu_backend *e = emu_of(b);

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

        x86_reset_state(&st);
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
        return emu_calibrate(e, why, len);
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
        snprintf(buf, len, "%s, software CPU", emu_of(b)->version);
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
        .inject_nmi = emu_inject_nmi,
        .request_window = emu_request_window,
        .set_single_step = emu_set_single_step,
        .kick = emu_kick,
        .set_kick_budget = emu_set_kick_budget,
        .take_writes = emu_take_writes,
        .set_breakpoint = emu_set_breakpoint,
};
