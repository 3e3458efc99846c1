; pop_ss: POP SS shadows the next instruction like MOV SS.
;
; Shadows: shadowed_popss.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_popss}
; modes: real protected
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti
        push ss
        pop ss
shadowed_popss:
        inc ax
        out 0x81, al
        nop
        CORPUS_DONE
        CORPUS_ISR
