#!/bin/sh
# The tools as installed: `cmake --install` of this build into a staged
# prefix, which must carry the qemu-tcg BIOS and hvrec exec's preload
# library, and an installed hvrec, moved elsewhere with its prefix (a
# relocated install), that finds them and not the build tree's: it records
# a guest on qemu-tcg with the build tree's BIOS out of reach, and hvrec
# exec gives a program the relocated library.
#
# Usage: install-tools-test.sh CMAKE BUILD_DIR GUEST
# Status 0, 1 on failure, 77 when qemu-tcg is not compiled in or QEMU is
# missing (ctest reports it as skipped).
set -eu

cmake=$1
build=$2
guest=$3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvt-tools-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "install-tools-test: $*" >&2
        exit 1
}

"$cmake" --install "$build" --prefix "$tmp/stage" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log" >&2; fail "install failed"; }
[ -x "$tmp/stage/bin/hvrec" ] && [ -x "$tmp/stage/bin/hvreplay" ] && [ -x "$tmp/stage/bin/hvgen" ] ||
        fail "hvrec, hvreplay or hvgen not installed"

# hvrec exec (unless built with HVTRACE_EXEC=OFF): the relocated hvrec
# preloads its own installed library.
lib=$(find "$tmp/stage" -name libhvtpreload.so)
if [ -n "$lib" ]; then
        mv "$tmp/stage" "$tmp/exec"
        got=$(env -u HVTRACE_PRELOAD -u LD_PRELOAD "$tmp/exec/bin/hvrec" exec -o "$tmp/exec.zst" \
                -- sh -c 'printf %s "$LD_PRELOAD"') || fail "hvrec exec failed: $got"
        case $got in
        "$tmp/exec/"*/hvtrace/libhvtpreload.so) ;;
        *) fail "a relocated hvrec exec does not preload its installed library: $got" ;;
        esac
        mv "$tmp/exec" "$tmp/stage"
elif ! "$tmp/stage/bin/hvrec" exec -o "$tmp/exec.zst" -- true 2>&1 | grep -q HVTRACE_EXEC=OFF; then
        fail "the install has no libhvtpreload.so"
fi

help=$("$tmp/stage/bin/hvrec" run --backend help 2>&1) || fail "hvrec --backend help failed"
case $help in
*"qemu-tcg"*) ;;
*) echo "install-tools-test: skipped: qemu-tcg is not compiled in (HVTRACE_BACKEND_QEMU_TCG)"
   exit 77 ;;
esac
case $help in
*"qemu-tcg"*"usable here"*BIOS*) ;;
*) echo "install-tools-test: skipped: qemu-tcg is not usable here: $help"; exit 77 ;;
esac
bios=$(find "$tmp/stage" -name hvt_bios.bin)
[ -n "$bios" ] || fail "the install has no hvt_bios.bin"

# Relocate the prefix: the installed hvrec must follow its own directory.
mv "$tmp/stage" "$tmp/moved"
help=$("$tmp/moved/bin/hvrec" run --backend help 2>&1)
case $help in
*"BIOS $tmp/moved/"*) ;;
*) fail "a relocated hvrec does not use its installed BIOS: $help" ;;
esac
# The BIOS it reports is the one it runs: a broken installed copy fails the run.
bios=$(find "$tmp/moved" -name hvt_bios.bin)
# (hvrec's status is the guest's: success is the guest's own exit.)
env -u HVTRACE_QEMU_BIOS "$tmp/moved/bin/hvrec" run --backend qemu-tcg -o "$tmp/ok.zst" \
        "$guest" >"$tmp/ok.log" 2>&1 || true
grep -q "guest exited with status" "$tmp/ok.log" || { cat "$tmp/ok.log" >&2; fail "recording failed"; }
: >"$bios"
env -u HVTRACE_QEMU_BIOS "$tmp/moved/bin/hvrec" run --backend qemu-tcg -o "$tmp/bad.zst" \
        "$guest" >"$tmp/bad.log" 2>&1 || true
if grep -q "guest exited with status" "$tmp/bad.log"; then
        fail "an emptied installed BIOS did not fail the run: hvrec used another"
fi
echo "install-tools-test: installed and relocated hvrec run qemu-tcg with the installed BIOS" \
        "and hvrec exec with the installed preload library"
