//! Block devices (vkd0, vkd1, … — the `-r`/`-R` disk images) and the buffer cache.
//!
//! A [`BlockDev`] does its I/O on the platform's io threads: the requesting kernel thread
//! queues a pread/pwrite and sleeps until the completion, run on its CPU at a safe point like
//! an interrupt handler, wakes it — a vCPU never blocks on the host disk. At halt, when the
//! other CPUs are stopped and nothing may sleep, [`set_direct_io`] makes I/O synchronous.
//!
//! A [`BufCache`] holds one file system's blocks with write-back: a change marks a buffer
//! dirty; dirty buffers go to the disk at [`BufCache::flush`] (the syncer's pass, sync(2),
//! fsync(2), unmount and halt) or when the cache is over its bound and must evict. The cache
//! has no lock of its own: its file system's lock covers it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use platform::disk::Disk;
use platform::sync::SpinLock;

use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};

/// Largest cache, in bytes of block data.
pub const BCACHE_MAX_BYTES: usize = 8 << 20;
/// Bytes read at once on a miss (read-ahead of the following blocks).
pub const READ_CLUSTER: usize = 32 << 10;

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
fn do_io<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
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

/// A disk: vkdN.
#[derive(Debug)]
pub struct BlockDev {
    pub name: String,
    pub index: usize,
    disk: Arc<Disk>,
}

impl BlockDev {
    /// Open disk image `path` as vkd`index`.
    pub fn open(index: usize, path: &Path, cow: bool) -> Result<Arc<BlockDev>, String> {
        let name = format!("vkd{index}");
        let disk = Disk::open(path, cow).map_err(|e| format!("{name}: cannot open {}: {}", path.display(), std::io::Error::from_raw_os_error(e)))?;
        Ok(Arc::new(BlockDev { name, index, disk: Arc::new(disk) }))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.disk.size()
    }

    pub fn is_cow(&self) -> bool {
        self.disk.is_cow()
    }

    /// Whether the host lets us write the image at all.
    pub fn is_readonly(&self) -> bool {
        self.disk.is_readonly()
    }

    /// Read `len` bytes at `off`.
    pub fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let d = Arc::clone(&self.disk);
        do_io(move || {
            let mut b = vec![0u8; len];
            d.read_at(off, &mut b).map(|()| b)
        })
        .map_err(errno)
    }

    /// Write `data` at `off`.
    pub fn write(&self, off: u64, data: Vec<u8>) -> Result<(), Errno> {
        let d = Arc::clone(&self.disk);
        do_io(move || d.write_at(off, &data)).map_err(errno)
    }

    /// Make written data durable on the host (fdatasync).
    pub fn flush(&self) -> Result<(), Errno> {
        let d = Arc::clone(&self.disk);
        do_io(move || d.flush()).map_err(errno)
    }
}

#[derive(Debug)]
struct Buf {
    data: Vec<u8>,
    dirty: bool,
    used: u64,
}

/// One file system's cached blocks.
#[derive(Debug)]
pub struct BufCache {
    dev: Arc<BlockDev>,
    bsize: usize,
    nblocks: u64,
    bufs: HashMap<u64, Buf>,
    tick: u64,
    max_bufs: usize,
    /// Never write (a read-only mount).
    readonly: bool,
}

impl BufCache {
    /// A cache of `bsize`-byte blocks of `dev`, blocks 0..`nblocks`.
    pub fn new(dev: Arc<BlockDev>, bsize: usize, nblocks: u64, readonly: bool) -> BufCache {
        BufCache { dev, bsize, nblocks, bufs: HashMap::new(), tick: 0, max_bufs: (BCACHE_MAX_BYTES / bsize).max(64), readonly }
    }

    pub fn dev(&self) -> &Arc<BlockDev> {
        &self.dev
    }

    /// Stop or start writing (a remount; the caller flushed before going read-only).
    pub fn set_readonly(&mut self, readonly: bool) {
        self.readonly = readonly;
    }

    pub fn bsize(&self) -> usize {
        self.bsize
    }

    fn check(&self, blk: u64) -> Result<(), Errno> {
        if blk >= self.nblocks {
            log::warn!("{}: block {blk} is past the end of the file system", self.dev.name);
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn ensure(&mut self, blk: u64) -> Result<(), Errno> {
        self.check(blk)?;
        self.tick += 1;
        if let Some(b) = self.bufs.get_mut(&blk) {
            b.used = self.tick;
            return Ok(());
        }
        self.make_room()?;
        let per = (READ_CLUSTER / self.bsize).max(1) as u64;
        let first = blk - blk % per;
        let n = per.min(self.nblocks - first);
        let data = self.dev.read(first * self.bsize as u64, (n as usize) * self.bsize)?;
        for (i, chunk) in data.chunks(self.bsize).enumerate() {
            let b = first + i as u64;
            self.bufs.entry(b).or_insert_with(|| Buf { data: chunk.to_vec(), dirty: false, used: if b == blk { self.tick } else { self.tick.saturating_sub(1) } });
        }
        Ok(())
    }

    /// A block's contents.
    pub fn read(&mut self, blk: u64) -> Result<&[u8], Errno> {
        self.ensure(blk)?;
        self.bufs.get(&blk).map(|b| &b.data[..]).ok_or(Errno::EIO)
    }

    /// A block to change (read first; marked dirty).
    pub fn modify(&mut self, blk: u64) -> Result<&mut [u8], Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        self.ensure(blk)?;
        let b = self.bufs.get_mut(&blk).ok_or(Errno::EIO)?;
        b.dirty = true;
        Ok(&mut b.data[..])
    }

    /// A newly allocated block: zeroed, not read, dirty.
    pub fn zeroed(&mut self, blk: u64) -> Result<&mut [u8], Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        self.check(blk)?;
        if !self.bufs.contains_key(&blk) {
            self.make_room()?;
        }
        self.tick += 1;
        let tick = self.tick;
        let bsize = self.bsize;
        let b = self.bufs.entry(blk).or_insert_with(|| Buf { data: vec![0u8; bsize], dirty: true, used: tick });
        b.data.fill(0);
        b.dirty = true;
        b.used = tick;
        Ok(&mut b.data[..])
    }

