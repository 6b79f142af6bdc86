//! ext2 vnodes: an [`Ext2Node`] is (file system, inode number, file type) and holds no inode
//! state — every operation reads the inode through the block cache under the file system lock,
//! so all vnodes of one inode agree.
//!
//! Live nodes are registered by inode number. An inode whose last link goes while a node of it
//! is alive (an open file) is an orphan: it is released (blocks, bitmap bit) once no node is
//! left, at the next operation or sync, or at unmount.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use super::dir::ftype_of;
use super::fs::{Fs, ROOT_INO};
use super::inode::{FAST_SYMLINK_MAX, Inode};
use super::sb::RO_COMPAT_LARGE_FILE;
use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, DirEntry, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SetAttr, StatFs, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::sleeplock::SleepLock;

/// statfs(2) f_type of ext2.
pub const EXT2_SUPER_MAGIC: u64 = 0xEF53;
/// Most links to one inode (EXT2_LINK_MAX).
pub const LINK_MAX: u16 = 32000;

const RENAME_NOREPLACE: u32 = 1;

pub fn now() -> Timespec {
    let ns = platform::time::realtime_ns();
    Timespec { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as i64 }
}

/// A mounted ext2 file system.
#[derive(Debug)]
pub struct Ext2Fs {
    /// Its file system identity (`FileSystem::id`).
    id: u64,
    /// st_dev of its files.
    pub dev: u64,
    pub name: String,
    /// Mirrors `Fs::readonly` (a remount changes both), for checks before taking the lock.
    readonly: AtomicBool,
    /// The image cannot be written (the host's file) or has features vk cannot write.
    forced_readonly: bool,
    pub bsize: u64,
    pub inner: SleepLock<Fs>,
    nodes: SpinLock<HashMap<u32, Weak<Ext2Node>>>,
    orphans: SpinLock<HashSet<u32>>,
}

/// A file, directory or symbolic link of an ext2 file system.
#[derive(Debug)]
pub struct Ext2Node {
    fs: Arc<Ext2Fs>,
    ino: u32,
    vtype: VType,
}

impl Ext2Fs {
    pub fn new(fs: Fs, dev: u64) -> Arc<Ext2Fs> {
        Arc::new(Ext2Fs {
            id: new_fs_id(),
            dev,
            name: fs.name.clone(),
            readonly: AtomicBool::new(fs.readonly),
            forced_readonly: fs.sb.ro_reason.is_some() || fs.cache.dev().is_readonly(),
            bsize: fs.sb.bsize,
            inner: SleepLock::new("ext2", fs),
            nodes: SpinLock::new("ext2_nodes", HashMap::new()),
            orphans: SpinLock::new("ext2_orphans", HashSet::new()),
        })
    }

    /// The root directory's vnode.
    pub fn root(self: &Arc<Self>) -> VnodeRef {
        self.node(ROOT_INO, VType::Dir)
    }

    /// The live node of `ino`, or a new one. Called with the file system lock held, so two
    /// nodes of one inode are never made at once.
    fn node(self: &Arc<Self>, ino: u32, vtype: VType) -> Arc<Ext2Node> {
        let w = self.nodes.lock().get(&ino).cloned();
        if let Some(n) = w.and_then(|w| w.upgrade()) {
            return n;
        }
        let n = Arc::new(Ext2Node { fs: Arc::clone(self), ino, vtype });
        self.nodes.lock().insert(ino, Arc::downgrade(&n));
        n
    }

    fn is_live(&self, ino: u32) -> bool {
        self.nodes.lock().get(&ino).is_some_and(|w| w.strong_count() > 0)
    }

    /// Run `f` under the file system lock, then release orphans nobody uses any more.
    fn with<R>(&self, f: impl FnOnce(&mut Fs) -> Result<R, Errno>) -> Result<R, Errno> {
        let mut g = self.inner.lock();
        let r = f(&mut g);
        self.reap(&mut g, false);
        r
    }

    fn reap(&self, fs: &mut Fs, all: bool) {
        if fs.readonly {
            return;
        }
        let list: Vec<u32> = self.orphans.lock().iter().copied().collect();
        for ino in list {
            if all || !self.is_live(ino) {
                self.orphans.lock().remove(&ino);
                if let Err(e) = fs.release_inode(ino) {
                    crate::kprintf!("{}: ext2: cannot release inode {ino}: {e}\n", self.name);
                }
            }
        }
    }

