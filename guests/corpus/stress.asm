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
        STRESS_SHADOWS
        cmp word [delivered], TARGET
        jb again
        HV_EXIT 0
        CORPUS_ISR
