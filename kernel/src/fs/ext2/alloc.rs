//! Block and inode allocation: one bitmap block per group for each, with the free counts kept
//! in the group descriptor and the superblock (and used_dirs for directories).
//!
//! Blocks go first to the inode's own group, then the next groups round; inodes for a
//! directory to the group with the most free inodes, for a file to its directory's group.
//!
//! Every bitmap change and count update happens under the allocation lock (`ext2_alloc`,
//! [`super::fs::Meta`]), so two allocators never take the same bit; the bitmap block's own
//! buffer lock is taken inside it, briefly. The caller holds the inode's lock (its `i_blocks`).

use super::fs::Fs;
use super::inode::Inode;
use super::le::low32;
use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;

fn bit(b: &[u8], i: usize) -> bool {
    b[i / 8] & (1 << (i % 8)) != 0
}

impl Fs {
    /// The group an inode's blocks should go to.
    pub fn goal_for(&self, ip: &Inode) -> u64 {
        self.inode_group(ip.ino).0
    }

    /// Blocks in group `g` (the last one may be short).
    fn group_blocks(&self, g: u64) -> u64 {
        let start = self.sb.first_data_block + g * self.sb.blocks_per_group;
        (self.sb.blocks - start).min(self.sb.blocks_per_group)
    }

    /// Allocate a zeroed block for `ip` (counted in its i_blocks).
    pub fn alloc_block(&self, ip: &mut Inode, goal: u64) -> Result<u64, Errno> {
        if self.is_readonly() {
            return Err(Errno::EROFS);
        }
        let blk = {
            let mut m = self.meta.lock();
            if m.sb.free_blocks() == 0 {
                return Err(Errno::ENOSPC);
            }
            let n = self.sb.ngroups;
            let mut found = None;
            for k in 0..n {
                let g = (goal + k) % n;
                if m.groups[usize_of(g)].free_blocks == 0 {
                    continue;
                }
                let bm = self.group_locs[usize_of(g)].block_bitmap;
                let len = usize_of(self.group_blocks(g));
                let taken = self.cache.modify(bm, |bits| {
                    let i = (0..len).find(|&i| !bit(bits, i))?;
                    bits[i / 8] |= 1 << (i % 8);
                    Some(i)
                })?;
                let Some(i) = taken else { continue };
                m.groups[usize_of(g)].free_blocks -= 1;
                let f = m.sb.free_blocks();
                m.sb.set_free_blocks(f - 1);
                m.dirty = true;
                found = Some(self.sb.first_data_block + g * self.sb.blocks_per_group + i as u64);
                break;
            }
            found.ok_or(Errno::ENOSPC)?
        };
        self.cache.zeroed(blk)?;
        ip.blocks += low32(self.sb.bsize / 512);
        Ok(blk)
    }

    /// Free block `blk` of `ip`.
    pub fn free_block(&self, ip: &mut Inode, blk: u64) -> Result<(), Errno> {
        let rel = blk - self.sb.first_data_block;
        let (g, i) = (rel / self.sb.blocks_per_group, usize_of(rel % self.sb.blocks_per_group));
        let bm = self.group_locs[usize_of(g)].block_bitmap;
        let mut m = self.meta.lock();
        let was_set = self.cache.modify(bm, |b| {
            let was = bit(b, i);
            b[i / 8] &= !(1 << (i % 8));
            was
        })?;
        if !was_set {
            crate::kprintf!("{}: ext2: inode {}: freeing free block {blk}\n", self.name, ip.ino);
            return Err(Errno::EIO);
        }
        self.cache.forget(blk);
        m.groups[usize_of(g)].free_blocks += 1;
        let f = m.sb.free_blocks();
        m.sb.set_free_blocks(f + 1);
        m.dirty = true;
        ip.blocks = ip.blocks.saturating_sub(low32(self.sb.bsize / 512));
        Ok(())
    }

