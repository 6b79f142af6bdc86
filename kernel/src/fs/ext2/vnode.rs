//! ext2 vnodes: an [`Ext2Node`] is (file system, inode number, file type) and its inode lock,
//! and holds no inode state — every operation reads the inode through the block cache, so all
//! users of one inode agree.
//!
//! Live nodes are registered by inode number, one per inode (so its lock is the inode's
//! lock). An inode whose last link goes while a node of it is alive (an open file) is an
//! orphan: it is released (blocks, bitmap bit) once no node is left, after the next operation
//! or sync, or at unmount.
//!
//! Locking (the order, outermost first; see the module doc of `ext2`):
//!
//! 1. `ext2_ns` — exclusive for namespace changes (create, mkdir, symlink, link, unlink,
//!    rmdir, rename), one at a time: only they lock more than one inode, so they may do so in
//!    any order; shared for a change of one file (write, truncate, setattr);
//! 2. `ext2_inode` — one reader-writer lock per inode: shared to read a file, look up in or
//!    list a directory, read a link; exclusive to write, truncate, change attributes or a
//!    directory's entries. attr() takes none (an inode is read whole: a snapshot);
//! 3. `ext2_alloc` (bitmaps and counts), then one block's `buf`, then `bcache`.
//!
//! `ext2_nodes` and `ext2_orphans` are spinlock leaves.

use std::sync::{Arc, OnceLock};

use linux_raw_sys::general as linux;

use super::dir::ftype_of;
use super::fs::Fs;
use super::inode::{FAST_SYMLINK_MAX, Inode};
use super::le::low16;
use super::mount::Ext2Fs;
use super::sb::RO_COMPAT_LARGE_FILE;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, DirEntry, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SetAttr, Timespec, VType, Vnode, VnodeRef};
use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;
use crate::kern::sleeplock::RwSleepLock;
use crate::vm::pagecache::{FAULT_READ_PAGES, PageCache};

/// statfs(2) f_type of ext2.
pub const EXT2_SUPER_MAGIC: u64 = 0xEF53;
/// Most links to one inode (EXT2_LINK_MAX).
pub const LINK_MAX: u16 = 32000;

pub fn now() -> Timespec {
    Timespec::now()
}

/// A file, directory or symbolic link of an ext2 file system.
#[derive(Debug)]
pub struct Ext2Node {
    fs: Arc<Ext2Fs>,
    ino: u32,
    vtype: VType,
    /// The inode's lock (`ext2_inode`).
    lock: RwSleepLock<()>,
    /// A regular file's page cache (the file system's, [`Ext2Fs`]'s `cache`: it outlives
    /// the node), once this node used it; every write and truncate of the file, under the
    /// inode's lock, passes into it.
    cache: OnceLock<Arc<PageCache>>,
}

const PAGE: u64 = platform::PAGE_SIZE as u64;

impl Ext2Node {
    /// A node of inode `ino` (the file system keeps one per inode: [`Ext2Fs`]'s `node`).
    pub(super) fn new(fs: Arc<Ext2Fs>, ino: u32, vtype: VType) -> Ext2Node {
        Ext2Node { fs, ino, vtype, lock: RwSleepLock::new("ext2_inode", ()), cache: OnceLock::new() }
    }

    /// The page cache, if one was made (by this node or an earlier one of the inode).
    fn cached(&self) -> Option<&Arc<PageCache>> {
        if let Some(c) = self.cache.get() {
            return Some(c);
        }
        let c = self.fs.cache_if_any(self.ino)?;
        Some(self.cache.get_or_init(|| c))
    }

    /// The page cache of a regular file, made now if need be.
    fn cache_made(&self) -> Option<&Arc<PageCache>> {
        if self.vtype != VType::Reg {
            return None;
        }
        if let Some(c) = self.cache.get() {
            return Some(c);
        }
        let c = self.fs.cache(self.ino)?;
        Some(self.cache.get_or_init(|| c))
    }

