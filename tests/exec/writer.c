// SPDX-License-Identifier: MIT
/*
 * hvrec exec's side of its contract with the preload library, without
 * KVM: this program writes what the library writes (a trace's frames on
 * the inherited descriptor, the counts on the status page) with no KVM
 * behind it, then ends as told, so test_exec can check how hvrec ends the
 * trace.  Usage: writer EXITS exit|kill
 *   exit: close the writer (as the library's destructor does), exit 5;
 *   kill: leave a frame half written, then SIGKILL itself.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hvtrace/hvtrace.h>

#include "../../src/preload/exec_abi.h"

int main(int argc, char **argv)
{
        const char *tfd = getenv(HVT_EXEC_ENV_TRACE_FD), *sfd = getenv(HVT_EXEC_ENV_STATUS_FD);
        struct hvt_writer_opts o = { .size = sizeof(o) };
        struct hvt_header h = { 0 };
        struct hvt_exec_status *s;
        struct hvt_writer *w;
        int n;

        if (argc != 3 || !tfd || !sfd)
                return 100;
        n = atoi(argv[1]);
        s = mmap(NULL, HVT_EXEC_STATUS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, atoi(sfd), 0);
        if (s == MAP_FAILED || hvt_writer_fdopen(&w, dup(atoi(tfd)), &o))
                return 101;
        s->magic = HVT_EXEC_MAGIC;
        h.str[HVT_STR_BACKEND] = "exec";
        if (hvt_write_header(w, &h))
                return 102;
        s->started = 1;
        for (int i = 0; i < n; i++) {
                struct hvt_exit e = { .seq = (uint64_t)i, .reason = HVT_EXIT_HLT };

                e.st.rip = 0x1000u + (uint64_t)i;
                if (hvt_write_exit(w, &e))
                        return 103;
                s->exits = (uint64_t)i + 1;
                s->last_rip = e.st.rip;
        }
        if (!strcmp(argv[2], "exit"))
                return hvt_writer_close(w) ? 104 : 5;
        if (hvt_writer_flush(w))
                return 105;
        /* The start of a zstd frame that never ends: what a SIGKILL mid-frame leaves. */
        if (write(atoi(tfd), "\x28\xb5\x2f\xfd\x04\x58", 6) != 6)
                return 106;
        raise(SIGKILL);
        return 107;
}
