; spin: loops forever without a single exit.  hvrec --timeout must still
; stop it and leave a complete trace.
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        HV_PUTC 's'
spin:   inc ax
        jmp spin
