#!/bin/sh
# Stage the root file system tree in DIR: the directory skeleton, etc/ from this folder (and
# the host's resolv.conf and hosts),
# busybox-static with its applet links, the host's dynamic linkers and C libraries (musl's
# /lib/ld-musl-x86_64.so.1; glibc's ld-linux-x86-64.so.2 and libc.so.6 in /lib/x86_64-linux-gnu,
# with /lib64's link, as Debian lays them out), and the guest test programs under /usr/tests.
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
for d in bin sbin lib usr/bin usr/sbin usr/tests etc dev proc sys tmp root var/log mnt; do
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
# The dynamic linkers: a program copied in from a Debian host (glibc) or built with musl-gcc
# runs with these. musl's dynamic linker is its whole C library.
musl_ld=/lib/ld-musl-x86_64.so.1
[ -e "$musl_ld" ] || { echo "stage.sh: $musl_ld is missing (apt-get install musl)" >&2; exit 1; }
cp -L "$musl_ld" "$dir/lib/ld-musl-x86_64.so.1"
gnu=/lib/x86_64-linux-gnu
mkdir -p "$dir$gnu" "$dir/lib64"
for f in ld-linux-x86-64.so.2 libc.so.6; do
    [ -e "$gnu/$f" ] || { echo "stage.sh: $gnu/$f is missing (glibc)" >&2; exit 1; }
    cp -L "$gnu/$f" "$dir$gnu/$f"
done
# Relative, unlike Debian's, so that nothing copied onto it in the staged tree reaches the host.
ln -s "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$dir/lib64/ld-linux-x86-64.so.2"
chmod 600 "$dir/etc/shadow"
# Name resolution as the host has it (the guest's sockets are the host's): its resolver
# settings, or Google's public servers when it has none; /etc/hosts with localhost at least.
if [ -r /etc/resolv.conf ] && grep -q '^nameserver' /etc/resolv.conf; then
    grep -E '^(nameserver|search|domain|options)' /etc/resolv.conf > "$dir/etc/resolv.conf"
else
    printf 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n' > "$dir/etc/resolv.conf"
fi
if [ -r /etc/hosts ]; then
    cat /etc/hosts > "$dir/etc/hosts"
fi
grep -qs '^127\.0\.0\.1' "$dir/etc/hosts" || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >> "$dir/etc/hosts"
"$src/build-tests.sh" "$dir/usr/tests"
# The host's glibc `hostname` and `getent` (Debian's essential packages): `hostname -I` and
# getaddrinfo with AI_ADDRCONFIG ask NETLINK_ROUTE as glibc does it (tests/tests/net.rs).
mkdir -p "$dir/usr/tests/glibc"
for f in /bin/hostname /usr/bin/getent; do
    [ -x "$f" ] || { echo "stage.sh: $f is missing (the hostname and libc-bin packages)" >&2; exit 1; }
    cp -L "$f" "$dir/usr/tests/glibc/"
done
# File names that are not UTF-8, for t_names (file names are bytes).
mkdir -p "$dir/usr/tests/names.d/$(printf '\377\376\200')"
printf staged > "$dir/usr/tests/names.d/$(printf 'caf\351')"

# /usr/tests/perm: t_perm's read-side tree, with fixed owners and modes (uid 1000 is t_perm's
# user, group 1001 one of its groups, group 42 not). Owners need root; without it the tree is
# staged with the caller's ids and t_perm reports that it cannot run.
perm="$dir/usr/tests/perm"
mkdir -p "$perm/closed" "$perm/noread" "$perm/nosearch"
own() { # own OWNER:GROUP MODE PATH...
    o=$1 m=$2
    shift 2
    if [ "$(id -u)" = 0 ]; then chown "$o" "$@"; fi
    chmod "$m" "$@"
}
put() { # put OWNER:GROUP MODE NAME TEXT
    printf '%s\n' "$4" > "$perm/$3"
    own "$1" "$2" "$perm/$3"
}
put 0:0 600 secret secret
put 0:0 644 public public
put 0:1001 640 grp group
put 0:1002 640 grp_no group
put 1000:1000 077 mine0077 mine
for d in closed noread nosearch; do put 0:0 644 "$d/inside" inside; done
for p in prog prog_noexec prog_user suid sgid suid_user; do cp "$dir/usr/tests/h_ids" "$perm/$p"; done
own 0:0 755 "$perm/prog"
own 0:0 644 "$perm/prog_noexec"
own 1000:1000 100 "$perm/prog_user"
own 0:0 4755 "$perm/suid"
own 0:42 2755 "$perm/sgid"
own 1000:1000 4755 "$perm/suid_user"
own 0:0 700 "$perm/closed"
own 0:0 711 "$perm/noread"
own 0:0 744 "$perm/nosearch"
own 0:0 755 "$perm"

# t_dyn's set-user-ID probes: owned by uid 1000, so running one as root changes the effective
# uid and the dynamic linker sees AT_SECURE.
for libc in musl glibc; do
    cp "$dir/usr/tests/h_dynprobe_$libc" "$dir/usr/tests/h_dynprobe_${libc}_suid"
    own 1000:1000 4755 "$dir/usr/tests/h_dynprobe_${libc}_suid"
done
