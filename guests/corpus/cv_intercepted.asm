; cv_intercepted: readiness after intercepted instructions inside a shadow
; (after crosvm's test_ready_for_interrupt_for_intercepted_instructions).
; Each shadow-creating instruction is followed by an intercepted one, then
; another intercepted one that is out of the shadow.
;
; Shadows: shadowed_sti (after STI with IF=0), shadowed_movss (after MOV SS).
; variants: in out
; corpus-run: --irq 0x30@port:0x84 --irq 0x30@port:0x85
; corpus-eager: --irq 0x30@rip:{shadowed_movss}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        HV_IRQ VECTOR
        EXIT_IO 0x81            ; IF=0: not ready
        sti
shadowed_sti:
        EXIT_IO 0x82            ; in the STI shadow: not ready
        EXIT_IO 0x83            ; ready
        nop
        mov ax, ss
        mov ss, ax
shadowed_movss:
        EXIT_IO 0x84            ; in the MOV SS shadow: not ready
        EXIT_IO 0x85            ; ready
        CORPUS_DONE
        CORPUS_ISR
