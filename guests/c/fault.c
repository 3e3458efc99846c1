// SPDX-License-Identifier: MIT
/*
 * fault: the runtime's default exception handler.  The guest executes UD2
 * at fault_here without a handler for #UD (vector 6): the runtime prints
 * "hvrt: exception 6 (#UD invalid opcode), error code 0x0, at 0xCS:0xIP" and
 * exits with HV_STATUS_EXCEPTION (0xEE).  Exception stubs do not probe:
 * hvrec sees no delivery.
 */
// bits: 32 64
#include "hvrt.h"

int main(void)
{
        hv_puts("fault: executing ud2\n");
        __asm__ volatile(".globl fault_here\n"
                         "fault_here:\n\t"
                         "ud2\n");
        hv_puts("fault: still running after ud2\n");
        return 1;
}
