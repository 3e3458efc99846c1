; jump_target: the instruction after an STI is also reached by a jump.  Only
; when it runs through the STI is it in the shadow; reached by the jump it
; is not, and an interrupt there is legal.  The jump path runs first, so
; the rip trigger fires there.
;
; No-shadow: noshadow_target (reached by the JMP, IF already 1).
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{noshadow_target}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti
        mov cx, 2
        jmp noshadow_target     ; first time: arrive by the jump
again:
        cli
        sti                     ; second time: arrive through the STI
noshadow_target:
        inc ax
        out 0x81, al
        loop again
        CORPUS_DONE
        CORPUS_ISR
