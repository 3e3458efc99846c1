// SPDX-License-Identifier: MIT
/*
 * The C guest runtime: console printing, the IDT and the interrupt
 * dispatcher behind the stubs of isr32.asm / isr64.asm, and the string
 * functions a freestanding compiler may call.  Built once per bitness
 * (-m32 / -m64) with the flags in guests/CMakeLists.txt.
 */
#include "hvrt.h"

/* ---- string functions -------------------------------------------------- */
/* (this file is built with -fno-tree-loop-distribute-patterns: these loops
 * must not be turned back into calls to themselves) */

void *memset(void *d, int c, size_t n)
{
        unsigned char *p = d;

        while (n--)
                *p++ = (unsigned char)c;
        return d;
}

void *memcpy(void *__restrict d, const void *__restrict s, size_t n)
{
        unsigned char *p = d;
        const unsigned char *q = s;

        while (n--)
                *p++ = *q++;
        return d;
}

void *memmove(void *d, const void *s, size_t n)
{
        unsigned char *p = d;
        const unsigned char *q = s;

        if (p < q) {
                while (n--)
                        *p++ = *q++;
        } else {
                while (n--)
                        p[n] = q[n];
        }
        return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
        const unsigned char *p = a, *q = b;

        for (; n; n--, p++, q++)
                if (*p != *q)
                        return *p - *q;
        return 0;
}

size_t strlen(const char *s)
{
        size_t n = 0;

        while (s[n])
                n++;
        return n;
}

/* ---- console ------------------------------------------------------------ */

void hv_write(const char *s, size_t n)
{
        while (n--)
                hv_putc(*s++);
}

/* Digits of v in base (10 or 16), most significant first, into buf; returns the count. */
static int digits(unsigned long long v, unsigned base, bool upper, char *buf)
{
        const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
        char tmp[24];
        int n = 0, i = 0;

        do {
                tmp[n++] = set[v % base];
                v /= base;
        } while (v);
        while (n)
                buf[i++] = tmp[--n];
        return i;
}

void hv_put_hex(unsigned long long v)
{
        char buf[24];

        hv_write("0x", 2);
        hv_write(buf, (size_t)digits(v, 16, false, buf));
}

void hv_put_udec(unsigned long long v)
{
        char buf[24];

        hv_write(buf, (size_t)digits(v, 10, false, buf));
}

void hv_put_dec(long long v)
{
        if (v < 0) {
                hv_putc('-');
                hv_put_udec(0ull - (unsigned long long)v);
        } else {
                hv_put_udec((unsigned long long)v);
        }
}

static int pad(int n, char c)
{
        int w = 0;

        for (; n > 0; n--, w++)
                hv_putc(c);
        return w;
}

int hv_vprintf(const char *fmt, va_list ap)
{
        int written = 0;

        for (; *fmt; fmt++) {
                char buf[24], spec, fill = ' ';
                const char *str = buf;
                unsigned long long u = 0;
                int longs = 0, width = 0, n = 0;
                bool neg = false;

                if (*fmt != '%') {
                        hv_putc(*fmt);
                        written++;
                        continue;
                }
                fmt++;
                if (*fmt == '0') {
                        fill = '0';
                        fmt++;
                }
                while (*fmt >= '0' && *fmt <= '9')
                        width = width * 10 + (*fmt++ - '0');
                for (;; fmt++) {
                        if (*fmt == 'l')
                                longs++;
                        else if (*fmt == 'z')
                                longs = sizeof(size_t) == sizeof(long) ? 1 : 0;
                        else
                                break;
                }
                spec = *fmt;
                switch (spec) {
                case 'c':
                        buf[0] = (char)va_arg(ap, int);
                        n = 1;
                        break;
                case 's':
                        str = va_arg(ap, const char *);
                        if (!str)
                                str = "(null)";
                        n = (int)strlen(str);
                        fill = ' ';
                        break;
                case 'd':
                case 'i': {
                        long long s = longs >= 2 ? va_arg(ap, long long)
                                      : longs    ? va_arg(ap, long)
                                                 : va_arg(ap, int);

                        neg = s < 0;
                        u = neg ? 0ull - (unsigned long long)s : (unsigned long long)s;
                        n = digits(u, 10, false, buf);
                        break;
                }
                case 'u':
                case 'x':
                case 'X':
                        u = longs >= 2 ? va_arg(ap, unsigned long long)
                            : longs    ? va_arg(ap, unsigned long)
                                       : va_arg(ap, unsigned int);
                        n = digits(u, spec == 'u' ? 10 : 16, spec == 'X', buf);
                        break;
                case 'p':
                        u = (unsigned long)va_arg(ap, void *);
                        hv_write("0x", 2);
                        written += 2;
                        n = digits(u, 16, false, buf);
                        break;
                case '%':
                        buf[0] = '%';
                        n = 1;
                        break;
                case 0: /* a lone '%' at the end */ return written;
                default: /* unknown: print it as written */
                        hv_putc('%');
                        buf[0] = spec;
                        n = 1;
                        written++;
                        break;
                }
                if (neg && fill == '0') {
                        hv_putc('-');
                        written++;
                }
                written += pad(width - n - (neg ? 1 : 0), fill);
                if (neg && fill != '0') {
                        hv_putc('-');
                        written++;
                }
                hv_write(str, (size_t)n);
                written += n;
        }
        return written;
}

