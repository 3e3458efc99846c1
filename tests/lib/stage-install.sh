#!/bin/sh
# Stage libhvtrace as a VMM developer installs it: a clean library-only
# build (-DHVTRACE_TOOLS=OFF) that sees no package but zstd, installed with
# `cmake --install --prefix` into DIR/stage.  DIR/build holds the build and
# DIR/*.log the logs, printed when a step fails.  Afterwards
#     PKG_CONFIG_PATH=DIR/stage/LIBDIR/pkgconfig   (LIBDIR: the last line printed)
# finds hvtrace.pc, and CMAKE_PREFIX_PATH=DIR/stage finds the CMake package.
#
# Usage: stage-install.sh CMAKE SOURCE_DIR DIR
# Prints the install's library directory, relative to DIR/stage (lib,
# lib64, lib/x86_64-linux-gnu ...), as its last line.  Status 0 or 1.
set -eu

[ $# -eq 3 ] || { echo "usage: stage-install.sh CMAKE SOURCE_DIR DIR" >&2; exit 1; }
cmake=$1
src=$2
dir=$3
fail() {
        echo "stage-install: $*" >&2
        exit 1
}

mkdir -p "$dir/pc" || fail "cannot create $dir"
# Only zstd is visible to pkg-config: a library build that looked for
# capstone, Unicorn or Criterion would fail to configure.
zstd_pc=$(pkg-config --variable=pcfiledir libzstd)/libzstd.pc
[ -f "$zstd_pc" ] || fail "libzstd.pc not found"
cp "$zstd_pc" "$dir/pc/"
PKG_CONFIG_LIBDIR=$dir/pc
PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH

"$cmake" -S "$src" -B "$dir/build" -DHVTRACE_TOOLS=OFF -DCMAKE_BUILD_TYPE=Release \
        >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log" >&2; fail "configure failed"; }
"$cmake" --build "$dir/build" -j2 >"$dir/build.log" 2>&1 ||
        { cat "$dir/build.log" >&2; fail "build failed"; }
"$cmake" --install "$dir/build" --prefix "$dir/stage" >"$dir/install.log" 2>&1 ||
        { cat "$dir/install.log" >&2; fail "install failed"; }
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$dir/build/CMakeCache.txt")
[ -n "$libdir" ] || fail "no CMAKE_INSTALL_LIBDIR in $dir/build/CMakeCache.txt"
[ -f "$dir/stage/$libdir/pkgconfig/hvtrace.pc" ] || fail "hvtrace.pc not installed"
echo "$libdir"
