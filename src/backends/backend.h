/* SPDX-License-Identifier: MIT */
/*
 * The backend interface.  A backend runs one vCPU over guest RAM that the
 * recorder can see as host memory, and reports each exit in the trace's
 * normalized terms.  The run loop (src/record/) only ever talks to a backend
 * through struct backend_ops; everything hypervisor-specific lives behind it.
 *
 * Each backend is one file in src/backends/ exporting one ops struct, and
 * backends.c lists those compiled in (CMake option HVTRACE_BACKEND_<NAME>,
 * which defines HVT_BACKEND_<NAME>) in one table.
 */
#ifndef HVTRACE_BACKEND_H
#define HVTRACE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

struct backend;

struct backend_config {
        uint64_t mem_size; /* guest RAM at guest-physical 0 */
};

/* One exit as the run loop sees it. */
struct backend_exit {
        uint16_t reason; /* enum hvt_exit_reason */
        uint32_t raw;    /* the backend's own code */
        bool kicked;     /* an intr exit that is a --kick (budget backends) */
        union {
                struct {
                        uint16_t port;
                        uint8_t size, dir; /* HVT_IO_IN / HVT_IO_OUT */
                        uint32_t count;
                        uint8_t *data; /* size*count bytes; for IN the loop fills it */
                } io;
                struct {
                        uint64_t addr;
                        uint32_t len;
                        bool is_write;
                        uint8_t *data; /* 8 bytes; for reads the loop fills it */
                } mmio;
                struct hvt_disk_fail_entry fail_entry;
                struct {
                        uint32_t suberror, ndata;
                        uint64_t data[HVT_INTERNAL_MAX_DATA];
                } internal;
                struct hvt_disk_debug debug;
                struct hvt_disk_exception exception;
        } u;
};

struct backend_ops {
        const char *name;    /* for --backend */
        const char *summary; /* one line for --backend help */
        unsigned caps;       /* HVT_CAP_* */
        /*
         * Guest RAM without --mem in protected and long mode, when the
         * default does not suit the backend (0: it does).
         */
        uint64_t paged_mem;

        /* Whether the backend can run on this machine: 0 and a detail, or -errno and why. */
        int (*probe)(char *why, size_t len);
        /* Create a VM with one vCPU and its RAM.  Returns 0 or -errno (why in `why`). */
        int (*create)(const struct backend_config *cfg, struct backend **out, char *why,
                      size_t len);
        void (*destroy)(struct backend *b);
        /* Backend name and version for the trace header. */
        void (*version)(struct backend *b, char *buf, size_t len);

        /* Read or write the whole vCPU state, interruptibility included. */
        int (*get_state)(struct backend *b, struct hvt_vcpu_state *st);
        int (*set_state)(struct backend *b, const struct hvt_vcpu_state *st);

        /* Run until the next exit.  Returns 0 with *exit filled, or -errno. */
        int (*run)(struct backend *b, struct backend_exit *exit);

        /*
         * Queue an external interrupt for the next entry: -EBUSY if one is
         * queued.  NULL in an HVT_CAP_IRQCHIP backend (its irqchip injects).
         */
        int (*inject)(struct backend *b, uint8_t vector);
        /*
         * Make a non-maskable interrupt pending.  now false: the backend
         * delivers it when the architecture lets it, as an NMI pin would
         * (not in a MOV SS / POP SS shadow, not while NMIs are blocked by an
         * earlier NMI until its IRET), whatever IF says; now true: at the
         * next entry whatever the blocking, where the backend can (hvrec's
         * eager and blind policies, which exist to break the rules).
         * Returns 0, -EBUSY while an NMI is still pending, or -errno.  NULL:
         * the backend cannot inject NMIs (hvrec refuses --nmi).
         */
        int (*inject_nmi)(struct backend *b, bool now);
        /*
         * Ask for (or stop asking for) an exit when interrupts can be
         * injected.  Returns 0 or -errno; a failure ends the run.  NULL in
         * an HVT_CAP_IRQCHIP backend.
         */
        int (*request_window)(struct backend *b, bool on);
        /*
         * HVT_CAP_IRQCHIP backends only (NULL elsewhere).  Raise, edge-
         * triggered, the interrupt line the guest's programming of the
         * backend's irqchip maps to vector; the irqchip injects it when the
         * guest can take it.  Returns 0, -ENXIO when no line maps to
         * vector, or another -errno.
         */
        int (*raise_line)(struct backend *b, uint8_t vector);
        /* Turn single-stepping on or off: every instruction becomes a debug exit. */
        int (*set_single_step)(struct backend *b, bool on);
        /* Async-signal-safe: make the current or next run return with an intr exit. */
        void (*kick)(struct backend *b);
        /*
         * Optional.  Deterministic kicks: instead of a timer, the backend
         * ends a run with an intr exit (exit->kicked set) after a budget of
         * instructions derived from usec and the seed.  NULL: hvrec kicks
         * with a timer signal.
         */
        int (*set_kick_budget)(struct backend *b, uint64_t usec, uint64_t seed);
        /*
         * Optional (HVT_CAP_WRITES).  The guest-physical ranges of RAM
         * written since the last call (by guest instructions and by the
         * backend itself: interrupt frames, string I/O), each reported
         * once through fn, in any order, possibly coarser than the writes
         * but never missing one; then forgets them.  Returns 0, or -errno
         * when the backend can no longer tell (tracking is lost).
         */
        int (*take_writes)(struct backend *b, void (*fn)(void *ctx, uint64_t gpa, uint64_t len),
                           void *ctx);
        /*
         * Optional.  An instruction breakpoint for replay (hvreplay run):
         * with on, a run ends with a debug exit (exception 1, DR6.B0)
         * before executing the instruction at linear address `linear`,
         * except the one the run starts at when nothing (an instruction, a
         * delivery) happened before it; off removes it.  Single-stepping
         * and the breakpoint combine.  Returns 0 or -errno.
         */
        int (*set_breakpoint)(struct backend *b, bool on, uint64_t linear);
};

/* The part of a backend every backend shares; backends embed it first. */
struct backend {
        const struct backend_ops *ops;
        uint8_t *mem; /* guest RAM, host mapping of guest-physical 0 .. mem_size */
        uint64_t mem_size;
        /*
         * Why run failed, where strerror of its -errno would not say (an
         * -EPROTO "Protocol error" names no instruction); empty otherwise.
         */
        char error[256];
};

/* The registry: backends compiled in, in --backend help order; backend_at(0) is the default. */
size_t backend_count(void);
/* NULL past the end. */
const struct backend_ops *backend_at(size_t i);
/* NULL if no backend compiled in has that name. */
const struct backend_ops *backend_find(const char *name);
/*
 * The CMake option that compiles backend `name` in ("HVTRACE_BACKEND_EMU"),
 * whether it is compiled in or not; NULL if hvtrace has no such backend.
 */
const char *backend_option(const char *name);

/* Copy len bytes into guest RAM at gpa.  Returns 0 or -ERANGE. */
int backend_load(struct backend *b, uint64_t gpa, const void *data, size_t len);

/*
 * A file hvtrace installs (the qemu-tcg BIOS, the preload library): $env
 * if set, else installed_rel relative to the directory of the running
 * executable when that file exists there (so a relocated install finds
 * its own), else built (the build tree's copy; may be NULL).  buf holds
 * the second answer.
 */
const char *backend_data_path(const char *env, const char *installed_rel, const char *built,
                              char *buf, size_t len);

#endif
