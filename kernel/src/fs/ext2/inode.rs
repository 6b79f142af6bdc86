//! Inodes: reading and writing the on-disk inode, the block map (12 direct pointers, then
//! single, double and triple indirect blocks), file data, and truncation.
//!
//! An inode is read and written whole, under its inode-table block's buffer lock, so a read
//! is a consistent snapshot. Everything else here — the block map, the data — assumes the
//! caller holds the inode's lock (shared to read, exclusive to change).

use std::sync::atomic::{AtomicU32, Ordering};

use super::fs::Fs;
use super::le::{blk32, get16, get32, low16, low32, put16, put32};
use crate::kern::conv::usize_of;
use crate::fs::vfs::{Timespec, VType};
use crate::kern::errno::Errno;

/// Direct block pointers in an inode.
pub const NDIR: usize = 12;
pub const IND: usize = 12;
pub const DIND: usize = 13;
pub const TIND: usize = 14;
/// Inode flag: hashed-tree directory index (Linux ext2 clears it when it changes the directory).
pub const INDEX_FL: u32 = 0x1000;
/// Longest fast symbolic link (kept in the block pointers).
pub const FAST_SYMLINK_MAX: usize = 59;

/// An inode, as far as vk uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub ino: u32,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timespec,
    pub ctime: Timespec,
    pub mtime: Timespec,
    pub dtime: u32,
    pub links: u16,
    /// 512-byte units.
    pub blocks: u32,
    pub flags: u32,
    pub block: [u32; 15],
    pub file_acl: u32,
    /// i_generation: changes each time the inode number is given to a new file, so that a
    /// file handle of the old one does not open the new (NFS's and open_by_handle_at's).
    pub generation: u32,
    /// Bytes past the first 128 in use (0 on 128-byte inodes).
    pub extra_isize: u16,
}

/// The generation of a new inode: a counter started from the clock at the first (Linux's
/// ext2 keeps `s_next_generation`, started at random, per file system).
fn next_generation() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = low32(platform::time::realtime_ns() / 1000).max(1);
        let _ = NEXT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn ts(sec: u32, extra: Option<u32>) -> Timespec {
    // The extra word: 2 epoch bits, then nanoseconds << 2.
    let (sec_hi, nsec) = extra.map_or((0, 0), |e| (i64::from(e & 3), i64::from(e >> 2)));
    Timespec { sec: i64::from(sec.cast_signed()) + (sec_hi << 32), nsec: if nsec < 1_000_000_000 { nsec } else { 0 } }
}

fn extra_of(t: Timespec) -> u32 {
    let low = i64::from(low32(t.sec.cast_unsigned()).cast_signed());
    let hi = low32((t.sec - low).cast_unsigned() >> 32) & 3;
    (u32::try_from(t.nsec.clamp(0, 999_999_999)).unwrap_or(0) << 2) | hi
}

impl Inode {
    pub fn vtype(&self) -> VType {
        VType::from_mode(u32::from(self.mode))
    }

    pub fn is_dir(&self) -> bool {
        self.vtype() == VType::Dir
    }

    /// A symbolic link kept in the inode itself (Linux's test: no blocks but an EA block).
    pub fn is_fast_symlink(&self, bsize: u64) -> bool {
        // Sectors per block: block sizes are checked at mount (at most 64 KiB).
        let ea = if self.file_acl != 0 { low32(bsize / 512) } else { 0 };
        self.vtype() == VType::Lnk && self.blocks == ea
    }

    fn parse(ino: u32, b: &[u8], inode_size: usize) -> Inode {
        let mut block = [0u32; 15];
        for (i, p) in block.iter_mut().enumerate() {
            *p = get32(b, 40 + i * 4);
        }
        let extra_isize = if inode_size > 128 { get16(b, 128).min(u16::try_from(inode_size - 128).unwrap_or(u16::MAX)) } else { 0 };
        let ex = |off: usize| (extra_isize as usize + 128 >= off + 4).then(|| get32(b, off));
        Inode {
            ino,
            mode: get16(b, 0),
            uid: u32::from(get16(b, 2)) | (u32::from(get16(b, 120)) << 16),
            gid: u32::from(get16(b, 24)) | (u32::from(get16(b, 122)) << 16),
            size: u64::from(get32(b, 4)) | (u64::from(get32(b, 108)) << 32),
            atime: ts(get32(b, 8), ex(140)),
            ctime: ts(get32(b, 12), ex(132)),
            mtime: ts(get32(b, 16), ex(136)),
            dtime: get32(b, 20),
            links: get16(b, 26),
            blocks: get32(b, 28),
            flags: get32(b, 32),
            block,
            file_acl: get32(b, 104),
            generation: get32(b, 100),
            extra_isize,
        }
    }

