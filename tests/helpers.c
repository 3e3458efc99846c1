// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/ioctl.h>

/* A build without the KVM backends need not have KVM's headers. */
#if __has_include(<linux/kvm.h>)
#include <linux/kvm.h>
#else
#define KVM_API_VERSION     12
#define KVM_GET_API_VERSION 0xae00
#endif

#include <criterion/criterion.h>

#include "helpers.h"

static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));

        if (n <= 0)
                return (int)n;
        if (*len + (size_t)n + 1 > *cap) {
                *cap = (*len + (size_t)n + 1) * 2;
                *buf = realloc(*buf, *cap);
        }
        memcpy(*buf + *len, tmp, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = 0;
        return (int)n;
}

/* "HVTRACE_BACKEND_KVM_IRQCHIP" for "kvm-irqchip". */
static const char *backend_option(const char *name)
{
        static char opt[64];
        size_t n = (size_t)snprintf(opt, sizeof(opt), "HVTRACE_BACKEND_");

        for (; *name && n + 1 < sizeof(opt); name++)
                opt[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
        opt[n] = 0;
        return opt;
}

bool hv_backend_compiled(const char *name)
{
        static char names[512] = ""; /* " kvm emu " */
        char key[64];

        if (!names[0]) {
                const char *argv[] = { HVREC, "run", "--backend", "help", NULL };
                struct hv_proc p;
                size_t n = 0;

                cr_assert_eq(hv_run(argv, &p), 0, "cannot run hvrec");
                cr_assert_eq(p.status, 0, "hvrec run --backend help: %s", p.err);
                names[n++] = ' ';
                /* A backend's line: two blanks, its name, its summary. */
                for (const char *l = p.out; l && *l;
                     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                        size_t len = strcspn(l + 2, " \n");

                        if (strncmp(l, "  ", 2) || l[2] == ' ' || n + len + 2 >= sizeof(names))
                                continue;
                        memcpy(names + n, l + 2, len);
                        n += len;
                        names[n++] = ' ';
                }
                names[n] = 0;
                hv_proc_free(&p);
        }
        snprintf(key, sizeof(key), " %s ", name);
        return strstr(names, key) != NULL;
}

void hv_require_backend(const char *name)
{
        if (!hv_backend_compiled(name))
                cr_skip_test("needs backend %s, left out of this build (-D%s=OFF)", name,
                             backend_option(name));
}

/* hvrec run --backend NAME: the test cannot run where NAME is compiled out. */
static void require_run_backend(const char *const *argv)
{
        static const char *const known[] = { "kvm", "kvm-irqchip", "emu", "qemu-tcg" };

        if (strcmp(argv[0], HVREC) || !argv[1] || strcmp(argv[1], "run"))
                return;
        for (size_t i = 2; argv[i] && argv[i + 1]; i++) {
                if (strcmp(argv[i], "--backend"))
                        continue;
                for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                        if (!strcmp(argv[i + 1], known[k]))
                                hv_require_backend(known[k]);
        }
}

int hv_run(const char *const *argv, struct hv_proc *p)
{
        int out[2], err[2], status;
        size_t olen = 0, ocap = 1, elen = 0, ecap = 1;
        pid_t pid;

        require_run_backend(argv);
        memset(p, 0, sizeof(*p));
        p->out = calloc(1, 1);
        p->err = calloc(1, 1);
        if (pipe(out) || pipe(err))
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(out[1], 1);
                dup2(err[1], 2);
                close(out[0]);
                close(err[0]);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        for (int open_fds = 2; open_fds;) {
                struct pollfd fds[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };

                if (poll(fds, 2, -1) < 0 && errno != EINTR)
                        break;
                if (fds[0].fd >= 0 && fds[0].revents && drain(out[0], &p->out, &olen, &ocap) <= 0) {
                        close(out[0]);
                        out[0] = -1;
                        open_fds--;
                }
                if (fds[1].fd >= 0 && fds[1].revents && drain(err[0], &p->err, &elen, &ecap) <= 0) {
                        close(err[0]);
                        err[0] = -1;
                        open_fds--;
                }
        }
        waitpid(pid, &status, 0);
        p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return 0;
}

void hv_proc_free(struct hv_proc *p)
{
        free(p->out);
        free(p->err);
        memset(p, 0, sizeof(*p));
}

bool hv_have_kvm(char *why, size_t len)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int version;

        if (fd < 0) {
                snprintf(why, len, "/dev/kvm: %s", strerror(errno));
                return false;
        }
        /* Something at /dev/kvm that is not KVM (a test hiding it with /dev/null) is no KVM. */
        version = ioctl(fd, KVM_GET_API_VERSION, 0);
        close(fd);
        if (version != KVM_API_VERSION) {
                snprintf(why, len, "/dev/kvm is not a KVM device (KVM_GET_API_VERSION: %s)",
                         version < 0 ? strerror(errno) : "unexpected version");
                return false;
        }
        return true;
}

