; triple: crashes the vCPU with a triple fault.  It enters 32-bit protected
; mode with an empty IDT and executes UD2: #UD cannot be delivered, nor can
; the #GP and #DF that follow, so the CPU shuts down.  hvrec must record the
; shutdown exit and exit 3 naming the reason and the last RIP (crash_here).
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        HV_PUTC 't'
        cli
        lgdt [gdtr]
        lidt [idtr]             ; limit 0: no vector can be delivered
        mov eax, cr0
        or eax, 1
        mov cr0, eax
        jmp 0x08:pm
        bits 32
pm:     mov ax, 0x10
        mov ds, ax
        mov ss, ax
crash_here:
        ud2
        bits 16
        align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff   ; 0x08: flat 32-bit code
        dq 0x00cf92000000ffff   ; 0x10: flat data
gdtr:   dw 23
        dd gdt
idtr:   dw 0
        dd 0
