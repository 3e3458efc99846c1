; emu_smc: stores that rewrite the very next instruction (self-modifying
; code), for the emu backend's single-step and write tracking
; (tests/test_emu.c).  ITERATIONS times: `restore` puts INC eAX back at
; `patched` (0x40; in 64-bit code, where 0x40 is a REX prefix, the two bytes
; FF C0), then `store` overwrites it with NOP (two NOPs in 64-bit code),
; and the next instruction to run is the one at `patched`.  A CPU runs the
; NEW bytes there, so eAX stays 0.
; Exit status: 0 if the NOPs ran every time, 1 if an old INC ever did.
; modes: real protected long
%include "hvguest.inc"
%ifdef MODE_L64
        bits 64
%elifdef MODE_P32
        bits 32
%else
        bits 16
%endif
        org 0x1000

ITERATIONS equ 200              ; (tests/test_emu.c counts on it)

start:
        cli
%if __BITS__ == 16
        xor ax, ax
        mov ds, ax
%endif
        xor eax, eax
        mov ecx, ITERATIONS
again:
restore:
%if __BITS__ == 64
        mov word [rel patched], 0xc0ff
%else
        mov byte [patched], 0x40
%endif
store:
%if __BITS__ == 64
        mov word [rel patched], 0x9090
%else
        mov byte [patched], 0x90
%endif
patched:
%if __BITS__ == 16
        inc ax                  ; 40
%else
        inc eax                 ; 40 in 32-bit code, FF C0 in 64-bit code
%endif
after:
        loop again
        test eax, eax
        jnz old
        HV_EXIT 0
old:    HV_EXIT 1
