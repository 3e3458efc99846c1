// SPDX-License-Identifier: MIT
/*
 * unexpected: the runtime's default interrupt handler.  The guest asks for
 * vector 0x31 without registering a handler and waits for it: the stub
 * probes (hvrec records the delivery), then the runtime prints
 * "hvrt: unexpected interrupt 0x31 at 0xCS:0xIP" and exits with
 * HV_STATUS_UNEXPECTED (0xEF).  hv_irq_count counts it first.
 */
// bits: 64
#include "hvrt.h"

int main(void)
{
        hv_irq(0x31);
        hv_idle_wait(&hv_irq_count[0x31]);
        hv_puts("unexpected: the default handler returned\n");
        return 1;
}
