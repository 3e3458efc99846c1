; softint: software interrupts into handlers that start with the delivery
; probe.  The probe reports them like any delivery, but they are not
; maskable interrupts: IF does not gate them and shadows do not delay them,
; so none of them is spurious, an IF=0 delivery or a shadow violation.  The
; softint_ labels are the instruction after each INT (the interrupted IP
; the probe reports).  One external interrupt is raised at the end (port
; 0x81, IF=1, no shadow) so that the run has a maskable delivery too.
;
; Software interrupts: softint_int30_if1 (INT 0x30 with IF=1),
;   softint_int30_if0 (INT 0x30 with IF=0), softint_int30_sti (INT 0x30 in
;   an STI shadow), softint_int30_movss (INT 0x30 in a MOV SS shadow),
;   softint_int3 (INT3, CC), softint_int3_cd (INT 3, CD 03), softint_into
;   (INTO with OF=1; not in 64-bit code, which has no INTO).
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@port:0x81
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        CORPUS_SET_VECTOR 3, isr3
%if __BITS__ != 64
        CORPUS_SET_VECTOR 4, isr4
%endif
        mov bx, ss

        sti
        int 0x30
softint_int30_if1:
        nop
        cli
        int 0x30
softint_int30_if0:
        nop
        sti
        nop
        cli
        sti
        int 0x30
softint_int30_sti:
        nop
        mov ss, bx
        int 0x30
softint_int30_movss:
        nop
        int3
softint_int3:
        nop
        int 3
softint_int3_cd:
        nop
%if __BITS__ != 64
        mov al, 0x7f
        add al, 1               ; OF=1
        into
softint_into:
        nop
%endif

        ; the maskable interrupt (the soft ones counted too: start again)
        mov word [delivered], 0
        out 0x81, al
        nop
        nop
        CORPUS_DONE

        CORPUS_PROBED_ISR isr3
%if __BITS__ != 64
        CORPUS_PROBED_ISR isr4
%endif
        CORPUS_ISR
