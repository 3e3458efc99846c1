; smc: self-modifying code.  The checker must judge each instruction by the
; bytes in memory when it ran, not by the image loaded at the start nor by
; the bytes some exit showed before.
;  - An STI (IF=0) runs with a shadowed_ label after it; a store then turns
;    it into a NOP and the code runs again with IF=0.
;  - Two NOPs run before a noshadow_ label (IF=1); a store then writes
;    MOV SS, AX (8e d0) over them and the code runs again: a shadow now, on
;    the label's second visit (no eager interrupt there).
;  - A buffer of NOPs that has never run gets STI; NOP; RET stored into it
;    with IF=0 and is called: shadowed_ right after the stored STI.
;  - An STI stored over a NOP runs right after the store and a JMP to it,
;    and the instruction in its shadow stores the NOP back: without
;    single-step no exit ever shows the STI's byte.
;
; Shadows: shadowed_smc_sti (after the STI later overwritten),
;   shadowed_smc_buf (after the STI stored into the buffer),
;   shadowed_smc_e (after the STI that is stored, run and erased).
; No-shadow: noshadow_smc_nop (after the NOPs later overwritten by MOV SS).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each STI
; shadow, so where it lands depends on the bytes that ran.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_smc_sti} --irq 0x30@rip:{noshadow_smc_nop} --irq 0x30@rip:{shadowed_smc_buf} --irq 0x30@rip:{shadowed_smc_e}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START

        ; an STI that a store later turns into a NOP
        mov xCX, 2
smc_a_again:
        cli
        out 0x81, al
smc_sti:
        sti                     ; second pass: a NOP, IF stays 0
shadowed_smc_sti:
        nop
        mov byte [smc_sti], 0x90
        loop smc_a_again
        sti                     ; (default run: the second raise lands after the NOP)
        nop
        nop

        ; NOPs that a store later turns into MOV SS, AX
        mov ax, ss
        mov xCX, 2
smc_b_again:
        cli
        out 0x81, al
        sti
        nop
smc_nops:
        nop                     ; second pass: 8e d0, MOV SS, AX
        nop
noshadow_smc_nop:
        nop
        mov word [smc_nops], 0xd08e
        loop smc_b_again
        nop

        ; STI; NOP; RET stored into a buffer of NOPs, then called (IF=0)
        cli
        mov dword [smc_buf], 0x90c390fb
        out 0x81, al
        call smc_buf
        nop
        nop

        ; an STI stored ahead, run, and erased by the instruction it shadows
        cli
        out 0x81, al
        mov byte [smc_e], 0xfb
        jmp smc_e               ; (a store to the very next instruction: smc_next.asm)
smc_e:
        nop                     ; an STI when it runs
shadowed_smc_e:
        mov byte [smc_e], 0x90
        nop
        nop

        CORPUS_DONE

smc_buf:
        nop                     ; STI once written
shadowed_smc_buf:
        times 15 nop
        ret
        CORPUS_ISR
