; demo: the bundled demo guest of `make demo`.
; Prints a greeting, installs a handler for vector 0x30, asks hvrec for that
; interrupt (port 0xE0) and waits for it with STI; HLT.  The handler's first
; instruction is the delivery probe, so the trace says where it landed.
; It then does a few port reads, and exits with status 0.
%include "hvguest.inc"
        bits 16
        org 0x1000

VECTOR  equ 0x30

start:
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x1000
        HV_SET_IVT VECTOR, handler
        HV_PUTS hello
        HV_IRQ VECTOR          ; pending from now on; IF=0 keeps it waiting
        sti                    ; the next instruction is in the STI shadow
wait_here:
        hlt                    ; the interrupt arrives here, after the HLT
after_hlt:
        cmp byte [got], 1
        jne fail
        mov cx, 3
reads:  in al, 0x61            ; unassigned port: reads as all-ones
        loop reads
        HV_PUTS bye
        HV_EXIT 0
fail:   HV_PUTS nope
        HV_EXIT 1

handler:
        HV_PROBE               ; first instruction: log the delivery
        mov byte [got], 1
        iret

got:    db 0
hello:  db "hvtrace demo: asking for interrupt 0x30, then STI; HLT", 10, 0
bye:    db "hvtrace demo: interrupt taken, three port reads done, bye", 10, 0
nope:   db "hvtrace demo: the interrupt never came", 10, 0
