/* SPDX-License-Identifier: MIT */
/*
 * Interrupt scheduling: what is pending, when to inject it (the policy),
 * and which injected vectors the guest has not yet reported delivered.
 */
#ifndef HVREC_IRQ_H
#define HVREC_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct recorder;

#define IRQ_QUEUE 256

/* In irq_fifo.src: the entry is an NMI (outstanding: a vector 2 that must be told apart). */
#define IRQ_SRC_NMI 0x80u

struct irq_fifo {
        uint8_t v[IRQ_QUEUE];
        uint8_t src[IRQ_QUEUE]; /* enum hvt_irq_source, | IRQ_SRC_NMI */
        unsigned head, count;
};

struct irq_sched {
        struct irq_fifo pending;     /* raised, waiting for injection */
        struct irq_fifo outstanding; /* injected, no delivery seen yet */
        bool window_on;              /* a window request is active */
        bool stepping;               /* stepping around an injection (--step-inject) */
        bool hold;                   /* ... until the backend no longer queues it */
        unsigned steps;              /* DEBUG exits recorded since stepping began */
        bool rip_fired[64];          /* --irq rip:ADDR fire once */
        bool nmi_pending;            /* an NMI raised, not yet handed to the backend */
        uint8_t nmi_source;          /* ... from (enum hvt_irq_source) */
};

/* Make vector pending (a second raise of a pending vector merges, as an IRR bit does). */
void irq_raise(struct recorder *rec, uint8_t vector, unsigned source);

/* Make an NMI pending (a second one while it is pending merges, as the NMI latch does). */
void irq_raise_nmi(struct recorder *rec, unsigned source);

/* Fire the --irq and --nmi triggers that match the exit just recorded. */
void irq_triggers(struct recorder *rec);

/*
 * Whether policy (enum hvt_policy: window, eager, blind) allows injecting
 * at an exit with these HVT_INTR_* bits and RFLAGS: window when the backend
 * says ready, eager when IF is set, blind always; any other policy never.
 */
bool irq_policy_allows(unsigned policy, uint64_t intr, uint64_t rflags);

/*
 * Before the next entry: hand a pending NMI to the backend (under the
 * window policy to be delivered when the architecture allows, under eager
 * and blind at the next entry whatever blocks it); inject the oldest
 * pending vector or request a window, as the policy says, one interrupt at
 * a time, stepping around the injection under --step-inject; on an
 * HVT_CAP_IRQCHIP backend raise the line of every pending vector instead.
 * A backend error ends the run (rec_finish).
 */
void irq_schedule(struct recorder *rec);

/*
 * Inject vector now, whatever the policy (a replay repeating a recorded
 * injection): out of the pending queue if it is there, queued on the vCPU
 * or, on an HVT_CAP_IRQCHIP backend, raised on its line, and recorded.  A
 * backend error ends the run (rec_finish) and is returned as -errno.
 */
int irq_inject_now(struct recorder *rec, uint8_t vector, uint8_t source);

/* Whether anything could still wake a halted vCPU. */
bool irq_can_wake(const struct recorder *rec);

/* Whether an NMI, which IF does not mask, could still wake a halted vCPU. */
bool irq_nmi_can_wake(const struct recorder *rec);

/*
 * The vector the guest most likely took, among the injected ones not yet
 * seen delivered: the oldest one that `match` accepts (NULL: any).  Removes
 * it and sets *nmi to whether it was an NMI.  Returns -1 when none.
 */
int irq_take_outstanding(struct recorder *rec, bool (*match)(void *ctx, uint8_t v), void *ctx,
                         bool *nmi);

#endif
