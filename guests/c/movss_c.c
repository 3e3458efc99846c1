// SPDX-License-Identifier: MIT
/*
 * movss_c: MOV SS shadows written in C (the corpus's movss_twice).  After a
 * MOV SS the next instruction runs before any interrupt: shadowed_movss is
 * in that shadow.  Two consecutive SS loads: the second is itself in the
 * first one's shadow, so the architecture promises nothing after it:
 * noshadow_movss2 may take an interrupt, and the checker must not report it.
 * The guest waits for at least one delivery, then exits 0 (1 if none came).
 *
 * The metadata lines below follow the corpus conventions (docs/guest-abi.md,
 * "The corpus conventions"), with "//" for ";".  "bits:" says which builds
 * exist: NAME_32.elf (protected mode) and NAME_64.elf (long mode).  The
 * eager run's first interrupt is the one at shadowed_movss.
 *
 * Shadows: shadowed_movss.  No-shadow: noshadow_movss2.
 */
// bits: 32 64
// corpus-run: --irq 0x30@port:0x81
// corpus-eager: --irq 0x30@rip:{shadowed_movss} --irq 0x30@rip:{noshadow_movss2}
#include "hvrt.h"

#define VECTOR 0x30

static void on_irq(struct hv_frame *f)
{
        (void)f; /* counted in hv_irq_count by the runtime */
}

/* One copy of the labelled code: never inlined, never cloned. */
static __attribute__((noinline, noclone)) void scenario(void)
{
        __asm__ volatile("sti\n\t"
                         "mov %%ss, %%eax\n\t"
                         "mov %%eax, %%ss\n"
                         ".globl shadowed_movss\n"
                         "shadowed_movss:\n\t"
                         "nop\n\t"
                         "outb %%al, $0x81\n\t" /* default run: the interrupt is raised here */
                         "mov %%eax, %%ss\n\t"
                         "mov %%eax, %%ss\n"
                         ".globl noshadow_movss2\n"
                         "noshadow_movss2:\n\t"
                         "nop\n\t"
                         "nop\n"
                         :
                         :
                         : "eax", "memory");
}

int main(void)
{
        hv_set_handler(VECTOR, on_irq);
        scenario();
        hv_idle_wait(&hv_irq_count[VECTOR]);
        hv_cli();
        return hv_irq_count[VECTOR] ? 0 : 1;
}
