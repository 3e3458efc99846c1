; hvt_bios: the 64 KiB firmware image hvrec's qemu-tcg backend gives QEMU
; (-bios).  QEMU maps it below 4 GiB and at 0xF0000 and starts at its last
; 16 bytes with CS = F000, base FFFF0000.  It does the two things a flat
; hvtrace guest needs and QEMU's reset state lacks:
;   - the LAPIC: QEMU starts it with LINT0 masked, so the 8259 never reaches
;     the CPU; enable it (SVR) and make LINT0 ExtINT, through the APIC page
;     at 0xFEE00000 (hence a short trip through 32-bit protected mode);
;   - the guest's starting state (docs/guest-abi.md, real mode): CS = DS =
;     ES = SS = FS = GS = 0, IP and SP from the parameter block, all general
;     registers 0, FLAGS = 0x2, the IVT at 0 (limit 0x3ff), GDTR as at reset.
; In protected and long mode (docs/guest-abi.md) the guest starts instead in
; hvrec's own GDT and page tables, which the backend has loaded into RAM with
; the guest: the BIOS loads GDTR, CR4, CR3, EFER and CR0 from the parameter
; block (and IDTR: none until the guest loads one) and far-jumps to the entry from 32-bit code, so QEMU enters the mode
; as the CPU does (long mode: LME, then paging).
; The backend patches the parameter block (PARAM_OFFSET, below) in its copy
; of the image before QEMU starts.
        bits 16
        org 0                           ; offsets in the image; CS base F0000

BIOS_BASE       equ 0xF0000             ; where the image is also seen in low memory
APIC_BASE       equ 0xFEE00000
APIC_SVR        equ 0x0F0
APIC_LINT0      equ 0x350
APIC_LINT1      equ 0x360

start:
        cli
        cld
        mov ax, 0xF000                  ; the image through its low alias
        mov ds, ax
        o32 lgdt [gdtr]
        mov eax, cr0
        or al, 1
        mov cr0, eax
        jmp dword 0x08:(BIOS_BASE + pm32)

        bits 32
pm32:
        mov ax, 0x10
        mov ds, ax
        mov dword [APIC_BASE + APIC_SVR], 0x1FF         ; enabled, spurious vector 0xFF
        mov dword [APIC_BASE + APIC_LINT0], 0x700       ; ExtINT, unmasked: the 8259
        mov dword [APIC_BASE + APIC_LINT1], 0x400       ; NMI
        cmp byte [BIOS_BASE + param_mode], 0
        jne guest_mode
        jmp 0x18:pm16                   ; 16-bit code, base F0000

; Protected or long mode: hvrec's tables, then the guest's selectors.  No
; stack write (the guest's RAM stays as hvrec loaded it), and nothing after
; SAHF changes a flag: the guest starts with EFLAGS = 0x2, as on every backend.
guest_mode:
        lgdt [BIOS_BASE + param_gdtr]
        lidt [BIOS_BASE + param_idtr]
        mov eax, [BIOS_BASE + param_cr4]
        mov cr4, eax
        mov eax, [BIOS_BASE + param_cr3]
        mov cr3, eax
        mov ecx, 0xC0000080             ; EFER: LME before paging; LMA is the CPU's
        mov eax, [BIOS_BASE + param_efer]
        and eax, ~0x400
        xor edx, edx
        wrmsr
        mov eax, [BIOS_BASE + param_cr0]
        mov cr0, eax                    ; long mode: paging on, LMA set, still 32-bit code
        mov esp, [BIOS_BASE + param_esp]
        mov ax, [BIOS_BASE + param_ds]
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax
        mov ah, 0x02                    ; SF ZF AF PF CF clear; OF is from the AND
        sahf
        mov ax, [BIOS_BASE + param_ds]
        mov ds, ax
        mov eax, 0
        mov ecx, 0
        mov edx, 0
        jmp far [BIOS_BASE + param_entry] ; CS from hvrec's GDT: 32- or 64-bit code

        bits 16
pm16:
        mov ax, 0x20                    ; 16-bit data: real-mode limits back
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax
        mov eax, cr0
        and al, 0xFE
        mov cr0, eax
        jmp 0xF000:real

real:
        ; the descriptor tables of docs/guest-abi.md's real mode: IVT at 0,
        ; limit 0x3ff; GDTR back to its reset value
        o32 lidt [cs:ivt_ptr]
        o32 lgdt [cs:gdt_reset]
        ; MOV, not XOR: XOR would leave ZF and PF set, and the guest must
        ; start with FLAGS = 0x2 as on every backend (docs/guest-abi.md).
        ; SAHF clears SF ZF AF PF CF that the AND above set; OF is the
        ; AND's (clear).  No stack write (POPF): the guest's RAM stays as
        ; hvrec loaded it.
        mov ax, 0
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov sp, [cs:param_sp]
        mov ah, 0x02
        sahf
        mov eax, 0
        mov ebx, 0
        mov ecx, 0
        mov edx, 0
        mov esi, 0
        mov edi, 0
        mov ebp, 0
        jmp far [cs:param_ip]           ; the guest's first instruction is next

; Every descriptor has its accessed bit set: this GDT is in ROM, and a CPU
; loading a selector whose bit is clear writes the bit into the table.  On
; real hardware that write is simply lost; an emulating hypervisor (PVM) can
; fail or retry it forever, and QEMU -accel kvm then never gets past the
; far jump below.
        align 8
gdt:    dq 0
        dq 0x00CF9B000000FFFF           ; 0x08 flat 32-bit code
        dq 0x00CF93000000FFFF           ; 0x10 flat data
        dq 0x00009B0F0000FFFF           ; 0x18 16-bit code, base F0000
        dq 0x000093000000FFFF           ; 0x20 16-bit data, base 0, limit 64 KiB
gdtr:   dw gdtr - gdt - 1
        dd BIOS_BASE + gdt
ivt_ptr:
        dw 0x3ff
        dd 0
gdt_reset:
        dw 0xffff
        dd 0

; The parameter block the backend patches: the guest's IP, CS and SP; for
; protected and long mode, the mode and the registers hvrec set up.
        times 0xFF00 - ($ - $$) db 0
PARAM_OFFSET equ 0xFF00
param_ip: dw 0x1000                     ; far pointer: IP, then CS
param_cs: dw 0
param_sp: dw 0x1000
param_mode: db 0                        ; 0 real mode, else protected/long
        db 0
param_entry: dd 0                       ; far pointer: EIP, then CS
        dw 0
param_ds: dw 0                          ; DS, ES, SS, FS, GS
param_esp: dd 0
param_cr0: dd 0
param_cr3: dd 0
param_cr4: dd 0
param_efer: dd 0
param_gdtr: dw 0                        ; limit, then base
        dd 0
param_idtr: dw 0                        ; limit, then base
        dd 0

        times 0xFFF0 - ($ - $$) db 0
reset:
        jmp 0xF000:start
        times 0x10000 - ($ - $$) db 0
