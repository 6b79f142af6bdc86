#!/bin/sh
# Stage the root file system tree in DIR: the directory skeleton, etc/ from this folder,
# busybox-static with its applet links, and the guest test programs under /usr/tests.
# The tree is both a hostfs root (`kernel -r DIR`) and the input of build.sh's mke2fs -d.
# Usage: rootimg/stage.sh DIR        (DIR is emptied first)
set -eu
dir=${1:?usage: stage.sh DIR}
src=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "stage.sh: busybox-static is not installed" >&2; exit 1; }

case $dir in /|"") echo "stage.sh: refusing to stage into '$dir'" >&2; exit 1 ;; esac
rm -rf "$dir"
mkdir -p "$dir"
for d in bin sbin usr/bin usr/sbin usr/tests etc dev proc tmp root var/log mnt; do
    mkdir -p "$dir/$d"
done
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
cp "$busybox" "$dir/bin/busybox"
# Applet links, where busybox itself says each applet lives.
"$busybox" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox|"") continue ;;
    esac
    sub=$(dirname "$applet")
    mkdir -p "$dir/$sub"
    rel=$(echo "$sub" | sed 's|[^/]*|..|g')
    [ -e "$dir/$applet" ] || ln -s "$rel/bin/busybox" "$dir/$applet"
done
cp -p "$src"/etc/* "$dir/etc/"
chmod 600 "$dir/etc/shadow"
"$src/build-tests.sh" "$dir/usr/tests"
# File names that are not UTF-8, for t_names (file names are bytes).
mkdir -p "$dir/usr/tests/names.d/$(printf '\377\376\200')"
printf staged > "$dir/usr/tests/names.d/$(printf 'caf\351')"