#define GROW(arr, n)                                                                \
        do {                                                                        \
                if (((n) & ((n)-1)) == 0)                                           \
                        (arr) = realloc((arr), ((n) ? (n)*2 : 1) * sizeof(*(arr))); \
        } while (0)

int hv_trace_load(const char *path, struct hv_trace *t)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        int err;

        memset(t, 0, sizeof(*t));
        t->console = calloc(1, 1);
        err = hvt_reader_open(&r, path);
        if (err) {
                t->read_err = err;
                t->message = strdup(hvt_reader_message(r));
                hvt_reader_close(r);
                return err;
        }
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                t->nrecords++;
                switch (ev.type) {
                case HVT_REC_HEADER:
                        t->hdr = ev.header; /* strings owned by the reader: copied below */
                        t->cmdline = calloc(1, 1);
                        for (int a = 0; a < ev.header.argc; a++) {
                                size_t l = strlen(t->cmdline), al = strlen(ev.header.argv[a]);

                                t->cmdline = realloc(t->cmdline, l + al + 2);
                                sprintf(t->cmdline + l, "%s%s", a ? " " : "", ev.header.argv[a]);
                        }
                        t->mem_size = ev.header.h.mem_size;
                        if (t->mem_size && t->mem_size <= (1ull << 30))
                                t->mem = calloc(1, t->mem_size);
                        break;
                case HVT_REC_MEMORY:
                        if (t->mem && ev.memory.gpa <= t->mem_size &&
                            ev.memory.len <= t->mem_size - ev.memory.gpa)
                                memcpy(t->mem + ev.memory.gpa, ev.memory.data, ev.memory.len);
                        break;
                case HVT_REC_EXIT: {
                        struct hv_exit *x;

                        GROW(t->exits, t->nexits);
                        x = &t->exits[t->nexits++];
                        x->e = ev.exit;
                        if (ev.exit.reason == HVT_EXIT_IO) {
                                size_t n = (size_t)ev.exit.u.io.io.size * ev.exit.u.io.io.count;

                                memcpy(x->io_data, ev.exit.u.io.data,
                                       n < sizeof(x->io_data) ? n : sizeof(x->io_data));
                        }
                        break;
                }
                case HVT_REC_INJECT:
                        GROW(t->injects, t->ninjects);
                        t->injects[t->ninjects++] = ev.inject;
                        break;
                case HVT_REC_DELIVER:
                        GROW(t->delivers, t->ndelivers);
                        t->delivers[t->ndelivers++] = ev.deliver;
                        break;
                case HVT_REC_RAISE:
                        GROW(t->raises, t->nraises);
                        t->raises[t->nraises++] = ev.raise;
                        break;
                case HVT_REC_WRITE: {
                        struct hv_write *wr;

                        GROW(t->writes, t->nwrites);
                        cr_assert_not_null(t->writes);
                        wr = &t->writes[t->nwrites++];
                        wr->seq = ev.write.seq;
                        wr->gpa = ev.write.gpa;
                        wr->len = ev.write.len;
                        wr->data = malloc(ev.write.len ? ev.write.len : 1);
                        cr_assert_not_null(wr->data, "%zu bytes for a write record", ev.write.len);
                        memcpy(wr->data, ev.write.data, ev.write.len);
                        break;
                }
                case HVT_REC_CONSOLE:
                        t->console = realloc(t->console, t->console_len + ev.console.len + 1);
                        memcpy(t->console + t->console_len, ev.console.data, ev.console.len);
                        t->console_len += ev.console.len;
                        t->console[t->console_len] = 0;
                        break;
                case HVT_REC_END:
                        t->have_end = true;
                        t->end = ev.end.e;
                        snprintf(t->end_msg, sizeof(t->end_msg), "%s", ev.end.message);
                        break;
                default: break;
                }
        }
        /* Point I/O data at the copies, now that the array stopped moving. */
        for (size_t i = 0; i < t->nexits; i++)
                if (t->exits[i].e.reason == HVT_EXIT_IO)
                        t->exits[i].e.u.io.data = t->exits[i].io_data;
        t->read_err = err;
        t->message = strdup(hvt_reader_message(r));
        /* Keep the header's strings beyond the reader. */
        for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                t->hdr.str[k] = strdup(t->hdr.str[k] ? t->hdr.str[k] : "");
        t->hdr.argv = NULL;
        t->hdr.argc = 0;
        hvt_reader_close(r);
        return HVT_OK;
}

