// SPDX-License-Identifier: MIT
/*
 * hello64: a long-mode C guest on the runtime (guests/c/runtime/hvrt.h).
 * Prints a line, installs a C handler for vector 0x30, asks hvrec for that
 * interrupt (port 0xE0) while IF=0, waits for it with the race-free idle
 * idiom (hv_idle_wait: cli; test; sti; hlt), checks that the handler ran
 * once, and exits with status 42 (1 if something went wrong).
 */
// bits: 64
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
        hv_puts("hello from a 64-bit C guest\n");
        hv_set_handler(VECTOR, on_irq);
        hv_irq(VECTOR); /* IF=0: pending until the STI; HLT of hv_idle_wait */
        hv_idle_wait(&handled);
        hv_cli();
        if (handled != 1 || hv_irq_count[VECTOR] != 1) {
                hv_printf("hello64: handler ran %u times\n", handled);
                return 1;
        }
        hv_printf("hello64: interrupt 0x%x taken at %p, %d time, %s\n", VECTOR, (void *)where,
                  (int)handled, "bye");
        return 42;
}