    /// Whether any file is in use (open, a working directory, mapped): a live node other
    /// than the root, or the root held by more than the mount table and umount2's own lookup.
    pub fn busy(&self) -> bool {
        self.nodes.lock().iter().any(|(&ino, w)| if ino == ROOT_INO { w.strong_count() > 2 } else { w.strong_count() > 0 })
    }

    fn orphan(&self, ino: u32) {
        self.orphans.lock().insert(ino);
    }

    /// Write everything dirty (sleeping for the lock), or, when halting, only if the lock is
    /// free. `unmount`: release every orphan and mark the file system clean.
    pub fn sync(&self, unmount: bool) -> Result<(), Errno> {
        let mut g = if crate::fs::bcache::direct_io() {
            match self.inner.try_lock() {
                Some(g) => g,
                None => {
                    crate::kprintf_nolock!("{}: busy, not synced\n", self.name);
                    return Err(Errno::EBUSY);
                }
            }
        } else {
            self.inner.lock()
        };
        self.reap(&mut g, unmount);
        g.sync(unmount)
    }
}

impl Drop for Ext2Node {
    fn drop(&mut self) {
        let mut m = self.fs.nodes.lock();
        if m.get(&self.ino).is_some_and(|w| w.strong_count() == 0) {
            m.remove(&self.ino);
        }
    }
}

fn check_name(name: &[u8]) -> Result<&[u8], Errno> {
    crate::fs::vfs::check_name(name)?;
    Ok(name)
}

fn makedev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// A device inode's number (old 16-bit or new 32-bit encoding in the block pointers).
fn rdev_of(ip: &Inode) -> u64 {
    if !matches!(ip.vtype(), VType::Chr | VType::Blk) {
        return 0;
    }
    let (b0, b1) = (u64::from(ip.block[0]), u64::from(ip.block[1]));
    if b0 != 0 { makedev((b0 >> 8) & 0xff, b0 & 0xff) } else { makedev((b1 >> 8) & 0xfff, (b1 & 0xff) | ((b1 >> 12) & 0xfff00)) }
}

impl Ext2Node {
    fn rw(&self) -> Result<(), Errno> {
        if self.fs.readonly.load(Ordering::Relaxed) { Err(Errno::EROFS) } else { Ok(()) }
    }

    fn dir(&self, fs: &mut Fs) -> Result<Inode, Errno> {
        let d = fs.read_inode(self.ino)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(d)
    }

    /// The inode number of another vnode of this file system.
    fn same_fs(&self, v: &VnodeRef) -> Result<u32, Errno> {
        let a = v.attr()?;
        if a.dev != self.fs.dev {
            return Err(Errno::EXDEV);
        }
        u32::try_from(a.ino).map_err(|_| Errno::EXDEV)
    }

    /// Make inode `mode` named `name` in this directory; `fill` sets it up (data, `.`/`..`).
    fn make(&self, fs: &mut Fs, name: &[u8], mode: u32, uid: u32, gid: u32, fill: impl FnOnce(&mut Fs, &mut Inode) -> Result<(), Errno>) -> Result<u32, Errno> {
        let nm = check_name(name)?;
        let mut dir = self.dir(fs)?;
        if dir.links == 0 {
            return Err(Errno::ENOENT);
        }
        if fs.dir_lookup(&dir, nm)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let is_dir = mode & S_IFMT == S_IFDIR;
        if is_dir && dir.links >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        let ino = fs.alloc_inode(self.ino, is_dir)?;
        let mut ip = fs.init_inode(ino)?;
        let t = now();
        ip.mode = mode as u16;
        ip.uid = uid;
        ip.gid = gid;
        ip.links = if is_dir { 2 } else { 1 };
        (ip.atime, ip.mtime, ip.ctime) = (t, t, t);
        let made = fill(fs, &mut ip).and_then(|()| fs.write_inode(&ip));
        let added = made.and_then(|()| {
            if is_dir {
                dir.links += 1;
            }
            fs.dir_add(&mut dir, nm, ino, ftype_of(ip.vtype()))
        });
        if let Err(e) = added {
            // Undo: the inode goes back (its blocks with it).
            ip.links = 0;
            let _ = fs.write_inode(&ip);
            let _ = fs.release_inode(ino);
            return Err(e);
        }
        Ok(ino)
    }

