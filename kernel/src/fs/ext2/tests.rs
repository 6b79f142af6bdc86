//! ext2 through the `Vnode` interface on a real image made by mke2fs, in plain `cargo test`
//! (disk I/O is done directly when no kernel thread runs); e2fsck checks the result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::fs::Fs;
use super::vnode::Ext2Fs;
use crate::fs::bcache::BlockDev;
use crate::fs::vfs::{SetAttr, VType, VnodeRef};
use crate::kern::errno::Errno;

/// A fresh image (None when e2fsprogs is missing).
fn mkfs(tag: &str, args: &[&str]) -> Option<PathBuf> {
    let p = std::env::temp_dir().join(format!("vk-ext2-unit-{tag}-{}", std::process::id()));
    let quiet = || std::process::Stdio::null();
    let st = Command::new("mke2fs").args(["-q", "-F", "-t", "ext2"]).args(args).arg(&p).arg("8M").stdout(quiet()).stderr(quiet()).status().ok()?;
    st.success().then_some(p)
}

fn mount(p: &Path) -> (Arc<Ext2Fs>, VnodeRef) {
    let dev = BlockDev::open(9, p, false).expect("open image");
    let fs = Ext2Fs::new(Fs::mount(dev, false).expect("mount"), 1);
    let root = fs.root();
    (fs, root)
}

fn fsck_clean(p: &Path) {
    let o = Command::new("e2fsck").arg("-fn").arg(p).output().expect("e2fsck");
    assert!(o.status.success(), "e2fsck:\n{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn create_write_link_rename_truncate_remove() {
    for (tag, args) in [("1k", &["-b", "1024"][..]), ("4k128", &["-b", "4096", "-I", "128"][..])] {
        let Some(img) = mkfs(tag, args) else { return };
        let (fs, root) = mount(&img);
        let d = root.mkdir(b"d", 0o755, 0, 0).unwrap();
        let f = d.create(b"f", 0o644, 1, 2).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(f.write_at(10, &data).unwrap(), data.len());
        let mut back = vec![0u8; data.len() + 20];
        assert_eq!(f.read_at(0, &mut back).unwrap(), data.len() + 10);
        assert_eq!(&back[10..data.len() + 10], &data[..]);
        assert_eq!(&back[..10], &[0u8; 10]);
        assert_eq!(root.create(b"d", 0o644, 0, 0).unwrap_err(), Errno::EEXIST);
        root.link(b"hard", &f).unwrap();
        assert_eq!(f.attr().unwrap().nlink, 2);
        root.symlink(b"s", b"d/f", 0, 0).unwrap();
        root.symlink(b"long", &[b'x'; 200], 0, 0).unwrap();
        assert_eq!(root.lookup(b"s").unwrap().readlink().unwrap(), b"d/f");
        assert_eq!(root.lookup(b"long").unwrap().readlink().unwrap(), vec![b'x'; 200]);
        let e = root.mkdir(b"e", 0o700, 0, 0).unwrap();
        root.rename(b"d", &e, b"moved", 0).unwrap();
        assert_eq!(root.rename(b"e", &e.lookup(b"moved").unwrap(), b"x", 0).unwrap_err(), Errno::EINVAL);
        assert_eq!(root.lookup(b"e").unwrap().attr().unwrap().nlink, 3);
        f.truncate(5000).unwrap();
        f.truncate(9000).unwrap();
        let mut b = [1u8; 100];
        assert_eq!(f.read_at(5000, &mut b).unwrap(), 100);
        assert_eq!(b, [0u8; 100]);
        f.setattr(&SetAttr { mode: Some(0o600), uid: Some(7), ..Default::default() }).unwrap();
        assert_eq!((f.attr().unwrap().mode & 0o7777, f.attr().unwrap().uid), (0o600, 7));
        let moved = e.lookup(b"moved").unwrap();
        assert_eq!(e.rmdir(b"moved").unwrap_err(), Errno::ENOTEMPTY);
        moved.unlink(b"f").unwrap();
        // Still open (f is alive): released once the last reference goes.
        assert_eq!(f.read_at(0, &mut b).unwrap(), 100);
        drop(f);
        e.rmdir(b"moved").unwrap();
        drop(moved);
        assert_eq!(root.lookup(b"hard").unwrap().vtype(), VType::Reg);
        let before = root.statfs().unwrap();
        root.unlink(b"hard").unwrap();
        assert!(root.statfs().unwrap().bfree > before.bfree, "blocks come back");
        fs.sync(true).unwrap();
        fsck_clean(&img);
        let _ = std::fs::remove_file(&img);
    }
}

/// Names are bytes: a name that is not UTF-8 is created, listed, renamed and removed, and the
/// image stays clean for e2fsck.
#[test]
fn names_that_are_not_utf8() {
    let Some(img) = mkfs("names", &["-b", "1024"]) else { return };
    let (fs, root) = mount(&img);
    let (latin1, high): (&[u8], &[u8]) = (b"caf\xe9", b"\xff\xfe\x80");
    let f = root.create(latin1, 0o644, 0, 0).unwrap();
    assert_eq!(f.write_at(0, b"data").unwrap(), 4);
    let d = root.mkdir(high, 0o755, 0, 0).unwrap();
    let names: Vec<Vec<u8>> = root.readdir().unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.iter().any(|n| n == latin1) && names.iter().any(|n| n == high), "{names:?}");
    assert_eq!(root.lookup(latin1).unwrap().attr().unwrap().ino, f.attr().unwrap().ino);
    assert_eq!(root.lookup(b"caf\xc3\xa9").unwrap_err(), Errno::ENOENT, "UTF-8 café is another name");
    root.rename(latin1, &d, b"\xe9", 0).unwrap();
    assert_eq!(root.lookup(latin1).unwrap_err(), Errno::ENOENT);
    assert_eq!(d.lookup(b"\xe9").unwrap().attr().unwrap().size, 4);
    for bad in [&b"a/b"[..], b"a\0b", b"", b".", b".."] {
        assert_eq!(root.create(bad, 0o644, 0, 0).unwrap_err(), Errno::EINVAL, "{bad:?}");
    }
    assert_eq!(root.create(&[0xe9; 256], 0o644, 0, 0).unwrap_err(), Errno::ENAMETOOLONG);
    root.create(&[0xe9; 255], 0o644, 0, 0).unwrap();
    root.unlink(&[0xe9; 255]).unwrap();
    d.unlink(b"\xe9").unwrap();
    drop(f);
    root.rmdir(high).unwrap();
    drop(d);
    fs.sync(true).unwrap();
    fsck_clean(&img);
    let _ = std::fs::remove_file(&img);
}
