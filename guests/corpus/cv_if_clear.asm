; cv_if_clear: readiness with IF=0, then after STI (after crosvm's
; test_interrupt_ready_when_interrupt_enable_flag_not_set).  The guest asks
; for the interrupt while IF=0; it must not arrive before the instruction
; after the STI has run.
;
; Shadows: shadowed_sti (the NOP after STI, IF was 0).
; variants: in out
; corpus-run:
; corpus-eager:
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        HV_IRQ VECTOR           ; pending from here on
        EXIT_IO 0x81            ; IF=0: not ready
        sti
shadowed_sti:
        nop                     ; the one instruction of the STI shadow
        EXIT_IO 0x82            ; IF=1, no shadow: ready
        CORPUS_DONE
        CORPUS_ISR
