//! tmpfs: a file system in memory. File data lives in physical pages (so `vm_page` and the
//! free-page count show it, and a full memory gives ENOSPC); directories are maps of names.
//!
//! Every node is registered by inode number so that operations given another vnode of the
//! same file system (rename's target directory, link's target) can find its node.
//!
//! Lock order: a directory's entries before a child's metadata; rename takes the source
//! directory, then the target directory (by inode order when they differ).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use linux_raw_sys::general as linux;
use platform::physmem::{self, pgflags};
use platform::sync::SpinLock;

use crate::fs::mount::{AtimePolicy, FileSystem, FsRef, new_fs_id};
use crate::fs::vnops::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::fs::vfs::{Attr, DirEntry, atime_due, check_name, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SetAttr, StatFs, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::vm::space::{PAGE, to_page_end};

static NEXT_DEV: AtomicU64 = AtomicU64::new(0x100);
/// statfs(2)'s f_type of tmpfs.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// One tmpfs instance.
#[derive(Debug)]
pub struct TmpFs {
    id: u64,
    dev: u64,
    next_ino: AtomicU64,
    nodes: SpinLock<HashMap<u64, Weak<TmpNode>>>,
    /// Pages holding file data.
    pages: AtomicU64,
}

#[derive(Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    /// chattr's flags (FS_*_FL), those [`TMPFS_IFLAGS`] allows.
    iflags: u32,
}

/// The inode flags tmpfs keeps (6.1's SHMEM_FL_USER_MODIFIABLE).
const TMPFS_IFLAGS: u32 = linux::FS_IMMUTABLE_FL | linux::FS_APPEND_FL | linux::FS_NODUMP_FL | linux::FS_NOATIME_FL;

#[derive(Debug, Default)]
struct Data {
    size: u64,
    pages: BTreeMap<u64, u64>,
}

/// A directory's entries by name (bytes), each with its position: a number given when the
/// name is added (rename gives a new one), increasing, never reused — what readdir orders
/// the entries by and resumes after (getdents64's d_off), so that entries removed before a
/// reader's position do not make it skip the ones after (Linux's simple_offset).
#[derive(Debug, Default)]
struct Entries {
    by_name: BTreeMap<Vec<u8>, (u64, Arc<TmpNode>)>,
    next_pos: u64,
}

impl Entries {
    fn contains_key(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name)
    }

    fn get(&self, name: &[u8]) -> Option<&Arc<TmpNode>> {
        self.by_name.get(name).map(|(_, n)| n)
    }

    /// Add (or replace) `name`, at a new position; the node it replaced.
    fn insert(&mut self, name: Vec<u8>, node: Arc<TmpNode>) -> Option<Arc<TmpNode>> {
        self.next_pos += 1;
        self.by_name.insert(name, (self.next_pos, node)).map(|(_, n)| n)
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpNode>> {
        self.by_name.remove(name).map(|(_, n)| n)
    }

    fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn len(&self) -> usize {
        self.by_name.len()
    }
}

#[derive(Debug)]
enum Kind {
    Dir { entries: SpinLock<Entries>, parent: SpinLock<Weak<TmpNode>> },
    File(SpinLock<Data>),
    Symlink(Vec<u8>),
    /// A FIFO, a socket or a device node (mknod(2)): a name, attributes and (for a device)
    /// its number, no data.
    Special(u64),
}

/// A tmpfs file, directory or symbolic link.
#[derive(Debug)]
pub struct TmpNode {
    fs: Arc<TmpFs>,
    ino: u64,
    meta: SpinLock<Meta>,
    kind: Kind,
    xattrs: SpinLock<crate::fs::xattr::XattrMap>,
}

fn now() -> Timespec {
    Timespec::now()
}