int hv_printf(const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = hv_vprintf(fmt, ap);
        va_end(ap);
        return n;
}

/* ---- IDT and interrupt dispatch ------------------------------------------ */

/* The stubs of isr32.asm / isr64.asm, one per vector. */
extern const hv_code_fn hv_isr_table[256];

#ifdef __x86_64__
struct gate {
        uint16_t off_lo, sel;
        uint8_t ist, attr;
        uint16_t off_mid;
        uint32_t off_hi, zero;
};
struct __attribute__((packed)) idtr {
        uint16_t limit;
        uint64_t base;
};
#else
struct gate {
        uint16_t off_lo, sel;
        uint8_t zero, attr;
        uint16_t off_hi;
};
struct __attribute__((packed)) idtr {
        uint16_t limit;
        uint32_t base;
};
#endif

#define GATE_INTERRUPT 0x8e /* present, DPL 0, interrupt gate (32- or 64-bit by mode) */

static struct gate idt[256] __attribute__((aligned(16)));
static hv_handler_fn handlers[256];
volatile unsigned hv_irq_count[256];

static uint16_t current_cs(void)
{
        uint16_t cs;

        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        return cs;
}

void hv_idt_set_gate(unsigned vector, hv_code_fn code)
{
        unsigned long off = (unsigned long)code;
        struct gate *g = &idt[vector & 0xff];

        g->off_lo = (uint16_t)off;
        g->sel = current_cs();
        g->attr = GATE_INTERRUPT;
#ifdef __x86_64__
        g->ist = 0;
        g->off_mid = (uint16_t)(off >> 16);
        g->off_hi = (uint32_t)(off >> 32);
        g->zero = 0;
#else
        g->zero = 0;
        g->off_hi = (uint16_t)(off >> 16);
#endif
}

hv_code_fn hv_isr_stub(unsigned vector)
{
        return hv_isr_table[vector & 0xff];
}

void hv_idt_load(void)
{
        struct idtr r = { sizeof(idt) - 1, (unsigned long)idt };

        __asm__ volatile("lidt %0" : : "m"(r) : "memory");
}

hv_handler_fn hv_set_handler(unsigned vector, hv_handler_fn fn)
{
        hv_handler_fn old = handlers[vector & 0xff];

        handlers[vector & 0xff] = fn;
        hv_idt_set_gate(vector, hv_isr_table[vector & 0xff]);
        return old;
}

static const char *const exception_names[32] = {
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
        "#CP control protection",
};

/* The default handler: report and end the run. */
static __attribute__((noreturn)) void unhandled(const struct hv_frame *f)
{
        unsigned v = (unsigned)(f->vector & 0xff);

        if (v < HV_FIRST_IRQ_VECTOR) {
                hv_printf("hvrt: exception %u (%s), error code 0x%lx, at 0x%lx:0x%lx\n", v,
                          exception_names[v] ? exception_names[v] : "reserved", f->error, f->cs,
                          f->ip);
                hv_exit(HV_STATUS_EXCEPTION);
        }
        hv_printf("hvrt: unexpected interrupt 0x%x at 0x%lx:0x%lx\n", v, f->cs, f->ip);
        hv_exit(HV_STATUS_UNEXPECTED);
}

/* Called by the stubs' common part with the saved frame. */
void hv_isr_dispatch(struct hv_frame *f);
void hv_isr_dispatch(struct hv_frame *f)
{
        unsigned v = (unsigned)(f->vector & 0xff);
        hv_handler_fn fn = handlers[v];

        hv_irq_count[v]++;
        if (!fn)
                unhandled(f);
        fn(f);
        /* Acknowledge the PIC for its vectors (an in-kernel irqchip waits for it). */
        if (v >= HV_PIC_BASE && v < HV_PIC_BASE + 8)
                hv_outb(0x20, 0x20);
}

/*
 * The legacy PIC: IRQ0-7 at HV_PIC_BASE, IRQ8-15 after it, only IRQ0
 * unmasked, so a backend with an in-kernel irqchip (kvm-irqchip) can raise
 * vector HV_PIC_BASE.  Elsewhere these are plain port writes.
 */
static void pic_init(void)
{
        static const uint8_t seq[][2] = {
                { 0x20, 0x11 },        { 0xa0, 0x11 },            /* ICW1: edge, cascade, ICW4 */
                { 0x21, HV_PIC_BASE }, { 0xa1, HV_PIC_BASE + 8 }, /* ICW2: vector bases */
                { 0x21, 0x04 },        { 0xa1, 0x02 },            /* ICW3: slave on IRQ2 */
                { 0x21, 0x01 },        { 0xa1, 0x01 },            /* ICW4: 8086 mode */
                { 0x21, 0xfe },        { 0xa1, 0xff },            /* masks: IRQ0 only */
        };

        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
                hv_outb(seq[i][0], seq[i][1]);
}

void hv_runtime_init(void)
{
        for (unsigned v = 0; v < 256; v++)
                hv_idt_set_gate(v, hv_isr_table[v]);
        hv_idt_load();
        pic_init();
}

void hv_runtime_exit(int status)
{
        hv_exit((unsigned char)status);
}
