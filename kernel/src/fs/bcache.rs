//! Block devices (vkd0, vkd1, … — the `-r`/`-R` disk images) and the buffer cache.
//!
//! A [`BlockDev`] does its I/O on the platform's io threads: the requesting kernel thread
//! queues a pread/pwrite and sleeps until the completion, run on its CPU at a safe point like
//! an interrupt handler, wakes it — a vCPU never blocks on the host disk. At halt, when the
//! other CPUs are stopped and nothing may sleep, [`set_direct_io`] makes I/O synchronous.
//!
//! A [`BufCache`] holds one file system's blocks with write-back: a change marks a buffer
//! dirty; dirty buffers go to the disk at [`BufCache::flush`] (the syncer's pass, sync(2),
//! fsync(2), unmount and halt) or when the cache is over its bound and must evict. It has its
//! own locks: the block map is a spinlock (`bcache`), each block a sleep lock (`buf`, held
//! while the block is read in or looked at; one at a time), so readers of different blocks,
//! and of one block already cached, do not wait for each other's disk reads.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use platform::disk::Disk;
use platform::sync::SpinLock;

pub use crate::fs::blockdev::BlockIo;

use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::sleeplock::{RwSleepLock, SleepLock};

/// Largest cache, in bytes of block data.
pub const BCACHE_MAX_BYTES: usize = 8 << 20;
/// Bytes read at once on a miss (read-ahead of the following blocks).
pub const READ_CLUSTER: usize = 32 << 10;
/// Most bytes one [`BufCache::prefetch`] reads.
pub const PREFETCH_MAX: usize = 256 << 10;

static DIRECT_IO: AtomicBool = AtomicBool::new(false);

/// From now on do disk I/O on the calling CPU (halt: the other CPUs are stopped).
pub fn set_direct_io() {
    DIRECT_IO.store(true, Ordering::SeqCst);
}

/// Whether I/O is synchronous (halting).
pub fn direct_io() -> bool {
    DIRECT_IO.load(Ordering::SeqCst)
}

/// Run `work` on an io thread and sleep until it is done; directly when halting or when no
/// kernel thread runs (unit tests, early boot).
pub(crate) fn do_io<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    if direct_io() || crate::kern::sched::curthread().is_none() {
        return work();
    }
    type Slot<T> = SpinLock<Option<T>>;
    let slot: Arc<Slot<T>> = Arc::new(SpinLock::new("bio", None));
    let chan = wchan_of(&*slot);
    let done = Arc::clone(&slot);
    platform::io::submit(platform::cpu::curcpu(), work, move |r| {
        *done.lock() = Some(r);
        wakeup(chan);
    });
    loop {
        let g = sleepq_lock(chan);
        if let Some(r) = slot.lock().take() {
            drop(g);
            return r;
        }
        tsleep_locked(g, "biord", SleepOpts::UNINTERRUPTIBLE);
    }
}

fn errno(e: i32) -> Errno {
    Errno::from_num(e).unwrap_or(Errno::EIO)
}

/// A block device a file system is mounted from: vkdN (a disk image, [`DiskIo`]) or a loop
/// device (a file, fs/loopdev.rs) — its I/O is a [`BlockIo`].
#[derive(Debug)]
pub struct BlockDev {
    /// vkdN, loopN: for messages, and to refuse a second mount.
    pub name: String,
    /// Its device number (st_dev of the files of a file system on it).
    pub rdev: u64,
    io: Arc<dyn BlockIo>,
}

/// The I/O of a disk image, on the platform's io threads.
#[derive(Debug)]
pub struct DiskIo(Arc<Disk>);

impl BlockIo for DiskIo {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn is_readonly(&self) -> bool {
        self.0.is_readonly()
    }

    fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let d = Arc::clone(&self.0);
        do_io(move || {
            let mut b = vec![0u8; len];
            d.read_at(off, &mut b).map(|()| b)
        })
        .map_err(errno)
    }

    fn write(&self, off: u64, data: Vec<u8>) -> Result<(), Errno> {
        let d = Arc::clone(&self.0);
        do_io(move || d.write_at(off, &data)).map_err(errno)
    }

    fn flush(&self) -> Result<(), Errno> {
        let d = Arc::clone(&self.0);
        do_io(move || d.flush()).map_err(errno)
    }
}

impl BlockDev {
    /// Open disk image `path` as vkd`index`.
    pub fn open(index: usize, path: &Path, cow: bool) -> Result<Arc<BlockDev>, String> {
        let name = format!("vkd{index}");
        let disk = Disk::open(path, cow)
            .map_err(|e| format!("{name}: cannot open {}: {}", path.display(), std::io::Error::from_raw_os_error(e)))?;
        let rdev = (VKD_MAJOR << 8) | index as u64;
        Ok(Arc::new(BlockDev { name, rdev, io: Arc::new(DiskIo(Arc::new(disk))) }))
    }

    /// A block device `name` numbered `rdev` doing its I/O with `io`.
    pub fn new(name: String, rdev: u64, io: Arc<dyn BlockIo>) -> Arc<BlockDev> {
        Arc::new(BlockDev { name, rdev, io })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.io.size()
    }

    /// Whether the device cannot be written (the host's image, a read-only loop device).
    pub fn is_readonly(&self) -> bool {
        self.io.is_readonly()
    }

    /// Read `len` bytes at `off`.
    pub fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        self.io.read(off, len)
    }

    /// Write `data` at `off`.
    pub fn write(&self, off: u64, data: Vec<u8>) -> Result<(), Errno> {
        self.io.write(off, data)
    }

    /// Make written data durable (fdatasync of the image or the backing file).
    pub fn flush(&self) -> Result<(), Errno> {
        self.io.flush()
    }

    /// The file system on it is unmounted: it lets the device go (a loop device with
    /// LO_FLAGS_AUTOCLEAR is detached when no one else has it open).
    pub fn release(&self) {
        self.io.release();
    }
}

/// One cached block. Its contents are under their own reader-writer sleep lock (`buf`):
/// shared to look at them, exclusive to read the block in or change it; never two at once.
#[derive(Debug)]
struct Buf {
    data: RwSleepLock<BufData>,
    /// Last use (the cache's tick), for eviction.
    used: AtomicU64,
}

#[derive(Debug)]
struct BufData {
    bytes: Vec<u8>,
    /// Read from the disk (or made zeroed) yet.
    valid: bool,
    dirty: bool,
    /// Bumped by every change: a flush marks the buffer clean only if nothing changed it
    /// while its copy was being written.
    version: u64,
}

#[derive(Debug, Default)]
struct CacheState {
    bufs: HashMap<u64, Arc<Buf>>,
    tick: u64,
    /// Bumped whenever a buffer leaves the cache: a read-ahead that began before must not put
    /// its (possibly older) copies of the blocks around back in.
    evictions: u64,
}

/// One file system's cached blocks. Safe to share: the block map is a spinlock (`bcache`,
/// never held across I/O), each block has its own sleep lock. Callers see a block only inside
/// a closure ([`BufCache::read`], [`BufCache::modify`]), so no caller holds two.
#[derive(Debug)]
pub struct BufCache {
    dev: Arc<BlockDev>,
    bsize: usize,
    nblocks: u64,
    state: SpinLock<CacheState>,
    /// One flush at a time (`bflush`): a flush still writing a freed block's old contents
    /// must be done before the next one writes the block's new ones.
    flushing: SleepLock<()>,
    /// Dirty buffers, so that a sync with nothing to write costs nothing.
    ndirty: AtomicUsize,
    max_bufs: usize,
    /// Never write (a read-only mount; a remount changes it).
    readonly: AtomicBool,
}

