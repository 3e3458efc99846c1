; cv_movss_sti: readiness around MOV SS and STI (after crosvm's
; test_interrupt_ready_when_normally_not_interruptible).  IF is 1 except
; around the STI.  The scenario's intercepted instruction comes right after
; each shadow-creating instruction, so the exit is taken inside the shadow
; (IN variant: RIP still at the IN; OUT variant: as the backend reports it).
;
; Shadows: shadowed_movss (after MOV SS), shadowed_sti (after STI, IF was 0).
; Interrupts: hvrec raises vector 0x30 at every instrumentation exit; a
; correct VMM injects each one only once the shadow is over.
; variants: in out
; corpus-run: --irq 0x30@port:0x81 --irq 0x30@port:0x82 --irq 0x30@port:0x84 --irq 0x30@port:0x85
; corpus-eager: --irq 0x30@rip:{shadowed_movss} --irq 0x30@rip:{shadowed_sti}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        sti
        mov bx, ss              ; BX: the IN variant's EXIT_IO clobbers AL
        EXIT_IO 0x81            ; before MOV SS: ready
        mov ss, bx
shadowed_movss:
        EXIT_IO 0x82            ; inside the MOV SS shadow: not ready
        nop
        EXIT_IO 0x83            ; after: ready
        EXIT_IO 0x84            ; before STI: ready
        cli
        sti
shadowed_sti:
        EXIT_IO 0x85            ; inside the STI shadow: not ready
        nop
        EXIT_IO 0x86            ; after: ready
        CORPUS_DONE
        CORPUS_ISR
