//! ext2 as the root file system: the kernel boots a copy of `run/rootimg.01`, busybox changes
//! files on it, and after the kernel halts `e2fsck -fn` finds nothing wrong and a second boot
//! sees the same data. Damaged images are refused at mount without a write; `-R` leaves the
//! image untouched. Every test works on its own copy of the image, never the original.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vk_tests::guest::{program_output, summary};
use vk_tests::image::{ImageCopy, e2fsck};
use vk_tests::{Kernel, bin};

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Boot `image` (flag `-r` or `-R`) with `sh -c script` as init: (exit code, init's output).
fn boot(flag: &str, image: &str, script: &str) -> (Option<i32>, String) {
    let mut k = Kernel::start(&["-m", "128m", "-n", "2", flag, image, "-e", "init=/bin/sh", "--", "-c", script]);
    k.close_stdin();
    let st = k.wait_within(BOOT_TIMEOUT);
    let console = k.output();
    (st.code(), program_output(&console).to_string())
}


fn debugfs(image: &Path, request: &str) -> String {
    let o = Command::new("debugfs").args(["-R", request]).arg(image).output().expect("run debugfs (e2fsprogs)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_clean(image: &Path) {
    let (code, out) = e2fsck(image);
    assert_eq!(code, Some(0), "e2fsck -fn finds problems:\n{out}");
}

/// The lines of `out` between `from` and `to` markers.
fn between<'a>(out: &'a str, from: &str, to: &str) -> &'a str {
    let s = out.find(from).map_or(0, |i| i + from.len());
    let e = out[s..].find(to).map_or(out.len(), |i| s + i);
    &out[s..e]
}

const MAKE_TREE: &str = r#"set -e
mkdir -p /w/a/b/c /w/x
cd /w
i=0; while [ $i -lt 80 ]; do echo "file $i" > a/f$i; i=$((i+1)); done
dd if=/dev/urandom of=big bs=1024 count=2500 2>/dev/null
dd if=/dev/urandom of=sparse bs=1024 count=1 seek=70000 2>/dev/null
echo data > a/b/c/deep
mv a/f1 a/g1; mv a/f2 x/; mv a/b x/; mv a/f3 a/f4
ln a/f5 hard
ln -s a/f5 short
ln -s /w/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/long long
dd if=/dev/urandom of=t bs=1024 count=400 2>/dev/null
truncate -s 5000 t; truncate -s 9000 t
chmod 640 a/f6; chown 12:34 a/f7
mkdir rmme; cp -r a rmme/; cp big rmme/; rm -r rmme
i=10; while [ $i -lt 50 ]; do rm a/f$i; i=$((i+1)); done
touch -d '2001-02-03 04:05:06' a/f60
sync
echo @sums; md5sum big sparse t x/b/c/deep a/f5 hard a/f4 a/g1; echo @end
cat short; readlink long
ls -ln a/f6 a/f7 | awk '{print $1, $3, $4}'
cat x/b/c/../c/deep
ls a | wc -l
stat -f -c %T /
echo tail > t5; dd if=t5 of=huge bs=1024 seek=5242880 2>/dev/null; ls -l huge | awk '{print "huge", $5}'; tail -c 5 huge
"#;

