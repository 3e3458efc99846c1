; sti_hlt: the idle idiom STI; HLT.  The HLT is in the STI shadow: an
; interrupt may wake the vCPU after the HLT (return address past it), never
; before it (return address at the HLT).
;
; Shadows: shadowed_hlt.
; corpus-run:
; corpus-eager:
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        HV_IRQ VECTOR           ; pending, IF=0
        sti
shadowed_hlt:
        hlt
        nop
        CORPUS_DONE
        CORPUS_ISR
