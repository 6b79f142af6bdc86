#!/bin/sh
# Build the root image: stage etc/ from this folder and busybox-static with its applet links,
# then make an ext2 file system from the staging tree with the standard `mke2fs -t ext2 -d`.
# Usage: rootimg/build.sh OUTPUT [SIZE]   (SIZE as mke2fs takes it, default 64M)
set -eu
out=${1:?usage: build.sh OUTPUT [SIZE]}
size=${2:-64M}
src=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "build.sh: busybox-static is not installed" >&2; exit 1; }
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)

stage=$(mktemp -d "${TMPDIR:-/tmp}/vk-rootimg.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" "$stage/usr/tests" \
         "$stage/etc" "$stage/dev" "$stage/proc" "$stage/tmp" "$stage/root" "$stage/var/log" \
         "$stage/mnt"
chmod 1777 "$stage/tmp"
chmod 700 "$stage/root"
cp "$busybox" "$stage/bin/busybox"
# Applet links, where busybox itself says each applet lives.
"$busybox" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox|"") continue ;;
    esac
    dir=$(dirname "$applet")
    mkdir -p "$stage/$dir"
    rel=$(echo "$dir" | sed 's|[^/]*|..|g')
    [ -e "$stage/$applet" ] || ln -s "$rel/bin/busybox" "$stage/$applet"
done
cp -p "$src"/etc/* "$stage/etc/"
chmod 600 "$stage/etc/shadow"

tmp="$out.tmp.$$"
rm -f "$tmp"
: > "$tmp"
"$mke2fs" -q -F -t ext2 -L vkroot -E root_owner=0:0 -d "$stage" "$tmp" "$size"
mv -f "$tmp" "$out"
echo "rootimg: $out ($size, ext2, busybox $("$busybox" | head -1 | sed 's/^BusyBox \(v[^ ]*\).*/\1/'))"
