; cf_rep_mmio: shadows next to instructions that exit more than once or in
; the middle: REP string instructions (single-stepped, each iteration is a
; stop at the same RIP) and MMIO loads (an exit for an access, not for an
; instruction boundary; hvrec reads all-ones above guest RAM).
;
; Shadows: shadowed_repmovs (after an STI with IF=0 that follows REP MOVSB,
;   CX=5), shadowed_repstos (the same after REP STOSB), shadowed_rep_movss
;   (after a MOV SS that follows REP STOSB), shadowed_mmio (after CLI; STI
;   that follows an MMIO load), shadowed_mmio_in (an MMIO load in an STI
;   shadow), shadowed_mmio_movss (an MMIO load in a MOV SS shadow).
; No-shadow: noshadow_rep (after a REP MOVSB that follows an STI run with IF
;   already 1).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each STI
; shadow.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_repmovs} --irq 0x30@rip:{shadowed_repstos} --irq 0x30@rip:{shadowed_rep_movss} --irq 0x30@rip:{noshadow_rep} --irq 0x30@rip:{shadowed_mmio} --irq 0x30@rip:{shadowed_mmio_in} --irq 0x30@rip:{shadowed_mmio_movss}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER

; REP_SETUP   RSI/RDI (or the narrower ones) at the buffers, CX=5
%macro REP_SETUP 0
%if __BITS__ == 64
        lea rsi, [rel rep_src]
        lea rdi, [rel rep_dst]
%else
        mov xSI, rep_src
        mov xDI, rep_dst
%endif
        mov xCX, 5
%endmacro

; MMIO_LOAD   AL from an address above the 1 MiB of guest RAM: 0x100010
;       (FFFF:0020 in real mode, through FS)
%macro MMIO_LOAD 0
%if __BITS__ == 16
        mov al, [fs:0x20]
%else
        mov al, [0x100010]
%endif
%endmacro

start:
        CORPUS_START
        cld
%if __BITS__ == 16
        mov ax, 0xffff
        mov fs, ax
%endif

        ; REP MOVSB, then STI (IF=0)
        REP_SETUP
        out 0x81, al
        rep movsb
        sti
shadowed_repmovs:
        nop
        nop

        ; REP STOSB, then STI (IF=0)
        cli
        REP_SETUP
        mov al, 0x5a
        out 0x81, al
        rep stosb
        sti
shadowed_repstos:
        nop
        nop

        ; REP STOSB, then MOV SS (IF=1)
        REP_SETUP
        mov bx, ss
        rep stosb
        mov ss, bx
shadowed_rep_movss:
        nop
        nop

        ; STI with IF already 1, then REP MOVSB
        REP_SETUP
        sti
        rep movsb
noshadow_rep:
        nop
        nop

        ; an MMIO load, then CLI; STI
        cli
        out 0x81, al
        MMIO_LOAD
        cli
        sti
shadowed_mmio:
        nop
        nop

        ; an MMIO load in the STI shadow
        cli
        out 0x81, al
        sti
shadowed_mmio_in:
        MMIO_LOAD
        nop

        ; an MMIO load in the MOV SS shadow
        mov bx, ss
        mov ss, bx
shadowed_mmio_movss:
        MMIO_LOAD
        nop

        CORPUS_DONE
rep_src:
        db "shadow"
rep_dst:
        times 8 db 0
        CORPUS_ISR
