// SPDX-License-Identifier: MIT
/*
 * hello32: hello64's twin in 32-bit protected mode.  Prints a line, installs
 * a C handler for vector 0x30, asks hvrec for it while IF=0, waits with
 * hv_idle_wait (cli; test; sti; hlt), checks that the handler ran once and
 * exits with status 42 (1 if something went wrong).
 *
 * On this machine's KVM (kvm_pvm) a 32-bit IRET cannot be emulated: the run
 * ends at the handler's IRET (hv_isr_iret) with KVM_EXIT_INTERNAL_ERROR,
 * emulation failure, and hvrec exits 3 (docs/backends.md).  The delivery
 * itself, and the probe, are recorded before that.
 */
// bits: 32
#include "hvrt.h"

#define VECTOR 0x30

static volatile unsigned handled;
static volatile unsigned long where;

static void on_irq(struct hv_frame *f)
{
        handled++;
        where = f->ip;
}

int main(void)
{
        hv_puts("hello from a 32-bit C guest\n");
        hv_set_handler(VECTOR, on_irq);
        hv_irq(VECTOR); /* IF=0: pending until the STI; HLT of hv_idle_wait */
        hv_idle_wait(&handled);
        hv_cli();
        if (handled != 1 || hv_irq_count[VECTOR] != 1) {
                hv_printf("hello32: handler ran %u times\n", handled);
                return 1;
        }
        hv_printf("hello32: interrupt 0x%x taken at %p, %d time, %s\n", VECTOR, (void *)where,
                  (int)handled, "bye");
        return 42;
}
