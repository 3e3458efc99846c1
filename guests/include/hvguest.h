/* SPDX-License-Identifier: MIT */
/*
 * hvguest.h - the hvtrace guest ABI for guests written in C
 * (docs/guest-abi.md).  Freestanding: no libc, only GCC inline assembly.
 *
 * Ports (byte-wide OUTs):
 *   0xE0  interrupt request: write vector V, hvrec raises external interrupt V
 *   0xE2  delivery probe: must be the FIRST instruction of an interrupt handler,
 *         so handlers that use it are written in assembly (see HV_PROBE_ASM)
 *   0xE9  debug console: each byte goes to hvrec's stdout and into the trace
 *   0xF4  exit: the value written ends the run; 0..127 is hvrec's exit status
 *         (docs/guest-abi.md: 128 and up are hvrec's own)
 */
#ifndef HVGUEST_H
#define HVGUEST_H

#define HV_PORT_IRQ     0xE0
#define HV_PORT_PROBE   0xE2
#define HV_PORT_CONSOLE 0xE9
#define HV_PORT_EXIT    0xF4

/* The probe as an assembly string, for the first line of a naked handler. */
#define HV_PROBE_ASM "outb %al, $0xE2\n\t"

static inline void hv_outb(unsigned short port, unsigned char v)
{
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline unsigned char hv_inb(unsigned short port)
{
        unsigned char v;

        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
        return v;
}

/* Print one character / a NUL-terminated string on the console port. */
static inline void hv_putc(char c)
{
        hv_outb(HV_PORT_CONSOLE, (unsigned char)c);
}

static inline void hv_puts(const char *s)
{
        while (*s)
                hv_putc(*s++);
}

/* Ask hvrec to raise external interrupt `vector`. */
static inline void hv_irq(unsigned char vector)
{
        hv_outb(HV_PORT_IRQ, vector);
}

/*
 * End the run with `status`: hvrec exits with it when it is 0..127, with
 * 205 otherwise (the trace keeps the value).  Does not return.
 */
static inline __attribute__((noreturn)) void hv_exit(unsigned char status)
{
        hv_outb(HV_PORT_EXIT, status);
        for (;;)
                __asm__ volatile("cli; hlt");
}

static inline void hv_sti(void)
{
        __asm__ volatile("sti" : : : "memory");
}

static inline void hv_cli(void)
{
        __asm__ volatile("cli" : : : "memory");
}

/* Wait for an interrupt without a race: STI's shadow covers the HLT. */
static inline void hv_sti_hlt(void)
{
        __asm__ volatile("sti; hlt" : : : "memory");
}

#endif