    /// Allocate an inode number near `parent`'s group.
    pub fn alloc_inode(&self, parent: u32, is_dir: bool) -> Result<u32, Errno> {
        if self.is_readonly() {
            return Err(Errno::EROFS);
        }
        let mut m = self.meta.lock();
        if m.sb.free_inodes() == 0 {
            return Err(Errno::ENOSPC);
        }
        let n = self.sb.ngroups;
        let start = if is_dir {
            (0..n).max_by_key(|&g| (m.groups[usize_of(g)].free_inodes, std::cmp::Reverse(g))).unwrap_or(0)
        } else {
            self.inode_group(parent).0
        };
        let ipg = self.sb.inodes_per_group as usize;
        let first = self.sb.first_ino as usize;
        for k in 0..n {
            let g = (start + k) % n;
            if m.groups[usize_of(g)].free_inodes == 0 {
                continue;
            }
            let bm = self.group_locs[usize_of(g)].inode_bitmap;
            let taken = self.cache.modify(bm, |bits| {
                let i = (0..ipg).find(|&i| usize_of(g) * ipg + i + 1 >= first && !bit(bits, i))?;
                bits[i / 8] |= 1 << (i % 8);
                Some(i)
            })?;
            let Some(i) = taken else { continue };
            let gd = &mut m.groups[usize_of(g)];
            gd.free_inodes -= 1;
            if is_dir {
                gd.used_dirs += 1;
            }
            let f = m.sb.free_inodes();
            m.sb.set_free_inodes(f - 1);
            m.dirty = true;
            return u32::try_from(usize_of(g) * ipg + i + 1).map_err(|_| Errno::EIO);
        }
        Err(Errno::ENOSPC)
    }

    /// Free inode `ino` in the bitmap and counts (its blocks are already freed).
    pub fn free_inode_bit(&self, ino: u32, is_dir: bool) -> Result<(), Errno> {
        let (g, i) = self.inode_group(ino);
        let i = i as usize;
        let bm = self.group_locs[usize_of(g)].inode_bitmap;
        let mut m = self.meta.lock();
        let was_set = self.cache.modify(bm, |b| {
            let was = bit(b, i);
            b[i / 8] &= !(1 << (i % 8));
            was
        })?;
        if !was_set {
            crate::kprintf!("{}: ext2: freeing free inode {ino}\n", self.name);
            return Err(Errno::EIO);
        }
        let gd = &mut m.groups[usize_of(g)];
        gd.free_inodes += 1;
        if is_dir {
            gd.used_dirs = gd.used_dirs.saturating_sub(1);
        }
        let f = m.sb.free_inodes();
        m.sb.set_free_inodes(f + 1);
        m.dirty = true;
        Ok(())
    }

    /// Release an inode with no links left: its blocks, its extended-attribute block, its
    /// bitmap bit; the inode keeps its mode with a deletion time, as Linux leaves it. The
    /// caller makes sure no one else can reach it (an orphan no vnode holds).
    pub fn release_inode(&self, ino: u32) -> Result<(), Errno> {
        let mut ip = self.read_inode(ino)?;
        if ip.links != 0 || ip.dtime != 0 && ip.mode == 0 {
            return Ok(());
        }
        let is_dir = ip.is_dir();
        if !ip.is_fast_symlink(self.sb.bsize) {
            self.truncate(&mut ip, 0)?;
        } else {
            ip.size = 0;
            ip.block = [0; 15];
        }
        if ip.file_acl != 0 {
            let b = self.check_block("xattr", ino, ip.file_acl)?;
            // The block is shared by reference count: one fewer, or free it with the last.
            let shared = self.cache.modify(b, |blk| {
                let refs = super::le::get32(blk, 4);
                if refs > 1 {
                    super::le::put32(blk, 4, refs - 1);
                }
                refs > 1
            })?;
            if shared {
                ip.blocks = ip.blocks.saturating_sub(low32(self.sb.bsize / 512));
            } else {
                self.free_block(&mut ip, b)?;
            }
            ip.file_acl = 0;
        }
        ip.dtime = super::fs::now_secs().max(1);
        self.write_inode(&ip)?;
        self.free_inode_bit(ino, is_dir)
    }
}
