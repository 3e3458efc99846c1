; rec_frame16: a real-mode delivery whose frame wraps at 64 KiB, into code
; that runs in another segment than the handler (tests/test_recorder.c).
;
; The interrupted code runs at FAR_SEG:xxxx with SS:SP = STACK_SEG:STACK_SP,
; so the CPU pushes FLAGS at SS:0000 and CS, IP at SS:FFFE, SS:FFFC.  The
; interrupt is taken after the HLT (after_hlt, at offset after_hlt -
; FAR_SEG * 16 in that segment) with CF set; the handler at 0000:handler
; probes and returns, and the guest exits with status 0x42 when the IRET
; came back with CF set and the same SP.
%include "hvguest.inc"
        bits 16
        org 0x1000

VECTOR    equ 0x30
FAR_SEG   equ 0x0100
STACK_SEG equ 0x1000
STACK_SP  equ 2

start:
        xor ax, ax
        mov ds, ax
        HV_SET_IVT VECTOR, handler
        jmp FAR_SEG:(far_code - FAR_SEG * 16)

far_code:
        mov ax, STACK_SEG
        mov ss, ax
        mov sp, STACK_SP
        HV_IRQ VECTOR           ; pending; IF = 0 keeps it waiting
        stc                     ; a flag the frame must carry
        sti
        hlt                     ; delivered here, after the HLT
after_hlt:
        cli
        jnc fail                ; FLAGS came back from SS:0000
        cmp sp, STACK_SP
        jne fail
        HV_EXIT 0x42
fail:   HV_EXIT 1

handler:
        HV_PROBE
        iret
