// SPDX-License-Identifier: MIT
// A C++ VMM against an installed libhvtrace: the library it runs with is the
// one it was built for, it writes a trace with sized options, and it reads
// one from memory and from a file descriptor.  Prints what reader.c prints.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <hvtrace/hvtrace.h>

static int failures;

static void expect(bool ok, const std::string &what)
{
        if (!ok) {
                std::fprintf(stderr, "cxx: %s\n", what.c_str());
                failures++;
        }
}

// Count records and exits until the end; returns the last result.
static int count(hvt_reader *r, unsigned long &records, unsigned long &exits)
{
        hvt_event ev{};
        int err;

        records = exits = 0;
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                records++;
                exits += ev.type == HVT_REC_EXIT;
        }
        return err;
}

static std::vector<unsigned char> slurp(const char *path)
{
        std::vector<unsigned char> buf;
        FILE *f = std::fopen(path, "rb");
        int c;

        while (f && (c = std::fgetc(f)) != EOF)
                buf.push_back(static_cast<unsigned char>(c));
        if (f)
                std::fclose(f);
        return buf;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                std::fprintf(stderr, "usage: cxx TRACE\n");
                return 2;
        }
        expect(hvt_version() == HVT_VERSION, "library version differs from the headers'");
        expect(std::string(hvt_version_string()) == HVT_VERSION_STRING, "version string");
        expect(std::string(hvt_strerror(-EIO)) == std::strerror(EIO), "hvt_strerror(-EIO)");

        // Write a small trace with options, then read it back through a descriptor.
        char path[] = "/tmp/hvt-consumer-XXXXXX";
        int fd = mkstemp(path);
        expect(fd >= 0, "mkstemp");
        hvt_writer_opts o{};
        o.size = sizeof o;
        o.level = 19;
        o.frame_records = 1;
        hvt_writer *w = nullptr;
        expect(hvt_writer_fdopen(&w, fd, &o) == 0, "hvt_writer_fdopen");
        hvt_header h{};
        h.h.mem_size = 4096;
        h.h.guest_mode = HVT_MODE_REAL;
        h.str[HVT_STR_BACKEND] = "consumer";
        hvt_exit e{};
        e.reason = HVT_EXIT_HLT;
        hvt_disk_end end{};
        end.exits = 1;
        end.why = HVT_END_HALT;
        expect(w && hvt_write_header(w, &h) == 0 && hvt_write_exit(w, &e) == 0 &&
                       hvt_write_end(w, &end, "halted") == 0,
               "writing");
        expect(hvt_writer_records(w) == 3, "records written");
        expect(hvt_writer_close(w) == 0, "hvt_writer_close");
        hvt_reader *r = nullptr;
        unsigned long records, exits;
        expect(hvt_reader_fdopen(&r, open(path, O_RDONLY)) == HVT_OK, "hvt_reader_fdopen");
        expect(r && count(r, records, exits) == HVT_END_OF_TRACE && records == 3 && exits == 1,
               "the written trace read back");
        hvt_reader_close(r);
        unlink(path);

        // The sample trace, from memory.
        std::vector<unsigned char> trace = slurp(argv[1]);
        r = nullptr;
        int err = hvt_reader_open_memory(&r, trace.data(), trace.size());
        if (err) {
                std::fprintf(stderr, "cxx: %s: %s\n", argv[1], hvt_reader_message(r));
                hvt_reader_close(r);
                return 2;
        }
        err = count(r, records, exits);
        std::printf("%lu records, %lu exits: %s\n", records, exits, hvt_strerror(err));
        hvt_reader_close(r);
        return failures ? 1 : err == HVT_END_OF_TRACE ? 0 : 1;
}
