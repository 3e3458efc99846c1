; movss_twice: consecutive SS loads.  The first MOV SS shadows the second;
; the second is itself in a shadow, so the architecture does not promise a
; shadow after it: the checker neither requires nor forbids an interrupt
; there.  The pair is run twice so each place gets its own interrupt.
;
; Shadows: shadowed_movss (the second MOV SS, in the first one's shadow).
; No-shadow: noshadow_movss2 (after the second of two MOV SS).
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_movss} --irq 0x30@rip:{noshadow_movss2}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti
        mov ax, ss
        mov ss, ax
shadowed_movss:
        mov ss, ax
        nop
        out 0x81, al            ; default run: the interrupt is raised here
        mov ss, ax
        mov ss, ax
noshadow_movss2:
        inc ax
        nop
        CORPUS_DONE
        CORPUS_ISR
