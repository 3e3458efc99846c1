; rec_frame32: protected-mode deliveries into code that runs in a second
; code descriptor with a non-zero base, through gates of both sizes and
; onto a 16-bit stack (tests/test_recorder.c).  Run with --mode protected.
;
; The guest loads its own GDT (SEL_* below), jumps to SEL_CODE:(far_code -
; CODE_BASE) and there waits four times with STI; HLT for an interrupt, so
; each lands right after a HLT (label after_*):
;   1. VECTOR32, a 32-bit gate: after_hlt32;
;   2. VECTOR16, a 16-bit gate (a 16-bit frame): after_hlt16;
;   3. VECTOR32 on SS = SEL_STACK16 (B = 0), ESP = STACK16_ESP: the 32-bit
;      frame wraps inside the 16-bit stack (EFLAGS at SS:0000, with CF
;      set: the guest fails unless it comes back): after_hlt_ss16;
;   4. VECTOR_NOGDT after LGDT of a GDT whose limit ends before SEL_CODE:
;      the frame's CS names no descriptor (its handler reloads the full GDT
;      before IRET): after_hlt_nogdt.
; The handlers run in SEL_FLAT and start with the probe.  Exit status 0x42.
%include "hvguest.inc"
        bits 32
        org 0x1000

VECTOR32     equ 0x30
VECTOR16     equ 0x31
VECTOR_NOGDT equ 0x32
CODE_BASE    equ 0x800
STACK16_BASE equ 0x20000
STACK16_ESP  equ 0x12340004     ; SP = 4; the upper half must survive
SEL_FLAT     equ 0x08
SEL_DATA     equ 0x10
SEL_CODE     equ 0x18
SEL_STACK16  equ 0x20

; DESC base, limit, access, flags (G, D/B, L, AVL)
%macro DESC 4
        dw (%2) & 0xffff
        dw (%1) & 0xffff
        db ((%1) >> 16) & 0xff
        db %3
        db (((%2) >> 16) & 0x0f) | ((%4) << 4)
        db ((%1) >> 24) & 0xff
%endmacro

start:
        lgdt [gdtr]
        jmp SEL_FLAT:reload
reload:
        mov ax, SEL_DATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov [flat_esp], esp
        HV_SET_IDT_GATE idt, VECTOR32, handler32
        HV_SET_IDT_GATE idt, VECTOR16, handler16
        mov word [idt + VECTOR16 * 8 + 4], 0x8600       ; 16-bit interrupt gate
        HV_SET_IDT_GATE idt, VECTOR_NOGDT, handler_nogdt
        lidt [idtr]
        jmp SEL_CODE:(far_code - CODE_BASE)

far_code:
        HV_IRQ VECTOR32
        stc
        sti
        hlt
after_hlt32:
        cli
        HV_IRQ VECTOR16
        clc
        sti
        hlt
after_hlt16:
        cli
        mov ax, SEL_STACK16
        mov ss, ax
        mov esp, STACK16_ESP
        HV_IRQ VECTOR32
        stc
        sti
        hlt
after_hlt_ss16:
        cli
        jc .cf_back             ; EFLAGS came back from SS:0000
        mov byte [bad], 1       ; go on: the fourth delivery still counts
.cf_back:
        cmp esp, STACK16_ESP
        jne fail
        mov ax, SEL_DATA
        mov ss, ax
        mov esp, [flat_esp]
        lgdt [gdtr_short]
        HV_IRQ VECTOR_NOGDT
        sti
        hlt
after_hlt_nogdt:
        cli
        cmp byte [bad], 0
        jne fail
        HV_EXIT 0x42
fail:   HV_EXIT 1

handler32:
        HV_PROBE
        iretd

handler16:
        HV_PROBE
        iretw

handler_nogdt:
        HV_PROBE
        lgdt [gdtr]             ; SEL_CODE must exist again for the IRET
        iretd

        align 8
gdt:
        dq 0
        DESC 0, 0xfffff, 0x9b, 0xc              ; SEL_FLAT: 32-bit code, 4 GiB
        DESC 0, 0xfffff, 0x93, 0xc              ; SEL_DATA: data, 4 GiB
        DESC CODE_BASE, 0xfffff, 0x9b, 0xc      ; SEL_CODE: 32-bit code at CODE_BASE
        DESC STACK16_BASE, 0xffff, 0x93, 0x0    ; SEL_STACK16: 64 KiB, B = 0
gdt_end:
gdtr:   dw gdt_end - gdt - 1
        dd gdt
gdtr_short:
        dw SEL_CODE - 1                         ; null, SEL_FLAT, SEL_DATA only
        dd gdt
flat_esp:
        dd 0
bad:    db 0
        HV_IDT idt, idtr
