; entry64.asm - entry of 64-bit (long mode) C guests, and the idle wait.
;
; hvrec starts an ELF64 guest in long mode at e_entry (_start) with CS=0x18,
; flat data segments, identity paging, IF=0 and RSP just below its tables at
; the top of RAM.  The runtime moves to its own stack (__stack_top, from the
; linker script, inside .bss: the ELF loader zeroes it), loads its IDT and
; calls main; main's return value is the exit status.
        bits 64
        default abs

        extern main, hv_runtime_init, hv_runtime_exit, __stack_top

        section .text.entry progbits alloc exec nowrite align=16
        global _start
_start:
        cli
        cld
        mov rsp, __stack_top    ; 16-byte aligned: the ABI's alignment at a call
        xor ebp, ebp
        call hv_runtime_init
        call main
        mov edi, eax
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
        cli
        cmp dword [rdi], 0
        jne hv_idle_done
        sti
hv_idle_hlt:
        hlt
hv_idle_resume:
        jmp hv_idle_wait
hv_idle_done:
        sti
        ret

        section .note.GNU-stack noalloc noexec nowrite progbits   ; no executable stack
