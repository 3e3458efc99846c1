; rec_writes: stores of known values at known addresses, each batch
; followed by an OUT to its own port, so that the exit on that port ends
; the run that made them (tests/test_recorder.c):
;   port 0x81: buf_a = 0x1234 (and the IVT entry of VECTOR)
;   port 0x82: buf_b = 0xdeadbeef, byte FAR_BUF = 0x5a (another page)
;   port 0x83: buf_a = 0xabcd again; REP STOSB of STR_LEN bytes STR_BYTE at
;              STR_AT (across a page boundary)
;   port 0x85: the guest patched the port of its own OUT 0x84 into 0x85
; then an interrupt (its frame is written by the CPU) whose handler sets
; got = 1, and exit status 0 if the handler ran.
%include "hvguest.inc"
        bits 16
        org 0x1000

VECTOR   equ 0x30
FAR_BUF  equ 0x9000
STR_AT   equ 0xaff8
STR_LEN  equ 16
STR_BYTE equ 0x77

start:
        xor ax, ax
        mov ds, ax
        mov es, ax
        HV_SET_IVT VECTOR, handler
        mov word [buf_a], 0x1234
        out 0x81, al
        mov dword [buf_b], 0xdeadbeef
        mov byte [FAR_BUF], 0x5a
        out 0x82, al
        mov word [buf_a], 0xabcd
        cld
        mov di, STR_AT
        mov cx, STR_LEN
        mov al, STR_BYTE
        rep stosb
        out 0x83, al
        mov byte [patched + 1], 0x85
        jmp patched             ; a new fetch after the store
patched:
        out 0x84, al            ; runs as out 0x85, al
        HV_IRQ VECTOR
        sti
        hlt
after_hlt:
        cli
        cmp byte [got], 1
        jne fail
        HV_EXIT 0
fail:   HV_EXIT 1

handler:
        HV_PROBE
        mov byte [got], 1
        iret

buf_a:  dw 0
buf_b:  dd 0
got:    db 0