    /// Write the pages shared mappings wrote to the disk (through the block cache, as write(2)
    /// does, up to the file's size; a hole gets its blocks now), under the inode's lock —
    /// tried only, when `try_only` (halt). A page that cannot be written stays dirty.
    pub(super) fn write_back(&self, try_only: bool) -> Result<(), Errno> {
        let Some(c) = self.cached() else { return Ok(()) };
        if !c.is_dirty() || self.fs.is_readonly() {
            return Ok(());
        }
        let _lock = if try_only { self.lock.try_write().ok_or(Errno::EBUSY)? } else { self.lock.write() };
        let fs = self.disk();
        let mut ip = fs.read_inode(self.ino)?;
        let pm = c.physmem();
        let mut r = Ok(());
        let mut wrote = false;
        for (idx, pa) in c.take_dirty() {
            let off = idx * PAGE;
            if off >= ip.size {
                pm.page_unref(pa);
                continue;
            }
            let mut buf = vec![0u8; usize_of((ip.size - off).min(PAGE))];
            pm.read(pa, &mut buf);
            pm.page_unref(pa);
            match fs.write_data(&mut ip, off, &buf) {
                Ok(n) if n == buf.len() => wrote = true,
                Ok(_) => {
                    c.mark_dirty(idx);
                    r = r.and(Err(Errno::ENOSPC));
                }
                Err(e) => {
                    c.mark_dirty(idx);
                    r = r.and(Err(e));
                }
            }
        }
        if wrote {
            let t = now();
            (ip.mtime, ip.ctime) = (t, t);
        }
        fs.write_inode(&ip)?;
        r
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
    if b0 != 0 {
        makedev((b0 >> 8) & 0xff, b0 & 0xff)
    } else {
        makedev((b1 >> 8) & 0xfff, (b1 & 0xff) | ((b1 >> 12) & 0xfff00))
    }
}

impl Ext2Node {
    fn rw(&self) -> Result<(), Errno> {
        if self.fs.is_readonly() { Err(Errno::EROFS) } else { Ok(()) }
    }

    /// The file system's shared state.
    fn disk(&self) -> &Fs {
        &self.fs.fs
    }

    /// Another inode's node, for its lock: `None` when it is this one (locked already).
    fn other(&self, ino: u32, vtype: VType) -> Option<Arc<Ext2Node>> {
        (ino != self.ino).then(|| self.fs.node(ino, vtype))
    }

    fn dir(&self, fs: &Fs) -> Result<Inode, Errno> {
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
    /// Called with `ext2_ns` and this directory's lock (exclusive) held.
    fn make(
        &self,
        fs: &Fs,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        fill: impl FnOnce(&Fs, &mut Inode) -> Result<(), Errno>,
    ) -> Result<u32, Errno> {
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
        // A new file: no cached pages of an inode that had this number before.
        self.fs.forget_cache(ino);
        let mut ip = fs.init_inode(ino)?;
        let t = now();
        ip.mode = low16(mode);
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
    fn note_size(fs: &Fs, size: u64) {
        if size > 0x7fff_ffff {
            let mut m = fs.meta.lock();
            if m.sb.ro_compat() & RO_COMPAT_LARGE_FILE == 0 {
                let f = m.sb.ro_compat();
                m.sb.set_ro_compat(f | RO_COMPAT_LARGE_FILE);
                m.dirty = true;
            }
        }
    }
}

impl Vnode for Ext2Node {
    fn attr(&self) -> Result<Attr, Errno> {
        let _op = self.fs.op();
        let ip = self.disk().read_inode(self.ino)?;
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
            iflags: Some(ip.flags & linux::FS_FL_USER_VISIBLE),
        })
    }

