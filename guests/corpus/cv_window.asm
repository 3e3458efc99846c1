; cv_window: an interrupt-window request across STI and port I/O (after
; crosvm's test_request_interrupt_window).  The interrupt is requested while
; IF=0, so the VMM must ask for a window; the window may open only after the
; intercepted instruction in the STI shadow has completed.
;
; Shadows: shadowed_sti (the intercepted instruction after STI).
; variants: in out
; corpus-run:
; corpus-eager:
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        HV_IRQ VECTOR           ; IF=0: the VMM requests a window
        EXIT_IO 0x81
        sti
shadowed_sti:
        EXIT_IO 0x81            ; intercepted, inside the STI shadow
        nop                     ; the window opens before or after this
        CORPUS_WAIT
        CORPUS_DONE
        CORPUS_ISR
