/* SPDX-License-Identifier: MIT */
/*
 * hvrt.h - the freestanding runtime of hvtrace's C guests (docs/guest-abi.md,
 * "C guests").  One header for 32-bit (protected mode) and 64-bit (long mode)
 * guests; no libc.
 *
 * The runtime's entry stub (entry32.asm / entry64.asm) switches to the
 * runtime's own stack, installs an IDT whose 256 gates point at the
 * runtime's interrupt stubs (isr32.asm / isr64.asm), then calls
 * `int main(void)` with interrupts disabled (IF=0).  main's return value is
 * the run's exit status (port 0xF4).
 *
 * Interrupts: every stub of vectors 0x20-0xFF starts with the delivery probe
 * (`out 0xE2, al`), then saves every general register and calls the C
 * handler registered with hv_set_handler(), then returns with IRET/IRETQ.
 * Vectors 0x00-0x1F are CPU exceptions: no probe; without a handler the
 * runtime prints the exception and exits with HV_STATUS_EXCEPTION.
 *
 * All guest code must be built with -mgeneral-regs-only: hvrec's starting
 * state does not enable SSE (CR4.OSFXSR = 0), and handlers must not touch
 * the interrupted code's vector registers anyway.
 */
#ifndef HVRT_H
#define HVRT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvguest.h" /* ports, hv_outb/hv_inb, hv_putc/hv_puts, hv_irq, hv_exit, hv_cli/hv_sti */

/* Exit statuses of the runtime's default handlers. */
#define HV_STATUS_EXCEPTION  0xEE /* a CPU exception without a handler */
#define HV_STATUS_UNEXPECTED 0xEF /* an interrupt vector without a handler */

/* Vectors below this are CPU exceptions: their stubs do not probe. */
#define HV_FIRST_IRQ_VECTOR 0x20

/* The runtime maps the PIC's IRQ0-7 here (and acknowledges them after the handler). */
#define HV_PIC_BASE 0x30

/*
 * The stack of an interrupt as the runtime's stub leaves it: the saved
 * general registers, the vector, the error code (0 when the CPU pushes
 * none), then the CPU's interrupt frame.  A handler may change any field;
 * the stub restores them all before IRET.
 */
struct hv_frame {
#ifdef __x86_64__
        unsigned long r15, r14, r13, r12, r11, r10, r9, r8;
        unsigned long di, si, bp, bx, dx, cx, ax;
#else
        unsigned long di, si, bp, sp_pushad, bx, dx, cx, ax; /* PUSHAD order */
#endif
        unsigned long vector, error;
        unsigned long ip, cs, flags; /* the interrupted CS:IP and FLAGS */
#ifdef __x86_64__
        unsigned long sp, ss; /* 64-bit frames always hold the old SS:RSP */
#endif
};

typedef void (*hv_handler_fn)(struct hv_frame *f);
typedef void (*hv_code_fn)(void); /* code an IDT gate points at */

/* Deliveries seen by the runtime, per vector (counted before the handler runs). */
extern volatile unsigned hv_irq_count[256];

/*
 * Register fn as the C handler of vector (NULL: the default handler) and
 * point the vector's IDT gate back at the runtime's stub.  Returns the
 * previous handler.
 */
hv_handler_fn hv_set_handler(unsigned vector, hv_handler_fn fn);

/*
 * Low-level IDT access.  hv_idt_set_gate points vector at code of your own
 * (an interrupt gate, DPL 0, selector = the current CS; a 32-bit gate in
 * protected mode, a 64-bit gate in long mode); such code must start with the
 * probe (HV_PROBE_ASM) to be seen by hvrec.  hv_isr_stub(v) is the runtime's
 * stub of vector v.  The runtime loads its IDT before main; hv_idt_load
 * reloads it.
 */
void hv_idt_set_gate(unsigned vector, hv_code_fn code);
hv_code_fn hv_isr_stub(unsigned vector);
void hv_idt_load(void);

/*
 * Wait until *counter is non-zero with the race-free idle idiom
 * (cli; test; sti; hlt; repeat), e.g. hv_idle_wait(&hv_irq_count[0x30]).
 * Returns with interrupts enabled.  Its HLT is the global label hv_idle_hlt
 * and the instruction after it hv_idle_resume: an interrupt waking the HLT
 * returns there.
 */
void hv_idle_wait(volatile unsigned *counter);

/* Console output (port 0xE9). */
void hv_write(const char *s, size_t n);
void hv_put_hex(unsigned long long v); /* "0x" and lower-case hex digits */
void hv_put_dec(long long v);
void hv_put_udec(unsigned long long v);

/*
 * A tiny printf: %c %s %d %i %u %x %X %p %%, the length modifiers l, ll, z,
 * a width and the '0' flag (e.g. %08lx).  Returns the characters written.
 */
int hv_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hv_vprintf(const char *fmt, va_list ap);

/* The freestanding string functions the compiler may call. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *__restrict d, const void *__restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Called by the entry stub: IDT set-up before main, exit after it. */
void hv_runtime_init(void);
__attribute__((noreturn)) void hv_runtime_exit(int status);

int main(void);

#endif
