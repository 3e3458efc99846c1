// SPDX-License-Identifier: MIT
/*
 * hello: a C guest on the runtime (guests/c/runtime/hvrt.h), built for
 * long mode (hello_64.elf) and 32-bit protected mode (hello_32.elf).
 * Prints a line, installs a C handler for vector 0x30, asks hvrec for that
 * interrupt (port 0xE0) while IF=0, waits for it with the race-free idle
 * idiom (hv_idle_wait: cli; test; sti; hlt), checks that the handler ran
 * once, and exits with status 42 (1 if something went wrong).
 *
 * On this machine's KVM (kvm_pvm) a 32-bit IRET cannot be emulated: the
 * 32-bit build's run ends at the handler's IRET (hv_isr_iret) with
 * KVM_EXIT_INTERNAL_ERROR, emulation failure, and hvrec exits 3
 * (docs/backends.md).  The delivery, and the probe, are recorded before that.
 */
// bits: 32 64
#include "hvrt.h"

#ifdef __x86_64__
#define WIDTH "64"
#else
#define WIDTH "32"
#endif

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
        hv_puts("hello from a " WIDTH "-bit C guest\n");
        hv_set_handler(VECTOR, on_irq);
        hv_irq(VECTOR); /* IF=0: pending until the STI; HLT of hv_idle_wait */
        hv_idle_wait(&handled);
        hv_cli();
        if (handled != 1 || hv_irq_count[VECTOR] != 1) {
                hv_printf("hello" WIDTH ": handler ran %u times\n", handled);
                return 1;
        }
        hv_printf("hello" WIDTH ": interrupt 0x%x taken at %p, %d time, %s\n", VECTOR,
                  (void *)where, (int)handled, "bye");
        return 42;
}
