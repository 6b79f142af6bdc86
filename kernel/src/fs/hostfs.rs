//! hostfs: a host directory as a read-only file system (UML's hostfs; `-r DIR`).
//!
//! A vnode is a host path; attributes come from lstat, data from pread on a host file opened on
//! first need and kept. A mount of it is always read-only ([`FileSystem::forced_readonly`]):
//! the VFS refuses every change with EROFS.
//!
//! A regular file's data goes through a page cache ([`PageCache`], as ext2's): read(2) copies
//! from it, private mappings map its pages copy-on-write (every process running a program from
//! a hostfs root shares its text, laid out in one stretch), and so do shared ones (of a file
//! open read-only, as every hostfs file is: mmap and mprotect refuse them PROT_WRITE, as
//! Linux's VM_MAYWRITE does). The caches live in the file system by the host's (device,
//! inode), not in the node (regular files are not kept in the name cache: every open looks the file up anew and
//! must find the pages of the last one). A file the host keeps no block of is read uncached, by
//! pread, as before: the pseudo-files of the host's procfs and sysfs (whose size, 0 or 4096,
//! says nothing of what a read returns, and whose data changes with no new mtime), and empty,
//! inline or wholly sparse files.
//!
//! The host may change a file under us (the mount is read-only to the guest only). Each cache
//! remembers the host attributes its pages were read under — size, mtime, ctime — and every
//! look at the host file checks them ([`HostCache::check`]): the lookup of an open or exec,
//! each read(2), each page a mapping's fault reads in, and stat and each fault of a private
//! mapping (which asks for the file's end) — these two take the attributes a look in the last
//! 10 ms saw, as FUSE keeps them for its attribute timeout (a forked shell faults a dozen pages
//! of its program, a host stat each otherwise). Any difference drops every cached page (the
//! next access reads the file again); the pages mappings hold already stay theirs. So a file
//! changed between two opens, or before a read, is always seen changed; what the host writes
//! while a page is read is caught by the cache's generation (the read is done again). Not
//! caught: a change that leaves size, mtime and ctime as they were (a rewrite within the host
//! file system's timestamp granularity), and pages a mapping has already faulted in. This is
//! about what virtiofs does by default (`cache=auto`: NFS's close-to-open, the file's pages
//! dropped at an open, attributes kept 1 s; FUSE also drops them when a refresh of the
//! attributes finds the size — with FUSE_AUTO_INVAL_DATA the mtime — changed), finer than its
//! time-out; 9p keeps no cache by default (`cache=none`) and none coherent with the host in its
//! `cache=loose` mode. UML's hostfs refreshes an inode's attributes at each lookup without
//! dropping its pages, but lets the inode and its pages go as soon as nobody uses it
//! (generic_delete_inode). A path that names another host file than the node's (renamed over by
//! the host) is read uncached, from whatever file the node opened.
//!
//! Memory: the pages are reclaimed as ext2's are ([`crate::vm::pagecache::reclaim`]: clean
//! pages only a cache holds, when the allocator runs out); a cache no node uses and that holds
//! no page leaves the file system's table when the table reaches a power of two.
//!
//! Locks: `hostfs_caches` (the table) and `hostfs_stamp` (one cache's attributes) are
//! spinlocks, each taken before the cache's own `page_cache` and never together; `hostfs_attr`
//! (a node's last look) is a leaf.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use platform::hostdir::{self, HostFile, HostStat};
use platform::sync::SpinLock;

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::namecache::CachePolicy;
use crate::fs::vfs::{Attr, DirEntry, check_name, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::vm::pagecache::{FAULT_READ_PAGES, PageCache};

const PAGE: u64 = platform::PAGE_SIZE as u64;
/// How long a node's attributes are taken as they were seen (FUSE's attribute timeout, 1 s
/// by default, in small): a private mapping's fault asks for the file's size every time, and
/// a forked shell's dozen faults on its program's pages would each cost a host stat.
const ATTR_FRESH_NS: u64 = 10_000_000;

fn errno(e: i32) -> Errno {
    Errno::from_num(e).unwrap_or(Errno::EIO)
}

/// What a host file's cached pages were read under: a change of any means new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(s: &HostStat) -> Stamp {
        Stamp { size: s.size, mtime: s.mtime, ctime: s.ctime }
    }
}

