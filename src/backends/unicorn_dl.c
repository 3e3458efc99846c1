// SPDX-License-Identifier: MIT
/*
 * The Unicorn functions the emu and qemu-tcg backends call, loaded on first
 * use instead of linked.  Merely loading libunicorn costs every process
 * about 50 ms of CPU (the dynamic loader relocating it), which hvreplay's
 * analysis commands, that never run an engine, paid at each start: a third
 * of checking a million-exit trace.
 *
 * Each function here has Unicorn's own name and prototype (the header
 * checks them) and forwards to the library's.  When the library cannot be
 * loaded, uc_version returns 0 (the backends then say they need Unicorn 2),
 * and the others fail with UC_ERR_ARCH or do nothing.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include <unicorn/unicorn.h>

/* The backends need Unicorn 2 (they check uc_version), whose soname this is. */
#define UCDL_SONAME "libunicorn.so.2"

/* clang-format off */
#define UCDL_FUNCS(X) \
        X(uc_version) \
        X(uc_open) \
        X(uc_close) \
        X(uc_strerror) \
        X(uc_ctl) \
        X(uc_emu_start) \
        X(uc_emu_stop) \
        X(uc_hook_add) \
        X(uc_hook_del) \
        X(uc_mem_map_ptr) \
        X(uc_mem_unmap) \
        X(uc_mem_write) \
        X(uc_reg_read) \
        X(uc_reg_write) \
        X(uc_context_alloc) \
        X(uc_context_free) \
        X(uc_context_save) \
        X(uc_context_restore) \
        X(uc_context_size)
/* clang-format on */

#define UCDL_POINTER(name) __typeof__(name) *name;
static struct {
        UCDL_FUNCS(UCDL_POINTER)
} ucdl;

static pthread_once_t ucdl_once = PTHREAD_ONCE_INIT;
static void *ucdl_lib;

static void ucdl_load(void)
{
        void *lib = dlopen(UCDL_SONAME, RTLD_NOW | RTLD_LOCAL);

        if (!lib)
                return;
#define UCDL_RESOLVE(name)                        \
        *(void **)&ucdl.name = dlsym(lib, #name); \
        if (!ucdl.name)                           \
                goto err_missing;
        UCDL_FUNCS(UCDL_RESOLVE)
#undef UCDL_RESOLVE
        ucdl_lib = lib;
        return;

err_missing:
        dlclose(lib);
}

static int ucdl_ready(void)
{
        pthread_once(&ucdl_once, ucdl_load);
        return ucdl_lib != NULL;
}

unsigned int uc_version(unsigned int *major, unsigned int *minor)
{
        if (!ucdl_ready()) {
                if (major)
                        *major = 0;
                if (minor)
                        *minor = 0;
                return 0;
        }
        return ucdl.uc_version(major, minor);
}

uc_err uc_open(uc_arch arch, uc_mode mode, uc_engine **uc)
{
        if (!ucdl_ready())
                return UC_ERR_ARCH;
        return ucdl.uc_open(arch, mode, uc);
}

uc_err uc_close(uc_engine *uc)
{
        return ucdl_ready() ? ucdl.uc_close(uc) : UC_ERR_ARCH;
}

const char *uc_strerror(uc_err code)
{
        return ucdl_ready() ? ucdl.uc_strerror(code) : "cannot load " UCDL_SONAME;
}

/* The control word says how many arguments follow (UC_CTL's nr, bits 26-29). */
uc_err uc_ctl(uc_engine *uc, uc_control_type control, ...)
{
        uintptr_t a[4] = { 0 };
        unsigned nr = ((unsigned)control >> 26) & 0xf;
        va_list ap;

        if (!ucdl_ready())
                return UC_ERR_ARCH;
        if (nr > 4)
                return UC_ERR_ARG;
        va_start(ap, control);
        for (unsigned i = 0; i < nr; i++)
                a[i] = va_arg(ap, uintptr_t);
        va_end(ap);
        return ucdl.uc_ctl(uc, control, a[0], a[1], a[2], a[3]);
}

uc_err uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)
{
        return ucdl_ready() ? ucdl.uc_emu_start(uc, begin, until, timeout, count) : UC_ERR_ARCH;
}

uc_err uc_emu_stop(uc_engine *uc)
{
        return ucdl_ready() ? ucdl.uc_emu_stop(uc) : UC_ERR_ARCH;
}

/* UC_HOOK_INSN takes the instruction's id after end; the other hooks used take nothing. */
uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback, void *user_data,
                   uint64_t begin, uint64_t end, ...)
{
        va_list ap;
        int insn;

        if (!ucdl_ready())
                return UC_ERR_ARCH;
        if (type != UC_HOOK_INSN)
                return ucdl.uc_hook_add(uc, hh, type, callback, user_data, begin, end);
        va_start(ap, end);
        insn = va_arg(ap, int);
        va_end(ap);
        return ucdl.uc_hook_add(uc, hh, type, callback, user_data, begin, end, insn);
}

uc_err uc_hook_del(uc_engine *uc, uc_hook hh)
{
        return ucdl_ready() ? ucdl.uc_hook_del(uc, hh) : UC_ERR_ARCH;
}

uc_err uc_mem_map_ptr(uc_engine *uc, uint64_t address, size_t size, uint32_t perms, void *ptr)
{
        return ucdl_ready() ? ucdl.uc_mem_map_ptr(uc, address, size, perms, ptr) : UC_ERR_ARCH;
}

uc_err uc_mem_unmap(uc_engine *uc, uint64_t address, size_t size)
{
        return ucdl_ready() ? ucdl.uc_mem_unmap(uc, address, size) : UC_ERR_ARCH;
}

uc_err uc_mem_write(uc_engine *uc, uint64_t address, const void *bytes, size_t size)
{
        return ucdl_ready() ? ucdl.uc_mem_write(uc, address, bytes, size) : UC_ERR_ARCH;
}

uc_err uc_reg_read(uc_engine *uc, int regid, void *value)
{
        return ucdl_ready() ? ucdl.uc_reg_read(uc, regid, value) : UC_ERR_ARCH;
}

uc_err uc_reg_write(uc_engine *uc, int regid, const void *value)
{
        return ucdl_ready() ? ucdl.uc_reg_write(uc, regid, value) : UC_ERR_ARCH;
}

uc_err uc_context_alloc(uc_engine *uc, uc_context **context)
{
        return ucdl_ready() ? ucdl.uc_context_alloc(uc, context) : UC_ERR_ARCH;
}

uc_err uc_context_free(uc_context *context)
{
        return ucdl_ready() ? ucdl.uc_context_free(context) : UC_ERR_ARCH;
}

uc_err uc_context_save(uc_engine *uc, uc_context *context)
{
        return ucdl_ready() ? ucdl.uc_context_save(uc, context) : UC_ERR_ARCH;
}

uc_err uc_context_restore(uc_engine *uc, uc_context *context)
{
        return ucdl_ready() ? ucdl.uc_context_restore(uc, context) : UC_ERR_ARCH;
}

size_t uc_context_size(uc_engine *uc)
{
        return ucdl_ready() ? ucdl.uc_context_size(uc) : 0;
}
