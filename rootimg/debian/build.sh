#!/bin/sh
# Build the Debian root image: Debian bookworm made by mmdebstrap from Debian's packages
# (minbase, sysvinit as init, login, passwd, procps, less), configured for vk by the hook
# configure.sh next to this script (root's password, a getty on the console, fstab, host
# name), then an ext2 file system of it made with `mke2fs -t ext2 -d`, as rootimg/build.sh.
# As root mmdebstrap runs in root mode, else in unshare mode (user namespaces, uidmap).
# The image is built once: OUTPUT.stamp holds the hash of this recipe, and a second run with
# the same recipe leaves OUTPUT as it is.
# Usage: rootimg/debian/build.sh OUTPUT [SIZE]   (SIZE as mke2fs takes it, default 1G)
# MIRROR overrides the Debian mirror (default http://deb.debian.org/debian).
set -eu
out=${1:?usage: build.sh OUTPUT [SIZE]}
size=${2:-1G}
src=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${MIRROR:-http://deb.debian.org/debian}
# minbase (Essential packages and apt) plus: sysvinit as init, login and passwd, everyday
# tools (procps, less, iproute2, e2fsprogs), certificates for apt over https, and strace and
# gdb for the tracing tests.
packages=sysvinit-core,login,passwd,procps,less,iproute2,e2fsprogs,ca-certificates,strace,gdb
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)

# The recipe: these files, the suite, the mirror, the packages and the size.
recipe=$( { cat "$src"/*.sh; echo "$suite $mirror $packages $size"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$recipe" ]; then
    echo "debian: $out is up to date"
    exit 0
fi

command -v mmdebstrap >/dev/null 2>&1 || {
    echo "debian: mmdebstrap is missing (scripts/ensure-deps installs it)" >&2; exit 1; }
# In unshare mode the tree's files belong to subordinate ids: mke2fs and rm run in a user
# namespace of the same mapping (mmdebstrap --unshare-helper), where they belong to root.
if [ "$(id -u)" -eq 0 ]; then mode=root; ns=; else mode=unshare; ns="mmdebstrap --unshare-helper"; fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/vk-debian.XXXXXX")
tree=$work/root
tmp="$out.tmp.$$"
trap '$ns rm -rf "$tree"; rm -rf "$work" "$tmp"' EXIT INT TERM
rm -f "$out.stamp"
start=$(date +%s)
echo "debian: mmdebstrap $suite ($mode mode) from $mirror"
if ! mmdebstrap --quiet --mode="$mode" --variant=minbase --include="$packages" \
        --dpkgopt="path-exclude=/usr/share/man/*" --dpkgopt="path-exclude=/usr/share/info/*" \
        --dpkgopt="path-exclude=/usr/share/doc/*" \
        --dpkgopt="path-include=/usr/share/doc/*/copyright" --dpkgopt="path-exclude=/usr/share/locale/*" \
        --customize-hook="sh $src/configure.sh \"\$1\"" \
        "$suite" "$tree" "$mirror" >"$work/log" 2>&1; then
    tail -n 20 "$work/log" >&2
    echo "debian: mmdebstrap failed. Building the Debian image needs network access to" >&2
    echo "debian: Debian's mirror ($mirror); set MIRROR= to use another one." >&2
    exit 1
fi
# Sockets, if any were left behind, have no place in an image (mke2fs -d refuses them).
$ns find "$tree" -xdev -type s -delete
used=$($ns du -sm "$tree" | cut -f1)
: > "$tmp"
$ns "$mke2fs" -q -F -t ext2 -L debian -E root_owner=0:0 -d "$tree" "$tmp" "$size"
mv -f "$tmp" "$out"
echo "$recipe" > "$out.stamp"
echo "debian: $out ($size, ext2, $used MiB of Debian $suite, $(( $(date +%s) - start )) s)"
