; sti_if_set: STI executed with IF already 1 makes no shadow.  An interrupt
; delivered right after it is legal and must not be reported.  (KVM reports
; an STI shadow here anyway: conservative, counted as a note.)
;
; No-shadow: noshadow_sti.
; corpus-run:
; corpus-eager: --irq 0x30@rip:{noshadow_sti}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti                     ; IF 0 -> 1: shadows the NOP below
        nop
        HV_IRQ VECTOR           ; taken at once: IF=1, no shadow
        nop
        sti                     ; IF is already 1: no shadow
noshadow_sti:
        inc ax
        nop
        CORPUS_DONE
        CORPUS_ISR