impl BufCache {
    /// A cache of `bsize`-byte blocks of `dev`, blocks 0..`nblocks`.
    pub fn new(dev: Arc<BlockDev>, bsize: usize, nblocks: u64, readonly: bool) -> BufCache {
        BufCache {
            dev,
            bsize,
            nblocks,
            state: SpinLock::new("bcache", CacheState::default()),
            flushing: SleepLock::new("bflush", ()),
            ndirty: AtomicUsize::new(0),
            max_bufs: (BCACHE_MAX_BYTES / bsize).max(64),
            readonly: AtomicBool::new(readonly),
        }
    }

    pub fn dev(&self) -> &Arc<BlockDev> {
        &self.dev
    }

    /// Stop or start writing (a remount; the caller flushed before going read-only).
    pub fn set_readonly(&self, readonly: bool) {
        self.readonly.store(readonly, Ordering::Release);
    }

    fn is_readonly(&self) -> bool {
        self.readonly.load(Ordering::Acquire)
    }

    pub fn bsize(&self) -> usize {
        self.bsize
    }

    /// Bytes of cached blocks, without waiting (None while the block map is locked).
    pub fn cached_bytes_nowait(&self) -> Option<u64> {
        let n = self.state.try_lock()?.bufs.len();
        u64::try_from(n.saturating_mul(self.bsize)).ok()
    }

