//! Directories: blocks of variable-length entries (inode u32, rec_len u16, name_len u8,
//! file_type u8, name), each entry's rec_len reaching to the next, the last to the block's end.
//!
//! Insertion and removal follow Linux ext2: a new entry takes an unused entry or the slack
//! after a live one (splitting its rec_len); a removed entry is merged into the one before it
//! in its block, or has its inode zeroed when it is the first. A directory vk changes loses
//! its hashed index flag (Linux ext2 does not keep htree either; the index blocks read as
//! empty entries). Every entry read is checked; a bad one is EIO with a message.
//!
//! The caller holds the directory's inode lock: shared to look up and list, exclusive to
//! change it.

use super::fs::Fs;
use super::inode::{INDEX_FL, Inode};
use super::le::{get16, get32, put16, put32};
use crate::kern::conv::usize_of;
use crate::fs::vfs::VType;
use crate::kern::errno::Errno;

/// Largest directory believed (a damaged size must not make a lookup walk millions of blocks).
pub const MAX_DIR_SIZE: u64 = 1 << 28;

/// A directory entry and where it is.
#[derive(Debug, Clone)]
pub struct Entry {
    pub pblk: u64,
    pub off: usize,
    /// Offset of the entry before it in the same block.
    pub prev: Option<usize>,
    pub ino: u32,
    pub rec_len: usize,
    pub name: Vec<u8>,
    pub ftype: u8,
    /// Its byte position in the directory (set by `dir_list`; the offset in its block
    /// otherwise): stable while other entries come and go, so readdir resumes after it.
    pub pos: u64,
}

/// Space an entry with a name of `len` bytes needs.
pub fn rec_len_for(len: usize) -> usize {
    (8 + len + 3) & !3
}

/// The file_type byte of a directory entry.
pub fn ftype_of(t: VType) -> u8 {
    match t {
        VType::Reg => 1,
        VType::Dir => 2,
        VType::Chr => 3,
        VType::Blk => 4,
        VType::Fifo => 5,
        VType::Sock => 6,
        VType::Lnk => 7,
        // Never on a disk: EXT2_FT_UNKNOWN.
        VType::Anon => 0,
    }
}

impl Fs {
    /// The entries of one directory block, checked.
    fn parse_dir_block(&self, dir: &Inode, pblk: u64) -> Result<Vec<Entry>, Errno> {
        let bs = usize_of(self.sb.bsize);
        let inodes = self.sb.inodes;
        let filetype = self.sb.filetype;
        let name = &self.name;
        self.cache.read(pblk, |b| {
            let mut out = Vec::new();
            let mut off = 0;
            let mut prev = None;
            while off < bs {
                let bad = |why: &str| {
                    crate::kprintf!("{name}: ext2: directory inode {}: block {pblk} offset {off}: {why}\n", dir.ino);
                    Errno::EIO
                };
                if off + 8 > bs {
                    return Err(bad("entry header past the block"));
                }
                let ino = get32(b, off);
                let rec_len = usize::from(get16(b, off + 4));
                let name_len = if filetype { usize::from(b[off + 6]) } else { usize::from(get16(b, off + 6)) };
                if rec_len < 12 || rec_len % 4 != 0 || off + rec_len > bs {
                    return Err(bad("bad rec_len"));
                }
                if ino != 0 && (rec_len < rec_len_for(name_len) || ino > inodes) {
                    return Err(bad("bad entry"));
                }
                let ftype = if filetype { b[off + 7] } else { 0 };
                let nm = if ino != 0 { b[off + 8..off + 8 + name_len].to_vec() } else { Vec::new() };
                out.push(Entry { pblk, off, prev, ino, rec_len, name: nm, ftype, pos: off as u64 });
                prev = Some(off);
                off += rec_len;
            }
            Ok(out)
        })?
    }

    /// The disk blocks of a directory.
    fn dir_blocks(&self, dir: &Inode) -> Result<Vec<u64>, Errno> {
        let bs = self.sb.bsize;
        if dir.size > MAX_DIR_SIZE {
            crate::kprintf!("{}: ext2: directory inode {} is too large ({} bytes)\n", self.name, dir.ino, dir.size);
            return Err(Errno::EIO);
        }
        let mut d = dir.clone();
        let mut out = Vec::new();
        for l in 0..dir.size.div_ceil(bs) {
            match self.bmap(&mut d, l, false)? {
                Some(b) => out.push(b),
                None => {
                    crate::kprintf!("{}: ext2: directory inode {} has a hole at block {l}\n", self.name, dir.ino);
                    return Err(Errno::EIO);
                }
            }
        }
        Ok(out)
    }

    /// Every live entry (including `.` and `..`).
    pub fn dir_list(&self, dir: &Inode) -> Result<Vec<Entry>, Errno> {
        let mut out = Vec::new();
        let bs = self.sb.bsize;
        for (l, b) in (0u64..).zip(self.dir_blocks(dir)?) {
            out.extend(self.parse_dir_block(dir, b)?.into_iter().filter(|e| e.ino != 0).map(|e| Entry { pos: l * bs + e.pos, ..e }));
        }
        Ok(out)
    }