/// A host file's page cache and the attributes its pages belong to.
#[derive(Debug)]
struct HostCache {
    pages: Arc<PageCache>,
    /// `hostfs_stamp`: held while the pages of an older stamp are dropped, so no one checks
    /// a new stamp and reads an old page meanwhile.
    stamp: SpinLock<Stamp>,
}

impl HostCache {
    /// The host file's attributes are `now`: if the pages were read under others, they go.
    fn check(&self, now: Stamp) {
        let mut s = self.stamp.lock();
        if *s != now {
            *s = now;
            self.pages.invalidate(0, u64::MAX);
        }
    }
}

/// One hostfs instance (a host directory mounted).
#[derive(Debug)]
pub struct HostFs {
    id: u64,
    /// `hostfs_caches`: the page caches of regular files by host (device, inode).
    caches: SpinLock<HashMap<(u64, u64), Arc<HostCache>>>,
}

impl HostFs {
    /// The page cache of host file (`dev`, `ino`), made on first use, checked against the
    /// attributes `now` (None before physical memory exists).
    fn cache(&self, dev: u64, ino: u64, now: Stamp) -> Option<Arc<HostCache>> {
        let mut m = self.caches.lock();
        let c = match m.get(&(dev, ino)) {
            Some(c) => Arc::clone(c),
            None => {
                // Caches nobody uses and with no page left go now and then: amortized
                // constant time per file, and a table at most twice the caches in use.
                if m.len() >= 64 && m.len().is_power_of_two() {
                    m.retain(|_, c| Arc::strong_count(c) > 1 || c.pages.resident() > 0);
                }
                let c = Arc::new(HostCache { pages: PageCache::new()?, stamp: SpinLock::new("hostfs_stamp", now) });
                m.insert((dev, ino), Arc::clone(&c));
                return Some(c);
            }
        };
        drop(m);
        c.check(now);
        Some(c)
    }
}

impl FileSystem for HostFs {
    fn type_name(&self) -> &'static str {
        "hostfs"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn forced_readonly(&self) -> bool {
        true
    }

    /// The host may add files behind our back (no negative entries), and a file read holds a
    /// host descriptor (no regular files).
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::Directories
    }
}

/// A host file opened for reading, and whether it is the file the node's lookup found.
#[derive(Debug)]
struct Opened {
    file: HostFile,
    same: bool,
}

/// A file or directory under the hostfs root.
#[derive(Debug)]
pub struct HostNode {
    fs: Arc<HostFs>,
    path: PathBuf,
    /// The host's device, inode number and file type, from the lstat of the lookup.
    dev: u64,
    ino: u64,
    vtype: VType,
    /// The data's attributes at the lookup (the cache is checked against them first).
    stamp: Stamp,
    /// A regular file the host keeps blocks of (st_blocks > 0 at the lookup): read through
    /// the page cache. Else read by pread alone (host pseudo-files, empty or sparse files).
    cacheable: bool,
    file: OnceLock<Result<Opened, i32>>,
    /// A regular file's page cache (the file system's), once this node used it.
    cache: OnceLock<Option<Arc<HostCache>>>,
    /// `hostfs_attr`: the last lstat of the path and when (host monotonic ns), for
    /// [`ATTR_FRESH_NS`].
    seen: SpinLock<Option<(u64, HostStat)>>,
}

impl HostNode {
    /// The root of a hostfs over `dir`.
    pub fn root(dir: PathBuf) -> Result<VnodeRef, Errno> {
        let s = hostdir::lstat(&dir).map_err(errno)?;
        let fs = Arc::new(HostFs { id: new_fs_id(), caches: SpinLock::new("hostfs_caches", HashMap::new()) });
        let n = HostNode::new(fs, dir, &s);
        if n.vtype != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(Arc::new(n))
    }

