; modeswitch: starts in real mode and switches itself to 32-bit protected
; mode, then to 64-bit long mode, with an interrupt shadow on each side.
;
; On each side it reads MMIO (an address outside RAM) with an instruction
; whose bytes mean something else in the other modes, so a trace decoded in
; the wrong mode shows it: real_mmio, pm_mmio, lm_mmio.
;
; Shadows: shadowed_real (after STI in real mode), shadowed_pm (protected),
; shadowed_lm (long).  The guest itself requests vector 0x30 in real and long
; mode only (an OUT after each shadow gives the VMM an exit with IF=1 to
; inject on): this machine's KVM cannot emulate a 32-bit IRET, so an interrupt
; taken in protected mode would end the run there.  To deliver one in
; protected mode as well (on a backend that can), add
; --irq 0x30@rip:{shadowed_pm}.
; Exit status: 0 when the two requested interrupts arrived, 1 otherwise.
%include "hvguest.inc"

VECTOR  equ 0x30
PML4    equ 0x20000             ; the guest's own page tables (identity, 2 MiB)
PDPT    equ 0x21000
PD      equ 0x22000

        bits 16
        org 0x1000
start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x1000
        HV_SET_IVT VECTOR, isr16
        mov ax, 0xffff          ; FFFF:0020 = 0x100010, above 1 MiB of RAM
        mov es, ax
real_mmio:
        mov ax, [es:0x20]       ; 26 a1 20 00
        HV_IRQ VECTOR           ; pending while IF=0
        sti
shadowed_real:
        nop
        out 0x80, al            ; an exit with IF=1: the VMM's chance to inject
        nop
        cli

        ; ---- to 32-bit protected mode ----
        lgdt [gdtr]
        mov eax, cr0
        or eax, 1
        mov cr0, eax
        jmp 0x08:pm
        bits 32
pm:     mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, 0x9000
        HV_SET_IDT_GATE idt32, VECTOR, isr32
        lidt [idtr32]
pm_mmio:
        mov eax, [0x180000]     ; a1 00 00 18 00: moffs, beyond RAM
        sti
shadowed_pm:
        nop
        out 0x80, al
        nop
        cli

        ; ---- to 64-bit long mode ----
        mov edi, PML4
        xor eax, eax
        mov ecx, 3 * 1024
        rep stosd
        mov dword [PML4], PDPT | 3
        mov dword [PDPT], PD | 3
        mov dword [PD], 0x83    ; 2 MiB page at 0, present, writable
        mov eax, cr4
        or eax, 1 << 5          ; PAE
        mov cr4, eax
        mov eax, PML4
        mov cr3, eax
        mov ecx, 0xc0000080     ; EFER
        rdmsr
        or eax, 1 << 8          ; LME
        wrmsr
        mov eax, cr0
        or eax, 1 << 31         ; PG
        mov cr0, eax
        jmp 0x18:lm
        bits 64
lm:     mov ax, 0x10
        mov ds, ax
        mov ss, ax
        mov rsp, 0x9000
        HV_SET_IDT_GATE idt64, VECTOR, isr64
        lidt [idtr64]
lm_mmio:
        mov rax, [0x180000]     ; 48 8b 04 25 00 00 18 00
        HV_IRQ VECTOR
        sti
shadowed_lm:
        nop
        out 0x80, al
        nop
        cli
        cmp word [delivered], 2
        jb .fail
        HV_EXIT 0
.fail:  HV_EXIT 1

        bits 16
isr16:  HV_PROBE
        inc word [delivered]
        iret
        bits 32
isr32:  HV_PROBE
        inc word [delivered]
        iret
        bits 64
isr64:  HV_PROBE
        inc word [delivered]
        iretq

delivered:
        dw 0
        align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff   ; 0x08: 32-bit code
        dq 0x00cf92000000ffff   ; 0x10: data
        dq 0x00af9a000000ffff   ; 0x18: 64-bit code
gdtr:   dw 31
        dd gdt
        bits 32
        HV_IDT idt32, idtr32
        bits 64
        HV_IDT idt64, idtr64
