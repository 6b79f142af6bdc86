//! ext2 through the `Vnode` interface on a real image made by mke2fs, in plain `cargo test`
//! (disk I/O is done directly when no kernel thread runs, and a sleep lock's waiter yields
//! instead of sleeping, so host threads can share a file system); e2fsck checks the result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::fs::Fs;
use super::mount::Ext2Fs;
use crate::fs::bcache::BlockDev;
use crate::fs::vfs::{SetAttr, VType, VnodeRef};
use crate::kern::errno::Errno;

/// A fresh image (None when e2fsprogs is missing).
fn mkfs(tag: &str, args: &[&str]) -> Option<PathBuf> {
    let p = std::env::temp_dir().join(format!("vk-ext2-unit-{tag}-{}", std::process::id()));
    let quiet = || std::process::Stdio::null();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .args(args)
        .arg(&p)
        .arg("8M")
        .stdout(quiet())
        .stderr(quiet())
        .status()
        .ok()?;
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
        let data: Vec<u8> = (0..300_000u32).map(|i| i.wrapping_mul(7).to_le_bytes()[0]).collect();
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
        let before = root.fs().statfs().unwrap();
        root.unlink(b"hard").unwrap();
        assert!(root.fs().statfs().unwrap().bfree > before.bfree, "blocks come back");
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

/// A remount read-only writes everything and marks the file system clean on disk (e2fsck
/// finds it clean while it is still mounted); read/write again, it takes changes.
#[test]
fn remount_readonly_and_back() {
    use crate::fs::mount::FileSystem;
    let Some(img) = mkfs("remount", &["-b", "1024"]) else { return };
    let (fs, root) = mount(&img);
    let f = root.create(b"f", 0o644, 0, 0).unwrap();
    assert_eq!(f.write_at(0, &[7u8; 5000]).unwrap(), 5000);
    FileSystem::set_readonly(fs.as_ref(), true).unwrap();
    fsck_clean(&img);
    assert_eq!(root.create(b"g", 0o644, 0, 0).unwrap_err(), Errno::EROFS);
    assert_eq!(f.write_at(0, b"x").unwrap_err(), Errno::EROFS);
    let mut b = [0u8; 10];
    assert_eq!(f.read_at(4990, &mut b).unwrap(), 10);
    FileSystem::set_readonly(fs.as_ref(), false).unwrap();
    root.create(b"g", 0o644, 0, 0).unwrap();
    // An unlinked file still open keeps a read-only remount away.
    root.unlink(b"f").unwrap();
    assert_eq!(FileSystem::set_readonly(fs.as_ref(), true).unwrap_err(), Errno::EBUSY);
    drop(f);
    FileSystem::set_readonly(fs.as_ref(), true).unwrap();
    fsck_clean(&img);
    FileSystem::set_readonly(fs.as_ref(), false).unwrap();
    fs.sync(true).unwrap();
    fsck_clean(&img);
    let _ = std::fs::remove_file(&img);
}

/// Plain host threads at once on one file system (the inode locks, the allocation lock and
/// the buffer cache; a waiter yields instead of sleeping outside kernel threads): each makes,
/// fills, renames and removes files in a directory of its own and moves them through a shared
/// one, and all of them write their own stripes of one shared file while reading it back.
/// Every byte is checked, and e2fsck finds the result clean.
#[test]
fn threads_change_one_file_system_at_once() {
    const THREADS: usize = 4;
    const STRIPE: usize = 40_000;
    let Some(img) = mkfs("mt", &["-b", "1024"]) else { return };
    let (fs, root) = mount(&img);
    let shared_dir = root.mkdir(b"shared", 0o755, 0, 0).unwrap();
    let big = root.create(b"big", 0o644, 0, 0).unwrap();
    let before = root.fs().statfs().unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (root, shared_dir, big) = (root.clone(), shared_dir.clone(), big.clone());
            std::thread::spawn(move || {
                let mine = root.mkdir(format!("d{t}").as_bytes(), 0o755, 0, 0).unwrap();
                let stripe: Vec<u8> = (0..STRIPE).map(|i| (i * 31 + t * 7).to_le_bytes()[0]).collect();
                for round in 0..6 {
                    let name = format!("f{round}");
                    let f = mine.create(name.as_bytes(), 0o644, 0, 0).unwrap();
                    let data: Vec<u8> = (0..5000 + round * 3000).map(|i| (i + t + round).to_le_bytes()[0]).collect();
                    assert_eq!(f.write_at(0, &data).unwrap(), data.len());
                    let mut back = vec![0u8; data.len()];
                    assert_eq!(f.read_at(0, &mut back).unwrap(), data.len());
                    assert_eq!(back, data, "thread {t} round {round}");
                    // Through the shared directory and back, under another name.
                    mine.rename(name.as_bytes(), &shared_dir, format!("t{t}r{round}").as_bytes(), 0).unwrap();
                    shared_dir
                        .rename(format!("t{t}r{round}").as_bytes(), &mine, format!("g{round}").as_bytes(), 0)
                        .unwrap();
                    if round % 2 == 0 {
                        mine.unlink(format!("g{round}").as_bytes()).unwrap();
                    } else {
                        f.truncate(1000).unwrap();
                    }
                    // This thread's stripe of the shared file, written and read back whole.
                    let at = (t * STRIPE) as u64;
                    assert_eq!(big.write_at(at, &stripe).unwrap(), STRIPE);
                    let mut got = vec![0u8; STRIPE];
                    assert_eq!(big.read_at(at, &mut got).unwrap(), STRIPE);
                    assert!(got == stripe, "thread {t}: stripe changed under it");
                }
                let names: Vec<Vec<u8>> = mine.readdir().unwrap().into_iter().map(|e| e.name).collect();
                assert_eq!(names.len(), 3, "thread {t}: {names:?}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(big.attr().unwrap().size, (THREADS * STRIPE) as u64);
    assert!(shared_dir.readdir().unwrap().is_empty());
    for t in 0..THREADS {
        let d = root.lookup(format!("d{t}").as_bytes()).unwrap();
        for round in [1, 3, 5] {
            assert_eq!(d.lookup(format!("g{round}").as_bytes()).unwrap().attr().unwrap().size, 1000);
        }
    }
    let after = root.fs().statfs().unwrap();
    assert_eq!(before.ffree - after.ffree, (THREADS * 4) as u64, "directories and the odd files");
    drop((big, shared_dir, root));
    fs.sync(true).unwrap();
    fsck_clean(&img);
    let _ = std::fs::remove_file(&img);
}

/// fallocate: mode 0 allocates zeroed blocks through the indirect blocks and grows the size;
/// KEEP_SIZE does not grow it (nor allocate past it); a punched hole frees whole blocks,
/// zeroes partial ones and reads back zeros; ENOSPC leaves the size; e2fsck finds it clean.
#[test]
fn fallocate_allocates_and_punches() {
    use linux_raw_sys::general::{FALLOC_FL_KEEP_SIZE as KEEP, FALLOC_FL_PUNCH_HOLE as PUNCH};
    let Some(img) = mkfs("falloc", &["-b", "1024"]) else { return };
    let (fs, root) = mount(&img);
    let f = root.create(b"f", 0o644, 0, 0).unwrap();
    let blocks = |f: &VnodeRef| f.attr().unwrap().blocks * 512;
    // 300 KiB: direct, single and double indirect blocks.
    f.fallocate(0, 0, 300 << 10).unwrap();
    assert_eq!(f.attr().unwrap().size, 300 << 10);
    assert!(blocks(&f) >= 300 << 10);
    let mut back = vec![1u8; 300 << 10];
    assert_eq!(f.read_at(0, &mut back).unwrap(), 300 << 10);
    assert!(back.iter().all(|&b| b == 0));
    let before = blocks(&f);
    f.fallocate(KEEP, 300 << 10, 100 << 10).unwrap();
    assert_eq!((f.attr().unwrap().size, blocks(&f)), (300 << 10, before));
    // Punch: whole blocks go, a partial block is zeroed.
    let xs = vec![b'x'; 300 << 10];
    assert_eq!(f.write_at(0, &xs).unwrap(), xs.len());
    f.fallocate(PUNCH | KEEP, 1000, 200 << 10).unwrap();
    assert_eq!(f.attr().unwrap().size, 300 << 10);
    assert!(blocks(&f) < before - (190 << 10), "{} of {before}", blocks(&f));
    assert_eq!(f.read_at(0, &mut back).unwrap(), 300 << 10);
    let end = 1000 + (200 << 10);
    assert!(back[..1000].iter().all(|&b| b == b'x') && back[end..].iter().all(|&b| b == b'x'));
    assert!(back[1000..end].iter().all(|&b| b == 0));
    assert_eq!(f.write_at(5000, b"again").unwrap(), 5);
    assert_eq!(f.fallocate(0x10, 0, 1).unwrap_err(), Errno::EOPNOTSUPP);
    // More than the file system holds: ENOSPC, the size as it was.
    let g = root.create(b"g", 0o644, 0, 0).unwrap();
    assert_eq!(g.fallocate(0, 0, 64 << 20).unwrap_err(), Errno::ENOSPC);
    assert_eq!(g.attr().unwrap().size, 0);
    // As many data blocks as are free: the indirect blocks do not fit, so it fails part way
    // and gives back what it took.
    let free = fs.fs.meta.lock().sb.free_blocks();
    assert_eq!(g.fallocate(0, 0, free * 1024).unwrap_err(), Errno::ENOSPC);
    assert_eq!((g.attr().unwrap().size, g.attr().unwrap().blocks), (0, 0));
    assert_eq!(fs.fs.meta.lock().sb.free_blocks(), free);
    drop((f, g, root));
    fs.sync(true).unwrap();
    fsck_clean(&img);
    let _ = std::fs::remove_file(&img);
}

/// File handles: a file's handle opens it by inode number while it exists; once it is gone,
/// and after its inode number went to a new file (another generation), the handle is stale.
#[test]
fn file_handles_name_files_not_inode_numbers() {
    use crate::fs::mount::FileSystem;
    let Some(img) = mkfs("fhandle", &["-b", "1024"]) else { return };
    let (fs, root) = mount(&img);
    let f = root.create(b"f", 0o644, 0, 0).unwrap();
    let (ty, h) = fs.encode_handle(&f).unwrap();
    assert_eq!((ty, h.len()), (crate::abi::fs::FILEID_INO32_GEN, 8));
    let again = fs.decode_handle(ty, &h).unwrap();
    assert_eq!(again.id(), f.id());
    let (_, rh) = fs.encode_handle(&root).unwrap();
    assert_eq!(fs.decode_handle(ty, &rh).unwrap().id(), root.id(), "the root directory has one too");
    for bad in [&h[..4], &[0u8; 8][..], &[5, 0, 0, 0, 0, 0, 0, 0][..], &[0xff; 8][..]] {
        assert_eq!(fs.decode_handle(ty, bad).unwrap_err(), Errno::ESTALE, "{bad:?}");
    }
    assert_eq!(fs.decode_handle(2, &h).unwrap_err(), Errno::ESTALE, "another handle type");
    let ino = f.attr().unwrap().ino;
    drop((f, again));
    root.unlink(b"f").unwrap();
    assert_eq!(fs.decode_handle(ty, &h).unwrap_err(), Errno::ESTALE, "deleted");
    // The lowest free inode number goes to the next file: the same number, a new generation.
    let g = root.create(b"g", 0o644, 0, 0).unwrap();
    assert_eq!(g.attr().unwrap().ino, ino);
    assert_eq!(fs.decode_handle(ty, &h).unwrap_err(), Errno::ESTALE, "the number is another file's now");
    let (_, gh) = fs.encode_handle(&g).unwrap();
    assert_eq!(fs.decode_handle(ty, &gh).unwrap().id(), g.id());
    drop(g);
    fs.sync(true).unwrap();
    fsck_clean(&img);
    let _ = std::fs::remove_file(&img);
}