const struct hv_exit *hv_last_exit(const struct hv_trace *t)
{
        cr_assert_gt(t->nexits, 0, "the trace has no exits");
        return &t->exits[t->nexits - 1];
}

void hv_trace_free(struct hv_trace *t)
{
        free(t->message);
        free(t->cmdline);
        free(t->exits);
        free(t->injects);
        free(t->delivers);
        free(t->raises);
        for (size_t i = 0; i < t->nwrites; i++)
                free(t->writes[i].data);
        free(t->writes);
        free(t->console);
        free(t->mem);
        for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                free((char *)t->hdr.str[k]);
        memset(t, 0, sizeof(*t));
}

uint64_t hv_sym(const char *guest, const char *name)
{
        char path[1024], line[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.map", HV_GUEST_DIR, guest);
        f = fopen(path, "r");
        cr_assert_not_null(f, "no symbol map %s", path);
        /* Section lines are "  REAL  VIRTUAL  NAME" with hex addresses. */
        while (fgets(line, sizeof(line), f)) {
                char sym[256];
                unsigned long long real, virt;

                if (sscanf(line, " %llx %llx %255s", &real, &virt, sym) == 3 &&
                    !strcmp(sym, name)) {
                        fclose(f);
                        return virt;
                }
                if (sscanf(line, " %llx %255s", &real, sym) == 2 && !strcmp(sym, name)) {
                        fclose(f);
                        return real;
                }
        }
        fclose(f);
        cr_assert_fail("symbol %s not in %s", name, path);
        return 0;
}

const char *hv_guest(const char *name)
{
        static char bufs[4][1024];
        static int slot;
        char *b = bufs[slot++ % 4];

        snprintf(b, sizeof(bufs[0]), "%s/%s.bin", HV_GUEST_DIR, name);
        return b;
}

const char *hv_guest_file(const char *name)
{
        static char bufs[4][1024];
        static int slot;
        char *b = bufs[slot++ % 4];

        if (name[0] == '/')
                return name;
        if (!strchr(name, '.'))
                return hv_guest(name);
        snprintf(b, sizeof(bufs[0]), "%s/%s", HV_GUEST_DIR, name);
        return b;
}

static char tmp_dir[512];

/* At exit of the test's process: remove its directory, unless HV_KEEP_TMP asks to keep it. */
static void tmp_remove(void)
{
        struct dirent *de;
        char p[1024];
        DIR *d;

        if (getenv("HV_KEEP_TMP")) {
                fprintf(stderr, "test files kept in %s\n", tmp_dir);
                return;
        }
        d = opendir(tmp_dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(p, sizeof(p), "%s/%s", tmp_dir, de->d_name);
                unlink(p);
        }
        closedir(d);
        rmdir(tmp_dir);
}

const char *hv_tmp(const char *name)
{
        static char bufs[8][1024];
        static int slot;
        char *b = bufs[slot++ % 8];

        if (!tmp_dir[0]) {
                snprintf(tmp_dir, sizeof(tmp_dir), "%s/hvtest-XXXXXX",
                         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
                cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
                atexit(tmp_remove);
        }
        snprintf(b, sizeof(bufs[0]), "%s/%s", tmp_dir, name);
        return b;
}

int hv_record(const char *name, const char *const *args, struct hv_trace *t, struct hv_proc *p)
{
        const char *argv[64];
        const char *trace = hv_tmp("rec.zst");
        int n = 0;

        unlink(trace);
        argv[n++] = HVREC;
        argv[n++] = "run";
        argv[n++] = "--quiet";
        argv[n++] = "--timeout";
        argv[n++] = "60";
        argv[n++] = "-o";
        argv[n++] = trace;
        for (; args && *args && n < 60; args++)
                argv[n++] = *args;
        argv[n++] = hv_guest_file(name);
        argv[n] = NULL;
        cr_assert_eq(hv_run(argv, p), 0, "cannot run hvrec");
        cr_assert_eq(hv_trace_load(trace, t), HVT_OK, "%s: %s (hvrec said: %s)", trace, t->message,
                     p->err);
        return p->status;
}

int hv_record_on(const char *backend, const char *name, const char *const *args, struct hv_trace *t,
                 struct hv_proc *p)
{
        const char *argv[64];
        int n = 0;

        argv[n++] = "--backend";
        argv[n++] = backend;
        for (; args && *args && n < 62; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        return hv_record(name, argv, t, p);
}

const char *hv_write_flat(const char *name, const void *code, size_t len)
{
        const char *path = hv_tmp(name);
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f, "%s", path);
        cr_assert_eq(fwrite(code, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
        return path;
}

const char *hv_write_elf(const char *name, int bits, unsigned machine, uint64_t paddr,
                         const void *code, size_t len)
{
        const char *path = hv_tmp(name);
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f, "%s", path);
        if (bits == 64) {
                Elf64_Ehdr eh = { 0 };
                Elf64_Phdr ph = { 0 };

                memcpy(eh.e_ident, ELFMAG, SELFMAG);
                eh.e_ident[EI_CLASS] = ELFCLASS64;
                eh.e_ident[EI_DATA] = ELFDATA2LSB;
                eh.e_ident[EI_VERSION] = EV_CURRENT;
                eh.e_type = ET_EXEC;
                eh.e_machine = (uint16_t)machine;
                eh.e_version = EV_CURRENT;
                eh.e_entry = paddr;
                eh.e_phoff = sizeof(eh);
                eh.e_ehsize = sizeof(eh);
                eh.e_phentsize = sizeof(ph);
                eh.e_phnum = 1;
                ph.p_type = PT_LOAD;
                ph.p_offset = sizeof(eh) + sizeof(ph);
                ph.p_vaddr = ph.p_paddr = paddr;
                ph.p_filesz = ph.p_memsz = len;
                ph.p_flags = PF_R | PF_X;
                fwrite(&eh, sizeof(eh), 1, f);
                fwrite(&ph, sizeof(ph), 1, f);
        } else {
                Elf32_Ehdr eh = { 0 };
                Elf32_Phdr ph = { 0 };

                memcpy(eh.e_ident, ELFMAG, SELFMAG);
                eh.e_ident[EI_CLASS] = ELFCLASS32;
                eh.e_ident[EI_DATA] = ELFDATA2LSB;
                eh.e_ident[EI_VERSION] = EV_CURRENT;
                eh.e_type = ET_EXEC;
                eh.e_machine = (uint16_t)machine;
                eh.e_version = EV_CURRENT;
                eh.e_entry = (uint32_t)paddr;
                eh.e_phoff = sizeof(eh);
                eh.e_ehsize = sizeof(eh);
                eh.e_phentsize = sizeof(ph);
                eh.e_phnum = 1;
                ph.p_type = PT_LOAD;
                ph.p_offset = sizeof(eh) + sizeof(ph);
                ph.p_vaddr = ph.p_paddr = (uint32_t)paddr;
                ph.p_filesz = ph.p_memsz = (uint32_t)len;
                ph.p_flags = PF_R | PF_X;
                fwrite(&eh, sizeof(eh), 1, f);
                fwrite(&ph, sizeof(ph), 1, f);
        }
        fwrite(code, 1, len, f);
        fclose(f);
        return path;
}

/* ---- a strict little JSON checker -------------------------------------------- */

const char *hv_json_ws(const char *s)
{
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
                s++;
        return s;
}

static const char *json_string(const char *s)
{
        if (*s++ != '"')
                return NULL;
        while (*s && *s != '"') {
                if ((unsigned char)*s < 0x20)
                        return NULL;
                if (*s == '\\') {
                        s++;
                        if (*s == 'u') {
                                for (int i = 1; i <= 4; i++)
                                        if (!isxdigit((unsigned char)s[i]))
                                                return NULL;
                                s += 4;
                        } else if (!strchr("\"\\/bfnrt", *s)) {
                                return NULL;
                        }
                }
                s++;
        }
        return *s == '"' ? s + 1 : NULL;
}

static const char *json_number(const char *s)
{
        const char *start = s;

        if (*s == '-')
                s++;
        if (!isdigit((unsigned char)*s))
                return NULL;
        if (*s == '0' && isdigit((unsigned char)s[1]))
                return NULL;
        while (isdigit((unsigned char)*s))
                s++;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char)*s))
                        return NULL;
                while (isdigit((unsigned char)*s))
                        s++;
        }
        return s > start ? s : NULL;
}

