; nmi_shadow: what blocks an NMI.  A MOV SS or POP SS blocks it until the
; next instruction completes (Intel SDM Vol. 3A 6.8.3); IF does not (6.7.1:
; IF=0 all along here); an STI may block it on some processors but need not
; (Vol. 2B, STI): permitted either way, a note.
;
; Shadows (NMI): shadowed_movss, shadowed_popss (not in 64-bit code).
; nmisti_*: right after an STI executed with IF=0.
; The NMI suite (tests/test_nmi.c) raises an NMI at each of these labels
; (--nmi rip:LABEL); it is no "corpus-run" scenario, since only kvm and emu
; inject NMIs.
; nmi-run: --nmi port:0x81
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
%if __BITS__ == 16
        HV_SET_IVT 2, nmi_isr
%else
        HV_SET_IDT_GATE corpus_idt, 2, nmi_isr
%endif
        mov bx, ss
        mov ss, bx
shadowed_movss:
        inc ax
        nop
%if __BITS__ != 64
        push ss                 ; POP SS does not exist in 64-bit code
        pop ss
shadowed_popss:
%endif
        inc dx
        nop
        sti                     ; IF was 0: an STI shadow
nmisti_sti:
        inc cx
        nop
        cli
        out 0x81, al            ; the default run's NMI, after this instruction
        nop
        ; Wait a little for an NMI the backend may deliver late (legal).
        mov xCX, 60000
.wait:
        cmp word [nmis], 0
        jne .done
        loop .wait
        HV_EXIT 1
.done:  HV_EXIT 0

; The NMI handler: the probe first, then count, then return (ending the
; blocking by NMI).
nmi_isr:
        HV_PROBE
        inc word [nmis]
        HV_IRET
nmis:
        dw 0
        CORPUS_ISR
