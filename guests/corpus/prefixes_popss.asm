; prefixes_popss: POP SS with prefixes (POP SS does not exist in 64-bit
; code).  ES: changes nothing; an operand-size prefix pops the other width
; (its PUSH SS gets the same prefix so the stack stays balanced).  Both
; still shadow the next instruction.
;
; Shadows: shadowed_popss26 (after 26 17), shadowed_popss66 (after 66 17),
;   shadowed_popss2666 (after 26 66 17).
; Default run: an interrupt is raised (port 0x81) with IF=1 first.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_popss26} --irq 0x30@rip:{shadowed_popss66} --irq 0x30@rip:{shadowed_popss2666}
; modes: real protected
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti
        nop
        out 0x81, al            ; taken at once: IF=1, no shadow
        nop

        push ss
        db 0x26, 0x17           ; ES: POP SS
shadowed_popss26:
        nop
        nop
        db 0x66, 0x16           ; o32/o16 PUSH SS
        db 0x66, 0x17           ; o32/o16 POP SS
shadowed_popss66:
        nop
        nop
        db 0x66, 0x16
        db 0x26, 0x66, 0x17
shadowed_popss2666:
        nop
        nop

        CORPUS_DONE
        CORPUS_ISR
