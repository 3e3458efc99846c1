// SPDX-License-Identifier: MIT
/* Stable names of the trace format's enums and results, and small state helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h" /* header-only use: the library needs no x86.c */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const rec_type_names[] = {
        [0] = "?",
        [HVT_REC_HEADER] = "header",
        [HVT_REC_MEMORY] = "memory",
        [HVT_REC_EXIT] = "exit",
        [HVT_REC_INJECT] = "inject",
        [HVT_REC_DELIVER] = "deliver",
        [HVT_REC_CONSOLE] = "console",
        [HVT_REC_END] = "end",
        [HVT_REC_RAISE] = "raise",
        [HVT_REC_WRITE] = "write",
        [HVT_REC_VCPU] = "vcpu",
};
_Static_assert(ARRAY_SIZE(rec_type_names) == HVT_REC_TYPE_COUNT, "name every record type");

static const char *const exit_reason_names[] = {
        [HVT_EXIT_UNKNOWN] = "unknown",
        [HVT_EXIT_IO] = "io",
        [HVT_EXIT_MMIO] = "mmio",
        [HVT_EXIT_HLT] = "hlt",
        [HVT_EXIT_INTR] = "intr",
        [HVT_EXIT_IRQ_WINDOW] = "irq-window",
        [HVT_EXIT_DEBUG] = "debug",
        [HVT_EXIT_SHUTDOWN] = "shutdown",
        [HVT_EXIT_FAIL_ENTRY] = "fail-entry",
        [HVT_EXIT_INTERNAL] = "internal-error",
        [HVT_EXIT_EXCEPTION] = "exception",
};
_Static_assert(ARRAY_SIZE(exit_reason_names) == HVT_EXIT_REASON_COUNT, "name every reason");

static const char *const mode_names[] = {
        [HVT_MODE_UNKNOWN] = "unknown",
        [HVT_MODE_REAL] = "real",
        [HVT_MODE_PROTECTED] = "protected",
        [HVT_MODE_LONG] = "long",
};
_Static_assert(ARRAY_SIZE(mode_names) == HVT_MODE_LONG + 1, "name every mode");

static const char *const policy_names[] = {
        [HVT_POLICY_WINDOW] = "window",
        [HVT_POLICY_EAGER] = "eager",
        [HVT_POLICY_BLIND] = "blind",
        [HVT_POLICY_BACKEND] = "backend",
};
_Static_assert(ARRAY_SIZE(policy_names) == HVT_POLICY_COUNT, "name every policy");

static const char *const source_names[] = {
        [HVT_SRC_GUEST] = "guest",
        [HVT_SRC_OPTION] = "irq-option",
        [HVT_SRC_KICK] = "kick",
        [HVT_SRC_VMM] = "vmm",
};
_Static_assert(ARRAY_SIZE(source_names) == HVT_SRC_COUNT, "name every source");

static const char *const end_why_names[] = {
        [0] = "?",
        [HVT_END_GUEST_EXIT] = "guest-exit",
        [HVT_END_HALT] = "halt",
        [HVT_END_CRASH] = "crash",
        [HVT_END_MAX_EXITS] = "max-exits",
        [HVT_END_TIMEOUT] = "timeout",
        [HVT_END_SIGNAL] = "signal",
        [HVT_END_ERROR] = "error",
};
_Static_assert(ARRAY_SIZE(end_why_names) == HVT_END_WHY_COUNT, "name every end reason");

static const char *const field_names[] = {
        [HVT_F_RAX] = "rax", [HVT_F_RCX] = "rcx",   [HVT_F_RDX] = "rdx",
        [HVT_F_RBX] = "rbx", [HVT_F_RSP] = "rsp",   [HVT_F_RBP] = "rbp",
        [HVT_F_RSI] = "rsi", [HVT_F_RDI] = "rdi",   [HVT_F_R8] = "r8",
        [HVT_F_R9] = "r9",   [HVT_F_R10] = "r10",   [HVT_F_R11] = "r11",
        [HVT_F_R12] = "r12", [HVT_F_R13] = "r13",   [HVT_F_R14] = "r14",
        [HVT_F_R15] = "r15", [HVT_F_RIP] = "rip",   [HVT_F_RFLAGS] = "rflags",
        [HVT_F_ES] = "es",   [HVT_F_CS] = "cs",     [HVT_F_SS] = "ss",
        [HVT_F_DS] = "ds",   [HVT_F_FS] = "fs",     [HVT_F_GS] = "gs",
        [HVT_F_CR0] = "cr0", [HVT_F_CR2] = "cr2",   [HVT_F_CR3] = "cr3",
        [HVT_F_CR4] = "cr4", [HVT_F_EFER] = "efer", [HVT_F_GDT] = "gdt",
        [HVT_F_IDT] = "idt", [HVT_F_INTR] = "intr",
};
_Static_assert(ARRAY_SIZE(field_names) == HVT_F_COUNT, "name every field");

