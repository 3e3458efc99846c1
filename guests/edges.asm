; edges: what a software CPU backend must get right beyond plain IN and OUT
; (written for the emu backend; any backend can run it): REP OUTSB, REP
; INSW, OUTSD, a REP OUTSB with CX=0 (no I/O at all), a software INT through
; the IVT, a read-modify-write of MMIO, and code running with a non-zero CS
; base (CS=0x100, base 0x1000) that takes an interrupt.
; Exit status: 0 when everything read back as expected, 1 otherwise.
%include "hvguest.inc"
        bits 16
        org 0x1000

VECTOR  equ 0x30

start:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x1000
        HV_SET_IVT 0x31, soft_isr
        cld
        mov dx, HV_PORT_CONSOLE
        mov si, text
        mov cx, 3
rep_outs:
        rep outsb               ; one exit: port 0xE9, 3 bytes "abc"
        mov dx, 0x70
        mov di, buf
        mov cx, 2
rep_ins:
        rep insw                ; one exit: port 0x70, 2 words (all-ones)
        cmp dword [buf], 0xffffffff
        jne bad
        mov dx, 0x80
        mov si, text
outs_d:
        outsd                   ; port 0x80, 4 bytes "abcd"
        xor cx, cx
        rep outsb               ; CX=0: no iteration, no exit
        int 0x31                ; a software interrupt: no exit
        cmp byte [soft_done], 1
        jne bad
        mov ax, 0xffff          ; FFFF:0020 = 0x100010, above 1 MiB of RAM
        mov es, ax
mmio_rmw:
        inc byte [es:0x20]      ; an MMIO read (all-ones), then a write of 0
        xor ax, ax
        mov es, ax
        HV_SET_IVT VECTOR, cs100_isr - 0x1000
        mov word [VECTOR * 4 + 2], 0x100
        jmp 0x100:(cs100 - 0x1000)

cs100:                          ; CS=0x100: IP = label - 0x1000
        HV_IRQ VECTOR
        sti
        nop                     ; in the STI shadow
cs100_after:
        nop                     ; the first point the interrupt may land (emu: here)
.wait:  cli                     ; (a backend whose window opens late: wait for it)
        cmp byte [irq_done], 1
        je .done
        sti
        hlt
        jmp .wait
.done:  jmp 0:back
back:   HV_EXIT 0
bad:    HV_EXIT 1

soft_isr:
        mov byte [soft_done], 1
        iret
cs100_isr:
        HV_PROBE
        mov byte [irq_done], 1
        iret

soft_done:
        db 0
irq_done:
        db 0
text:   db "abcd"
buf:    dd 0