    /// The entry `name`, if any.
    pub fn dir_lookup(&self, dir: &Inode, name: &[u8]) -> Result<Option<Entry>, Errno> {
        for b in self.dir_blocks(dir)? {
            if let Some(e) = self.parse_dir_block(dir, b)?.into_iter().find(|e| e.ino != 0 && e.name == name) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    fn put_entry(&self, pblk: u64, off: usize, ino: u32, rec_len: usize, name: &[u8], ftype: u8) -> Result<(), Errno> {
        let filetype = self.sb.filetype;
        // Record lengths stay within a block and names within 255 bytes (checked before).
        let rec_len = u16::try_from(rec_len).map_err(|_| Errno::EIO)?;
        let name_len = u8::try_from(name.len()).map_err(|_| Errno::ENAMETOOLONG)?;
        self.cache.modify(pblk, |b| {
            put32(b, off, ino);
            put16(b, off + 4, rec_len);
            if filetype {
                b[off + 6] = name_len;
                b[off + 7] = ftype;
            } else {
                put16(b, off + 6, u16::from(name_len));
            }
            b[off + 8..off + 8 + name.len()].copy_from_slice(name);
        })
    }

    /// A directory was changed: new times, no hashed index; write its inode.
    fn dir_changed(&self, dir: &mut Inode) -> Result<(), Errno> {
        let t = super::vnode::now();
        dir.mtime = t;
        dir.ctime = t;
        dir.flags &= !INDEX_FL;
        self.write_inode(dir)
    }

    /// Add `name` → `ino` (the caller made sure the name is new).
    pub fn dir_add(&self, dir: &mut Inode, name: &[u8], ino: u32, ftype: u8) -> Result<(), Errno> {
        let need = rec_len_for(name.len());
        for b in self.dir_blocks(dir)? {
            for e in self.parse_dir_block(dir, b)? {
                let used = if e.ino != 0 { rec_len_for(e.name.len()) } else { 0 };
                if e.ino == 0 && e.rec_len >= need {
                    self.put_entry(b, e.off, ino, e.rec_len, name, ftype)?;
                    return self.dir_changed(dir);
                }
                if e.ino != 0 && e.rec_len >= used + need {
                    let used16 = u16::try_from(used).map_err(|_| Errno::EIO)?;
                    self.cache.modify(b, |d| put16(d, e.off + 4, used16))?;
                    self.put_entry(b, e.off + used, ino, e.rec_len - used, name, ftype)?;
                    return self.dir_changed(dir);
                }
            }
        }
        // No room: a new block at the end.
        let bs = self.sb.bsize;
        let l = dir.size.div_ceil(bs);
        let Some(b) = self.bmap(dir, l, true)? else { return Err(Errno::EIO) };
        self.put_entry(b, 0, ino, usize_of(bs), name, ftype)?;
        dir.size = (l + 1) * bs;
        self.dir_changed(dir)
    }

    /// Remove `name`; returns the entry removed.
    pub fn dir_remove(&self, dir: &mut Inode, name: &[u8]) -> Result<Entry, Errno> {
        let e = self.dir_lookup(dir, name)?.ok_or(Errno::ENOENT)?;
        match e.prev {
            Some(p) => self.cache.modify(e.pblk, |b| {
                // Two neighbouring records of one block: their sum is within the block.
                let merged = usize::from(get16(b, p + 4)) + e.rec_len;
                put16(b, p + 4, u16::try_from(merged).unwrap_or(u16::MAX));
            })?,
            None => self.cache.modify(e.pblk, |b| put32(b, e.off, 0))?,
        }
        self.dir_changed(dir)?;
        Ok(e)
    }

    /// Point the existing entry `name` at `ino` (rename over a name; a moved directory's `..`).
    pub fn dir_set(&self, dir: &mut Inode, name: &[u8], ino: u32, ftype: u8) -> Result<(), Errno> {
        let e = self.dir_lookup(dir, name)?.ok_or(Errno::ENOENT)?;
        let filetype = self.sb.filetype;
        self.cache.modify(e.pblk, |b| {
            put32(b, e.off, ino);
            if filetype {
                b[e.off + 7] = ftype;
            }
        })?;
        self.dir_changed(dir)
    }

    /// Whether a directory holds only `.` and `..`.
    pub fn dir_is_empty(&self, dir: &Inode) -> Result<bool, Errno> {
        Ok(self.dir_list(dir)?.iter().all(|e| e.name == b"." || e.name == b".."))
    }

    /// The first block of a new directory: `.` and `..`.
    pub fn dir_init(&self, dir: &mut Inode, parent: u32) -> Result<(), Errno> {
        let Some(b) = self.bmap(dir, 0, true)? else { return Err(Errno::EIO) };
        let bs = usize_of(self.sb.bsize);
        let me = dir.ino;
        self.put_entry(b, 0, me, 12, b".", 2)?;
        self.put_entry(b, 12, parent, bs - 12, b"..", 2)?;
        dir.size = bs as u64;
        Ok(())
    }
}