#[test]
fn files_persist_and_fsck_is_clean() {
    let img = ImageCopy::new("persist");
    let (code, out) = boot("-r", img.path(), MAKE_TREE);
    assert_eq!(code, Some(0), "the script failed:\n{out}");
    assert!(out.contains("file 5\n"), "fast symlink: {out}");
    assert!(out.contains("/w/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/long\n"), "slow symlink: {out}");
    assert!(out.contains("-rw-r----- 0 0\n-rw-r--r-- 12 34\n"), "chmod/chown: {out}");
    assert!(out.contains("data\n"), "moved directory: {out}");
    assert!(out.contains("\n38\n"), "a/ after removals: {out}");
    assert!(out.contains("ext2"), "statfs type: {out}");
    assert!(out.contains("huge 5368709125\ntail\n"), "a file past 4 GiB: {out}");
    let sums = between(&out, "@sums\n", "@end").to_string();
    assert_eq!(sums.lines().count(), 8, "{out}");
    assert_clean(&img.image);

    // The host's view of the image agrees.
    let stat = debugfs(&img.image, "stat /w/a/f7");
    assert!(stat.contains("User:    12   Group:    34"), "{stat}");
    let stat = debugfs(&img.image, "stat /w/sparse");
    assert!(stat.contains("Size: 71681024"), "{stat}");
    assert!(debugfs(&img.image, "stat /w/a/f60").contains("2001"), "utimes");

    // A second boot reads the same data back, and changes more.
    let again = "cd /w && echo @sums && md5sum big sparse t x/b/c/deep a/f5 hard a/f4 a/g1 && echo @end && \
                 mv x/b a/ && rm -r a/b big && mv t hard && stat -c %h a/f5";
    let (code, out2) = boot("-r", img.path(), again);
    assert_eq!(code, Some(0), "{out2}");
    assert_eq!(between(&out2, "@sums\n", "@end"), sums, "data differs after a reboot");
    assert!(out2.trim_end().ends_with('1'), "rename over a hard link: {out2}");
    assert_clean(&img.image);
}

#[test]
fn damaged_images_are_refused_untouched() {
    let good = std::fs::read(bin("rootimg.01")).expect("read the root image");
    let bsize = 1024usize << u32::from_le_bytes(good[1024 + 24..1024 + 28].try_into().expect("4 bytes"));
    let gdt = if bsize == 1024 { 2048 } else { bsize };
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut bad_magic = good.clone();
    bad_magic[1024 + 56] = 0;
    cases.push(("magic", bad_magic, "bad superblock magic"));
    let garbage: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    cases.push(("garbage", garbage, "not ext2"));
    let mut bad_gd = good.clone();
    bad_gd[gdt + 8..gdt + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    cases.push(("gdt", bad_gd, "inode table at 2147483632 is outside the file system"));
    let mut incompat = good.clone();
    incompat[1024 + 96] |= 0x40;
    cases.push(("incompat", incompat, "unsupported INCOMPAT features: extent"));
    for (tag, bytes, why) in cases {
        let img = ImageCopy::new(tag);
        std::fs::write(&img.image, &bytes).expect("write the damaged copy");
        let mut k = Kernel::start(&["-m", "64m", "-r", img.path(), "-e", "init=/bin/sh"]);
        k.expect("vkd0: ");
        k.expect(why);
        k.expect("panic: cannot mount root");
        k.expect("db> ");
        k.send("halt");
        k.wait();
        assert!(std::fs::read(&img.image).expect("read back") == bytes, "{tag}: the damaged image was written");
    }
}

#[test]
fn copy_on_write_leaves_the_image_alone() {
    let img = ImageCopy::new("cow");
    let before = std::fs::read(&img.image).expect("read image");
    let (code, out) = boot("-R", img.path(), "echo private > /cow && mkdir /cowdir && cat /cow && ls / | grep -c cow && rm /etc/passwd && sync");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("private\n2\n"), "{out}");
    assert!(std::fs::read(&img.image).expect("read image") == before, "-R wrote the image");
    let (code, out) = boot("-R", img.path(), "ls / | grep -c cow; head -1 /etc/passwd");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("0\nroot:"), "{out}");
}

#[test]
fn guest_tests_run_on_ext2() {
    // The tmpfs on /tmp is unmounted (a mount point cannot be renamed: EBUSY), so the
    // programs' scratch directories are on ext2 too.
    let img = ImageCopy::new("guest");
    let script = "umount /tmp && stat -f -c %T /tmp && cd /usr/tests && ./t_files && ./t_exec && ./t_names";
    let (code, out) = boot("-r", img.path(), script);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("ext2"), "{out}");
    assert_eq!(summary(&out).map(|s| s.1), Some(0), "{out}");
    assert_eq!(out.matches(" passed, 0 failed").count(), 3, "{out}");
    assert_clean(&img.image);
}

