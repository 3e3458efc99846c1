; smc_next: a store that rewrites the very next instruction.  A CPU runs the
; new bytes (the store is detected), so must the backend, and the checker
; must judge the instruction by them, although no exit ever showed them
; (none falls between the store and the instruction without single-step).
;  - CLI turned into a NOP: IF stays 1 (a stale view would see IF=0);
;  - MOV SS, AX turned into two NOPs: no shadow after them;
;  - a NOP turned into STI with IF=0: a shadow after it, whose instruction
;    stores the NOP back.
; (A backend that keeps re-running the boundary after such a store loops
; forever under --single-step: the emu backend did, until it was fixed.)
;
; Shadows: shadowed_smc_next_sti (after the NOP that became an STI).
; No-shadow: noshadow_smc_next_cli (after the CLI that became a NOP),
;   noshadow_smc_next_movss (after the MOV SS that became two NOPs).
; Default run: an interrupt is raised (port 0x81) with IF=0 before the STI.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{noshadow_smc_next_cli} --irq 0x30@rip:{noshadow_smc_next_movss} --irq 0x30@rip:{shadowed_smc_next_sti}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        mov ax, ss
        sti

        ; CLI -> NOP
        mov byte [next_cli], 0x90
next_cli:
        cli
noshadow_smc_next_cli:
        nop
        nop

        ; MOV SS, AX -> NOP; NOP
        mov word [next_movss], 0x9090
next_movss:
        mov ss, ax
noshadow_smc_next_movss:
        nop
        nop

        ; NOP -> STI (IF=0), and back
        cli
        out 0x81, al
        mov byte [next_sti], 0xfb
next_sti:
        nop
shadowed_smc_next_sti:
        mov byte [next_sti], 0x90
        nop
        nop

        CORPUS_DONE
        CORPUS_ISR
