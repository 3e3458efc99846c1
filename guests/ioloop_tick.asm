; ioloop_tick: ioloop that shows how far it got, for a benchmark that cannot
; count a VMM's exits from outside (bench/exec-overhead.sh; KVM's debugfs
; statistics are not readable on every host).  After every TICK OUTs to
; port 0x80 it writes one byte to the debug console, so the console's
; length times TICK + 1 is the number of exits so far.
%include "hvguest.inc"
        bits 16
        org 0x1000
TICK    equ 4096
start:
        xor ax, ax
again:
        mov cx, TICK
.out:
        out 0x80, al
        loop .out
        mov al, '.'
        out HV_PORT_CONSOLE, al
        jmp again