/// A fresh, empty ext2 image of `mb` MiB made by mke2fs.
fn mkfs(dir: &Path, name: &str, mb: u32) -> PathBuf {
    let p = dir.join(name);
    let st = Command::new("mke2fs").args(["-q", "-F", "-t", "ext2"]).arg(&p).arg(format!("{mb}M")).status().expect("run mke2fs (e2fsprogs)");
    assert!(st.success(), "mke2fs failed");
    p
}

#[test]
fn mount_and_umount_a_second_disk() {
    let img = ImageCopy::new("mount");
    let data = mkfs(&img.dir, "data.img", 8);
    let ro = mkfs(&img.dir, "ro.img", 8);
    // An RO_COMPAT feature vk does not know (huge_file): read-only, with a message.
    let mut b = std::fs::read(&ro).expect("read");
    b[1024 + 100] |= 0x8;
    std::fs::write(&ro, &b).expect("write");
    let script = "ls -l /dev/vkd1 | cut -c1 && mount -t ext2 /dev/vkd1 /mnt && mkdir /mnt/d && echo hi > /mnt/d/f && \
                  cd /mnt/d && { umount /mnt; echo busy=$?; } && cd / && umount /mnt && echo unmounted && \
                  { umount /mnt; echo notmounted=$?; } && mount -t ext2 /dev/vkd2 /mnt && { touch /mnt/x; echo ro=$?; } && \
                  umount /mnt && mount -t ext2 -o ro /dev/vkd1 /mnt && cat /mnt/d/f";
    let data_s = data.to_str().expect("utf-8");
    let ro_s = ro.to_str().expect("utf-8");
    let mut k = Kernel::start(&["-m", "128m", "-r", img.path(), "-r", data_s, "-r", ro_s, "-e", "init=/bin/sh", "--", "-c", script]);
    k.close_stdin();
    let st = k.wait_within(BOOT_TIMEOUT);
    let console = k.output();
    let out = program_output(&console);
    assert_eq!(st.code(), Some(0), "{console}");
    assert!(out.starts_with("b\n"), "block device node: {out}");
    assert!(out.contains("busy=1\nunmounted\n"), "{out}");
    assert!(out.contains("notmounted=1\n"), "{out}");
    assert!(out.contains("unsupported RO_COMPAT features: huge_file: mounted read-only"), "{out}");
    assert!(out.contains("ro=1\n") && out.trim_end().ends_with("hi"), "{out}");
    for p in [&img.image, &data] {
        assert_clean(p);
    }
    assert_eq!(std::fs::read(&ro).expect("read"), b, "a read-only mount wrote");
    assert!(debugfs(&data, "cat /d/f").starts_with("hi"));
}

#[test]
fn other_block_and_inode_sizes() {
    // The same tree as the root image, with 2 KiB and 4 KiB blocks and 128-byte inodes.
    let root = vk_tests::guest::root_dir();
    for (bsize, isize) in [("4096", "128"), ("2048", "256")] {
        let img = ImageCopy::new(&format!("geom{bsize}"));
        let st = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2", "-b", bsize, "-I", isize, "-E", "root_owner=0:0", "-d"])
            .arg(&root)
            .arg(&img.image)
            .arg("64M")
            .status()
            .expect("run mke2fs (e2fsprogs)");
        assert!(st.success(), "mke2fs -b {bsize} -I {isize}");
        let (code, out) = boot("-r", img.path(), MAKE_TREE);
        assert_eq!(code, Some(0), "{bsize}/{isize}: {out}");
        assert!(out.contains("huge 5368709125\ntail\n") && out.contains("file 5\n"), "{bsize}/{isize}: {out}");
        assert_clean(&img.image);
        let (code, out2) = boot("-r", img.path(), "cd /w && md5sum big sparse t x/b/c/deep a/f5 hard a/f4 a/g1");
        assert_eq!(code, Some(0), "{out2}");
        assert_eq!(out2, between(&out, "@sums\n", "@end"), "{bsize}/{isize}: data differs after a reboot");
    }
}

