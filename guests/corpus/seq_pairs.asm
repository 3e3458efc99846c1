; seq_pairs: sequences of interrupt-delaying instructions (STI, MOV SS).  In
; such a sequence only the FIRST instruction is guaranteed to delay an
; interrupt (Intel SDM, STI): the instruction after it is shadowed; after the
; second one a delivery is permitted (QEMU's TCG takes it there, KVM does
; not).  Every label has its own copy of its sequence, so that its first
; visit (the only one that gets an interrupt in the eager run) is the
; situation it names.  IF=0 before each STI meant to delay; the MOV SS first
; sequences run with IF=1, or their shadow could not take an interrupt.
;
; Shadows: shadowed_sti_movss (the MOV SS of STI;MOV SS),
;   shadowed_movss_sti (the STI of MOV SS;STI, run with IF=1),
;   shadowed_sti_3 (the first MOV SS of STI;MOV SS;MOV SS),
;   shadowed_stiset_movss (after MOV SS that follows an STI run with IF
;   already 1: that STI delays nothing, so the MOV SS is the first).
; Second: second_sti_movss (after STI;MOV SS), second_movss_sti (after
;   MOV SS;STI with IF=0 before the STI), second_sti_3 (the second MOV SS of
;   STI;MOV SS;MOV SS), second_sti_3c (after all three: still not guaranteed).
; No-shadow: noshadow_stiset (after the STI run with IF already 1).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each
; STI-first sequence, so the VMM must carry it across the whole sequence.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_sti_movss} --irq 0x30@rip:{second_sti_movss} --irq 0x30@rip:{shadowed_movss_sti} --irq 0x30@rip:{second_movss_sti} --irq 0x30@rip:{shadowed_sti_3} --irq 0x30@rip:{second_sti_3} --irq 0x30@rip:{second_sti_3c} --irq 0x30@rip:{noshadow_stiset} --irq 0x30@rip:{shadowed_stiset_movss}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        mov ax, ss              ; AX: the SS value every MOV SS reloads

        ; STI;MOV SS
        out 0x81, al            ; (IF=0: held until the sequence is over)
        sti
shadowed_sti_movss:
        mov ss, ax
        nop
        nop
        cli
        out 0x81, al
        sti
        mov ss, ax
second_sti_movss:
        nop
        nop

        ; MOV SS;STI
        sti                     ; IF=1: the MOV SS shadow can take an interrupt
        nop
        mov ss, ax
shadowed_movss_sti:
        sti                     ; IF already 1: delays nothing
        nop
        nop
        cli
        mov ss, ax
        sti                     ; IF 0 -> 1, in the MOV SS shadow
second_movss_sti:
        nop
        nop

        ; STI;MOV SS;MOV SS, three copies
        cli
        out 0x81, al
        sti
shadowed_sti_3:
        mov ss, ax
        mov ss, ax
        nop
        nop
        cli
        out 0x81, al
        sti
        mov ss, ax
second_sti_3:
        mov ss, ax
        nop
        nop
        cli
        out 0x81, al
        sti
        mov ss, ax
        mov ss, ax
second_sti_3c:
        nop
        nop

        ; STI with IF already 1, then MOV SS: the MOV SS is the first
        sti
        nop
        sti                     ; IF already 1: no shadow
noshadow_stiset:
        mov ss, ax
        nop
        nop
        sti
        mov ss, ax
shadowed_stiset_movss:
        nop
        nop

        CORPUS_DONE
        CORPUS_ISR
