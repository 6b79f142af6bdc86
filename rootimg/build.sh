#!/bin/sh
# Build the root image: stage the tree with stage.sh (busybox-static and its applet links,
# etc/ from this folder, the guest tests), then make an ext2 file system from it with the
# standard `mke2fs -t ext2 -d`.
# Usage: rootimg/build.sh OUTPUT [SIZE [STAGED]]   (SIZE as mke2fs takes it, default 64M;
#        STAGED: a tree stage.sh already made, used as it is)
set -eu
out=${1:?usage: build.sh OUTPUT [SIZE]}
size=${2:-64M}
src=$(cd "$(dirname "$0")" && pwd)
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)

if [ -n "${3:-}" ]; then
    tree=$3
    [ -x "$tree/bin/busybox" ] || { echo "build.sh: $tree is not a staged root" >&2; exit 1; }
else
    stage=$(mktemp -d "${TMPDIR:-/tmp}/vk-rootimg.XXXXXX")
    trap 'rm -rf "$stage"' EXIT INT TERM
    tree=$stage/root
    "$src/stage.sh" "$tree"
fi

tmp="$out.tmp.$$"
rm -f "$tmp"
: > "$tmp"
"$mke2fs" -q -F -t ext2 -L vkroot -E root_owner=0:0 -d "$tree" "$tmp" "$size"
mv -f "$tmp" "$out"
echo "rootimg: $out ($size, ext2, busybox $("$tree/bin/busybox" | head -1 | sed 's/^BusyBox \(v[^ ]*\).*/\1/'))"
