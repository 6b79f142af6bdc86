//! fallocate(2) on ext2: allocating a range's blocks ahead of writes (mode 0 and
//! FALLOC_FL_KEEP_SIZE) and punching holes (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
//! whole blocks go back to the free pool, partial ones are zeroed). The caller holds the
//! inode's lock exclusive and writes the inode after.
//!
//! ext2 has no unwritten extents, so an allocated block is a zeroed data block, and a block
//! past the file's size would be an error e2fsck reports (i_size too small): KEEP_SIZE
//! allocates only up to the current size. Indirect blocks a punch leaves empty stay allocated
//! (ext2 allows that; truncate frees them).

use super::fs::Fs;
use super::inode::Inode;
use super::le::put32;
use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;

impl Fs {
    /// The largest file size: what the block map reaches.
    pub fn max_file_bytes(&self) -> u64 {
        let p = self.sb.bsize / 4;
        let blocks = super::inode::NDIR as u64 + p + p * p + p * p * p;
        blocks.saturating_mul(self.sb.bsize)
    }

    /// Allocate the blocks of `[off, off + len)` of `ip` that are holes (only below the
    /// current size with `keep_size`); without `keep_size` the size grows to `off + len`.
    /// ENOSPC leaves the file as it was in size, keeping the blocks it got below it.
    pub fn allocate(&self, ip: &mut Inode, off: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        let bs = self.sb.bsize;
        let end = off + len;
        let limit = if keep_size { end.min(ip.size) } else { end };
        let (first, last) = (off / bs, limit.div_ceil(bs));
        if first >= last {
            return Ok(());
        }
        // More new blocks than are free, even counting every block it has as in the range.
        let have = u64::from(ip.blocks) / (bs / 512);
        if (last - first).saturating_sub(have) > self.meta.lock().sb.free_blocks() {
            return Err(Errno::ENOSPC);
        }
        let old_size = ip.size;
        for lblk in first..last {
            if let Err(e) = self.bmap(ip, lblk, true) {
                // Give back what was allocated past the old end.
                ip.size = ip.size.max(lblk * bs);
                self.truncate(ip, old_size)?;
                return Err(e);
            }
        }
        if !keep_size {
            ip.size = ip.size.max(end);
        }
        Ok(())
    }

    /// Punch `[off, off + len)` out of `ip` (its size does not change).
    pub fn punch(&self, ip: &mut Inode, off: u64, len: u64) -> Result<(), Errno> {
        let bs = self.sb.bsize;
        let end = (off + len).min(ip.size);
        if off >= end {
            return Ok(());
        }
        let head = off / bs;
        let mut first_full = head;
        if !off.is_multiple_of(bs) || end < (head + 1) * bs {
            self.zero_in_block(ip, head, usize_of(off % bs), usize_of((end - head * bs).min(bs)))?;
            first_full = head + 1;
        }
        let tail = end / bs;
        if !end.is_multiple_of(bs) && tail >= first_full {
            self.zero_in_block(ip, tail, 0, usize_of(end % bs))?;
        }
        for lblk in first_full..tail {
            if let Some(b) = self.unmap(ip, lblk)? {
                self.free_block(ip, b)?;
            }
        }
        Ok(())
    }

    /// Zero bytes `[from, to)` of logical block `lblk` of `ip`, if it is mapped.
    fn zero_in_block(&self, ip: &mut Inode, lblk: u64, from: usize, to: usize) -> Result<(), Errno> {
        if let Some(b) = self.bmap(ip, lblk, false)? {
            self.cache.modify(b, |d| d[from..to].fill(0))?;
        }
        Ok(())
    }

    /// Take logical block `lblk` out of `ip`'s block map; the block it was (None: a hole).
    fn unmap(&self, ip: &mut Inode, lblk: u64) -> Result<Option<u64>, Errno> {
        let (slot, path) = self.map_path(lblk)?;
        let top = ip.block[slot];
        if top == 0 {
            return Ok(None);
        }
        if path.is_empty() {
            ip.block[slot] = 0;
            return self.check_block("punched", ip.ino, top).map(Some);
        }
        let mut blk = self.check_block("indirect", ip.ino, top)?;
        for (depth, &idx) in path.iter().enumerate() {
            let next = self.cache.read(blk, |b| Fs::ptr_at(b, usize_of(idx)))?;
            if next == 0 {
                return Ok(None);
            }
            if depth + 1 == path.len() {
                self.cache.modify(blk, |b| put32(b, usize_of(idx) * 4, 0))?;
                return self.check_block("punched", ip.ino, next).map(Some);
            }
            blk = self.check_block("indirect", ip.ino, next)?;
        }
        Ok(None)
    }
}