    /// Note a size past 2 GiB in the superblock's large_file feature.
    fn note_size(fs: &mut Fs, size: u64) {
        if size > 0x7fff_ffff && fs.sb.ro_compat() & RO_COMPAT_LARGE_FILE == 0 {
            let f = fs.sb.ro_compat();
            fs.sb.set_ro_compat(f | RO_COMPAT_LARGE_FILE);
            fs.meta_dirty = true;
        }
    }
}

impl Vnode for Ext2Node {
    fn attr(&self) -> Result<Attr, Errno> {
        let ip = self.fs.with(|fs| fs.read_inode(self.ino))?;
        Ok(Attr {
            dev: self.fs.dev,
            ino: u64::from(self.ino),
            mode: u32::from(ip.mode),
            nlink: u64::from(ip.links),
            uid: ip.uid,
            gid: ip.gid,
            rdev: rdev_of(&ip),
            size: ip.size,
            blksize: self.fs.bsize,
            blocks: u64::from(ip.blocks),
            atime: ip.atime,
            mtime: ip.mtime,
            ctime: ip.ctime,
        })
    }

    fn vtype(&self) -> VType {
        self.vtype
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        self.fs.with(|fs| {
            let dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, name)?.ok_or(Errno::ENOENT)?;
            let ip = fs.read_inode(e.ino)?;
            if ip.links == 0 || ip.mode == 0 {
                crate::kprintf!("{}: ext2: entry {:?} of directory {} names unused inode {}\n", fs.name, String::from_utf8_lossy(name), self.ino, e.ino);
                return Err(Errno::EIO);
            }
            Ok(self.fs.node(e.ino, ip.vtype()) as VnodeRef)
        })
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.fs.with(|fs| {
            let dir = self.dir(fs)?;
            let mut out = Vec::new();
            for e in fs.dir_list(&dir)? {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                let vtype = match e.ftype {
                    1 => VType::Reg,
                    2 => VType::Dir,
                    3 => VType::Chr,
                    4 => VType::Blk,
                    5 => VType::Fifo,
                    6 => VType::Sock,
                    7 => VType::Lnk,
                    _ => fs.read_inode(e.ino)?.vtype(),
                };
                out.push(DirEntry { ino: u64::from(e.ino), name: e.name, vtype, off: e.pos + 1 });
            }
            Ok(out)
        })
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.vtype != VType::Lnk {
            return Err(Errno::EINVAL);
        }
        self.fs.with(|fs| {
            let ip = fs.read_inode(self.ino)?;
            if ip.size >= fs.sb.bsize {
                return Err(Errno::EIO);
            }
            if ip.is_fast_symlink(fs.sb.bsize) {
                let raw: Vec<u8> = ip.block.iter().flat_map(|p| p.to_le_bytes()).collect();
                return Ok(raw[..(ip.size as usize).min(60)].to_vec());
            }
            let mut buf = vec![0u8; ip.size as usize];
            let n = fs.read_data(&ip, 0, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        self.fs.with(|fs| {
            let ip = fs.read_inode(self.ino)?;
            fs.read_data(&ip, off, buf)
        })
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        self.rw()?;
        off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        self.fs.with(|fs| {
            let mut ip = fs.read_inode(self.ino)?;
            let r = fs.write_data(&mut ip, off, buf);
            let t = now();
            (ip.mtime, ip.ctime) = (t, t);
            Self::note_size(fs, ip.size);
            fs.write_inode(&ip)?;
            r
        })
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        self.rw()?;
        self.fs.with(|fs| {
            let ino = self.make(fs, name, S_IFREG | (mode & 0o7777), uid, gid, |_, _| Ok(()))?;
            Ok(self.fs.node(ino, VType::Reg) as VnodeRef)
        })
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        self.rw()?;
        let parent = self.ino;
        self.fs.with(|fs| {
            let ino = self.make(fs, name, S_IFDIR | (mode & 0o7777), uid, gid, |fs, ip| fs.dir_init(ip, parent))?;
            Ok(self.fs.node(ino, VType::Dir) as VnodeRef)
        })
    }

    fn symlink(&self, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
        self.rw()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        self.fs.with(|fs| {
            if target.len() as u64 >= fs.sb.bsize {
                return Err(Errno::ENAMETOOLONG);
            }
            self.make(fs, name, S_IFLNK | 0o777, uid, gid, |fs, ip| {
                if target.len() <= FAST_SYMLINK_MAX {
                    let mut raw = [0u8; 60];
                    raw[..target.len()].copy_from_slice(target);
                    for (i, p) in ip.block.iter_mut().enumerate() {
                        *p = u32::from_le_bytes([raw[i * 4], raw[i * 4 + 1], raw[i * 4 + 2], raw[i * 4 + 3]]);
                    }
                    ip.size = target.len() as u64;
                    Ok(())
                } else {
                    fs.write_data(ip, 0, target).map(|_| ())
                }
            })
            .map(|_| ())
        })
    }

    fn link(&self, name: &[u8], target: &VnodeRef) -> Result<(), Errno> {
        self.rw()?;
        let nm = check_name(name)?;
        let tino = self.same_fs(target)?;
        self.fs.with(|fs| {
            let mut dir = self.dir(fs)?;
            if dir.links == 0 {
                return Err(Errno::ENOENT);
            }
            let mut t = fs.read_inode(tino)?;
            if t.is_dir() {
                return Err(Errno::EPERM);
            }
            if t.links >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
            if fs.dir_lookup(&dir, nm)?.is_some() {
                return Err(Errno::EEXIST);
            }
            fs.dir_add(&mut dir, nm, tino, ftype_of(t.vtype()))?;
            t.links += 1;
            t.ctime = now();
            fs.write_inode(&t)
        })
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.rw()?;
        let nm = check_name(name)?;
        self.fs.with(|fs| {
            let mut dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, nm)?.ok_or(Errno::ENOENT)?;
            let mut ip = fs.read_inode(e.ino)?;
            if ip.is_dir() {
                return Err(Errno::EISDIR);
            }
            fs.dir_remove(&mut dir, nm)?;
            ip.links = ip.links.saturating_sub(1);
            ip.ctime = now();
            fs.write_inode(&ip)?;
            if ip.links == 0 {
                self.fs.orphan(ip.ino);
            }
            Ok(())
        })
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.rw()?;
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        let nm = check_name(name)?;
        self.fs.with(|fs| {
            let mut dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, nm)?.ok_or(Errno::ENOENT)?;
            let mut ip = fs.read_inode(e.ino)?;
            if !ip.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !fs.dir_is_empty(&ip)? {
                return Err(Errno::ENOTEMPTY);
            }
            fs.dir_remove(&mut dir, nm)?;
            dir.links = dir.links.saturating_sub(1);
            fs.write_inode(&dir)?;
            ip.links = 0;
            ip.ctime = now();
            fs.write_inode(&ip)?;
            self.fs.orphan(ip.ino);
            Ok(())
        })
    }