    fn new(fs: Arc<HostFs>, path: PathBuf, s: &HostStat) -> HostNode {
        HostNode {
            fs,
            path,
            dev: s.dev,
            ino: s.ino,
            vtype: VType::from_mode(s.mode),
            stamp: Stamp::of(s),
            cacheable: VType::from_mode(s.mode) == VType::Reg && s.blocks > 0,
            file: OnceLock::new(),
            cache: OnceLock::new(),
            seen: SpinLock::new("hostfs_attr", Some((platform::time::host_monotonic_ns(), *s))),
        }
    }

    /// lstat of the node's path, now; remembered for [`Vnode::attr`].
    fn lstat(&self) -> Result<HostStat, Errno> {
        let s = hostdir::lstat(&self.path).map_err(errno)?;
        *self.seen.lock() = Some((platform::time::host_monotonic_ns(), s));
        Ok(s)
    }

    /// Whether `s` (of the node's path, now) is still the node's host file.
    fn is_mine(&self, s: &HostStat) -> bool {
        (s.dev, s.ino) == (self.dev, self.ino)
    }

    /// A regular file's page cache (unless it is not `cacheable`), checked against the
    /// lookup's attributes when this node first asks.
    fn cache(&self) -> Option<&Arc<HostCache>> {
        if !self.cacheable {
            return None;
        }
        self.cache.get_or_init(|| self.fs.cache(self.dev, self.ino, self.stamp)).as_ref()
    }

    /// The host file, opened on first need.
    fn opened(&self) -> Result<&Opened, Errno> {
        let o = self.file.get_or_init(|| {
            let file = HostFile::open(&self.path)?;
            let s = file.stat()?;
            Ok(Opened { same: self.is_mine(&s), file })
        });
        o.as_ref().map_err(|e| errno(*e))
    }

    /// pread of the host file.
    fn pread(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.opened()?.file.read_at(off, buf).map_err(errno)
    }

    /// pread into the cache: only from the node's own host file.
    fn fill(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let o = self.opened()?;
        if !o.same {
            return Err(Errno::ESTALE);
        }
        o.file.read_at(off, buf).map_err(errno)
    }

    /// The node's host file's attributes now, with its cache checked against them; None when
    /// its path names another file now and the node has not opened its own.
    fn fresh(&self, c: &HostCache) -> Result<Option<HostStat>, Errno> {
        let mut s = self.lstat()?;
        if !self.is_mine(&s) {
            match self.file.get() {
                Some(Ok(o)) if o.same => s = o.file.stat().map_err(errno)?,
                _ => return Ok(None),
            }
        }
        c.check(Stamp::of(&s));
        Ok(Some(s))
    }
}

impl Vnode for HostNode {
    /// The host's attributes, as seen within the last [`ATTR_FRESH_NS`] (by this or by a
    /// read, which always looks); a new look checks the page cache too.
    fn attr(&self) -> Result<Attr, Errno> {
        let now = platform::time::host_monotonic_ns();
        let recent = (*self.seen.lock()).filter(|(at, _)| now.saturating_sub(*at) < ATTR_FRESH_NS);
        let s = match recent {
            Some((_, s)) => s,
            None => {
                let s = self.lstat()?;
                if let Some(Some(c)) = self.cache.get()
                    && self.is_mine(&s)
                {
                    c.check(Stamp::of(&s));
                }
                s
            }
        };
        Ok(Attr {
            dev: s.dev,
            ino: s.ino,
            mode: s.mode,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            rdev: s.rdev,
            size: s.size,
            blksize: s.blksize,
            blocks: s.blocks,
            atime: Timespec { sec: s.atime.0, nsec: s.atime.1 },
            mtime: Timespec { sec: s.mtime.0, nsec: s.mtime.1 },
            ctime: Timespec { sec: s.ctime.0, nsec: s.ctime.1 },
            ..Default::default()
        })
    }

    fn vtype(&self) -> VType {
        self.vtype
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        if self.vtype != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        // The host takes names as bytes too (OsStr): any name the guest can make.
        let path = self.path.join(OsStr::from_bytes(name));
        let s = hostdir::lstat(&path).map_err(errno)?;
        Ok(Arc::new(HostNode::new(Arc::clone(&self.fs), path, &s)))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let list = hostdir::read_dir(&self.path).map_err(errno)?;
        Ok(list.into_iter().zip(1..).map(|((name, ino, fmt), off)| DirEntry { ino, name, vtype: VType::from_mode(fmt), off }).collect())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        hostdir::read_link(&self.path).map_err(errno)
    }

    /// From the page cache (one lstat to check it and find the end); a miss reads 8–32 pages
    /// ahead into it, as ext2's read.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.vtype() {
            VType::Dir => return Err(Errno::EISDIR),
            VType::Reg => {}
            _ => return Err(Errno::EINVAL),
        }
        let Some(c) = self.cache() else { return self.pread(off, buf) };
        let Some(s) = self.fresh(c)? else { return self.pread(off, buf) };
        c.pages.read(off, s.size, buf, |at, b| self.fill(at, b))
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EROFS)
    }

    fn page_cache(&self) -> Option<Arc<PageCache>> {
        self.cache().map(|c| Arc::clone(&c.pages))
    }

    /// The cached page (read in, with read-ahead, when missing, after a check of the file);
    /// ENXIO wholly past the end, ESTALE when the node's host file cannot be reached any more.
    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        let c = self.cache().ok_or(Errno::ENODEV)?;
        if let Some(pa) = c.pages.lookup(idx) {
            return Ok(pa);
        }
        let s = self.fresh(c)?.ok_or(Errno::ESTALE)?;
        if idx >= s.size.div_ceil(PAGE) {
            return Err(Errno::ENXIO);
        }
        c.pages.page_ahead(idx, FAULT_READ_PAGES, |at, b| self.fill(at, b))
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A fresh host directory for one test.
    fn host_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vk-hostfs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read_all(v: &VnodeRef) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 5000];
        loop {
            let n = v.read_at(out.len() as u64, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn page_bytes(pa: u64) -> Vec<u8> {
        let mut b = vec![0u8; platform::PAGE_SIZE];
        platform::physmem::get().unwrap().read(pa, &mut b);
        b
    }

    fn setup(name: &str) -> (PathBuf, VnodeRef) {
        let _ = platform::physmem::init(platform::physmem::MIN_PHYSMEM, None);
        let d = host_dir(name);
        let root = HostNode::root(d.clone()).unwrap();
        (d, root)
    }

    /// Rewrite a host file so that its mtime differs from the last (whatever the host file
    /// system's timestamp granularity).
    fn rewrite(p: &Path, data: &[u8]) {
        let before = std::fs::metadata(p).unwrap().modified().unwrap();
        std::fs::write(p, data).unwrap();
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(before + std::time::Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn reads_and_pages_come_from_one_cache_shared_by_every_open() {
        let (d, root) = setup("shared");
        let data: Vec<u8> = (0..3 * PAGE + 100).map(|i| u8::try_from(i % 251).unwrap()).collect();
        std::fs::write(d.join("f"), &data).unwrap();
        let a = root.lookup(b"f").unwrap();
        assert_eq!(read_all(&a), data);
        // Another open (a new node: regular files are not name-cached) finds the same pages.
        let b = root.lookup(b"f").unwrap();
        assert!(Arc::ptr_eq(&a.page_cache().unwrap(), &b.page_cache().unwrap()));
        assert_eq!(b.page_cache().unwrap().resident(), 4);
        let pa = a.get_page(3).unwrap();
        let pb = b.get_page(3).unwrap();
        assert_eq!(pa, pb, "one page for both");
        let got = page_bytes(pa);
        assert_eq!(&got[..100], &data[3 * platform::PAGE_SIZE..]);
        assert!(got[100..].iter().all(|&x| x == 0), "past the end: zeros");
        assert_eq!(a.get_page(4), Err(Errno::ENXIO));
        let pm = platform::physmem::get().unwrap();
        pm.page_unref(pa);
        pm.page_unref(pb);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_the_host_changes_is_read_anew() {
        let (d, root) = setup("changed");
        let p = d.join("f");
        std::fs::write(&p, b"old contents").unwrap();
        let a = root.lookup(b"f").unwrap();
        assert_eq!(read_all(&a), b"old contents");
        let held = a.get_page(0).unwrap();
        // Same size, new data: a new lookup (an open) sees it.
        rewrite(&p, b"new contents");
        let b = root.lookup(b"f").unwrap();
        assert_eq!(read_all(&b), b"new contents");
        // So does a read of the node looked up before (each read checks the file).
        rewrite(&p, b"newer, longer contents");
        assert_eq!(read_all(&a), b"newer, longer contents");
        // The page a mapping held stays its own; the cache's is new.
        assert_eq!(&page_bytes(held)[..12], b"old contents");
        let now = b.get_page(0).unwrap();
        assert_ne!(now, held);
        assert_eq!(&page_bytes(now)[..22], b"newer, longer contents");
        // Shorter: the end follows.
        rewrite(&p, b"short");
        assert_eq!(read_all(&b), b"short");
        let pm = platform::physmem::get().unwrap();
        pm.page_unref(held);
        pm.page_unref(now);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_path_renamed_over_is_read_from_the_node_s_own_file() {
        let (d, root) = setup("renamed");
        std::fs::write(d.join("f"), b"first").unwrap();
        let a = root.lookup(b"f").unwrap();
        assert_eq!(read_all(&a), b"first");
        std::fs::write(d.join("g"), b"second file").unwrap();
        std::fs::rename(d.join("g"), d.join("f")).unwrap();
        // The node opened its file (the first read missed the cache): it keeps reading it.
        assert_eq!(read_all(&a), b"first");
        let b = root.lookup(b"f").unwrap();
        assert_eq!(read_all(&b), b"second file");
        assert!(!Arc::ptr_eq(&a.page_cache().unwrap(), &b.page_cache().unwrap()), "another file, another cache");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn pseudo_files_and_files_with_no_block_are_read_uncached() {
        let _ = platform::physmem::init(platform::physmem::MIN_PHYSMEM, None);
        // The host's /proc/version: size 0, and a read returns a line all the same.
        if let Ok(proc) = HostNode::root(PathBuf::from("/proc")) {
            let v = proc.lookup(b"version").unwrap();
            assert!(v.page_cache().is_none());
            assert!(read_all(&v).starts_with(b"Linux version"));
        }
        let (d, root) = setup("sparse");
        std::fs::File::create(d.join("holes")).unwrap().set_len(3 * PAGE).unwrap();
        let v = root.lookup(b"holes").unwrap();
        assert!(v.page_cache().is_none(), "no block on the host: no cache");
        assert_eq!(read_all(&v), vec![0u8; 3 * platform::PAGE_SIZE]);
        assert_eq!(v.get_page(0), Err(Errno::ENODEV));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn caches_nobody_uses_leave_the_table() {
        let (d, _) = setup("table");
        let fs = Arc::new(HostFs { id: new_fs_id(), caches: SpinLock::new("hostfs_caches", HashMap::new()) });
        let root = HostNode::new(Arc::clone(&fs), d.clone(), &hostdir::lstat(&d).unwrap());
        let kept = {
            std::fs::write(d.join("kept"), b"kept").unwrap();
            root.lookup(b"kept").unwrap()
        };
        assert_eq!(read_all(&kept), b"kept");
        for i in 0..200 {
            let name = format!("f{i}");
            std::fs::write(d.join(&name), b"x").unwrap();
            // Asked for its cache, never read: a cache that holds nothing once the node goes.
            let v = root.lookup(name.as_bytes()).unwrap();
            assert!(v.page_cache().is_some());
        }
        let n = fs.caches.lock().len();
        assert!(n < 64, "{n} caches kept");
        assert!(fs.caches.lock().values().any(|c| Arc::ptr_eq(&c.pages, &kept.page_cache().unwrap())), "one in use stays");
        let _ = std::fs::remove_dir_all(&d);
    }
}
