; hello: prints one line on the console port and exits with status 7.
; Exercises: console output, the exit port, the OUT exit sequence.
%include "hvguest.inc"
        bits 16
        org 0x1000

start:
        HV_PUTS msg
        HV_EXIT 7

msg:    db "hello from a real-mode guest", 10, 0
