#!/bin/sh
# Install what hvtrace needs from Debian, only what is missing.
# Used by `make demo` and `make test`; safe to run again.
set -eu
pkgs="cmake make gcc gcc-multilib pkg-config nasm libzstd-dev zstd libcapstone-dev libcriterion-dev libunicorn-dev linux-libc-dev"
missing=""
for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
