#!/bin/sh
# mmdebstrap's customize hook for vk's Debian image: run on the host with the new root as $1.
# root's password is `root`; sysvinit's getty runs on the console (vk has no virtual
# consoles tty1..6); the root is /dev/vkd0 (ext2); the host name is `vk`; /etc/mtab is the
# link to /proc/mounts that the boot scripts would otherwise make at every boot; the clock
# scripts leave the hardware clock alone (vk has no RTC: the guest's time is the host's).
set -eu
root=${1:?usage: configure.sh ROOT}

echo 'root:root' | chroot "$root" chpasswd

# /etc/inittab as sysvinit-core ships it, with the virtual-console gettys replaced by one on
# the console.
sed -i -e '/^[1-6]:[0-9]*:respawn:\/sbin\/getty/d' "$root/etc/inittab"
cat >> "$root/etc/inittab" <<'TAB'

# vk: the console is the only terminal.
co:2345:respawn:/sbin/getty --noclear -L 115200 console vt100
TAB
grep -q '^co:' "$root/etc/inittab"

cat > "$root/etc/fstab" <<'TAB'
# <file system> <mount point> <type> <options>  <dump> <pass>
/dev/vkd0       /             ext2   defaults   0      1
tmpfs           /tmp          tmpfs  defaults   0      0
TAB

echo vk > "$root/etc/hostname"
cat > "$root/etc/hosts" <<'TAB'
127.0.0.1	localhost
127.0.1.1	vk
::1		localhost ip6-localhost ip6-loopback
TAB
# login(1) on the console: root may log in there.
grep -qx console "$root/etc/securetty" 2>/dev/null || ! [ -f "$root/etc/securetty" ] ||
    echo console >> "$root/etc/securetty"

ln -sf /proc/mounts "$root/etc/mtab"
cat > "$root/etc/default/hwclock" <<'TAB'
# vk has no hardware clock (no /dev/rtc): the guest's clock is the host's.
HWCLOCKACCESS=no
TAB
