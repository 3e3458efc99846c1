; out_lines: 4000 console lines of 64 bytes (256 KB, more than a pipe
; holds), then exit status 9: for a reader of hvrec's stdout that stops
; early (`hvrec run out_lines.bin | head -1`) while the trace keeps it all.
%include "hvguest.inc"
        bits 16
        org 0x1000
LINES equ 4000
start:
        mov cx, LINES
line:   mov si, text
        mov dx, 64
char:   lodsb
        out HV_PORT_CONSOLE, al
        dec dx
        jnz char
        loop line
        HV_EXIT 9

text:   db "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", 10
