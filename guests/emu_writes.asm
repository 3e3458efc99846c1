; emu_writes: one kind of write to guest RAM per step, for the emu
; backend's take_writes (tests/test_emu.c runs it through the backend table
; with 1 MiB of RAM).  Step N ends with a checkpoint exit, N written to port
; 0x80, so each step's writes are reported at its own checkpoint:
;   0 the IVT entries          1 a plain store       2 a store of what is there
;   3 a store across a page    4 REP STOSB across a page
;   5 REP INSB (port 0x70)     6 a store whose second byte is MMIO, above RAM
;   7 INT 0x31                 8 interrupt 0x30, taken after STI; HLT
;   9 a #DE (DIV by 0)        10 stores scattered over 64 KiB, one per 16 bytes
; Handlers start with the probe (port 0xE2).  Exit status 0.
%include "hvguest.inc"
        bits 16
        org 0x1000

FILL_LEN equ 600
INS_LEN  equ 5

%macro CHECKPOINT 1
        mov al, %1
        out 0x80, al
%endmacro

start:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x1000
        cld
        HV_SET_IVT 0x30, isr_ext
        HV_SET_IVT 0x31, isr_soft
        HV_SET_IVT 0, isr_de
        CHECKPOINT 0
        mov word [var_plain], 0x1234
        CHECKPOINT 1
        mov word [var_same], 0  ; RAM starts zeroed: no byte changes
        CHECKPOINT 2
        mov dword [cross], 0xdeadbeef
        CHECKPOINT 3
        mov di, fill
        mov cx, FILL_LEN
        mov al, 0xa5
        rep stosb
        CHECKPOINT 4
        mov dx, 0x70
        mov di, inbuf
        mov cx, INS_LEN
        rep insb
        CHECKPOINT 5
        mov ax, last_ram_byte >> 4
        mov es, ax
rolled_back:                    ; the RAM byte is written, then the MMIO byte exits
        mov word [es:last_ram_byte & 0xf], 0x5a5a
        xor ax, ax
        mov es, ax
        CHECKPOINT 6
        int 0x31
        CHECKPOINT 7
        HV_IRQ 0x30
        sti
        hlt
        cli
        CHECKPOINT 8
        xor dx, dx
        mov ax, 1
        xor bx, bx
        div bx                  ; #DE: the handler steps over the 2-byte DIV
        CHECKPOINT 9
        mov ax, scatter >> 4
        mov ds, ax
        xor bx, bx
        mov cx, 0x10000 / 16
scatter_loop:
        mov [bx], cl
        add bx, 16
        loop scatter_loop
        xor ax, ax
        mov ds, ax
        CHECKPOINT 10
        HV_EXIT 0

isr_soft:
        HV_PROBE
        mov byte [soft_done], 1
        iret
isr_ext:
        HV_PROBE
        iret
isr_de:
        HV_PROBE
        push bp
        mov bp, sp
        add word [bp + 2], 2
        pop bp
        iret

absolute 0x4000
var_plain:      resw 1
var_same:       resw 1
soft_done:      resb 1
absolute 0x4ffe
cross:          resd 1          ; 0x4ffe..0x5001
absolute 0x5f00
fill:           resb FILL_LEN   ; across 0x6000
absolute 0x7000
inbuf:          resb INS_LEN
absolute 0x10000
scatter:        resb 0x10000
absolute 0xfffff
last_ram_byte:  resb 1          ; with 1 MiB of RAM; 0x100000 is MMIO
