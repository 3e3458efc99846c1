; cv_not_ready: injection when the vCPU is not ready (after crosvm's
; test_interrupt_injection_when_not_ready).  A flag is 1 while interrupts
; are off; the ISR records the flag it saw.  A VMM that injects anyway
; (--inject blind) delivers with IF=0 (rule if-clear); a correct one waits
; until after the instruction in the STI shadow.
;
; Shadows: shadowed_sti (the store that clears the flag, after STI).
; Status: 2 if the ISR ever ran while the flag was 1.
; variants: in out
; corpus-run:
; corpus-eager:
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        mov word [flag], 1
        HV_IRQ VECTOR
        EXIT_IO 0x81            ; not ready (IF=0)
        sti
shadowed_sti:
        mov word [flag], 0
        nop                     ; a patient VMM delivers here or later
        CORPUS_WAIT
        cmp word [seen_one], 0
        je flag_ok
        HV_EXIT 2
flag_ok:
        CORPUS_DONE
isr:
        HV_PROBE
        inc word [delivered]
        push ax
        mov ax, [flag]
        or [seen_one], ax
        pop ax
        CORPUS_EOI
        HV_IRET
delivered:
        dw 0
flag:   dw 0
seen_one:
        dw 0
%if __BITS__ != 16
        HV_IDT corpus_idt, corpus_idtr
%endif
