; halt: HLT with interrupts disabled.  Nothing can wake the vCPU, so hvrec
; ends the run cleanly with status 0.
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        HV_PUTC 'z'
        cli
halt_here:
        hlt
        HV_EXIT 9              ; never reached
