; seq_popss: sequences of interrupt-delaying instructions with POP SS (which
; does not exist in 64-bit code).  Only the first instruction of such a
; sequence is guaranteed to delay an interrupt (Intel SDM, STI): the
; instruction after it is shadowed, after the second a delivery is
; permitted.  Each label has its own copy of its sequence; IF=0 before each
; STI meant to delay, IF=1 where an SS load comes first.
;
; Shadows: shadowed_popss_sti (the STI of POP SS;STI, run with IF=1),
;   shadowed_sti_popss (the POP SS of STI;POP SS), shadowed_movss_popss
;   (the POP SS of MOV SS;POP SS), shadowed_popss_movss (the MOV SS of
;   POP SS;MOV SS).
; Second: second_popss_sti (after POP SS;STI with IF=0 before the STI),
;   second_sti_popss (after STI;POP SS), second_movss_popss (after
;   MOV SS;POP SS), second_popss_movss (after POP SS;MOV SS).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each
; sequence that an STI starts or ends.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_popss_sti} --irq 0x30@rip:{second_popss_sti} --irq 0x30@rip:{shadowed_sti_popss} --irq 0x30@rip:{second_sti_popss} --irq 0x30@rip:{shadowed_movss_popss} --irq 0x30@rip:{second_movss_popss} --irq 0x30@rip:{shadowed_popss_movss} --irq 0x30@rip:{second_popss_movss}
; modes: real protected
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        mov ax, ss

        ; POP SS;STI
        sti
        push ss
        pop ss
shadowed_popss_sti:
        sti                     ; IF already 1: delays nothing
        nop
        nop
        cli
        out 0x81, al
        push ss
        pop ss
        sti                     ; IF 0 -> 1, in the POP SS shadow
second_popss_sti:
        nop
        nop

        ; STI;POP SS
        cli
        out 0x81, al
        push ss
        sti
shadowed_sti_popss:
        pop ss
        nop
        nop
        cli
        out 0x81, al
        push ss
        sti
        pop ss
second_sti_popss:
        nop
        nop

        ; MOV SS;POP SS (IF=1)
        push ss
        mov ss, ax
shadowed_movss_popss:
        pop ss
        nop
        nop
        push ss
        mov ss, ax
        pop ss
second_movss_popss:
        nop
        nop

        ; POP SS;MOV SS (IF=1)
        push ss
        pop ss
shadowed_popss_movss:
        mov ss, ax
        nop
        nop
        push ss
        pop ss
        mov ss, ax
second_popss_movss:
        nop
        nop

        CORPUS_DONE
        CORPUS_ISR
