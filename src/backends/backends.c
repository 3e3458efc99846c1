// SPDX-License-Identifier: MIT
/*
 * The one table of backends compiled into hvrec: each HVTRACE_BACKEND_<NAME>
 * CMake option compiles its backend's files and defines HVT_BACKEND_<NAME>.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

extern const struct backend_ops kvm_backend_ops;
extern const struct backend_ops emu_backend_ops;
extern const struct backend_ops qemu_tcg_backend_ops;
extern const struct backend_ops kvm_irqchip_backend_ops;

/* In --backend help order; the first is the default. */
static const struct backend_ops *const backend_table[] = {
#ifdef HVT_BACKEND_KVM
        &kvm_backend_ops,
#endif
#ifdef HVT_BACKEND_KVM_IRQCHIP
        &kvm_irqchip_backend_ops,
#endif
#ifdef HVT_BACKEND_EMU
        &emu_backend_ops,
#endif
#ifdef HVT_BACKEND_QEMU_TCG
        &qemu_tcg_backend_ops,
#endif
};

#define BACKEND_COUNT (sizeof(backend_table) / sizeof(backend_table[0]))
_Static_assert(BACKEND_COUNT >= 1, "at least one backend must be compiled in");

size_t backend_count(void)
{
        return BACKEND_COUNT;
}

const struct backend_ops *backend_at(size_t i)
{
        return i < BACKEND_COUNT ? backend_table[i] : NULL;
}

const struct backend_ops *backend_find(const char *name)
{
        for (size_t i = 0; i < BACKEND_COUNT; i++)
                if (!strcmp(backend_table[i]->name, name))
                        return backend_table[i];
        return NULL;
}

/* Every backend hvtrace has, compiled in or not, with the option that compiles it. */
static const struct {
        const char *name, *option;
} backend_all[] = {
        { "kvm", "HVTRACE_BACKEND_KVM" },
        { "kvm-irqchip", "HVTRACE_BACKEND_KVM_IRQCHIP" },
        { "emu", "HVTRACE_BACKEND_EMU" },
        { "qemu-tcg", "HVTRACE_BACKEND_QEMU_TCG" },
};

_Static_assert(sizeof(backend_all) / sizeof(backend_all[0]) == 4, "one entry per backend");

const char *backend_option(const char *name)
{
        for (size_t i = 0; i < sizeof(backend_all) / sizeof(backend_all[0]); i++)
                if (!strcmp(backend_all[i].name, name))
                        return backend_all[i].option;
        return NULL;
}

int backend_load(struct backend *b, uint64_t gpa, const void *data, size_t len)
{
        if (gpa > b->mem_size || len > b->mem_size - gpa)
                return -ERANGE;
        memcpy(b->mem + gpa, data, len);
        return 0;
}

const char *backend_data_path(const char *env, const char *installed_rel, const char *built,
                              char *buf, size_t len)
{
        const char *p = getenv(env);
        char exe[PATH_MAX];
        ssize_t n;

        if (p && *p)
                return p;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                char *slash;

                exe[n] = 0;
                slash = strrchr(exe, '/');
                if (slash) {
                        *slash = 0;
                        if ((size_t)snprintf(buf, len, "%s/%s", exe, installed_rel) < len &&
                            !access(buf, R_OK))
                                return buf;
                }
        }
        return built;
}
