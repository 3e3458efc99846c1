; isr64.asm - the interrupt stubs of 64-bit C guests, one per vector.
;
; The stub of an interrupt vector (0x20-0xFF) starts with the delivery probe
; `out 0xE2, al`: it must be the handler's first instruction, so that hvrec
; reads the CPU's frame (RIP, CS, RFLAGS, RSP, SS) at RSP.  OUT changes no
; register.  CPU exceptions (0x00-0x1F) are not interrupts hvrec injects:
; their stubs do not probe.  Every stub then pushes an error code (the CPU's
; own for the exceptions that have one, else 0) and the vector, and jumps to
; hv_isr_common, which saves every general register, calls
; hv_isr_dispatch(struct hv_frame *) and returns with IRETQ.
;
; The code is built with -mno-red-zone: interrupts use the interrupted
; code's stack.
        bits 64
        default abs

        extern hv_isr_dispatch

%define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

        section .text
        align 16
%assign v 0
%rep 256
        global hv_isr_ %+ v
hv_isr_ %+ v:
%if v >= 0x20
        out 0xE2, al            ; the probe: first instruction
%endif
%if !HAS_ERROR(v)
        push 0
%endif
        push v
        jmp hv_isr_common
%assign v v + 1
%endrep

        global hv_isr_common, hv_isr_iret
hv_isr_common:
        push rax
        push rcx
        push rdx
        push rbx
        push rbp
        push rsi
        push rdi
        push r8
        push r9
        push r10
        push r11
        push r12
        push r13
        push r14
        push r15
        cld
        mov rdi, rsp            ; struct hv_frame *
        mov rbx, rsp            ; callee-saved: the frame survives the call
        and rsp, -16
        call hv_isr_dispatch
        mov rsp, rbx
        pop r15
        pop r14
        pop r13
        pop r12
        pop r11
        pop r10
        pop r9
        pop r8
        pop rdi
        pop rsi
        pop rbp
        pop rbx
        pop rdx
        pop rcx
        pop rax
        add rsp, 16             ; vector and error code
hv_isr_iret:
        iretq

        section .rodata
        align 8
        global hv_isr_table
hv_isr_table:
%assign v 0
%rep 256
        dq hv_isr_ %+ v
%assign v v + 1
%endrep

        section .note.GNU-stack noalloc noexec nowrite progbits   ; no executable stack
