//! One mounted ext2 file system's state ([`Fs`]: superblock, group descriptors, block cache),
//! mounting (read and check everything before believing it), and syncing.
//!
//! `Fs` is shared by every operation at once (`&self`): what never changes after mount (the
//! geometry in `sb`, where each group's bitmaps and inode table are) is read freely; the
//! free counts, the superblock as it is written back and the group descriptors are
//! [`Meta`], under the allocation lock `ext2_alloc`; blocks are the cache's, each under its
//! own lock. Which operation may touch which inode is the vnode layer's business (inode locks).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::le::{get32, low32};
use super::sb::{GD_SIZE, Group, SB_OFFSET, SB_SIZE, STATE_VALID, Superblock};
use crate::fs::bcache::{BlockDev, BufCache};
use crate::fs::vfs::VType;
use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;
use crate::kern::sleeplock::{SleepGuard, SleepLock};

/// Root directory inode.
pub const ROOT_INO: u32 = 2;

/// What allocation changes: the superblock as written back (free counts, state, features),
/// the group descriptors' counts, and whether they changed since the last sync. Under the
/// allocation lock (`ext2_alloc`), which bitmap changes hold too.
#[derive(Debug)]
pub struct Meta {
    pub sb: Superblock,
    pub groups: Vec<Group>,
    pub dirty: bool,
}

/// A mounted file system.
#[derive(Debug)]
pub struct Fs {
    /// The superblock as mounted, for its geometry (never changed after mount; the counts in
    /// it are stale: they live in [`Meta`]).
    pub sb: Superblock,
    /// Each group's descriptor as mounted, for its locations (bitmaps, inode table).
    pub group_locs: Vec<Group>,
    pub meta: SleepLock<Meta>,
    pub cache: BufCache,
    /// Mounted read-only (a remount changes it, with the namespace lock held exclusive).
    readonly: AtomicBool,
    /// vkdN, for messages.
    pub name: String,
}

/// Seconds since the epoch, as ext2 stores times.
pub fn now_secs() -> u32 {
    low32(platform::time::realtime_ns() / 1_000_000_000)
}

impl Fs {
    /// Read and check the superblock, group descriptors and root inode of `dev`.
    pub fn mount(dev: Arc<BlockDev>, want_ro: bool) -> Result<Fs, String> {
        let name = dev.name.clone();
        if dev.size() < SB_OFFSET + SB_SIZE as u64 {
            return Err(format!("disk of {} bytes is too small for ext2", dev.size()));
        }
        let raw = dev.read(SB_OFFSET, SB_SIZE).map_err(|e| format!("cannot read the superblock: {e}"))?;
        let sb = Superblock::parse(&raw, dev.size())?;
        if sb.free_blocks() > sb.blocks || sb.free_inodes() > u64::from(sb.inodes) {
            return Err("superblock free counts exceed the totals".into());
        }
        let readonly = want_ro || sb.ro_reason.is_some();
        let cache = BufCache::new(dev, usize_of(sb.bsize), sb.blocks, readonly);
        let gdt_blocks = (sb.ngroups * GD_SIZE as u64).div_ceil(sb.bsize);
        if sb.gdt_block() + gdt_blocks > sb.blocks {
            return Err("group descriptor table is outside the file system".into());
        }
        let mut groups = Vec::with_capacity(usize_of(sb.ngroups));
        for g in 0..sb.ngroups {
            let off = g * GD_SIZE as u64;
            let blk = sb.gdt_block() + off / sb.bsize;
            let at = usize_of(off % sb.bsize);
            let gd = cache
                .read(blk, |b| Group::parse(&b[at..at + GD_SIZE]))
                .map_err(|e| format!("cannot read group descriptors: {e}"))?;
            gd.check(g, &sb)?;
            groups.push(gd);
        }
        let mut meta = Meta { sb: sb.clone(), groups: groups.clone(), dirty: false };
        if !readonly {
            // As Linux ext2: not clean while mounted read/write, until unmount.
            let st = meta.sb.state();
            meta.sb.set_state(st & !STATE_VALID);
            meta.sb.note_mount(now_secs());
            meta.dirty = true;
        }
        let fs = Fs {
            sb,
            group_locs: groups,
            meta: SleepLock::new("ext2_alloc", meta),
            cache,
            readonly: AtomicBool::new(readonly),
            name,
        };
        let root = fs.read_inode(ROOT_INO).map_err(|e| format!("cannot read the root directory: {e}"))?;
        if root.vtype() != VType::Dir || root.links == 0 {
            return Err("the root inode is not a directory".into());
        }
        Ok(fs)
    }

