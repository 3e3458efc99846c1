#!/bin/sh
# Install what hvtrace needs from Debian, only what is missing.
# Used by `make demo` and `make test` only (a plain `make` never runs it); safe
# to run again.  Off Debian (no apt-get or dpkg-query) it installs nothing and
# says so: CMake then names whatever is missing.
# With --fuzz (make test) also the packages only tests use (test_pkgs) and
# clang with its libFuzzer runtime; if those cannot be installed, the tests
# that need them and the fuzz run are skipped, saying why: reported, not
# fatal.
set -eu
pkgs="cmake make gcc g++ gcc-multilib pkg-config nasm libzstd-dev zstd libcapstone-dev libcriterion-dev libunicorn-dev linux-libc-dev qemu-system-x86
      python3 python3-zstandard jq"
# Large, or with services of their own (Slurm, munge): tried, and if they
# cannot be installed the tests that need them skip, saying which package.
test_pkgs="chromium python3-pandas protobuf-compiler parallel munge slurmctld slurmd slurm-client valgrind"
fuzz_pkgs="clang libclang-rt-14-dev"

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: no apt-get/dpkg-query here, so nothing is installed; the build needs" \
                "cmake, gcc, nasm, pkg-config, zstd, capstone, Criterion and Unicorn" >&2
        exit 0
fi

missing() { # PACKAGES...: those not installed
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        printf ' %s' "$p"
        done
}

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
updated=""
install() { # PACKAGES...
        echo "deps: installing $*"
        if [ -z "$updated" ]; then
                $sudo apt-get update -qq
                updated=1
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# shellcheck disable=SC2086 # the package lists are split into words on purpose
need=$(missing $pkgs)
# shellcheck disable=SC2086
[ -z "$need" ] || install $need
if [ "${1:-}" = --fuzz ]; then
        # shellcheck disable=SC2086
        need=$(missing $test_pkgs)
        # shellcheck disable=SC2086
        if [ -n "$need" ] && ! (install $need); then
                echo "deps: could not install$need: the tests that need them will be skipped" >&2
        fi
        # shellcheck disable=SC2086
        need=$(missing $fuzz_pkgs)
        # shellcheck disable=SC2086
        if [ -n "$need" ] && ! (install $need); then
                echo "deps: could not install$need: the fuzz run will be skipped" >&2
        fi
fi
exit 0
