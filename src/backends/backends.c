// SPDX-License-Identifier: MIT
/* The one table of backends compiled into hvrec. */
#include <errno.h>
#include <string.h>

#include "backend.h"

extern const struct backend_ops kvm_backend_ops;
extern const struct backend_ops emu_backend_ops;
extern const struct backend_ops kvm_irqchip_backend_ops;

static const struct backend_ops *const backend_table[] = {
        &kvm_backend_ops,
        &kvm_irqchip_backend_ops,
        &emu_backend_ops,
};

#define BACKEND_COUNT (sizeof(backend_table) / sizeof(backend_table[0]))
_Static_assert(BACKEND_COUNT >= 1, "at least one backend");

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

int backend_load(struct backend *b, uint64_t gpa, const void *data, size_t len)
{
        if (gpa > b->mem_size || len > b->mem_size - gpa)
                return -ERANGE;
        memcpy(b->mem + gpa, data, len);
        return 0;
}
