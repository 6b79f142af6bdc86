//! Loop devices with busybox on the ext2 root image: busybox's mke2fs makes a file system in
//! a file on the root (ext2 in a file on ext2), `mount -o loop` mounts it, busybox writes and
//! fallocates there, and after umount and halt the host's e2fsck finds both file systems —
//! the root image and the one in the file — clean, with the data in it.

use std::process::Command;
use std::time::Duration;

use vk_tests::Kernel;
use vk_tests::guest::program_output;
use vk_tests::image::{ImageCopy, e2fsck};

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

const SCRIPT: &str = r#"set -e
truncate -s 8M /loop.img
mke2fs -F /loop.img >/dev/null 2>&1
mkdir -p /lmnt
mount -o loop /loop.img /lmnt
echo hi > /lmnt/x
fallocate -l 100000 /lmnt/y
echo "size $(wc -c < /lmnt/y)"
blockdev --getsize64 /dev/loop0
grep -c ' /lmnt ext2 ' /proc/mounts
umount /lmnt
losetup /dev/loop0 2>/dev/null || echo detached
echo @end"#;

#[test]
fn busybox_mount_loop_on_ext2() {
    let img = ImageCopy::new("loop");
    let mut k = Kernel::start(&["-m", "128m", "-n", "2", "-r", img.path(), "-e", "init=/bin/sh", "--", "-c", SCRIPT]);
    k.close_stdin();
    let st = k.wait_within(BOOT_TIMEOUT);
    let console = k.output();
    let out = program_output(&console);
    assert_eq!(st.code(), Some(0), "{console}");
    assert!(out.contains("size 100000\n8388608\n1\ndetached\n@end"), "{console}");

    let (code, fsck) = img.fsck();
    assert_eq!(code, Some(0), "e2fsck -fn of the root image:\n{fsck}");
    let inner = img.dir.join("inner.img");
    let dump = Command::new("debugfs").arg("-R").arg(format!("dump /loop.img {}", inner.display())).arg(&img.image).output();
    assert!(dump.is_ok_and(|o| o.status.success()) && inner.is_file(), "debugfs could not copy /loop.img out");
    let (code, fsck) = e2fsck(&inner);
    assert_eq!(code, Some(0), "e2fsck -fn of the file system in /loop.img:\n{fsck}");
    let cat = Command::new("debugfs").args(["-R", "cat /x"]).arg(&inner).output().expect("run debugfs");
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "hi\n");
}