    /// Drop a freed block's buffer (its contents no longer matter).
    pub fn forget(&mut self, blk: u64) {
        self.bufs.remove(&blk);
    }

    /// Evict the least recently used eighth when full (writing dirty buffers first).
    fn make_room(&mut self) -> Result<(), Errno> {
        if self.bufs.len() < self.max_bufs {
            return Ok(());
        }
        if self.bufs.values().any(|b| b.dirty) {
            self.flush()?;
        }
        let mut ages: Vec<(u64, u64)> = self.bufs.iter().map(|(&k, b)| (b.used, k)).collect();
        ages.sort_unstable();
        for &(_, k) in ages.iter().take(self.max_bufs / 8 + 1) {
            self.bufs.remove(&k);
        }
        Ok(())
    }

    /// Whether anything waits to be written.
    pub fn is_dirty(&self) -> bool {
        self.bufs.values().any(|b| b.dirty)
    }

    /// Write every dirty buffer, contiguous runs in one write each.
    pub fn flush(&mut self) -> Result<(), Errno> {
        if self.readonly {
            return Ok(());
        }
        let mut dirty: Vec<u64> = self.bufs.iter().filter(|(_, b)| b.dirty).map(|(&k, _)| k).collect();
        if dirty.is_empty() {
            return Ok(());
        }
        dirty.sort_unstable();
        let mut i = 0;
        while i < dirty.len() {
            let start = dirty[i];
            let mut j = i;
            while j + 1 < dirty.len() && dirty[j + 1] == dirty[j] + 1 && j + 1 - i < 256 {
                j += 1;
            }
            let mut out = Vec::with_capacity((j - i + 1) * self.bsize);
            for k in &dirty[i..=j] {
                out.extend_from_slice(&self.bufs[k].data);
            }
            self.dev.write(start * self.bsize as u64, out)?;
            for k in &dirty[i..=j] {
                if let Some(b) = self.bufs.get_mut(k) {
                    b.dirty = false;
                }
            }
            i = j + 1;
        }
        self.dev.flush()
    }
}

/// Major number of vkd disks in st_rdev (as Linux's virtio block devices).
pub const VKD_MAJOR: u64 = 254;
/// Names of the disk nodes in /dev.
pub const VKD_NAMES: [&str; 16] =
    ["vkd0", "vkd1", "vkd2", "vkd3", "vkd4", "vkd5", "vkd6", "vkd7", "vkd8", "vkd9", "vkd10", "vkd11", "vkd12", "vkd13", "vkd14", "vkd15"];

/// `/dev/vkdN`: a disk's block device node. mount(2) takes it as the source of an ext2
/// mount; reading it reads the image (through a read-only handle, beside any mount's cache).
#[derive(Debug)]
pub struct DiskNode {
    fs: crate::fs::mount::FsRef,
    pub index: usize,
    dev: u64,
    ino: u64,
    reader: std::sync::OnceLock<Option<Arc<BlockDev>>>,
}

impl DiskNode {
    /// The node of vkd`index` in the devfs `fs`, whose st_dev is `dev`.
    pub fn new(fs: crate::fs::mount::FsRef, index: usize, dev: u64, ino: u64) -> DiskNode {
        DiskNode { fs, index, dev, ino, reader: std::sync::OnceLock::new() }
    }

    /// The disk a block device number names: vkd`N` for (VKD_MAJOR, N).
    pub fn index_of_rdev(rdev: u64) -> Option<usize> {
        ((rdev >> 8) & 0xfff == VKD_MAJOR).then_some(((rdev & 0xff) | ((rdev >> 12) & !0xff)) as usize)
    }
}

impl crate::fs::vfs::Vnode for DiskNode {
    fn attr(&self) -> Result<crate::fs::vfs::Attr, Errno> {
        let size = crate::kern::init_main::boot_args().disks.get(self.index).and_then(|d| std::fs::metadata(&d.path).ok()).map_or(0, |m| m.len());
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

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let dev = self.reader.get_or_init(|| {
            let d = crate::kern::init_main::boot_args().disks.get(self.index)?;
            BlockDev::open(self.index, &d.path, true).ok()
        });
        let dev = dev.as_ref().ok_or(Errno::ENXIO)?;
        if off >= dev.size() {
            return Ok(0);
        }
        let n = buf.len().min((dev.size() - off).min(1 << 20) as usize);
        let data = dev.read(off, n)?;
        buf[..n].copy_from_slice(&data);
        Ok(n)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EROFS)
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
        let mut c = BufCache::new(dev, 1024, 1024, false);
        c.modify(3).unwrap()[0] = 9;
        c.zeroed(4).unwrap()[1] = 8;
        assert_eq!(std::fs::read(&p).unwrap()[3072], 0, "not written before a flush");
        c.flush().unwrap();
        let f = std::fs::read(&p).unwrap();
        assert_eq!((f[3072], f[4097]), (9, 8));
        assert_eq!(c.read(2000).unwrap_err(), Errno::EIO);
        for b in 0..1024 {
            c.modify(b).unwrap()[5] = 1;
        }
        assert!(c.bufs.len() <= c.max_bufs);
        c.flush().unwrap();
        assert!(std::fs::read(&p).unwrap().chunks(1024).all(|b| b[5] == 1));
        std::fs::remove_file(&p).unwrap();
    }
}
