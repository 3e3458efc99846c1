// SPDX-License-Identifier: MIT
// The public headers in C++: a C++17 program that writes a trace with
// libhvtrace and reads it back, linked like any C++ VMM would link it.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include <hvtrace/hvtrace.h>

static int failures;

static void expect(bool ok, const std::string &what)
{
        if (!ok) {
                std::fprintf(stderr, "test_cxx: %s\n", what.c_str());
                failures++;
        }
}

int main()
{
        char path[] = "/tmp/hvt-cxx-XXXXXX";
        int fd = mkstemp(path);
        hvt_writer *w = nullptr;
        hvt_reader *r = nullptr;
        hvt_header h{};
        hvt_exit e{};
        hvt_event ev{};
        static const char *const argv[] = { "vmm", "--cxx" };

        expect(fd >= 0, "mkstemp");
        close(fd);
        expect(hvt_writer_open(&w, path, nullptr) == 0, "hvt_writer_open");
        h.h.entry = 0x1000;
        h.h.mem_size = 4096;
        h.h.guest_mode = HVT_MODE_REAL;
        h.str[HVT_STR_TOOL_VERSION] = "test_cxx";
        h.str[HVT_STR_BACKEND] = "c++";
        h.argv = argv;
        h.argc = 2;
        expect(hvt_write_header(w, &h) == 0, "hvt_write_header");
        e.seq = 0;
        e.reason = HVT_EXIT_HLT;
        e.st.rip = 0x1001;
        expect(hvt_write_exit(w, &e) == 0, "hvt_write_exit");
        hvt_disk_end end{};
        end.exits = 1;
        end.why = HVT_END_HALT;
        expect(hvt_write_end(w, &end, "halted") == 0, "hvt_write_end");
        expect(hvt_writer_close(w) == 0, "hvt_writer_close");

        expect(hvt_reader_open(&r, path) == HVT_OK, "hvt_reader_open");
        std::string seen;
        int err;
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                seen += hvt_rec_type_name(ev.type) + std::string(" ");
        expect(err == HVT_END_OF_TRACE, std::string("ended with ") + hvt_strerror(err));
        expect(seen == "header exit end ", "records read: " + seen);
        expect(std::string(hvt_reader_header(r)->str[HVT_STR_BACKEND]) == "c++", "backend string");
        hvt_reader_close(r);
        unlink(path);
        if (!failures)
                std::printf("test_cxx: ok\n");
        return failures ? 1 : 0;
}