const char *hv_json_value(const char *s)
{
        s = hv_json_ws(s);
        switch (*s) {
        case '{':
                s = hv_json_ws(s + 1);
                if (*s == '}')
                        return s + 1;
                for (;;) {
                        s = json_string(hv_json_ws(s));
                        if (!s || *(s = hv_json_ws(s)) != ':' || !(s = hv_json_value(s + 1)))
                                return NULL;
                        s = hv_json_ws(s);
                        if (*s == '}')
                                return s + 1;
                        if (*s++ != ',')
                                return NULL;
                }
        case '[':
                s = hv_json_ws(s + 1);
                if (*s == ']')
                        return s + 1;
                for (;;) {
                        if (!(s = hv_json_value(s)))
                                return NULL;
                        s = hv_json_ws(s);
                        if (*s == ']')
                                return s + 1;
                        if (*s++ != ',')
                                return NULL;
                }
        case '"': return json_string(s);
        case 't': return strncmp(s, "true", 4) ? NULL : s + 4;
        case 'f': return strncmp(s, "false", 5) ? NULL : s + 5;
        case 'n': return strncmp(s, "null", 4) ? NULL : s + 4;
        default: return json_number(s);
        }
}

void hv_assert_one_line_error(const struct hv_proc *p, const char *prog, const char *needle)
{
        size_t n = strlen(p->err);
        int want = strcmp(prog, "hvrec") ? 2 : HVREC_STATUS_ERROR;

        cr_assert_eq(p->status, want, "status %d, stderr: %s", p->status, p->err);
        cr_assert_gt(n, 0, "an error message");
        cr_assert_eq(strchr(p->err, '\n'), p->err + n - 1, "exactly one line: %s", p->err);
        cr_assert_eq(strncmp(p->err, prog, strlen(prog)), 0, "prefixed '%s': %s", prog, p->err);
        cr_assert(strstr(p->err, needle) != NULL, "mentions '%s': %s", needle, p->err);
}