/// A new tmpfs; its root directory.
pub fn new() -> VnodeRef {
    let fs = Arc::new(TmpFs {
        id: new_fs_id(),
        dev: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
        next_ino: AtomicU64::new(2),
        nodes: SpinLock::new("tmpfs_nodes", HashMap::new()),
        pages: AtomicU64::new(0),
    });
    let root = TmpNode::make(&fs, S_IFDIR | 0o1777, 0, 0, Kind::Dir { entries: SpinLock::new("tmpfs_dir", Entries::default()), parent: SpinLock::new("tmpfs_parent", Weak::new()) });
    root.meta.lock().nlink = 2;
    root
}

impl TmpFs {
    /// A live node by inode number (upgraded outside the table's lock: dropping the last
    /// reference of a node takes that lock).
    fn node(&self, ino: u64) -> Option<Arc<TmpNode>> {
        let w = self.nodes.lock().get(&ino).cloned();
        w.and_then(|w| w.upgrade())
    }
}

impl TmpNode {
    fn make(fs: &Arc<TmpFs>, mode: u32, uid: u32, gid: u32, kind: Kind) -> Arc<TmpNode> {
        let ino = fs.next_ino.fetch_add(1, Ordering::Relaxed);
        let t = now();
        let n = Arc::new(TmpNode {
            fs: Arc::clone(fs),
            ino,
            meta: SpinLock::new("tmpfs_meta", Meta { mode, uid, gid, nlink: 1, atime: t, mtime: t, ctime: t, iflags: 0 }),
            kind,
            xattrs: SpinLock::new("tmpfs_xattr", crate::fs::xattr::XattrMap::default()),
        });
        fs.nodes.lock().insert(ino, Arc::downgrade(&n));
        n
    }

    fn entries(&self) -> Result<&SpinLock<Entries>, Errno> {
        match &self.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn touch(&self) {
        let t = now();
        let mut m = self.meta.lock();
        m.mtime = t;
        m.ctime = t;
    }

    /// The node of another vnode of this file system.
    fn same_fs(&self, v: &VnodeRef) -> Result<Arc<TmpNode>, Errno> {
        let a = v.attr()?;
        if a.dev != self.fs.dev {
            return Err(Errno::EXDEV);
        }
        self.fs.node(a.ino).ok_or(Errno::ENOENT)
    }

    fn add(&self, name: &[u8], node: Arc<TmpNode>) -> Result<(), Errno> {
        check_name(name)?;
        let mut e = self.entries()?.lock();
        if e.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if matches!(node.kind, Kind::Dir { .. }) {
            self.meta.lock().nlink += 1;
        }
        e.insert(name.to_vec(), node);
        drop(e);
        self.touch();
        Ok(())
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir { .. })
    }