    fn store(&self, b: &mut [u8]) {
        put16(b, 0, self.mode);
        put16(b, 2, low16(self.uid));
        put16(b, 120, low16(self.uid >> 16));
        put16(b, 24, low16(self.gid));
        put16(b, 122, low16(self.gid >> 16));
        put32(b, 4, low32(self.size));
        put32(b, 108, low32(self.size >> 32));
        put32(b, 8, low32(self.atime.sec.cast_unsigned()));
        put32(b, 12, low32(self.ctime.sec.cast_unsigned()));
        put32(b, 16, low32(self.mtime.sec.cast_unsigned()));
        put32(b, 20, self.dtime);
        put16(b, 26, self.links);
        put32(b, 28, self.blocks);
        put32(b, 32, self.flags);
        for (i, p) in self.block.iter().enumerate() {
            put32(b, 40 + i * 4, *p);
        }
        put32(b, 104, self.file_acl);
        put32(b, 100, self.generation);
        if b.len() > 128 {
            put16(b, 128, self.extra_isize);
            let end = 128 + self.extra_isize as usize;
            for (off, t) in [(132, self.ctime), (136, self.mtime), (140, self.atime)] {
                if end >= off + 4 {
                    put32(b, off, extra_of(t));
                }
            }
        }
    }
}

impl Fs {
    /// Where inode `ino` lives: (block, byte offset in it).
    fn inode_loc(&self, ino: u32) -> Result<(u64, usize), Errno> {
        if ino == 0 || ino > self.sb.inodes {
            crate::kprintf!("{}: ext2: bad inode number {ino}\n", self.name);
            return Err(Errno::EIO);
        }
        let (g, idx) = self.inode_group(ino);
        let byte = u64::from(idx) * self.sb.inode_size;
        Ok((self.group_locs[usize_of(g)].inode_table + byte / self.sb.bsize, usize_of(byte % self.sb.bsize)))
    }

