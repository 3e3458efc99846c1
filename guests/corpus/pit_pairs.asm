; pit_pairs: sequences of two interrupt-delaying instructions (STI;MOV SS
; and MOV SS;STI) in a loop the guest's own timer interrupts, for a backend
; with its own irqchip and PIT (kvm-irqchip, qemu-tcg, a VMM under hvrec
; exec).  Only the first instruction of such a sequence is guaranteed to
; delay an interrupt (Intel SDM, STI), so where the backend delivers right
; after the second one the checker notes `second-in-sequence` instead of a
; violation: QEMU's TCG delivers there, KVM keeps the second shadow.  The
; PIT fires IRQ0 about every 8 us (divisor 10); the guest exits 0 after
; TARGET deliveries.
;
; Shadows: shadowed_sti_movss (the MOV SS after an STI run with IF=0).
; Second: second_sti_movss (after STI;MOV SS), second_movss_sti (after
;   MOV SS;STI, the STI run with IF=0 in the MOV SS shadow).
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
TARGET  equ 2000
start:
        CORPUS_START
        mov bx, ss              ; BX: the SS value every MOV SS reloads
        PIT_PERIODIC 10
again:
        ; An exit before each sequence: the checker follows the path from
        ; it.  From the last exit of the ISR the path goes through its
        ; IRET, whose target the trace cannot prove (no guest writes are
        ; recorded): a delivery after a MOV SS reached that way could
        ; follow a first MOV SS as well as a second, so it is undetermined.
        out 0x80, al
        cli
        sti
shadowed_sti_movss:
        mov ss, bx
second_sti_movss:
        inc ax
        nop
        cli
        out 0x80, al
        mov ss, bx              ; IF=0: its own shadow cannot take an interrupt
        sti                     ; IF 0 -> 1, in the MOV SS shadow
second_movss_sti:
        inc cx
        nop
        cmp dword [ticks], TARGET
        jb again
        cli
        HV_EXIT 0
        jmp $                   ; no path falls into the ISR and through its IRET
        CORPUS_TICK_ISR
