; entry32.asm - entry of 32-bit (protected mode) C guests, and the idle wait.
;
; hvrec starts an ELF32 guest in flat 32-bit protected mode at e_entry
; (_start) with CS=0x08, DS=ES=SS=FS=GS=0x10, paging off, IF=0 and ESP just
; below its tables at the top of RAM.  The runtime moves to its own stack
; (__stack_top, from the linker script, inside .bss: the ELF loader zeroes
; it), loads its IDT and calls main; main's return value is the exit status.
        bits 32

        extern main, hv_runtime_init, hv_runtime_exit, __stack_top

        section .text.entry progbits alloc exec nowrite align=16
        global _start
_start:
        cli
        cld
        mov esp, __stack_top    ; 16-byte aligned: the i386 ABI's alignment at a call
        xor ebp, ebp
        call hv_runtime_init
        call main
        sub esp, 12
        push eax
        call hv_runtime_exit    ; does not return
_start_hang:
        cli
        hlt
        jmp _start_hang

; void hv_idle_wait(volatile unsigned *counter)
; Wait until *counter != 0 with the race-free idiom: CLI; test; STI; HLT.
; The STI shadow covers the HLT, so no interrupt can land between the test
; and the HLT.  An interrupt that wakes the HLT returns to hv_idle_resume.
; Returns with IF=1.
        section .text
        global hv_idle_wait, hv_idle_hlt, hv_idle_resume, hv_idle_done
hv_idle_wait:
        mov eax, [esp + 4]
hv_idle_again:
        cli
        cmp dword [eax], 0
        jne hv_idle_done
        sti
hv_idle_hlt:
        hlt
hv_idle_resume:
        jmp hv_idle_again
hv_idle_done:
        sti
        ret

        section .note.GNU-stack noalloc noexec nowrite progbits   ; no executable stack
