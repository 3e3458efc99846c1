// SPDX-License-Identifier: MIT
/*
 * sti_hlt_c: the corpus's sti_hlt scenario written in C.  With IF=0 the guest
 * asks for interrupt 0x30, then runs STI; HLT.  The HLT is in the STI
 * shadow: the interrupt may wake the vCPU after the HLT (return address
 * past it), never before it (return address at the HLT).
 *
 * The metadata lines below follow the corpus conventions (docs/guest-abi.md,
 * "The corpus conventions"), with "//" for ";".  "bits:" says which builds
 * exist: NAME_32.elf (protected mode) and NAME_64.elf (long mode).
 *
 * Shadows: shadowed_hlt.
 */
// bits: 32 64
// corpus-run:
// corpus-eager:
#include "hvrt.h"

#define VECTOR 0x30

static void on_irq(struct hv_frame *f)
{
        (void)f; /* counted in hv_irq_count by the runtime */
}

/* One copy of the labelled code: never inlined, never cloned. */
static __attribute__((noinline, noclone)) void scenario(void)
{
        __asm__ volatile("sti\n"
                         ".globl shadowed_hlt\n"
                         "shadowed_hlt:\n\t"
                         "hlt\n"
                         ".globl after_hlt\n"
                         "after_hlt:\n\t"
                         "nop\n\t"
                         "cli\n"
                         :
                         :
                         : "memory");
}

int main(void)
{
        hv_set_handler(VECTOR, on_irq);
        hv_cli();
        hv_irq(VECTOR); /* pending, IF=0 */
        scenario();
        return hv_irq_count[VECTOR] ? 0 : 1;
}