static const char *const sreg_names[] = {
        [HVT_ES] = "es", [HVT_CS] = "cs", [HVT_SS] = "ss",
        [HVT_DS] = "ds", [HVT_FS] = "fs", [HVT_GS] = "gs",
};
_Static_assert(ARRAY_SIZE(sreg_names) == HVT_SREG_COUNT, "name every segment register");

/* The library's error codes, from HVT_ERR_EMPTY down, as table indexes. */
#define LIB_ERR_INDEX(err) ((unsigned)(HVT_ERR_EMPTY - (err)))

static const char *const lib_err_text[] = {
        [LIB_ERR_INDEX(HVT_ERR_EMPTY)] = "empty file",
        [LIB_ERR_INDEX(HVT_ERR_NOT_TRACE)] = "not an hvtrace trace",
        [LIB_ERR_INDEX(HVT_ERR_VERSION)] = "unsupported trace format version",
        [LIB_ERR_INDEX(HVT_ERR_CORRUPT)] = "corrupt trace",
        [LIB_ERR_INDEX(HVT_ERR_TRUNCATED)] = "truncated trace",
};
_Static_assert(ARRAY_SIZE(lib_err_text) == LIB_ERR_INDEX(HVT_ERR_TRUNCATED) + 1,
               "describe every library error");

/* Linux's largest errno is 4095 (MAX_ERRNO); no system comes near -HVT_ERR_EMPTY. */
#define ERRNO_MAX 4095

/* The C library's text for errno e, or NULL if it has none. */
static const char *errno_text(int e)
{
#ifdef HVT_HAVE_STRERRORDESC_NP
        /* Unlike strerror: untranslated, thread-safe, and NULL when e is no errno. */
        return strerrordesc_np(e);
#else
        return strerror(e);
#endif
}

const char *hvt_strerror(int err)
{
        static _Thread_local char unknown[32];
        const char *text = NULL;

        if (err == HVT_OK)
                text = "success";
        else if (err == HVT_END_OF_TRACE)
                text = "end of trace";
        else if (err <= HVT_ERR_EMPTY && err >= HVT_ERR_TRUNCATED)
                text = lib_err_text[LIB_ERR_INDEX(err)];
        else if (err < 0 && err >= -ERRNO_MAX)
                text = errno_text(-err);
        if (text)
                return text;
        snprintf(unknown, sizeof(unknown), "unknown error %d", err);
        return unknown;
}

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
        return i < n && names[i] ? names[i] : "?";
}

const char *hvt_rec_type_name(unsigned type)
{
        return name_of(rec_type_names, ARRAY_SIZE(rec_type_names), type);
}

const char *hvt_exit_reason_name(unsigned reason)
{
        return name_of(exit_reason_names, ARRAY_SIZE(exit_reason_names), reason);
}

const char *hvt_mode_name(unsigned mode)
{
        return name_of(mode_names, ARRAY_SIZE(mode_names), mode);
}

const char *hvt_policy_name(unsigned policy)
{
        return name_of(policy_names, ARRAY_SIZE(policy_names), policy);
}

const char *hvt_source_name(unsigned source)
{
        return name_of(source_names, ARRAY_SIZE(source_names), source);
}

const char *hvt_end_why_name(unsigned why)
{
        return name_of(end_why_names, ARRAY_SIZE(end_why_names), why);
}

const char *hvt_field_name(unsigned field)
{
        return name_of(field_names, ARRAY_SIZE(field_names), field);
}

const char *hvt_sreg_name(unsigned sreg)
{
        return name_of(sreg_names, ARRAY_SIZE(sreg_names), sreg);
}

int hvt_policy_parse(const char *name)
{
        for (unsigned i = 0; i < ARRAY_SIZE(policy_names); i++)
                if (!strcmp(name, policy_names[i]))
                        return (int)i;
        return -EINVAL;
}

const char *hvt_shadow_name(uint64_t intr)
{
        static const char *const names[4] = { "none", "sti", "mov-ss", "sti+mov-ss" };

        return names[intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW)];
}

/* ------------------------------------------------------------------------ */

unsigned hvt_state_mode(const struct hvt_vcpu_state *st)
{
        return x86_mode(st->cr0, st->efer);
}

unsigned hvt_state_code_bits(const struct hvt_vcpu_state *st)
{
        const struct hvt_disk_seg *cs = &st->seg[HVT_CS];

        switch (hvt_state_mode(st)) {
        case HVT_MODE_REAL: return 16;
        case HVT_MODE_LONG:
                if (cs->attr & HVT_SEG_L)
                        return 64;
                /* compatibility mode sizes like protected mode */
                __attribute__((fallthrough));
        default: return (cs->attr & HVT_SEG_DB) ? 32 : 16;
        }
}

uint64_t hvt_state_pc(const struct hvt_vcpu_state *st)
{
        switch (hvt_state_code_bits(st)) {
        case 64: return st->rip;
        case 32: return (st->seg[HVT_CS].base + (uint32_t)st->rip) & 0xffffffffull;
        default: return st->seg[HVT_CS].base + (uint16_t)st->rip;
        }
}
