; ioloop: a tight port-I/O loop, the exit-rate benchmark's guest.
; Writes to port 0x80 forever (bench/ stops it with --max-exits), so every
; exit is the same OUT at the same RIP: the best case for delta encoding.
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        xor ax, ax
loop_top:
        out 0x80, al
        jmp loop_top
