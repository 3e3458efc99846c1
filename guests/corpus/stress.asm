; stress: a loop full of shadows for asynchronous kicks (hvrec --kick).
; Each iteration has an STI shadow, a MOV SS shadow and a POP SS shadow; the
; ISR counts deliveries and the guest exits with status 0 after TARGET of
; them.  Run with --kick 20:0x30: the kicks stop the vCPU on arbitrary
; instruction boundaries, so an eager VMM sooner or later injects inside
; each shadow.
;
; Shadows: shadowed_sti, shadowed_movss, shadowed_popss (not in 64-bit code).
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
TARGET  equ 20000
start:
        CORPUS_START
        xor cx, cx
        xor dx, dx
again:
        cli
        sti
shadowed_sti:
        inc ax
        nop
        mov bx, ss
        mov ss, bx
shadowed_movss:
        inc cx
        nop
%if __BITS__ != 64
        push ss                 ; POP SS does not exist in 64-bit code
        pop ss
shadowed_popss:
%endif
        inc dx
        nop
        cmp word [delivered], TARGET
        jb again
        HV_EXIT 0
        CORPUS_ISR
