#!/bin/sh
# libhvtrace.so exports exactly the functions its public header declares
# with HVT_API, every one of them, and nothing else; every function the
# header declares is marked HVT_API; the SONAME is libhvtrace.so.MAJOR.
#
# Usage: check-exports.sh LIBHVTRACE.SO HVTRACE.H MAJOR
set -eu

lib=$1
header=$2
major=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvt-exports-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "check-exports: $*" >&2
        exit 1
}

nm -D --defined-only "$lib" >"$tmp/nm" || fail "nm -D failed on $lib"
awk 'NF >= 3 { print $3 }' "$tmp/nm" | sort >"$tmp/exported"
[ -s "$tmp/exported" ] || fail "$lib exports nothing"
if grep -v '^hvt_' "$tmp/exported" >"$tmp/stray"; then
        echo "exported without the hvt_ prefix:" >&2
        cat "$tmp/stray" >&2
        fail "$lib exports $(wc -l <"$tmp/stray") symbol(s) that are not the API"
fi

# Declarations start at the beginning of a line: TYPE [*]hvt_NAME(.
grep -E '^[A-Za-z].*[ *]hvt_[a-z0-9_]+\(' "$header" >"$tmp/decls" || fail "no declarations in $header"
if grep -v '^HVT_API ' "$tmp/decls" >"$tmp/unmarked"; then
        cat "$tmp/unmarked" >&2
        fail "public functions declared without HVT_API"
fi
sed -E 's/.*[ *](hvt_[a-z0-9_]+)\(.*/\1/' "$tmp/decls" | sort -u >"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
        cat "$tmp/diff" >&2
        fail "exported symbols (+) differ from the functions declared in $header (-)"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libhvtrace.so.$major" ] || fail "SONAME '$soname', want libhvtrace.so.$major"
echo "check-exports: ok, $(wc -l <"$tmp/exported") functions exported, SONAME $soname"
