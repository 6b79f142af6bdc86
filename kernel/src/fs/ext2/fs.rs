//! One mounted ext2 file system's state ([`Fs`]: superblock, group descriptors, block cache),
//! mounting (read and check everything before believing it), and syncing.

use std::sync::Arc;

use super::le::get32;
use super::sb::{GD_SIZE, Group, SB_OFFSET, SB_SIZE, STATE_VALID, Superblock};
use crate::fs::bcache::{BlockDev, BufCache};
use crate::fs::vfs::VType;
use crate::kern::errno::Errno;

/// Root directory inode.
pub const ROOT_INO: u32 = 2;

/// The file system, under its file system lock.
#[derive(Debug)]
pub struct Fs {
    pub sb: Superblock,
    pub groups: Vec<Group>,
    pub cache: BufCache,
    pub readonly: bool,
    /// The superblock or a group descriptor changed since the last sync.
    pub meta_dirty: bool,
    /// vkdN, for messages.
    pub name: String,
}

/// Seconds since the epoch, as ext2 stores times.
pub fn now_secs() -> u32 {
    (platform::time::realtime_ns() / 1_000_000_000) as u32
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
        let mut cache = BufCache::new(dev, sb.bsize as usize, sb.blocks, readonly);
        let gdt_blocks = (sb.ngroups * GD_SIZE as u64).div_ceil(sb.bsize);
        if sb.gdt_block() + gdt_blocks > sb.blocks {
            return Err("group descriptor table is outside the file system".into());
        }
        let mut groups = Vec::with_capacity(sb.ngroups as usize);
        for g in 0..sb.ngroups {
            let off = g * GD_SIZE as u64;
            let blk = sb.gdt_block() + off / sb.bsize;
            let b = cache.read(blk).map_err(|e| format!("cannot read group descriptors: {e}"))?;
            let at = (off % sb.bsize) as usize;
            let gd = Group::parse(&b[at..at + GD_SIZE]);
            gd.check(g, &sb)?;
            groups.push(gd);
        }
        let mut fs = Fs { sb, groups, cache, readonly, meta_dirty: false, name };
        let root = fs.read_inode(ROOT_INO).map_err(|e| format!("cannot read the root directory: {e}"))?;
        if root.vtype() != VType::Dir || root.links == 0 {
            return Err("the root inode is not a directory".into());
        }
        if !fs.readonly {
            // As Linux ext2: not clean while mounted read/write, until unmount.
            let st = fs.sb.state();
            fs.sb.set_state(st & !STATE_VALID);
            fs.sb.note_mount(now_secs());
            fs.meta_dirty = true;
        }
        Ok(fs)
    }

    /// The block group of inode `ino` and its index in it.
    pub fn inode_group(&self, ino: u32) -> (u64, u32) {
        (u64::from((ino - 1) / self.sb.inodes_per_group), (ino - 1) % self.sb.inodes_per_group)
    }

    /// Copy the superblock and group descriptors into their buffers.
    fn store_meta(&mut self) -> Result<(), Errno> {
        if !self.meta_dirty || self.readonly {
            return Ok(());
        }
        self.sb.set_wtime(now_secs());
        let bsize = self.sb.bsize;
        let sb_blk = SB_OFFSET / bsize;
        let at = (SB_OFFSET % bsize) as usize;
        let raw = self.sb.raw.clone();
        self.cache.modify(sb_blk)?[at..at + SB_SIZE].copy_from_slice(&raw);
        for g in 0..self.groups.len() {
            let off = g as u64 * GD_SIZE as u64;
            let blk = self.sb.gdt_block() + off / bsize;
            let at = (off % bsize) as usize;
            let gd = self.groups[g];
            gd.store(&mut self.cache.modify(blk)?[at..at + GD_SIZE]);
        }
        self.meta_dirty = false;
        Ok(())
    }

    /// Write everything dirty. `unmount`: mark the file system clean as well.
    pub fn sync(&mut self, unmount: bool) -> Result<(), Errno> {
        if self.readonly {
            return Ok(());
        }
        if unmount {
            let st = self.sb.state();
            self.sb.set_state(st | STATE_VALID);
            self.meta_dirty = true;
        }
        self.store_meta()?;
        self.cache.flush()?;
        if unmount {
            // Mounted again (a later sync): not clean until the next unmount.
            let st = self.sb.state();
            self.sb.set_state(st & !STATE_VALID);
        }
        Ok(())
    }

    /// Remount: read-only (everything written, marked clean on disk) or read/write again (not
    /// clean until the next unmount, as at mount). EROFS when the superblock has features vk
    /// cannot write.
    pub fn set_readonly(&mut self, readonly: bool) -> Result<(), Errno> {
        if readonly == self.readonly {
            return Ok(());
        }
        if readonly {
            self.sync(true)?;
        } else {
            if self.sb.ro_reason.is_some() || self.cache.dev().is_readonly() {
                return Err(Errno::EROFS);
            }
            let st = self.sb.state();
            self.sb.set_state(st & !STATE_VALID);
            self.sb.note_mount(now_secs());
            self.meta_dirty = true;
        }
        self.readonly = readonly;
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