    fn check(&self, blk: u64) -> Result<(), Errno> {
        if blk >= self.nblocks {
            log::warn!("{}: block {blk} is past the end of the file system", self.dev.name);
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// The buffer of `blk`, made (not yet valid) if absent.
    fn buf(&self, blk: u64) -> Result<Arc<Buf>, Errno> {
        self.check(blk)?;
        if self.state.lock().bufs.len() >= self.max_bufs {
            self.make_room()?;
        }
        let mut st = self.state.lock();
        st.tick += 1;
        let tick = st.tick;
        let bsize = self.bsize;
        let b = st.bufs.entry(blk).or_insert_with(|| {
            Arc::new(Buf {
                data: RwSleepLock::new(
                    "buf",
                    BufData { bytes: vec![0; bsize], valid: false, dirty: false, version: 0 },
                ),
                used: AtomicU64::new(tick),
            })
        });
        b.used.store(tick, Ordering::Relaxed);
        Ok(Arc::clone(b))
    }

    /// Read `blk` into its locked, invalid buffer, with the blocks around it (a cluster) as
    /// read-ahead for those not cached.
    fn fill(&self, blk: u64, d: &mut BufData) -> Result<(), Errno> {
        let per = (READ_CLUSTER / self.bsize).max(1) as u64;
        let first = blk - blk % per;
        let n = per.min(self.nblocks - first);
        let evictions = self.state.lock().evictions;
        let data = self.dev.read(first * self.bsize as u64, usize_of(n) * self.bsize)?;
        let at = usize_of(blk - first) * self.bsize;
        d.bytes.copy_from_slice(&data[at..at + self.bsize]);
        d.valid = true;
        self.insert_clean(first, &data, evictions);
        Ok(())
    }

    /// Read the blocks of `first..first + n` that are not cached, from the first of them to the
    /// last, with one device read (at most [`PREFETCH_MAX`] bytes): for a caller about to read
    /// them all (a page-cache fill of a file's contiguous blocks), which would otherwise wait
    /// for one [`READ_CLUSTER`] after another. Blocks already cached are left as they are;
    /// nothing is read when the cache has no room for the run.
    pub fn prefetch(&self, first: u64, n: u64) -> Result<(), Errno> {
        let max = (PREFETCH_MAX / self.bsize).max(1) as u64;
        let end = first.saturating_add(n.min(max)).min(self.nblocks);
        let (lo, hi, evictions) = {
            let st = self.state.lock();
            let Some(lo) = (first..end).find(|b| !st.bufs.contains_key(b)) else { return Ok(()) };
            let hi = (lo..end).rev().find(|b| !st.bufs.contains_key(b)).map_or(lo, |b| b + 1);
            if st.bufs.len() + usize_of(hi - lo) > self.max_bufs {
                return Ok(());
            }
            (lo, hi, st.evictions)
        };
        if hi - lo < 2 {
            // One block: the reader's own miss reads its cluster.
            return Ok(());
        }
        let data = self.dev.read(lo * self.bsize as u64, usize_of(hi - lo) * self.bsize)?;
        self.insert_clean(lo, &data, evictions);
        Ok(())
    }

    /// Put the blocks read from `first` on (`data`, read when the cache had seen `evictions`
    /// evictions) in as clean, valid buffers where the cache has none — unless a buffer left the
    /// cache since (it may have been written after our read: our copy could be older) or there
    /// is no room.
    fn insert_clean(&self, first: u64, data: &[u8], evictions: u64) {
        let mut st = self.state.lock();
        let n = data.len() / self.bsize;
        if st.evictions != evictions || st.bufs.len() + n > self.max_bufs {
            return;
        }
        let tick = st.tick.saturating_sub(1);
        for (i, chunk) in data.chunks(self.bsize).enumerate() {
            st.bufs.entry(first + i as u64).or_insert_with(|| {
                Arc::new(Buf {
                    data: RwSleepLock::new("buf", BufData { bytes: chunk.to_vec(), valid: true, dirty: false, version: 0 }),
                    used: AtomicU64::new(tick),
                })
            });
        }
    }

    /// Run `f` on the contents of `blk`.
    pub fn read<R>(&self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, Errno> {
        let b = self.buf(blk)?;
        {
            let d = b.data.read();
            if d.valid {
                return Ok(f(&d.bytes));
            }
        }
        let mut d = b.data.write();
        if !d.valid {
            self.fill(blk, &mut d)?;
        }
        Ok(f(&d.bytes))
    }

    /// Run `f` on `blk` to change it (read first; marked dirty).
    pub fn modify<R>(&self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, Errno> {
        if self.is_readonly() {
            return Err(Errno::EROFS);
        }
        let b = self.buf(blk)?;
        let mut d = b.data.write();
        if !d.valid {
            self.fill(blk, &mut d)?;
        }
        self.mark_dirty(&mut d);
        Ok(f(&mut d.bytes))
    }

    /// A newly allocated block: zeroed, not read, dirty.
    pub fn zeroed(&self, blk: u64) -> Result<(), Errno> {
        if self.is_readonly() {
            return Err(Errno::EROFS);
        }
        let b = self.buf(blk)?;
        let mut d = b.data.write();
        d.bytes.fill(0);
        d.valid = true;
        self.mark_dirty(&mut d);
        Ok(())
    }

    /// Drop a freed block's buffer (its contents no longer matter): out of the cache, and
    /// clean, so a flush that still holds it does not write it.
    pub fn forget(&self, blk: u64) {
        let old = {
            let mut st = self.state.lock();
            let old = st.bufs.remove(&blk);
            if old.is_some() {
                st.evictions += 1;
            }
            old
        };
        if let Some(b) = old {
            let mut d = b.data.write();
            self.mark_clean(&mut d);
            d.version += 1;
        }
    }

    /// A buffer changed: dirty (counted), and a new version for a flush under way to see.
    fn mark_dirty(&self, d: &mut BufData) {
        if !d.dirty {
            d.dirty = true;
            self.ndirty.fetch_add(1, Ordering::AcqRel);
        }
        d.version += 1;
    }

    fn mark_clean(&self, d: &mut BufData) {
        if d.dirty {
            d.dirty = false;
            self.ndirty.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Evict the least recently used eighth of the buffers nobody is using, writing dirty
    /// buffers first.
    fn make_room(&self) -> Result<(), Errno> {
        if self.is_dirty() {
            self.flush()?;
        }
        let mut st = self.state.lock();
        if st.bufs.len() < self.max_bufs {
            return Ok(());
        }
        // Idle (only the map holds it) and clean: a buffer in use or changed since the flush
        // stays. peek: the spinlock is held, so no waiting here.
        let mut ages: Vec<(u64, u64)> = st
            .bufs
            .iter()
            .filter(|(_, b)| Arc::strong_count(b) == 1 && b.data.peek(|d| !d.dirty) == Some(true))
            .map(|(&k, b)| (b.used.load(Ordering::Relaxed), k))
            .collect();
        ages.sort_unstable();
        for &(_, k) in ages.iter().take(self.max_bufs / 8 + 1) {
            st.bufs.remove(&k);
        }
        st.evictions += 1;
        Ok(())
    }

    /// Whether anything waits to be written.
    pub fn is_dirty(&self) -> bool {
        self.ndirty.load(Ordering::Acquire) > 0
    }

    /// Write every dirty buffer, contiguous runs in one write each. With `try_only` (halt:
    /// nothing may sleep) a buffer someone holds is left, and the result is EBUSY.
    pub fn flush_with(&self, try_only: bool) -> Result<(), Errno> {
        if self.is_readonly() || !self.is_dirty() {
            return Ok(());
        }
        let _one = if try_only {
            match self.flushing.try_lock() {
                Some(g) => g,
                None => return Err(Errno::EBUSY),
            }
        } else {
            self.flushing.lock()
        };
        let mut bufs: Vec<(u64, Arc<Buf>)> = self.state.lock().bufs.iter().map(|(&k, b)| (k, Arc::clone(b))).collect();
        bufs.sort_unstable_by_key(|(k, _)| *k);
        // Copy each dirty block (one buffer lock at a time), noting the version copied. A
        // buffer seen clean without waiting is skipped unlocked.
        let mut dirty: Vec<(u64, &Arc<Buf>, u64, Vec<u8>)> = Vec::new();
        let mut busy = false;
        for (k, b) in &bufs {
            if b.data.peek(|d| d.dirty) == Some(false) {
                continue;
            }
            let d = if try_only {
                match b.data.try_read() {
                    Some(d) => d,
                    None => {
                        busy = true;
                        continue;
                    }
                }
            } else {
                b.data.read()
            };
            if d.dirty && d.valid {
                dirty.push((*k, b, d.version, d.bytes.clone()));
            }
        }
        let mut i = 0;
        while i < dirty.len() {
            let mut j = i;
            while j + 1 < dirty.len() && dirty[j + 1].0 == dirty[j].0 + 1 && j + 1 - i < 256 {
                j += 1;
            }
            let mut out = Vec::with_capacity((j - i + 1) * self.bsize);
            for (_, _, _, bytes) in &dirty[i..=j] {
                out.extend_from_slice(bytes);
            }
            self.dev.write(dirty[i].0 * self.bsize as u64, out)?;
            // Clean now, unless changed while the copy was on its way.
            for (_, b, version, _) in &dirty[i..=j] {
                let d = if try_only { b.data.try_write() } else { Some(b.data.write()) };
                if let Some(mut d) = d
                    && d.version == *version
                {
                    self.mark_clean(&mut d);
                }
            }
            i = j + 1;
        }
        self.dev.flush()?;
        if busy { Err(Errno::EBUSY) } else { Ok(()) }
    }

    /// Write every dirty buffer (waiting for buffers in use).
    pub fn flush(&self) -> Result<(), Errno> {
        self.flush_with(false)
    }
}

/// Major number of vkd disks in st_rdev (as Linux's virtio block devices).
pub const VKD_MAJOR: u64 = 254;
/// Names of the disk nodes in /dev.
pub const VKD_NAMES: [&str; 16] = [
    "vkd0", "vkd1", "vkd2", "vkd3", "vkd4", "vkd5", "vkd6", "vkd7", "vkd8", "vkd9", "vkd10", "vkd11", "vkd12", "vkd13",
    "vkd14", "vkd15",
];

/// `/dev/vkdN`: a disk's block device node. mount(2) takes it as the source of an ext2
/// mount; reading it reads the image (through a read-only handle, beside any mount's cache);
/// writing it (mke2fs) writes the image while no file system on it is mounted (EBUSY while
/// one is: it would not see the change) and the disk is not copy-on-write (`-R`: EROFS).
#[derive(Debug)]
pub struct DiskNode {
    fs: crate::fs::mount::FsRef,
    pub index: usize,
    dev: u64,
    ino: u64,
    reader: std::sync::OnceLock<Option<Arc<BlockDev>>>,
    writer: std::sync::OnceLock<Option<Arc<BlockDev>>>,
}

impl DiskNode {
    /// The node of vkd`index` in the devfs `fs`, whose st_dev is `dev`.
    pub fn new(fs: crate::fs::mount::FsRef, index: usize, dev: u64, ino: u64) -> DiskNode {
        DiskNode { fs, index, dev, ino, reader: std::sync::OnceLock::new(), writer: std::sync::OnceLock::new() }
    }

    /// The disk a block device number names: vkd`N` for (VKD_MAJOR, N).
    pub fn index_of_rdev(rdev: u64) -> Option<usize> {
        ((rdev >> 8) & 0xfff == VKD_MAJOR).then_some(usize_of((rdev & 0xff) | ((rdev >> 12) & !0xff)))
    }

    /// The read-only handle of the image (ENXIO when it cannot be opened).
    fn reader(&self) -> Result<&Arc<BlockDev>, Errno> {
        let dev = self.reader.get_or_init(|| {
            let d = crate::kern::init_main::boot_args().disks.get(self.index)?;
            BlockDev::open(self.index, &d.path, true).ok()
        });
        dev.as_ref().ok_or(Errno::ENXIO)
    }

    /// fsync: the image written through the node is made durable.
    pub fn flush(&self) -> Result<(), Errno> {
        match self.writer.get() {
            Some(Some(dev)) => dev.flush(),
            _ => Ok(()),
        }
    }

    /// Size and writability, for the block ioctls. A copy-on-write disk (`-R`) counts as
    /// writable, as the file system mounted from it is (BLKROGET 1 makes e2fsck refuse to
    /// check it), though its node refuses writes; a disk the host does not let vk write is
    /// read-only.
    pub fn info(&self) -> Result<crate::fs::blockdev::BlockInfo, Errno> {
        let size = self.reader()?.size();
        let d = crate::kern::init_main::boot_args().disks.get(self.index).ok_or(Errno::ENXIO)?;
        let readonly = !d.cow && std::fs::OpenOptions::new().write(true).open(&d.path).is_err();
        Ok(crate::fs::blockdev::BlockInfo { size, readonly })
    }
}

impl crate::fs::vfs::Vnode for DiskNode {
    fn attr(&self) -> Result<crate::fs::vfs::Attr, Errno> {
        let size = crate::kern::init_main::boot_args()
            .disks
            .get(self.index)
            .and_then(|d| std::fs::metadata(&d.path).ok())
            .map_or(0, |m| m.len());
        Ok(crate::fs::vfs::Attr {
            dev: self.dev,
            ino: self.ino,
            mode: crate::fs::vfs::S_IFBLK | 0o600,
            nlink: 1,
            rdev: (VKD_MAJOR << 8) | (self.index as u64 & 0xff),
            size,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn vtype(&self) -> crate::fs::vfs::VType {
        crate::fs::vfs::VType::Blk
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let dev = self.reader()?;
        if off >= dev.size() {
            return Ok(0);
        }
        let n = buf.len().min((dev.size() - off).min(1 << 20) as usize);
        let data = dev.read(off, n)?;
        buf[..n].copy_from_slice(&data);
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let d = crate::kern::init_main::boot_args().disks.get(self.index).ok_or(Errno::ENXIO)?;
        if d.cow {
            return Err(Errno::EROFS);
        }
        let dev = self.writer.get_or_init(|| BlockDev::open(self.index, &d.path, false).ok());
        let dev = dev.as_ref().ok_or(Errno::ENXIO)?;
        if dev.is_readonly() {
            return Err(Errno::EROFS);
        }
        if crate::fs::ext2::is_mounted(&dev.name) {
            return Err(Errno::EBUSY);
        }
        if off >= dev.size() {
            return Err(Errno::ENOSPC);
        }
        let n = buf.len().min((dev.size() - off).min(1 << 20) as usize);
        dev.write(off, buf[..n].to_vec())?;
        Ok(n)
    }

    fn fs(&self) -> crate::fs::mount::FsRef {
        Arc::clone(&self.fs)
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_back_and_eviction() {
        let p = std::env::temp_dir().join(format!("vk-bcache-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let dev = BlockDev::open(0, &p, false).unwrap();
        let c = BufCache::new(dev, 1024, 1024, false);
        c.modify(3, |b| b[0] = 9).unwrap();
        c.zeroed(4).unwrap();
        c.modify(4, |b| b[1] = 8).unwrap();
        assert_eq!(std::fs::read(&p).unwrap()[3072], 0, "not written before a flush");
        c.flush().unwrap();
        assert!(!c.is_dirty());
        let f = std::fs::read(&p).unwrap();
        assert_eq!((f[3072], f[4097]), (9, 8));
        assert_eq!(c.read(2000, |_| ()).unwrap_err(), Errno::EIO);
        for b in 0..1024 {
            c.modify(b, |d| d[5] = 1).unwrap();
        }
        assert!(c.state.lock().bufs.len() <= c.max_bufs);
        c.flush().unwrap();
        assert!(std::fs::read(&p).unwrap().chunks(1024).all(|b| b[5] == 1));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn prefetch_reads_the_uncached_blocks_and_keeps_the_cached_ones() {
        let p = std::env::temp_dir().join(format!("vk-bcache-pf-{}", std::process::id()));
        let image: Vec<u8> = (0..1024u32).flat_map(|b| vec![u8::try_from(b % 251).unwrap(); 1024]).collect();
        std::fs::write(&p, &image).unwrap();
        let dev = BlockDev::open(0, &p, false).unwrap();
        let c = BufCache::new(dev, 1024, 1024, false);
        // Block 70 changed in the cache only: the prefetch must not bring the disk's copy back.
        c.modify(70, |b| b[0] = 0xee).unwrap();
        // (Its read cached its cluster, 64..96.)
        assert!(!c.state.lock().bufs.contains_key(&96));
        c.prefetch(64, 100).unwrap();
        assert!((64..164).all(|b| c.state.lock().bufs.contains_key(&b)), "the whole run is cached");
        assert_eq!(c.read(70, |b| b[0]).unwrap(), 0xee);
        assert_eq!(c.read(70, |b| b[1]).unwrap(), 70);
        assert!((64..164).all(|b| c.read(b, |d| d[7]).unwrap() == u8::try_from(b % 251).unwrap()));
        // Past the end, at most PREFETCH_MAX at once, nothing when all is cached.
        c.prefetch(1000, 100).unwrap();
        assert!(c.state.lock().bufs.contains_key(&1023) && !c.state.lock().bufs.contains_key(&1024));
        c.prefetch(300, 10_000).unwrap();
        let max = (PREFETCH_MAX / 1024) as u64;
        assert!(c.state.lock().bufs.contains_key(&(300 + max - 1)) && !c.state.lock().bufs.contains_key(&(300 + max)));
        c.prefetch(64, 100).unwrap();
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn threads_share_the_cache() {
        let p = std::env::temp_dir().join(format!("vk-bcache-mt-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let dev = BlockDev::open(0, &p, false).unwrap();
        // A small cache (64 buffers): the threads evict each other's blocks all the time.
        let c = Arc::new(BufCache::new(dev, 4096, 256, false));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for round in 0..3u8 {
                        for b in (u64::from(t)..256).step_by(4) {
                            c.modify(b, |d| d[usize::from(round)] = t + 1).unwrap();
                            assert_eq!(c.read(b, |d| d[usize::from(round)]).unwrap(), t + 1);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        c.flush().unwrap();
        let f = std::fs::read(&p).unwrap();
        for (b, blk) in f.chunks(4096).take(256).enumerate() {
            assert_eq!(&blk[..3], &[u8::try_from(b % 4).unwrap() + 1; 3], "block {b}");
        }
        std::fs::remove_file(&p).unwrap();
    }
}