    fn rename(&self, old: &[u8], newdir: &VnodeRef, new: &[u8], flags: u32) -> Result<(), Errno> {
        self.rw()?;
        if flags & !RENAME_NOREPLACE != 0 {
            return Err(Errno::EINVAL);
        }
        let (oldn, newn) = (check_name(old)?, check_name(new)?);
        let tdir = self.same_fs(newdir)?;
        let sdir = self.ino;
        self.fs.with(|fs| {
            let s = self.dir(fs)?;
            let t = fs.read_inode(tdir)?;
            if !t.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if t.links == 0 {
                return Err(Errno::ENOENT);
            }
            let e = fs.dir_lookup(&s, oldn)?.ok_or(Errno::ENOENT)?;
            let mut src = fs.read_inode(e.ino)?;
            let existing = fs.dir_lookup(&t, newn)?;
            let mut replaced = None;
            if let Some(x) = &existing {
                if x.ino == src.ino {
                    return Ok(());
                }
                if flags & RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                let xi = fs.read_inode(x.ino)?;
                match (src.is_dir(), xi.is_dir()) {
                    (false, true) => return Err(Errno::EISDIR),
                    (true, false) => return Err(Errno::ENOTDIR),
                    (true, true) if !fs.dir_is_empty(&xi)? => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
                replaced = Some(xi);
            }
            if src.is_dir() && sdir != tdir {
                // Not into itself: walk up from the target to the root.
                let mut cur = tdir;
                for _ in 0..4096 {
                    if cur == src.ino {
                        return Err(Errno::EINVAL);
                    }
                    if cur == ROOT_INO {
                        break;
                    }
                    let d = fs.read_inode(cur)?;
                    let up = fs.dir_lookup(&d, b"..")?.ok_or(Errno::EIO)?;
                    cur = up.ino;
                }
                if t.links >= LINK_MAX && replaced.is_none() {
                    return Err(Errno::EMLINK);
                }
            }
            let ft = ftype_of(src.vtype());
            let mut t = fs.read_inode(tdir)?;
            if replaced.is_some() {
                fs.dir_set(&mut t, newn, src.ino, ft)?;
            } else {
                fs.dir_add(&mut t, newn, src.ino, ft)?;
            }
            let mut s = fs.read_inode(sdir)?;
            fs.dir_remove(&mut s, oldn)?;
            if let Some(mut xi) = replaced {
                if xi.is_dir() {
                    xi.links = 0;
                    let mut t = fs.read_inode(tdir)?;
                    t.links = t.links.saturating_sub(1);
                    fs.write_inode(&t)?;
                } else {
                    xi.links = xi.links.saturating_sub(1);
                }
                xi.ctime = now();
                fs.write_inode(&xi)?;
                if xi.links == 0 {
                    self.fs.orphan(xi.ino);
                }
            }
            if src.is_dir() && sdir != tdir {
                fs.dir_set(&mut src, b"..", tdir, 2)?;
                let mut s = fs.read_inode(sdir)?;
                s.links = s.links.saturating_sub(1);
                fs.write_inode(&s)?;
                let mut t = fs.read_inode(tdir)?;
                t.links += 1;
                fs.write_inode(&t)?;
            }
            let mut src = fs.read_inode(src.ino)?;
            src.ctime = now();
            fs.write_inode(&src)
        })
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        self.rw()?;
        self.fs.with(|fs| {
            let mut ip = fs.read_inode(self.ino)?;
            fs.truncate(&mut ip, size)?;
            let t = now();
            (ip.mtime, ip.ctime) = (t, t);
            Self::note_size(fs, ip.size);
            fs.write_inode(&ip)
        })
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.rw()?;
        self.fs.with(|fs| {
            let mut ip = fs.read_inode(self.ino)?;
            if let Some(m) = a.mode {
                ip.mode = ((u32::from(ip.mode) & S_IFMT) | (m & 0o7777)) as u16;
            }
            if let Some(u) = a.uid {
                ip.uid = u;
            }
            if let Some(g) = a.gid {
                ip.gid = g;
            }
            if let Some(t) = a.atime {
                ip.atime = t;
            }
            if let Some(t) = a.mtime {
                ip.mtime = t;
            }
            ip.ctime = now();
            fs.write_inode(&ip)
        })
    }

    fn no_change(&self) -> Errno {
        if self.fs.readonly.load(Ordering::Relaxed) { Errno::EROFS } else { Errno::ENOTDIR }
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        u64::from(self.ino)
    }
}

impl FileSystem for Ext2Fs {
    fn type_name(&self) -> &'static str {
        "ext2"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        self.with(|fs| {
            Ok(StatFs {
                magic: EXT2_SUPER_MAGIC,
                bsize: fs.sb.bsize,
                blocks: fs.sb.blocks,
                bfree: fs.sb.free_blocks(),
                files: u64::from(fs.sb.inodes),
                ffree: fs.sb.free_inodes(),
            })
        })
    }

    fn sync(&self) -> Result<(), Errno> {
        Ext2Fs::sync(self, false).map_err(|_| Errno::EIO)
    }

    fn forced_readonly(&self) -> bool {
        self.forced_readonly
    }

    /// Going read-only: orphans released, everything written, the file system marked clean
    /// on disk (EBUSY while an unlinked file is still open); read/write again: not clean
    /// until the next unmount, as at mount.
    fn set_readonly(&self, readonly: bool) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        if readonly {
            self.reap(&mut g, false);
            if !self.orphans.lock().is_empty() {
                return Err(Errno::EBUSY);
            }
        }
        g.set_readonly(readonly)?;
        self.readonly.store(readonly, Ordering::Relaxed);
        Ok(())
    }

    fn busy(&self) -> bool {
        Ext2Fs::busy(self)
    }

    fn unmount(&self) -> Result<(), Errno> {
        super::forget(self.dev);
        Ext2Fs::sync(self, true)
    }
}