    fn free_pages_from(&self, data: &mut Data, first: u64) {
        let pm = physmem::get();
        let gone: Vec<u64> = data.pages.range(first..).map(|(&k, _)| k).collect();
        for k in gone {
            if let (Some(pa), Some(pm)) = (data.pages.remove(&k), pm) {
                pm.page_unref(pa);
                self.fs.pages.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for TmpNode {
    fn drop(&mut self) {
        if let Kind::File(d) = &self.kind {
            let mut data = std::mem::take(&mut *d.lock());
            self.free_pages_from(&mut data, 0);
        }
        self.fs.nodes.lock().remove(&self.ino);
    }
}

impl Vnode for TmpNode {
    fn xattrs(&self) -> Option<&SpinLock<crate::fs::xattr::XattrMap>> {
        Some(&self.xattrs)
    }

    fn attr(&self) -> Result<Attr, Errno> {
        // The size and blocks first: `add` and `rename` take a directory's entries before its
        // attributes (nlink), so the attributes' lock is never held while taking the entries.
        let size = match &self.kind {
            Kind::File(d) => d.lock().size,
            Kind::Symlink(t) => t.len() as u64,
            Kind::Dir { entries, .. } => (entries.lock().len() as u64 + 2) * 32,
            Kind::Special(_) => 0,
        };
        let blocks = match &self.kind {
            Kind::File(d) => d.lock().pages.len() as u64 * (PAGE / 512),
            _ => 0,
        };
        let m = self.meta.lock();
        Ok(Attr {
            dev: self.fs.dev,
            ino: self.ino,
            mode: m.mode,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: if let Kind::Special(rdev) = self.kind { rdev } else { 0 },
            size,
            blksize: PAGE,
            blocks,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
            iflags: Some(m.iflags),
        })
    }

    fn vtype(&self) -> VType {
        match self.kind {
            Kind::Dir { .. } => VType::Dir,
            Kind::File(_) => VType::Reg,
            Kind::Symlink(_) => VType::Lnk,
            Kind::Special(_) => VType::from_mode(self.meta.lock().mode),
        }
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        let e = self.entries()?.lock();
        e.get(name).map(|n| Arc::clone(n) as VnodeRef).ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let e = self.entries()?.lock();
        let mut out: Vec<DirEntry> =
            e.by_name.iter().map(|(name, (pos, n))| DirEntry { ino: n.ino, name: name.clone(), vtype: n.vtype(), off: *pos }).collect();
        out.sort_unstable_by_key(|d| d.off);
        Ok(out)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Kind::File(d) = &self.kind else {
            return Err(if self.is_dir() { Errno::EISDIR } else { Errno::EINVAL });
        };
        let data = d.lock();
        if off >= data.size {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(data.size - off).unwrap_or(usize::MAX));
        let pm = physmem::get().ok_or(Errno::EIO)?;
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let chunk = to_page_end(pos).min(n - done);
            match data.pages.get(&(pos / PAGE)) {
                Some(&pa) => pm.read(pa + pos % PAGE, &mut buf[done..done + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let Kind::File(d) = &self.kind else {
            return Err(if self.is_dir() { Errno::EISDIR } else { Errno::EINVAL });
        };
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        let pm = physmem::get().ok_or(Errno::EIO)?;
        let mut data = d.lock();
        let mut done = 0;
        while done < buf.len() {
            let pos = off + done as u64;
            let chunk = to_page_end(pos).min(buf.len() - done);
            let idx = pos / PAGE;
            let pa = match data.pages.get(&idx) {
                Some(&pa) => pa,
                None => {
                    let Some(pa) = pm.alloc_zeroed(0, pgflags::KERNEL) else {
                        // Out of memory: a short write, or ENOSPC if nothing went in.
                        if done == 0 {
                            return Err(Errno::ENOSPC);
                        }
                        break;
                    };
                    self.fs.pages.fetch_add(1, Ordering::Relaxed);
                    data.pages.insert(idx, pa);
                    pa
                }
            };
            pm.write(pa + pos % PAGE, &buf[done..done + chunk]);
            done += chunk;
        }
        data.size = data.size.max(end.min(off + done as u64));
        drop(data);
        self.touch();
        Ok(done)
    }

    fn accessed(&self, policy: AtimePolicy) {
        let t = now();
        let mut m = self.meta.lock();
        if atime_due(policy, m.atime, m.mtime, m.ctime, t) {
            m.atime = t;
        }
    }

    fn shared_pages(&self) -> bool {
        matches!(self.kind, Kind::File(_))
    }

    fn page_resident(&self, idx: u64) -> bool {
        matches!(&self.kind, Kind::File(d) if d.lock().pages.contains_key(&idx))
    }

    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        let Kind::File(d) = &self.kind else { return Err(Errno::ENODEV) };
        let pm = physmem::get().ok_or(Errno::EIO)?;
        let mut data = d.lock();
        if idx >= data.size.div_ceil(PAGE) {
            return Err(Errno::ENXIO);
        }
        let pa = match data.pages.get(&idx) {
            Some(&pa) => pa,
            None => {
                let pa = pm.alloc_zeroed(0, pgflags::KERNEL).ok_or(Errno::ENOMEM)?;
                self.fs.pages.fetch_add(1, Ordering::Relaxed);
                data.pages.insert(idx, pa);
                pa
            }
        };
        pm.page_ref(pa);
        Ok(pa)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        let n = TmpNode::make(&self.fs, S_IFREG | (mode & 0o7777), uid, gid, Kind::File(SpinLock::new("tmpfs_data", Data::default())));
        self.add(name, Arc::clone(&n))?;
        Ok(n)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        let me = self.fs.node(self.ino);
        let n = TmpNode::make(
            &self.fs,
            S_IFDIR | (mode & 0o7777),
            uid,
            gid,
            Kind::Dir { entries: SpinLock::new("tmpfs_dir", Entries::default()), parent: SpinLock::new("tmpfs_parent", me.as_ref().map(Arc::downgrade).unwrap_or_default()) },
        );
        n.meta.lock().nlink = 2;
        self.add(name, Arc::clone(&n))?;
        Ok(n)
    }

    fn symlink(&self, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let n = TmpNode::make(&self.fs, S_IFLNK | 0o777, uid, gid, Kind::Symlink(target.to_vec()));
        self.add(name, n)
    }

    fn mknod(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        if !matches!(VType::from_mode(mode), VType::Sock | VType::Fifo) {
            return Err(Errno::EPERM);
        }
        let n = TmpNode::make(&self.fs, mode & (S_IFMT | 0o7777), uid, gid, Kind::Special(0));
        self.add(name, Arc::clone(&n))?;
        Ok(n)
    }

    fn mknod_dev(&self, name: &[u8], mode: u32, rdev: u64, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
        if !matches!(VType::from_mode(mode), VType::Chr | VType::Blk) {
            return Err(Errno::EINVAL);
        }
        let n = TmpNode::make(&self.fs, mode & (S_IFMT | 0o7777), uid, gid, Kind::Special(rdev));
        self.add(name, Arc::clone(&n))?;
        Ok(n)
    }

    fn link(&self, name: &[u8], target: &VnodeRef) -> Result<(), Errno> {
        let t = self.same_fs(target)?;
        if t.is_dir() {
            return Err(Errno::EPERM);
        }
        self.add(name, Arc::clone(&t))?;
        let mut m = t.meta.lock();
        m.nlink += 1;
        m.ctime = now();
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let mut e = self.entries()?.lock();
        let n = e.get(name).ok_or(Errno::ENOENT)?;
        if n.is_dir() {
            return Err(Errno::EISDIR);
        }
        let n = e.remove(name).ok_or(Errno::ENOENT)?;
        drop(e);
        let mut m = n.meta.lock();
        m.nlink = m.nlink.saturating_sub(1);
        m.ctime = now();
        drop(m);
        self.touch();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let mut e = self.entries()?.lock();
        let n = e.get(name).ok_or(Errno::ENOENT)?;
        if !n.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !n.entries()?.lock().is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let n = e.remove(name).ok_or(Errno::ENOENT)?;
        drop(e);
        n.meta.lock().nlink = 0;
        let mut m = self.meta.lock();
        m.nlink = m.nlink.saturating_sub(1);
        drop(m);
        self.touch();
        Ok(())
    }

    fn parent(&self) -> Result<VnodeRef, Errno> {
        match &self.kind {
            Kind::Dir { parent, .. } => match parent.lock().upgrade() {
                Some(p) => Ok(p),
                None => self.fs.node(self.ino).map(|n| n as VnodeRef).ok_or(Errno::ENOENT), // the root
            },
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn rename(&self, old: &[u8], newdir: &VnodeRef, new: &[u8], flags: u32) -> Result<(), Errno> {
        check_name(new)?;
        let me = self.fs.node(self.ino).ok_or(Errno::ENOENT)?;
        let target_dir = self.same_fs(newdir)?;
        let moving = self.entries()?.lock().get(old).cloned().ok_or(Errno::ENOENT)?;
        let exchange = flags & RENAME_EXCHANGE != 0;
        // Take the entries out and put them back where they go.
        self.entries()?.lock().remove(old);
        let replaced = target_dir.entries()?.lock().insert(new.to_vec(), Arc::clone(&moving));
        if exchange {
            if let Some(x) = replaced {
                self.entries()?.lock().insert(old.to_vec(), Arc::clone(&x));
                if let Kind::Dir { parent, .. } = &x.kind {
                    *parent.lock() = Arc::downgrade(&me);
                }
                if x.is_dir() != moving.is_dir() && !Arc::ptr_eq(&me, &target_dir) {
                    // A directory and a file swapped parents: the link counts follow.
                    let (gains, loses) = if x.is_dir() { (&me, &target_dir) } else { (&target_dir, &me) };
                    gains.meta.lock().nlink += 1;
                    let mut m = loses.meta.lock();
                    m.nlink = m.nlink.saturating_sub(1);
                }
                x.meta.lock().ctime = now();
            }
        } else if let Some(x) = replaced {
            let mut m = x.meta.lock();
            m.nlink = if x.is_dir() { 0 } else { m.nlink.saturating_sub(1) };
            drop(m);
            if x.is_dir() {
                let mut tm = target_dir.meta.lock();
                tm.nlink = tm.nlink.saturating_sub(1);
            }
        }
        if let Kind::Dir { parent, .. } = &moving.kind {
            *parent.lock() = Arc::downgrade(&target_dir);
            if !Arc::ptr_eq(&me, &target_dir) && !exchange {
                let mut a = self.meta.lock();
                a.nlink = a.nlink.saturating_sub(1);
                drop(a);
                target_dir.meta.lock().nlink += 1;
            }
        }
        moving.meta.lock().ctime = now();
        self.touch();
        target_dir.touch();
        Ok(())
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let Kind::File(d) = &self.kind else {
            return Err(if self.is_dir() { Errno::EISDIR } else { Errno::EINVAL });
        };
        let mut data = d.lock();
        if size < data.size {
            let first_gone = size.div_ceil(PAGE);
            self.free_pages_from(&mut data, first_gone);
            // Zero the tail of the last page, so growing again reads zeros.
            if !size.is_multiple_of(PAGE)
                && let (Some(&pa), Some(pm)) = (data.pages.get(&(size / PAGE)), physmem::get())
            {
                pm.zero(pa + size % PAGE, to_page_end(size));
            }
        }
        data.size = size;
        drop(data);
        self.touch();
        Ok(())
    }

    /// Mode 0 and FALLOC_FL_KEEP_SIZE give the range pages (ENOSPC, with none added, when
    /// memory runs out or would); PUNCH_HOLE | KEEP_SIZE frees its whole pages and zeroes the rest.
    fn fallocate(&self, mode: u32, off: u64, len: u64) -> Result<(), Errno> {
        use linux_raw_sys::general::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
        let Kind::File(d) = &self.kind else {
            return Err(if self.is_dir() { Errno::EISDIR } else { Errno::ENODEV });
        };
        if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let end = off.checked_add(len).filter(|&e| i64::try_from(e).is_ok()).ok_or(Errno::EFBIG)?;
        let pm = physmem::get().ok_or(Errno::EIO)?;
        let mut data = d.lock();
        if mode & FALLOC_FL_PUNCH_HOLE != 0 {
            let end = end.min(data.size);
            if off < end {
                let head = off / PAGE;
                let mut first_full = head;
                if !off.is_multiple_of(PAGE) || end < (head + 1) * PAGE {
                    if let Some(&pa) = data.pages.get(&head) {
                        pm.zero(pa + off % PAGE, usize::try_from((end - head * PAGE).min(PAGE) - off % PAGE).unwrap_or(0));
                    }
                    first_full = head + 1;
                }
                let tail = end / PAGE;
                if !end.is_multiple_of(PAGE) && tail >= first_full
                    && let Some(&pa) = data.pages.get(&tail)
                {
                    pm.zero(pa, usize::try_from(end % PAGE).unwrap_or(0));
                }
                let gone: Vec<u64> = data.pages.range(first_full..tail.max(first_full)).map(|(&k, _)| k).collect();
                for k in gone {
                    if let Some(pa) = data.pages.remove(&k) {
                        pm.page_unref(pa);
                        self.fs.pages.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        } else {
            // More pages than are free, even if every page it has is in the range: ENOSPC
            // at once rather than taking all of memory first.
            let (first, last) = (off / PAGE, end.div_ceil(PAGE));
            if (last - first).saturating_sub(data.pages.len() as u64) > pm.free_pages() {
                return Err(Errno::ENOSPC);
            }
            let mut added = Vec::new();
            for idx in first..last {
                if data.pages.contains_key(&idx) {
                    continue;
                }
                let Some(pa) = pm.alloc_zeroed(0, pgflags::KERNEL) else {
                    for k in added {
                        if let Some(pa) = data.pages.remove(&k) {
                            pm.page_unref(pa);
                            self.fs.pages.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    return Err(Errno::ENOSPC);
                };
                self.fs.pages.fetch_add(1, Ordering::Relaxed);
                data.pages.insert(idx, pa);
                added.push(idx);
            }
            if mode & FALLOC_FL_KEEP_SIZE == 0 {
                data.size = data.size.max(end);
            }
        }
        drop(data);
        self.touch();
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        let mut m = self.meta.lock();
        if let Some(mode) = a.mode {
            m.mode = (m.mode & !0o7777) | (mode & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = now();
        Ok(())
    }

    /// shmem_fileattr_set: EOPNOTSUPP for a flag tmpfs does not keep.
    fn set_iflags(&self, flags: u32) -> Result<(), Errno> {
        if flags & !TMPFS_IFLAGS != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut m = self.meta.lock();
        m.iflags = flags;
        m.ctime = now();
        Ok(())
    }

    fn no_change(&self) -> Errno {
        Errno::ENOTDIR
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

impl FileSystem for TmpFs {
    fn type_name(&self) -> &'static str {
        "tmpfs"
    }

    fn rename_flags(&self) -> u32 {
        RENAME_NOREPLACE | RENAME_EXCHANGE
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let pm = physmem::get().ok_or(Errno::EIO)?;
        let used = self.pages.load(Ordering::Relaxed);
        let free = pm.free_pages();
        Ok(StatFs {
            magic: TMPFS_MAGIC,
            bsize: PAGE,
            blocks: used + free,
            bfree: free,
            files: self.nodes.lock().len() as u64 + free,
            ffree: free,
        })
    }

    /// As shmem_encode_fh: a generation word (0: inode numbers are never reused here) and
    /// the 64-bit inode number, low word first.
    fn encode_handle(&self, v: &VnodeRef) -> Option<(i32, Vec<u8>)> {
        let ino = v.ino();
        let mut b = 0u32.to_le_bytes().to_vec();
        b.extend_from_slice(&ino.to_le_bytes());
        Some((crate::abi::fs::FILEID_INO32_GEN, b))
    }

    /// A file that still exists (named, or open, or mapped); ESTALE once it is gone.
    fn decode_handle(&self, ty: i32, bytes: &[u8]) -> Result<VnodeRef, Errno> {
        let ino = bytes.get(4..12).and_then(|w| w.try_into().ok()).map(u64::from_le_bytes);
        match ino {
            Some(ino) if ty == crate::abi::fs::FILEID_INO32_GEN => {
                let n = self.node(ino).ok_or(Errno::ESTALE)?;
                let v: VnodeRef = n;
                Ok(v)
            }
            _ => Err(Errno::ESTALE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> VnodeRef {
        let _ = physmem::init(platform::physmem::MIN_PHYSMEM, None);
        new()
    }

    // One test: physical memory is process-wide.
    #[test]
    fn files_directories_links_rename_truncate() {
        let root = setup();
        let f = root.create(b"a", 0o644, 0, 0).unwrap();
        assert_eq!(f.write_at(5000, b"hello").unwrap(), 5);
        let mut b = [1u8; 10];
        assert_eq!(f.read_at(4998, &mut b).unwrap(), 7);
        assert_eq!(&b[..7], b"\0\0hello");
        assert_eq!(f.attr().unwrap().size, 5005);
        assert_eq!(root.create(b"a", 0o644, 0, 0).unwrap_err(), Errno::EEXIST);
        let d = root.mkdir(b"d", 0o755, 0, 0).unwrap();
        assert_eq!(root.attr().unwrap().nlink, 3);
        root.link(b"hard", &f).unwrap();
        assert_eq!(f.attr().unwrap().nlink, 2);
        root.rename(b"a", &d, b"b", 0).unwrap();
        assert!(root.lookup(b"a").is_err());
        assert_eq!(d.lookup(b"b").unwrap().attr().unwrap().ino, f.attr().unwrap().ino);
        root.symlink(b"s", b"d/b", 0, 0).unwrap();
        assert_eq!(root.lookup(b"s").unwrap().readlink().unwrap(), b"d/b");
        assert_eq!(root.rmdir(b"d").unwrap_err(), Errno::ENOTEMPTY);
        f.truncate(3).unwrap();
        assert_eq!(f.read_at(0, &mut b).unwrap(), 3);
        f.truncate(6000).unwrap();
        assert_eq!(f.read_at(5000, &mut b).unwrap(), 10);
        assert_eq!(b, [0u8; 10], "truncating frees the old data");
        d.unlink(b"b").unwrap();
        root.unlink(b"hard").unwrap();
        root.rmdir(b"d").unwrap();
        assert_eq!(root.attr().unwrap().nlink, 2);
        assert!(root.fs().statfs().unwrap().bfree > 0);
        readdir_positions_are_stable(&root);
        handles_name_live_files(&root);
    }

    /// A file handle opens its file while the file exists (named or held), ESTALE after.
    fn handles_name_live_files(root: &VnodeRef) {
        let fs = root.fs();
        let f = root.create(b"h", 0o644, 0, 0).unwrap();
        let (ty, h) = fs.encode_handle(&f).unwrap();
        assert_eq!(fs.decode_handle(ty, &h).unwrap().id(), f.id());
        root.unlink(b"h").unwrap();
        assert_eq!(fs.decode_handle(ty, &h).unwrap().id(), f.id(), "still open");
        drop(f);
        assert_eq!(fs.decode_handle(ty, &h).unwrap_err(), Errno::ESTALE);
        assert_eq!(fs.decode_handle(ty, &h[..8]).unwrap_err(), Errno::ESTALE, "too short");
        assert_eq!(fs.decode_handle(ty + 1, &h).unwrap_err(), Errno::ESTALE, "another type");
    }

    /// A reader resuming after an entry's position sees every entry still there, whatever was
    /// removed before it (getdents64 resumes by position, not by index).
    fn readdir_positions_are_stable(root: &VnodeRef) {
        let d = root.mkdir(b"pos", 0o755, 0, 0).unwrap();
        for n in [b"m", b"a", b"z", b"c"] {
            d.create(n, 0o644, 0, 0).unwrap();
        }
        let first = d.readdir().unwrap();
        let names: Vec<&[u8]> = first.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [b"m", b"a", b"z", b"c"], "in the order they were made");
        assert!(first.windows(2).all(|w| w[0].off < w[1].off) && first[0].off >= 1);
        // A reader got "m" and "a", then both go: it resumes with "z".
        d.unlink(b"m").unwrap();
        d.unlink(b"a").unwrap();
        let rest: Vec<Vec<u8>> = d.readdir().unwrap().into_iter().filter(|e| e.off > first[1].off).map(|e| e.name).collect();
        assert_eq!(rest, [b"z".to_vec(), b"c".to_vec()]);
        // A renamed or new name comes after every position handed out.
        d.rename(b"z", &d, b"y", 0).unwrap();
        let last = d.readdir().unwrap();
        assert_eq!(last.last().map(|e| e.name.as_slice()), Some(b"y".as_slice()));
        assert!(last.last().unwrap().off > first[3].off);
        for n in [b"c", b"y"] {
            d.unlink(n).unwrap();
        }
        root.rmdir(b"pos").unwrap();
    }
}
