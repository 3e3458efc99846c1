// SPDX-License-Identifier: MIT
/* Stable names of the trace format's enums and small state helpers. */
#include <string.h>

#include <hvtrace/trace.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const rec_type_names[] = {
        [0] = "?",
        [TRACE_REC_HEADER] = "header",
        [TRACE_REC_MEMORY] = "memory",
        [TRACE_REC_EXIT] = "exit",
        [TRACE_REC_INJECT] = "inject",
        [TRACE_REC_DELIVER] = "deliver",
        [TRACE_REC_CONSOLE] = "console",
        [TRACE_REC_END] = "end",
        [TRACE_REC_RAISE] = "raise",
        [TRACE_REC_WRITE] = "write",
};
_Static_assert(ARRAY_SIZE(rec_type_names) == TRACE_REC_TYPE_COUNT, "name every record type");

static const char *const exit_reason_names[] = {
        [TRACE_EXIT_UNKNOWN] = "unknown",
        [TRACE_EXIT_IO] = "io",
        [TRACE_EXIT_MMIO] = "mmio",
        [TRACE_EXIT_HLT] = "hlt",
        [TRACE_EXIT_INTR] = "intr",
        [TRACE_EXIT_IRQ_WINDOW] = "irq-window",
        [TRACE_EXIT_DEBUG] = "debug",
        [TRACE_EXIT_SHUTDOWN] = "shutdown",
        [TRACE_EXIT_FAIL_ENTRY] = "fail-entry",
        [TRACE_EXIT_INTERNAL] = "internal-error",
        [TRACE_EXIT_EXCEPTION] = "exception",
};
_Static_assert(ARRAY_SIZE(exit_reason_names) == TRACE_EXIT_REASON_COUNT, "name every reason");

static const char *const mode_names[] = {
        [TRACE_MODE_UNKNOWN] = "unknown",
        [TRACE_MODE_REAL] = "real",
        [TRACE_MODE_PROTECTED] = "protected",
        [TRACE_MODE_LONG] = "long",
};
_Static_assert(ARRAY_SIZE(mode_names) == TRACE_MODE_LONG + 1, "name every mode");

static const char *const policy_names[] = {
        [TRACE_POLICY_WINDOW] = "window",
        [TRACE_POLICY_EAGER] = "eager",
        [TRACE_POLICY_BLIND] = "blind",
        [TRACE_POLICY_BACKEND] = "backend",
};
_Static_assert(ARRAY_SIZE(policy_names) == TRACE_POLICY_COUNT, "name every policy");

static const char *const source_names[] = {
        [TRACE_SRC_GUEST] = "guest",
        [TRACE_SRC_OPTION] = "irq-option",
        [TRACE_SRC_KICK] = "kick",
};
_Static_assert(ARRAY_SIZE(source_names) == TRACE_SRC_COUNT, "name every source");

static const char *const end_why_names[] = {
        [0] = "?",
        [TRACE_END_GUEST_EXIT] = "guest-exit",
        [TRACE_END_HALT] = "halt",
        [TRACE_END_CRASH] = "crash",
        [TRACE_END_MAX_EXITS] = "max-exits",
        [TRACE_END_TIMEOUT] = "timeout",
        [TRACE_END_SIGNAL] = "signal",
        [TRACE_END_ERROR] = "error",
};
_Static_assert(ARRAY_SIZE(end_why_names) == TRACE_END_WHY_COUNT, "name every end reason");

