; out_console: console bytes a terminal would act on, for hvrec's escaping
; (tests/test_output.c).  The label `text` holds exactly the bytes written,
; `text_end` ends them; the test reads both from the map.
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        mov si, text
next:   cmp si, text_end
        je done
        lodsb
        out HV_PORT_CONSOLE, al
        jmp next
done:   HV_EXIT 0

; Tab and newline, an erase-display sequence, a carriage return that would
; overwrite the line, a backslash, BEL, DEL, a C1 CSI and a UTF-8 byte.
text:   db "tab", 9, "end", 10
        db 27, "[2J", 13, "forged", 10
        db "back\slash", 7, 127, 0x9b, "31m", 0xc3, 10
text_end:
