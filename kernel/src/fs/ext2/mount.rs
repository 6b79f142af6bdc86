//! A mounted ext2 file system as the VFS sees it ([`Ext2Fs`], a [`FileSystem`]): its live
//! nodes (one per inode, so a node's lock is the inode's), the orphans waiting for their last
//! user, the namespace lock, the count of operations under way, sync, remount and unmount.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use super::fs::{Fs, ROOT_INO};
use super::vnode::EXT2_SUPER_MAGIC;
use super::vnode::Ext2Node;
use crate::fs::mount::{FileSystem, new_fs_id};
use crate::fs::vfs::{StatFs, VType, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::sleeplock::RwSleepLock;
use crate::vm::pagecache::PageCache;

/// A mounted ext2 file system.
#[derive(Debug)]
pub struct Ext2Fs {
    /// Its file system identity (`FileSystem::id`).
    id: u64,
    /// st_dev of its files.
    pub dev: u64,
    pub name: String,
    /// The image cannot be written (the host's file) or has features vk cannot write.
    forced_readonly: bool,
    pub bsize: u64,
    pub fs: Fs,
    /// `ext2_ns`: exclusive for namespace changes (one at a time: they lock several inodes)
    /// and a remount; shared for changes of one file's data or attributes (a remount waits
    /// for them).
    pub(super) ns: RwSleepLock<()>,
    /// Operations under way (halt's sync, which cannot wait, leaves a busy file system alone
    /// rather than write half an operation).
    active: AtomicU32,
    pub(super) nodes: SpinLock<HashMap<u32, Weak<Ext2Node>>>,
    orphans: SpinLock<HashSet<u32>>,
    /// `ext2_caches`: the page caches of regular files by inode (a leaf). A cache outlives
    /// its file's node (a file read again after close finds its pages; pages a shared mapping
    /// wrote stay until written back); it goes when its inode is released, or, empty and
    /// clean, when the syncer finds no node of it.
    caches: SpinLock<HashMap<u32, Arc<PageCache>>>,
    /// This file system (for the nodes a write-back needs).
    me: Weak<Ext2Fs>,
}

/// An operation under way: counted in `active`; orphans nobody uses are released after it.
pub(super) struct Op<'a>(&'a Ext2Fs);

impl Drop for Op<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.reap(false);
    }
}

impl Ext2Fs {
    pub fn new(fs: Fs, dev: u64) -> Arc<Ext2Fs> {
        Arc::new_cyclic(|me| Ext2Fs {
            me: Weak::clone(me),
            caches: SpinLock::new("ext2_caches", HashMap::new()),
            id: new_fs_id(),
            dev,
            name: fs.name.clone(),
            forced_readonly: fs.sb.ro_reason.is_some() || fs.cache.dev().is_readonly(),
            bsize: fs.sb.bsize,
            fs,
            ns: RwSleepLock::new("ext2_ns", ()),
            active: AtomicU32::new(0),
            nodes: SpinLock::new("ext2_nodes", HashMap::new()),
            orphans: SpinLock::new("ext2_orphans", HashSet::new()),
        })
    }

    /// The root directory's vnode.
    pub fn root(self: &Arc<Self>) -> VnodeRef {
        self.node(ROOT_INO, VType::Dir)
    }

    /// The live node of `ino`, or a new one (never two at once: one lock per inode).
    pub(super) fn node(self: &Arc<Self>, ino: u32, vtype: VType) -> Arc<Ext2Node> {
        let mut m = self.nodes.lock();
        if let Some(n) = m.get(&ino).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Ext2Node::new(Arc::clone(self), ino, vtype));
        m.insert(ino, Arc::downgrade(&n));
        n
    }

    /// The page cache of regular file `ino`, made on first use (None before physical memory
    /// exists). Called under the inode's lock (any mode): the cache is made once.
    pub(super) fn cache(&self, ino: u32) -> Option<Arc<PageCache>> {
        let mut m = self.caches.lock();
        if let Some(c) = m.get(&ino) {
            return Some(Arc::clone(c));
        }
        let c = PageCache::new()?;
        m.insert(ino, Arc::clone(&c));
        Some(c)
    }

    /// The page cache of `ino` if it has one.
    pub(super) fn cache_if_any(&self, ino: u32) -> Option<Arc<PageCache>> {
        self.caches.lock().get(&ino).cloned()
    }

    /// Inode `ino` is released (or made anew): its cached pages are no one's data.
    pub(super) fn forget_cache(&self, ino: u32) {
        let gone = self.caches.lock().remove(&ino);
        drop(gone);
    }

    /// Whether a shared mapping wrote a page the disk does not have yet.
    fn any_dirty_cache(&self) -> bool {
        let all: Vec<Arc<PageCache>> = self.caches.lock().values().cloned().collect();
        all.iter().any(|c| c.is_dirty())
    }

    /// Write back the pages shared mappings wrote, file by file (under each inode's lock;
    /// `try_only` at halt: a file whose lock is held is left), and let go of caches that are
    /// empty, clean and of no live node. The first error.
    fn write_back_caches(&self, try_only: bool) -> Result<(), Errno> {
        let Some(me) = self.me.upgrade() else { return Ok(()) };
        let all: Vec<(u32, Arc<PageCache>)> = self.caches.lock().iter().map(|(&i, c)| (i, Arc::clone(c))).collect();
        let mut r = Ok(());
        for (ino, c) in all {
            if c.is_dirty() {
                let node = me.node(ino, VType::Reg);
                if let Err(e) = node.write_back(try_only) {
                    r = r.and(Err(e));
                }
            } else if c.resident() == 0 && !self.is_live(ino) {
                let mut m = self.caches.lock();
                // Nobody else holds it (a node made meanwhile would): it can go.
                if m.get(&ino).is_some_and(|x| Arc::ptr_eq(x, &c) && Arc::strong_count(x) == 2) {
                    m.remove(&ino);
                }
            }
        }
        r
    }

    fn is_live(&self, ino: u32) -> bool {
        self.nodes.lock().get(&ino).is_some_and(|w| w.strong_count() > 0)
    }

    /// Whether it is mounted read-only now.
    pub fn is_readonly(&self) -> bool {
        self.fs.is_readonly()
    }

    /// Begin an operation (see [`Op`]).
    pub(super) fn op(&self) -> Op<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        Op(self)
    }

    /// Release the orphans no node holds (`all`: every orphan, at unmount). An orphan has no
    /// name left, so nothing else can reach it; taking it off the set first makes sure only
    /// one thread releases it.
    fn reap(&self, all: bool) {
        if self.is_readonly() || self.orphans.lock().is_empty() {
            return;
        }
        let list: Vec<u32> = self.orphans.lock().iter().copied().collect();
        for ino in list {
            if (all || !self.is_live(ino)) && self.orphans.lock().remove(&ino) {
                self.forget_cache(ino);
                self.active.fetch_add(1, Ordering::AcqRel);
                if let Err(e) = self.fs.release_inode(ino) {
                    crate::kprintf!("{}: ext2: cannot release inode {ino}: {e}\n", self.name);
                }
                self.active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Whether any file is in use (open, a working directory, mapped): a live node other
    /// than the root, or the root held by more than the mount table and umount2's own lookup.
    pub fn busy(&self) -> bool {
        self.nodes
            .lock()
            .iter()
            .any(|(&ino, w)| if ino == ROOT_INO { w.strong_count() > 2 } else { w.strong_count() > 0 })
    }

    pub(super) fn orphan(&self, ino: u32) {
        self.orphans.lock().insert(ino);
    }

    /// An orphan linked into a directory again: it is no longer to be released.
    pub(super) fn unorphan(&self, ino: u32) {
        self.orphans.lock().remove(&ino);
    }

    /// Write everything dirty, or, when halting (nothing may sleep), only if no operation is
    /// under way. `unmount`: release every orphan and mark the file system clean.
    pub fn sync(&self, unmount: bool) -> Result<(), Errno> {
        let halting = crate::fs::bcache::direct_io();
        // Nothing to write (the syncer's usual pass): done, without counting as an operation
        // (a halt that stops this thread here finds the file system idle).
        if !unmount
            && !self.fs.cache.is_dirty()
            && self.fs.meta.peek(|m| m.dirty) == Some(false)
            && self.orphans.lock().is_empty()
            && !self.any_dirty_cache()
        {
            return Ok(());
        }
        if halting && self.active.load(Ordering::Acquire) > 0 {
            crate::kprintf_nolock!("{}: busy, not synced\n", self.name);
            return Err(Errno::EBUSY);
        }
        self.active.fetch_add(1, Ordering::AcqRel);
        self.reap(unmount);
        let wb = if self.is_readonly() { Ok(()) } else { self.write_back_caches(halting) };
        let r = self.fs.sync(unmount, halting).and(wb);
        self.active.fetch_sub(1, Ordering::AcqRel);
        if r == Err(Errno::EBUSY) {
            crate::kprintf_nolock!("{}: busy, not synced\n", self.name);
        }
        r
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
        let _op = self.op();
        let fs = &self.fs;
        let m = fs.meta.lock();
        Ok(StatFs {
            magic: EXT2_SUPER_MAGIC,
            bsize: fs.sb.bsize,
            blocks: fs.sb.blocks,
            bfree: m.sb.free_blocks(),
            files: u64::from(fs.sb.inodes),
            ffree: m.sb.free_inodes(),
        })
    }

    fn cache_bytes_nowait(&self) -> Option<u64> {
        self.fs.cache.cached_bytes_nowait()
    }

    /// FILEID_INO32_GEN: the inode number and its generation, 4 bytes each (Linux's
    /// generic_encode_ino32_fh, which ext2 uses).
    fn encode_handle(&self, v: &VnodeRef) -> Option<(i32, Vec<u8>)> {
        let ino = u32::try_from(v.ino()).ok()?;
        let _op = self.op();
        let ip = self.fs.read_inode(ino).ok()?;
        let mut b = ino.to_le_bytes().to_vec();
        b.extend_from_slice(&ip.generation.to_le_bytes());
        Some((crate::abi::fs::FILEID_INO32_GEN, b))
    }

    /// As ext2_nfs_get_inode: ESTALE for a reserved or out-of-range inode number, an inode
    /// not in use, or another generation.
    fn decode_handle(&self, ty: i32, bytes: &[u8]) -> Result<VnodeRef, Errno> {
        let word = |i: usize| bytes.get(i * 4..i * 4 + 4).and_then(|w| w.try_into().ok()).map(u32::from_le_bytes);
        let (Some(ino), Some(generation)) = (word(0), word(1)) else { return Err(Errno::ESTALE) };
        if ty != crate::abi::fs::FILEID_INO32_GEN || (ino < self.fs.sb.first_ino && ino != ROOT_INO) || ino > self.fs.sb.inodes {
            return Err(Errno::ESTALE);
        }
        let me = self.me.upgrade().ok_or(Errno::ESTALE)?;
        let _op = self.op();
        let ip = self.fs.read_inode(ino).map_err(|_| Errno::ESTALE)?;
        if ip.mode == 0 || ip.dtime != 0 || (ip.links == 0 && !self.is_live(ino)) || ip.generation != generation {
            return Err(Errno::ESTALE);
        }
        let v: VnodeRef = me.node(ino, ip.vtype());
        Ok(v)
    }

    fn sync(&self) -> Result<(), Errno> {
        Ext2Fs::sync(self, false).map_err(|_| Errno::EIO)
    }

    fn forced_readonly(&self) -> bool {
        self.forced_readonly
    }

    /// Going read-only: orphans released, everything written, the file system marked clean
    /// on disk (EBUSY while an unlinked file is still open); read/write again: not clean
    /// until the next unmount, as at mount. `ext2_ns` exclusive keeps every change out
    /// meanwhile.
    fn set_readonly(&self, readonly: bool) -> Result<(), Errno> {
        let _op = self.op();
        let _ns = self.ns.write();
        if readonly {
            self.reap(false);
            if !self.orphans.lock().is_empty() {
                return Err(Errno::EBUSY);
            }
            self.write_back_caches(false)?;
        }
        self.fs.set_readonly(readonly)
    }

    fn busy(&self) -> bool {
        Ext2Fs::busy(self)
    }

    fn unmount(&self) -> Result<(), Errno> {
        super::forget(self.dev);
        let r = Ext2Fs::sync(self, true);
        self.fs.cache.dev().release();
        r
    }
}