static const char *const field_names[] = {
        [TRACE_F_RAX] = "rax", [TRACE_F_RCX] = "rcx",   [TRACE_F_RDX] = "rdx",
        [TRACE_F_RBX] = "rbx", [TRACE_F_RSP] = "rsp",   [TRACE_F_RBP] = "rbp",
        [TRACE_F_RSI] = "rsi", [TRACE_F_RDI] = "rdi",   [TRACE_F_R8] = "r8",
        [TRACE_F_R9] = "r9",   [TRACE_F_R10] = "r10",   [TRACE_F_R11] = "r11",
        [TRACE_F_R12] = "r12", [TRACE_F_R13] = "r13",   [TRACE_F_R14] = "r14",
        [TRACE_F_R15] = "r15", [TRACE_F_RIP] = "rip",   [TRACE_F_RFLAGS] = "rflags",
        [TRACE_F_ES] = "es",   [TRACE_F_CS] = "cs",     [TRACE_F_SS] = "ss",
        [TRACE_F_DS] = "ds",   [TRACE_F_FS] = "fs",     [TRACE_F_GS] = "gs",
        [TRACE_F_CR0] = "cr0", [TRACE_F_CR2] = "cr2",   [TRACE_F_CR3] = "cr3",
        [TRACE_F_CR4] = "cr4", [TRACE_F_EFER] = "efer", [TRACE_F_GDT] = "gdt",
        [TRACE_F_IDT] = "idt", [TRACE_F_INTR] = "intr",
};
_Static_assert(ARRAY_SIZE(field_names) == TRACE_F_COUNT, "name every field");

static const char *const sreg_names[] = {
        [TRACE_ES] = "es", [TRACE_CS] = "cs", [TRACE_SS] = "ss",
        [TRACE_DS] = "ds", [TRACE_FS] = "fs", [TRACE_GS] = "gs",
};
_Static_assert(ARRAY_SIZE(sreg_names) == TRACE_SREG_COUNT, "name every segment register");

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
        return i < n && names[i] ? names[i] : "?";
}

const char *trace_rec_type_name(unsigned type)
{
        return name_of(rec_type_names, ARRAY_SIZE(rec_type_names), type);
}

const char *trace_exit_reason_name(unsigned reason)
{
        return name_of(exit_reason_names, ARRAY_SIZE(exit_reason_names), reason);
}

const char *trace_mode_name(unsigned mode)
{
        return name_of(mode_names, ARRAY_SIZE(mode_names), mode);
}

const char *trace_policy_name(unsigned policy)
{
        return name_of(policy_names, ARRAY_SIZE(policy_names), policy);
}

const char *trace_source_name(unsigned source)
{
        return name_of(source_names, ARRAY_SIZE(source_names), source);
}

const char *trace_end_why_name(unsigned why)
{
        return name_of(end_why_names, ARRAY_SIZE(end_why_names), why);
}

const char *trace_field_name(unsigned field)
{
        return name_of(field_names, ARRAY_SIZE(field_names), field);
}

const char *trace_sreg_name(unsigned sreg)
{
        return name_of(sreg_names, ARRAY_SIZE(sreg_names), sreg);
}

int trace_policy_parse(const char *name)
{
        for (unsigned i = 0; i < ARRAY_SIZE(policy_names); i++)
                if (!strcmp(name, policy_names[i]))
                        return (int)i;
        return -1;
}

const char *trace_shadow_name(uint64_t intr)
{
        static const char *const names[4] = { "none", "sti", "mov-ss", "sti+mov-ss" };

        return names[intr & (TRACE_INTR_STI_SHADOW | TRACE_INTR_MOVSS_SHADOW)];
}

/* ------------------------------------------------------------------------ */

#define X86_CR0_PE   0x1ull
#define X86_EFER_LMA 0x400ull

unsigned trace_state_mode(const struct trace_vcpu_state *st)
{
        if (!(st->cr0 & X86_CR0_PE))
                return TRACE_MODE_REAL;
        if (st->efer & X86_EFER_LMA)
                return TRACE_MODE_LONG;
        return TRACE_MODE_PROTECTED;
}

unsigned trace_state_code_bits(const struct trace_vcpu_state *st)
{
        const struct trace_disk_seg *cs = &st->seg[TRACE_CS];

        switch (trace_state_mode(st)) {
        case TRACE_MODE_REAL: return 16;
        case TRACE_MODE_LONG:
                if (cs->attr & TRACE_SEG_L)
                        return 64;
                /* compatibility mode sizes like protected mode */
                __attribute__((fallthrough));
        default: return (cs->attr & TRACE_SEG_DB) ? 32 : 16;
        }
}

uint64_t trace_state_pc(const struct trace_vcpu_state *st)
{
        switch (trace_state_code_bits(st)) {
        case 64: return st->rip;
        case 32: return (st->seg[TRACE_CS].base + (uint32_t)st->rip) & 0xffffffffull;
        default: return st->seg[TRACE_CS].base + (uint16_t)st->rip;
        }
}
