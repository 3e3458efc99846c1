; if_handler: STI whose IF=0 comes from somewhere the checker must look for.
;  - A handler for vector 0x31, entered by INT 0x31 through the IVT or an
;    interrupt gate (IF=0 at entry), whose first instruction is STI: the
;    instruction after it is shadowed.  (Not probed: a software interrupt.)
;  - The same handler shape for vector 0x32 entered with IF=1: through a
;    trap gate in protected and long mode (IF kept), and in real mode, which
;    has no gates, through PUSHF; CALL FAR (an interrupt frame, IF kept).
;    Its STI makes no shadow.
;  - An STI whose only way in starts at a CLI more than 300 instructions
;    earlier, with a loop, conditional jumps and a call in between.
;
; Shadows: shadowed_isr31_sti (after the STI that starts the 0x31 handler),
;   shadowed_distant (after the STI long after its CLI).
; No-shadow: noshadow_trap_sti (after the STI that starts the handler
;   entered with IF=1).
; Default run: an interrupt is raised (port 0x81) with IF=0 before INT 0x31
; and after the distant CLI.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_isr31_sti} --irq 0x30@rip:{noshadow_trap_sti} --irq 0x30@rip:{shadowed_distant}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        CORPUS_SET_VECTOR 0x31, isr31
        CORPUS_SET_TRAP 0x32, isr32

        ; INT 0x31 with IF=0: the handler's STI enables
        cli
        out 0x81, al
        int 0x31
        nop

        ; the handler entered with IF=1
        sti
        nop
%if __BITS__ == 16
        pushf
        call 0:isr32
%else
        int 0x32
%endif
        nop

        ; an STI far from its CLI
        cli
        out 0x81, al
        mov xCX, 60
distant_loop:
        inc ax
        test al, 1
        jz distant_even
        inc bx
        jmp distant_next
distant_even:
        dec bx
        call distant_sub
distant_next:
        dec xCX
        jnz distant_loop
        sti
shadowed_distant:
        nop
        nop

        CORPUS_DONE

distant_sub:
        xor dx, ax
        ret

isr31:
        sti                     ; IF was cleared on entry
shadowed_isr31_sti:
        nop
        HV_IRET

isr32:
        sti                     ; IF is already 1
noshadow_trap_sti:
        nop
        HV_IRET
        CORPUS_ISR