#[test]
fn indexed_directory_is_changed_as_linux_ext2_does() {
    // A directory of 300 entries, indexed (htree) by e2fsck -D, with busybox beside it.
    let img = ImageCopy::new("htree");
    let tree = img.dir.join("tree");
    std::fs::create_dir_all(tree.join("big")).expect("mkdir");
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::copy(vk_tests::guest::root_dir().join("bin/busybox"), tree.join("bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).expect("symlink");
    for i in 0..300 {
        std::fs::write(tree.join(format!("big/a-rather-long-file-name-{i:04}")), format!("{i}\n")).expect("write");
    }
    let st = Command::new("mke2fs").args(["-q", "-F", "-t", "ext2", "-E", "root_owner=0:0", "-d"]).arg(&tree).arg(&img.image).arg("16M").status().expect("mke2fs");
    assert!(st.success());
    let _ = Command::new("e2fsck").args(["-fyD"]).arg(&img.image).output().expect("e2fsck -D");
    assert!(debugfs(&img.image, "stat /big").contains("Flags: 0x1000"), "e2fsck -D did not index /big");
    let script = "cd /big && ls | /bin/busybox wc -l && cat a-rather-long-file-name-0150 && /bin/busybox touch new && \
                  /bin/busybox rm a-rather-long-file-name-0007 && /bin/busybox mv a-rather-long-file-name-0008 renamed && \
                  ls | /bin/busybox wc -l && cat renamed";
    let script = script.replace("ls |", "/bin/busybox ls |").replace("cat ", "/bin/busybox cat ");
    let (code, out) = boot("-r", img.path(), &script);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("300\n150\n300\n8\n"), "{out}");
    assert!(debugfs(&img.image, "stat /big").contains("Flags: 0x0"), "the index flag stays after a change");
    assert_clean(&img.image);
}

#[test]
fn remount_read_only_and_back() {
    // mount -o remount,ro / writes everything and marks the file system clean on disk while it
    // stays mounted (e2fsck agrees, from the host, while the kernel runs); changes are then
    // EROFS, reads go on; remount,rw takes changes again. A second disk mounted ro goes rw.
    let img = ImageCopy::new("remount");
    let data = mkfs(&img.dir, "data.img", 8);
    let script = "echo kept > /keep && mount -o remount,ro / && grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1 && \
                  { touch /new; echo touch=$?; } && cat /keep && echo READY-RO && read go && \
                  mount -o remount,rw / && grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1 && \
                  touch /new && echo rw-again && \
                  mount -t ext2 -o ro /dev/vkd1 /mnt && { mkdir /mnt/d; echo mkdir=$?; } && \
                  mount -o remount,rw /mnt && mkdir /mnt/d && echo second-rw && umount /mnt";
    let data_s = data.to_str().expect("utf-8");
    let mut k = Kernel::start(&["-m", "128m", "-r", img.path(), "-r", data_s, "-e", "init=/bin/sh", "--", "-c", script]);
    k.expect_within("READY-RO", BOOT_TIMEOUT);
    assert_clean(&img.image);
    k.send("go");
    k.close_stdin();
    let st = k.wait_within(BOOT_TIMEOUT);
    let console = k.output();
    let out = program_output(&console);
    assert_eq!(st.code(), Some(0), "{console}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.contains("Read-only file system")).collect();
    assert_eq!(lines, ["ro", "touch=1", "kept", "READY-RO", "rw", "rw-again", "mkdir=1", "second-rw"], "{out}");
    for p in [&img.image, &data] {
        assert_clean(p);
    }
    assert!(debugfs(&img.image, "ls /").contains("new"));
}