    pub fn read_inode(&self, ino: u32) -> Result<Inode, Errno> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = usize_of(self.sb.inode_size);
        self.cache.read(blk, |b| Inode::parse(ino, &b[off..off + isz], isz))
    }

    pub fn write_inode(&self, ip: &Inode) -> Result<(), Errno> {
        let (blk, off) = self.inode_loc(ip.ino)?;
        let isz = usize_of(self.sb.inode_size);
        self.cache.modify(blk, |b| ip.store(&mut b[off..off + isz]))
    }

    /// A fresh on-disk inode (all zero, extra space set as mke2fs does).
    pub fn init_inode(&self, ino: u32) -> Result<Inode, Errno> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = usize_of(self.sb.inode_size);
        let mut ip = self.cache.modify(blk, |b| {
            b[off..off + isz].fill(0);
            Inode::parse(ino, &b[off..off + isz], isz)
        })?;
        if isz >= 160 {
            ip.extra_isize = 32;
        }
        ip.generation = next_generation();
        Ok(ip)
    }

    fn ptrs_per_block(&self) -> u64 {
        self.sb.bsize / 4
    }

    /// Where logical block `lblk` is mapped: the inode's slot, then the index in each
    /// indirect block on the way (EFBIG past the triple indirect block's reach).
    pub(super) fn map_path(&self, lblk: u64) -> Result<(usize, Vec<u64>), Errno> {
        let p = self.ptrs_per_block();
        Ok(if lblk < NDIR as u64 {
            (usize_of(lblk), vec![])
        } else if lblk - (NDIR as u64) < p {
            (IND, vec![lblk - NDIR as u64])
        } else if lblk - NDIR as u64 - p < p * p {
            let r = lblk - NDIR as u64 - p;
            (DIND, vec![r / p, r % p])
        } else {
            let r = lblk - NDIR as u64 - p - p * p;
            if r >= p * p * p {
                return Err(Errno::EFBIG);
            }
            (TIND, vec![r / (p * p), (r / p) % p, r % p])
        })
    }

    /// The disk block of logical block `lblk` of `ip` (None: a hole). With `alloc`, holes are
    /// filled (and indirect blocks made); `ip` is changed and the caller writes it.
    pub fn bmap(&self, ip: &mut Inode, lblk: u64, alloc: bool) -> Result<Option<u64>, Errno> {
        let (slot, path) = self.map_path(lblk)?;
        let goal = self.goal_for(ip);
        let mut cur = ip.block[slot];
        if cur == 0 {
            if !alloc {
                return Ok(None);
            }
            let b = self.alloc_block(ip, goal)?;
            ip.block[slot] = blk32(b)?;
            cur = blk32(b)?;
        }
        let mut blk = self.check_block("mapped", ip.ino, cur)?;
        for &idx in &path {
            let next = self.cache.read(blk, |b| Fs::ptr_at(b, usize_of(idx)))?;
            let nb = if next == 0 {
                if !alloc {
                    return Ok(None);
                }
                let nb = self.alloc_block(ip, goal)?;
                let nb32 = blk32(nb)?;
                self.cache.modify(blk, |b| put32(b, usize_of(idx) * 4, nb32))?;
                nb
            } else {
                self.check_block("indirect", ip.ino, next)?
            };
            blk = nb;
        }
        Ok(Some(blk))
    }

    /// Read file data at `off` (short at the end of the file).
    pub fn read_data(&self, ip: &Inode, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if off >= ip.size || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(usize_of(ip.size - off));
        let bs = self.sb.bsize;
        let mut ip = ip.clone();
        // Each block's place on the disk, looked up once: for the read-ahead and the copy.
        let first = off / bs;
        let blocks = (first..=(off + n as u64 - 1) / bs)
            .map(|lblk| self.bmap(&mut ip, lblk, false))
            .collect::<Result<Vec<_>, _>>()?;
        if n as u64 > bs {
            self.prefetch_runs(&blocks)?;
        }
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let in_blk = usize_of(pos % bs);
            let chunk = (usize_of(bs) - in_blk).min(n - done);
            match blocks[usize_of(pos / bs - first)] {
                Some(b) => {
                    self.cache.read(b, |d| buf[done..done + chunk].copy_from_slice(&d[in_blk..in_blk + chunk]))?
                }
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        Ok(n)
    }

    /// Before a read that spans the (physical, None: a hole) `blocks`: read each run of them
    /// that lies contiguous on the disk with one device read (`BufCache::prefetch`), rather
    /// than one read-ahead cluster after another as the copy reaches them.
    fn prefetch_runs(&self, blocks: &[Option<u64>]) -> Result<(), Errno> {
        let mut run: Option<(u64, u64)> = None;
        for &pblk in blocks {
            run = match (run, pblk) {
                (Some((start, n)), Some(b)) if b == start + n => Some((start, n + 1)),
                (prev, next) => {
                    if let Some((start, n)) = prev {
                        self.cache.prefetch(start, n)?;
                    }
                    next.map(|b| (b, 1))
                }
            };
        }
        if let Some((start, n)) = run {
            self.cache.prefetch(start, n)?;
        }
        Ok(())
    }

    /// Write file data at `off`, allocating blocks; returns bytes written (short on ENOSPC).
    pub fn write_data(&self, ip: &mut Inode, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let bs = self.sb.bsize;
        let mut done = 0;
        while done < buf.len() {
            let pos = off + done as u64;
            let in_blk = usize_of(pos % bs);
            let chunk = (usize_of(bs) - in_blk).min(buf.len() - done);
            let b = match self.bmap(ip, pos / bs, true) {
                Ok(Some(b)) => b,
                Ok(None) => return Err(Errno::EIO),
                Err(e) if done > 0 && (e == Errno::ENOSPC || e == Errno::EFBIG) => break,
                Err(e) => return Err(e),
            };
            self.cache.modify(b, |d| d[in_blk..in_blk + chunk].copy_from_slice(&buf[done..done + chunk]))?;
            done += chunk;
            ip.size = ip.size.max(pos + chunk as u64);
        }
        Ok(done)
    }

    /// Free the blocks of `blk` (a subtree of `depth` levels of indirection) from logical index
    /// `from` on; true when the whole subtree (and `blk` itself) was freed.
    fn trunc_branch(&self, ip: &mut Inode, blk: u32, depth: u32, from: u64) -> Result<bool, Errno> {
        let b = self.check_block("truncated", ip.ino, blk)?;
        if depth == 0 {
            if from == 0 {
                self.free_block(ip, b)?;
                return Ok(true);
            }
            return Ok(false);
        }
        let p = self.ptrs_per_block();
        let span = p.pow(depth - 1);
        let ptrs: Vec<u32> =
            self.cache.read(b, |d| d.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())?;
        for (i, &child) in ptrs.iter().enumerate() {
            let start = i as u64 * span;
            if child == 0 || start + span <= from {
                continue;
            }
            if self.trunc_branch(ip, child, depth - 1, from.saturating_sub(start))? && from > 0 {
                self.cache.modify(b, |d| put32(d, i * 4, 0))?;
            }
        }
        if from == 0 {
            self.free_block(ip, b)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Set the size of `ip`, freeing blocks past it (and indirect blocks left empty) and
    /// zeroing the rest of the last block so a later growth reads zeros.
    pub fn truncate(&self, ip: &mut Inode, size: u64) -> Result<(), Errno> {
        let bs = self.sb.bsize;
        if size < ip.size {
            let keep = size.div_ceil(bs);
            let p = self.ptrs_per_block();
            for i in 0..NDIR {
                if i as u64 >= keep && ip.block[i] != 0 {
                    let b = self.check_block("truncated", ip.ino, ip.block[i])?;
                    self.free_block(ip, b)?;
                    ip.block[i] = 0;
                }
            }
            let levels = [(IND, 1u32, NDIR as u64), (DIND, 2, NDIR as u64 + p), (TIND, 3, NDIR as u64 + p + p * p)];
            for (slot, depth, first) in levels {
                let blk = ip.block[slot];
                if blk == 0 {
                    continue;
                }
                let from = keep.saturating_sub(first);
                if from >= p.pow(depth) {
                    continue;
                }
                if self.trunc_branch(ip, blk, depth, from)? {
                    ip.block[slot] = 0;
                }
            }
            if !size.is_multiple_of(bs)
                && let Some(b) = self.bmap(ip, size / bs, false)?
            {
                let at = usize_of(size % bs);
                self.cache.modify(b, |d| d[at..].fill(0))?;
            }
        }
        ip.size = size;
        Ok(())
    }
}
