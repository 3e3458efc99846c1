; realseg: real-mode segments the checker must compute with.  Linear
; addresses are CS*16+IP: the labels are linear (org 0x1000, CS=0), and
; code run with CS=0x0100 has IP = label - 0x1000.
;  - Code running with CS=0x0100 (entered by a far JMP; the ISR stays at
;    0000:isr) takes interrupts in and after an STI shadow.
;  - A stack at SS:SP = 2000:0002: the interrupt frame wraps at 64 KiB
;    (FLAGS at 2000:0000, CS at 2000:FFFE, IP at 2000:FFFC), also between
;    the MOV SS and the MOV SP of a stack switch.
;  - One linear address reached as 0100:IP and as 0000:IP+0x1000: a routine
;    whose STI shadows on its first visit (through CS=0x0100, IF=0), and
;    one whose first visit has IF=1 already (through CS=0).
; RAM: 1 MiB (the stack is at linear 0x20000).
;
; Shadows: shadowed_cs100 (after STI with IF=0, CS=0x0100),
;   shadowed_wrap_movss (between MOV SS, AX and MOV SP, 2),
;   shadowed_wrap (after STI with IF=0, SS:SP=2000:0002),
;   shadowed_alias (after STI with IF=0, run as 0100:xxxx first).
; No-shadow: noshadow_cs100 (after STI with IF=1, CS=0x0100),
;   noshadow_wrap (IF=1, SS:SP=2000:0002), noshadow_alias (after STI with
;   IF=1, run as 0000:xxxx first).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each STI
; meant to shadow.
; corpus-run: --mem 1M --irq 0x30@port:0x81
; corpus-eager: --mem 1M --irq 0x30@rip:{shadowed_cs100} --irq 0x30@rip:{noshadow_cs100} --irq 0x30@rip:{shadowed_wrap_movss} --irq 0x30@rip:{shadowed_wrap} --irq 0x30@rip:{noshadow_wrap} --irq 0x30@rip:{shadowed_alias} --irq 0x30@rip:{noshadow_alias}
; modes: real
%include "corpus.inc"
        CORPUS_HEADER
CS100   equ 0x100               ; its base is 0x1000: IP = linear - 0x1000
start:
        CORPUS_START
        jmp CS100:(cs100_code - 0x1000)

cs100_code:                     ; CS=0x0100
        out 0x81, al
        sti
shadowed_cs100:
        nop
        nop
        sti                     ; IF already 1
noshadow_cs100:
        nop
        nop
        jmp 0:wrap_code

wrap_code:                      ; CS=0 again
        mov bx, sp
        sti                     ; IF=1 for the switch (the shadow covers the MOV AX)
        mov ax, 0x2000
        mov ss, ax
shadowed_wrap_movss:
        mov sp, 2
        nop
noshadow_wrap:
        nop
        cli
        out 0x81, al
        sti
shadowed_wrap:
        nop
        nop
        cli
        xor ax, ax
        mov ss, ax
        mov sp, bx

        ; the routines, each run through both CS values
        cli
        out 0x81, al
        call CS100:(alias_sti - 0x1000)
        cli
        call 0:alias_sti
        sti
        nop
        call 0:alias_sti_set
        cli
        out 0x81, al
        call CS100:(alias_sti_set - 0x1000)
        sti
        nop
        nop

        CORPUS_DONE

alias_sti:                      ; first as 0100:xxxx, IF=0
        sti
shadowed_alias:
        nop
        retf
alias_sti_set:                  ; first as 0000:xxxx, IF=1
        sti
noshadow_alias:
        nop
        retf
        CORPUS_ISR
