#!/bin/sh
# libhvtrace as a VMM developer gets it: configure a clean library-only build
# (-DHVTRACE_TOOLS=OFF) seeing no package but zstd, build, install it into a
# staged prefix, then build a small C reader and a C++ program against that
# install through pkg-config and through find_package, each linked with the
# shared and with the static library, and run all eight on a sample trace.
#
# Usage: install-test.sh CMAKE SOURCE_DIR TRACE [HVREPLAY]
# With HVREPLAY, the counts are also compared with `hvreplay dump`.
set -eu

cmake=$1
src=$2
trace=$3
hvreplay=${4:-}
cc=${CC:-cc}
cxx=${CXX:-c++}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvt-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "install-test: $*" >&2
        exit 1
}
step() {
        echo "install-test: $*"
}

step "configure, build and install with HVTRACE_TOOLS=OFF"
libdir=$(sh "$(dirname "$0")/stage-install.sh" "$cmake" "$src" "$tmp") ||
        fail "staging the install failed"
# The staging's pkg-config sees only zstd; what follows uses the same view.
PKG_CONFIG_LIBDIR=$tmp/pc
PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH

# Nothing of the tools was looked for (their checks leave cache entries).
if grep -iE '^[^#/]*(capstone|unicorn|criterion|nasm|kvm|m32|guest)' \
        "$tmp/build/CMakeCache.txt" >"$tmp/leak"; then
        cat "$tmp/leak"
        fail "the library-only configure looked for the tools' dependencies"
fi
grep -qi 'CMAKE_CXX_COMPILER:' "$tmp/build/CMakeCache.txt" &&
        fail "the library-only configure enabled C++"

step "the staged install"
stage=$tmp/stage
lib=$stage/$libdir
for f in include/hvtrace/hvtrace.h include/hvtrace/format.h include/hvtrace/version.h \
        "$libdir/libhvtrace.a" "$libdir/libhvtrace.so" "$libdir/pkgconfig/hvtrace.pc" \
        "$libdir/cmake/hvtrace/hvtraceConfig.cmake" \
        "$libdir/cmake/hvtrace/hvtraceConfigVersion.cmake"; do
        [ -e "$stage/$f" ] || fail "$f not installed"
done
[ ! -e "$stage/bin" ] || fail "tools installed by a library-only build: $(ls "$stage/bin")"
soname=$(readelf -d "$lib/libhvtrace.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] || fail "libhvtrace.so has no SONAME"
[ -L "$lib/$soname" ] || fail "$soname is not installed as a link"
real=$(readlink "$lib/$soname")
case $real in
"$soname".*.*) ;;
*) fail "$soname points to $real, not to $soname.MINOR.PATCH" ;;
esac
[ -f "$lib/$real" ] || fail "$real missing"

# The programs must read the trace to its end and agree on what it holds.
expect=""
check_run() { # NAME OUTPUT-FILE
        out=$(cat "$2")
        case $out in
        *" records, "*" exits: end of trace") ;;
        *) fail "$1 printed '$out'" ;;
        esac
        if [ -z "$expect" ]; then
                expect=$out
        elif [ "$out" != "$expect" ]; then
                fail "$1 printed '$out', others '$expect'"
        fi
}
needs_so() { # BINARY yes|no
        if readelf -d "$1" 2>/dev/null | grep -q "NEEDED.*\[libhvtrace\.so"; then
                [ "$2" = yes ] || fail "$1 links libhvtrace.so, not the static library"
        else
                [ "$2" = no ] || fail "$1 does not link libhvtrace.so"
        fi
}

step "pkg-config"
PKG_CONFIG_PATH=$lib/pkgconfig
export PKG_CONFIG_PATH
pkg-config --exists hvtrace || fail "pkg-config does not find hvtrace"
pkg-config --static --libs hvtrace | grep -q -- -lzstd || fail "--static --libs lacks -lzstd"
consumer=$src/tests/lib/consumer
bin=$tmp/bin
mkdir -p "$bin"
# shellcheck disable=SC2046 # pkg-config's flags are words
"$cc" -std=c99 -Wall -Wextra -Werror -o "$bin/reader_shared" "$consumer/reader.c" \
        $(pkg-config --cflags --libs hvtrace)
# shellcheck disable=SC2046
"$cxx" -std=c++11 -Wall -Wextra -Werror -o "$bin/cxx_shared" "$consumer/cxx.cpp" \
        $(pkg-config --cflags --libs hvtrace)
# The static library and everything it needs, as pkg-config --static gives it.
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -static -o "$bin/reader_static" "$consumer/reader.c" \
        $(pkg-config --static --cflags --libs hvtrace)
# shellcheck disable=SC2046
"$cxx" -std=c++11 -Wall -Wextra -Werror -static -o "$bin/cxx_static" "$consumer/cxx.cpp" \
        $(pkg-config --static --cflags --libs hvtrace)

step "find_package"
"$cmake" -S "$consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$stage" \
        -DCMAKE_BUILD_TYPE=Release >"$tmp/consumer.log" 2>&1 ||
        { cat "$tmp/consumer.log"; fail "find_package project: configure failed"; }
"$cmake" --build "$tmp/consumer" -j2 >>"$tmp/consumer.log" 2>&1 ||
        { cat "$tmp/consumer.log"; fail "find_package project: build failed"; }

step "run on $trace"
for prog in reader cxx; do
        for kind in shared static; do
                for how in pkg-config cmake; do
                        if [ $how = pkg-config ]; then
                                exe=$bin/${prog}_$kind
                        else
                                exe=$tmp/consumer/${prog}_$kind
                        fi
                        if [ $kind = shared ]; then
                                needs_so "$exe" yes
                        else
                                needs_so "$exe" no
                        fi
                        LD_LIBRARY_PATH=$lib "$exe" "$trace" >"$tmp/out" ||
                                fail "$how ${prog}_$kind failed on $trace"
                        check_run "$how ${prog}_$kind" "$tmp/out"
                done
        done
done
# The shared programs run with the staged library, not another one.
LD_LIBRARY_PATH=$lib ldd "$bin/reader_shared" | grep -q "$lib/libhvtrace.so" ||
        fail "reader_shared does not load the staged libhvtrace.so"

if [ -n "$hvreplay" ]; then
        "$hvreplay" dump --format jsonl "$trace" >"$tmp/dump" || fail "hvreplay dump failed"
        records=$(wc -l <"$tmp/dump")
        exits=$(grep -c '"type":"exit"' "$tmp/dump")
        [ "$expect" = "$records records, $exits exits: end of trace" ] ||
                fail "the programs saw '$expect', hvreplay dump $records records, $exits exits"
fi
echo "install-test: ok ($expect)"