bool hv_on_path(const char *name)
{
        const char *path = getenv("PATH");
        char buf[4096];

        for (const char *p = path ? path : ""; *p;) {
                size_t n = strcspn(p, ":");

                snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
                if (access(buf, X_OK) == 0)
                        return true;
                p += n + (p[n] == ':');
        }
        return false;
}

bool hv_have_qemu(void)
{
        const char *prog = getenv("HVTRACE_QEMU");

        if (prog && *prog)
                return access(prog, X_OK) == 0;
        return hv_on_path("qemu-system-x86_64");
}

void hv_run_one_line_error(const char *const *argv, const char *prog, const char *needle)
{
        struct hv_proc p;

        cr_assert_eq(hv_run(argv, &p), 0, "cannot run %s", argv[0]);
        hv_assert_one_line_error(&p, prog, needle);
        hv_proc_free(&p);
}

const char *hv_record_eager_stress(const char *name)
{
        const char *args[] = {
                "--kick", "20:0x30", "--inject", "eager", "--max-exits", "4000", NULL
        };
        const char *trace = hv_tmp(name);
        struct hv_trace t;
        struct hv_proc p;

        hv_require_backend("emu");
        hv_record_on("emu", "stress", args, &t, &p);
        cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "%s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
        cr_assert_eq(rename(hv_tmp("rec.zst"), trace), 0); /* hv_record's trace */
        return trace;
}