    fn vtype(&self) -> VType {
        self.vtype
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        let _op = self.fs.op();
        let _dir_lock = self.lock.read();
        let fs = self.disk();
        {
            let dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, name)?.ok_or(Errno::ENOENT)?;
            let ip = fs.read_inode(e.ino)?;
            if ip.links == 0 || ip.mode == 0 {
                crate::kprintf!(
                    "{}: ext2: entry {:?} of directory {} names unused inode {}\n",
                    fs.name,
                    String::from_utf8_lossy(name),
                    self.ino,
                    e.ino
                );
                return Err(Errno::EIO);
            }
            Ok(self.fs.node(e.ino, ip.vtype()) as VnodeRef)
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let _op = self.fs.op();
        let _dir_lock = self.lock.read();
        let fs = self.disk();
        {
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
        }
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.vtype != VType::Lnk {
            return Err(Errno::EINVAL);
        }
        let _op = self.fs.op();
        let _lock = self.lock.read();
        let fs = self.disk();
        {
            let ip = fs.read_inode(self.ino)?;
            if ip.size >= fs.sb.bsize {
                return Err(Errno::EIO);
            }
            if ip.is_fast_symlink(fs.sb.bsize) {
                let raw: Vec<u8> = ip.block.iter().flat_map(|p| p.to_le_bytes()).collect();
                return Ok(raw[..usize_of(ip.size).min(60)].to_vec());
            }
            let mut buf = vec![0u8; usize_of(ip.size)];
            let n = fs.read_data(&ip, 0, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        let _op = self.fs.op();
        let Some(c) = self.cache_made() else {
            let _lock = self.lock.read();
            let fs = self.disk();
            let ip = fs.read_inode(self.ino)?;
            return fs.read_data(&ip, off, buf);
        };
        // Through the page cache: a page read once is copied from there (no block-cache
        // lookups), and it is the page a mapping of the file maps.
        let _lock = self.lock.read();
        let fs = self.disk();
        let ip = fs.read_inode(self.ino)?;
        c.read(off, ip.size, buf, |at, b| fs.read_data(&ip, at, b))
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        self.rw()?;
        off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.read();
        self.rw()?; // a remount to read-only may have come first
        let _lock = self.lock.write();
        let fs = self.disk();
        let mut ip = fs.read_inode(self.ino)?;
        let r = fs.write_data(&mut ip, off, buf);
        if let Some(c) = self.cached() {
            match r {
                Ok(n) => c.write(off, &buf[..n]),
                // Some of it may be on the disk: read the range again when it is mapped.
                Err(_) => c.invalidate(off, buf.len() as u64),
            }
        }
        let t = now();
        (ip.mtime, ip.ctime) = (t, t);
        Self::note_size(fs, ip.size);
        fs.write_inode(&ip)?;
        r
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let ino = self.make(self.disk(), name, S_IFREG | (mode & 0o7777), uid, gid, |_, _| Ok(()))?;
        Ok(self.fs.node(ino, VType::Reg) as VnodeRef)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        self.rw()?;
        let parent = self.ino;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let ino =
            self.make(self.disk(), name, S_IFDIR | (mode & 0o7777), uid, gid, |fs, ip| fs.dir_init(ip, parent))?;
        Ok(self.fs.node(ino, VType::Dir) as VnodeRef)
    }

    fn mknod(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        let vtype = VType::from_mode(mode);
        if !matches!(vtype, VType::Sock | VType::Fifo) {
            return Err(Errno::EPERM);
        }
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let ino = self.make(self.disk(), name, mode & (S_IFMT | 0o7777), uid, gid, |_, _| Ok(()))?;
        Ok(self.fs.node(ino, vtype) as VnodeRef)
    }

    fn symlink(&self, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
        self.rw()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let fs = self.disk();
        {
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
        }
    }

    fn link(&self, name: &[u8], target: &VnodeRef) -> Result<(), Errno> {
        self.rw()?;
        let nm = check_name(name)?;
        let tino = self.same_fs(target)?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let tnode = self.other(tino, target.vtype());
        let _target_lock = tnode.as_ref().map(|n| n.lock.write());
        let fs = self.disk();
        {
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
            if t.links == 0 {
                self.fs.unorphan(tino); // an O_TMPFILE file given a name (linkat)
            }
            t.links += 1;
            t.ctime = now();
            fs.write_inode(&t)
        }
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.rw()?;
        let nm = check_name(name)?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let fs = self.disk();
        {
            let mut dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, nm)?.ok_or(Errno::ENOENT)?;
            let ip = fs.read_inode(e.ino)?;
            if ip.is_dir() || e.ino == self.ino {
                return Err(Errno::EISDIR);
            }
            let victim = self.fs.node(e.ino, ip.vtype());
            let _victim_lock = victim.lock.write();
            let mut ip = fs.read_inode(e.ino)?;
            fs.dir_remove(&mut dir, nm)?;
            ip.links = ip.links.saturating_sub(1);
            ip.ctime = now();
            fs.write_inode(&ip)?;
            if ip.links == 0 {
                self.fs.orphan(ip.ino);
            }
            Ok(())
        }
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
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let _dir_lock = self.lock.write();
        let fs = self.disk();
        {
            let mut dir = self.dir(fs)?;
            let e = fs.dir_lookup(&dir, nm)?.ok_or(Errno::ENOENT)?;
            let ip = fs.read_inode(e.ino)?;
            if !ip.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if e.ino == self.ino {
                return Err(Errno::EIO); // an entry naming its own directory: damaged
            }
            let child = self.fs.node(e.ino, VType::Dir);
            let _child_lock = child.lock.write();
            let mut ip = fs.read_inode(e.ino)?;
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
        }
    }

    /// Carries out a rename the VFS has checked (vnops::rename: flags, types, emptiness,
    /// a directory moved under itself, permissions) under its directory locks. What is left
    /// here is ext2's own: the entries as they are on the disk, and EMLINK.
    fn rename(&self, old: &[u8], newdir: &VnodeRef, new: &[u8], _flags: u32) -> Result<(), Errno> {
        self.rw()?;
        let (oldn, newn) = (check_name(old)?, check_name(new)?);
        let tdir = self.same_fs(newdir)?;
        let sdir = self.ino;
        let _op = self.fs.op();
        let _ns = self.fs.ns.write();
        self.rw()?;
        let fs = self.disk();
        // Under ext2_ns no directory changes: find the inodes involved, then lock them all
        // (each once; any order, since only namespace changes lock more than one).
        let mut involved = vec![(tdir, VType::Dir)];
        let entry_of = |dir: u32, name: &[u8]| -> Option<(u32, VType)> {
            let d = fs.read_inode(dir).ok().filter(Inode::is_dir)?;
            let e = fs.dir_lookup(&d, name).ok()??;
            Some((e.ino, fs.read_inode(e.ino).ok()?.vtype()))
        };
        involved.extend(entry_of(sdir, oldn));
        involved.extend(entry_of(tdir, newn));
        involved.sort_unstable_by_key(|(ino, _)| *ino);
        involved.dedup_by_key(|(ino, _)| *ino);
        let nodes: Vec<Arc<Ext2Node>> = involved.iter().filter_map(|&(ino, vt)| self.other(ino, vt)).collect();
        let _dir_lock = self.lock.write();
        let _locks: Vec<_> = nodes.iter().map(|n| n.lock.write()).collect();
        {
            let s = self.dir(fs)?;
            let t = fs.read_inode(tdir)?;
            if !t.is_dir() || t.links == 0 {
                return Err(Errno::ENOENT); // gone from the disk since the VFS looked
            }
            let e = fs.dir_lookup(&s, oldn)?.ok_or(Errno::ENOENT)?;
            let mut src = fs.read_inode(e.ino)?;
            let replaced = match fs.dir_lookup(&t, newn)? {
                Some(x) => Some(fs.read_inode(x.ino)?),
                None => None,
            };
            if src.is_dir() && sdir != tdir && t.links >= LINK_MAX && replaced.is_none() {
                return Err(Errno::EMLINK);
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
        }
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.read();
        self.rw()?; // a remount to read-only may have come first
        let _lock = self.lock.write();
        let fs = self.disk();
        let mut ip = fs.read_inode(self.ino)?;
        let r = fs.truncate(&mut ip, size);
        if let Some(c) = self.cached() {
            match r {
                Ok(()) => c.truncate(size),
                Err(_) => c.invalidate(0, u64::MAX),
            }
        }
        r?;
        let t = now();
        (ip.mtime, ip.ctime) = (t, t);
        Self::note_size(fs, ip.size);
        fs.write_inode(&ip)
    }

    /// Mode 0 and FALLOC_FL_KEEP_SIZE allocate, PUNCH_HOLE | KEEP_SIZE punches (ext2/falloc.rs).
    fn fallocate(&self, mode: u32, off: u64, len: u64) -> Result<(), Errno> {
        use linux_raw_sys::general::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
        match self.vtype {
            VType::Reg => {}
            VType::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        if end > self.disk().max_file_bytes() {
            return Err(Errno::EFBIG);
        }
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.read();
        self.rw()?; // a remount to read-only may have come first
        let _lock = self.lock.write();
        let fs = self.disk();
        let mut ip = fs.read_inode(self.ino)?;
        let old = (ip.size, ip.blocks);
        let r = if mode & FALLOC_FL_PUNCH_HOLE != 0 {
            fs.punch(&mut ip, off, len)
        } else {
            fs.allocate(&mut ip, off, len, mode & FALLOC_FL_KEEP_SIZE != 0)
        };
        // A punched range reads as zeros now: its cached pages go (allocated blocks read as
        // zeros, as the cache's pages past the old end already do).
        if mode & FALLOC_FL_PUNCH_HOLE != 0
            && let Some(c) = self.cached()
        {
            c.invalidate(off, len);
        }
        if (ip.size, ip.blocks) != old || mode & FALLOC_FL_PUNCH_HOLE != 0 {
            let t = now();
            (ip.mtime, ip.ctime) = (t, t);
        }
        Self::note_size(fs, ip.size);
        fs.write_inode(&ip)?;
        r
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.read();
        self.rw()?; // a remount to read-only may have come first
        let _lock = self.lock.write();
        let fs = self.disk();
        {
            let mut ip = fs.read_inode(self.ino)?;
            if let Some(m) = a.mode {
                ip.mode = low16((u32::from(ip.mode) & S_IFMT) | (m & 0o7777));
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
        }
    }

    /// ext2_fileattr_set: the flags users may change (FS_FL_USER_MODIFIABLE), as
    /// ext2_mask_flags allows them for the file's type — a regular file not DIRSYNC or
    /// TOPDIR, other files only NODUMP and NOATIME; the rest of the inode's flags stay.
    fn set_iflags(&self, flags: u32) -> Result<(), Errno> {
        self.rw()?;
        let _op = self.fs.op();
        let _ns = self.fs.ns.read();
        self.rw()?;
        let _lock = self.lock.write();
        let fs = self.disk();
        let mut ip = fs.read_inode(self.ino)?;
        let allowed = match ip.vtype() {
            VType::Dir => linux::FS_FL_USER_MODIFIABLE,
            VType::Reg => linux::FS_FL_USER_MODIFIABLE & !(linux::FS_DIRSYNC_FL | linux::FS_TOPDIR_FL),
            _ => linux::FS_NODUMP_FL | linux::FS_NOATIME_FL,
        };
        ip.flags = (ip.flags & !linux::FS_FL_USER_MODIFIABLE) | (flags & allowed);
        ip.ctime = now();
        fs.write_inode(&ip)
    }

    fn no_change(&self) -> Errno {
        if self.fs.is_readonly() { Errno::EROFS } else { Errno::ENOTDIR }
    }

    fn page_cache(&self) -> Option<Arc<PageCache>> {
        self.cache_made().cloned()
    }

    /// The cached page (read in, with read-ahead, when missing); ENXIO wholly past the end.
    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        let c = self.cache_made().ok_or(Errno::ENODEV)?;
        if let Some(pa) = c.lookup(idx) {
            // Resident pages lie inside the file (truncate takes the others out).
            return Ok(pa);
        }
        let _op = self.fs.op();
        let _lock = self.lock.read();
        let fs = self.disk();
        let ip = fs.read_inode(self.ino)?;
        if idx >= ip.size.div_ceil(PAGE) {
            return Err(Errno::ENXIO);
        }
        c.page_ahead(idx, FAULT_READ_PAGES, |at, b| fs.read_data(&ip, at, b))
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        u64::from(self.ino)
    }
}