    /// The block group of inode `ino` and its index in it.
    pub fn inode_group(&self, ino: u32) -> (u64, u32) {
        (u64::from((ino - 1) / self.sb.inodes_per_group), (ino - 1) % self.sb.inodes_per_group)
    }

    /// Copy the superblock and group descriptors into their buffers.
    fn store_meta(&self, m: &mut Meta) -> Result<(), Errno> {
        if !m.dirty || self.is_readonly() {
            return Ok(());
        }
        m.sb.set_wtime(now_secs());
        let bsize = self.sb.bsize;
        let sb_blk = SB_OFFSET / bsize;
        let at = usize_of(SB_OFFSET % bsize);
        self.cache.modify(sb_blk, |b| b[at..at + SB_SIZE].copy_from_slice(&m.sb.raw))?;
        for (g, gd) in m.groups.iter().enumerate() {
            let off = g as u64 * GD_SIZE as u64;
            let blk = self.sb.gdt_block() + off / bsize;
            let at = usize_of(off % bsize);
            self.cache.modify(blk, |b| gd.store(&mut b[at..at + GD_SIZE]))?;
        }
        m.dirty = false;
        Ok(())
    }

    /// Write everything dirty. `unmount`: mark the file system clean as well. `try_only`
    /// (halt: nothing may sleep): what is busy is left, and the result is EBUSY.
    pub fn sync(&self, unmount: bool, try_only: bool) -> Result<(), Errno> {
        if self.is_readonly() {
            return Ok(());
        }
        {
            let mut m: SleepGuard<'_, Meta> =
                if try_only { self.meta.try_lock().ok_or(Errno::EBUSY)? } else { self.meta.lock() };
            if unmount {
                let st = m.sb.state();
                m.sb.set_state(st | STATE_VALID);
                m.dirty = true;
            }
            self.store_meta(&mut m)?;
            if unmount {
                // Mounted again (a later sync): not clean until the next unmount.
                let st = m.sb.state();
                m.sb.set_state(st & !STATE_VALID);
            }
        }
        self.cache.flush_with(try_only)
    }

    /// Whether it is mounted read-only now.
    pub fn is_readonly(&self) -> bool {
        self.readonly.load(Ordering::Acquire)
    }

    /// Remount: read-only (everything written, marked clean on disk) or read/write again (not
    /// clean until the next unmount, as at mount). EROFS when the superblock has features vk
    /// cannot write. The caller holds `ext2_ns` exclusive: no change is under way.
    pub fn set_readonly(&self, readonly: bool) -> Result<(), Errno> {
        if readonly == self.is_readonly() {
            return Ok(());
        }
        if readonly {
            self.sync(true, false)?;
        } else {
            if self.sb.ro_reason.is_some() || self.cache.dev().is_readonly() {
                return Err(Errno::EROFS);
            }
            let mut m = self.meta.lock();
            let st = m.sb.state();
            m.sb.set_state(st & !STATE_VALID);
            m.sb.note_mount(now_secs());
            m.dirty = true;
        }
        self.readonly.store(readonly, Ordering::Release);
        self.cache.set_readonly(readonly);
        Ok(())
    }

    /// A block number from the disk (a block map entry): inside the data area, or EIO.
    pub fn check_block(&self, what: &str, ino: u32, blk: u32) -> Result<u64, Errno> {
        let b = u64::from(blk);
        if b < self.sb.first_data_block || b >= self.sb.blocks {
            crate::kprintf!("{}: ext2: inode {ino}: bad {what} block number {blk}\n", self.name);
            return Err(Errno::EIO);
        }
        Ok(b)
    }

    /// `get32` of a block pointer in an indirect block.
    pub fn ptr_at(b: &[u8], i: usize) -> u32 {
        get32(b, i * 4)
    }
}
