//! The ext2 superblock and group descriptors: parsing, validation against the disk, feature
//! checks. Everything here comes from the disk and is checked before it is believed.

use super::le::{get16, get32, low16, low32, put16, put32};

pub const EXT2_MAGIC: u16 = 0xEF53;
/// Byte offset of the primary superblock.
pub const SB_OFFSET: u64 = 1024;
pub const SB_SIZE: usize = 1024;
/// Bytes of a group descriptor (without the 64bit feature).
pub const GD_SIZE: usize = 32;

/// s_state: cleanly unmounted.
pub const STATE_VALID: u16 = 1;

// Feature bits (ext2/3/4 share them; vk implements the ext2 ones).
pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;

const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];

const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x8000, "verity"),
];

/// Names of the bits in `bits` (unknown bits as hex).
pub fn feature_names(bits: u32, table: &[(u32, &str)]) -> String {
    let mut out = Vec::new();
    for i in 0..32 {
        let b = 1u32 << i;
        if bits & b != 0 {
            out.push(table.iter().find(|(x, _)| *x == b).map_or(format!("{b:#x}"), |(_, n)| n.to_string()));
        }
    }
    out.join(" ")
}

/// The superblock: the raw bytes (written back as they are, with the changed fields) and the
/// geometry taken from them.
#[derive(Debug, Clone)]
pub struct Superblock {
    pub raw: Vec<u8>,
    pub bsize: u64,
    pub blocks: u64,
    pub inodes: u32,
    pub first_data_block: u64,
    pub blocks_per_group: u64,
    pub inodes_per_group: u32,
    pub inode_size: u64,
    pub first_ino: u32,
    pub ngroups: u64,
    pub filetype: bool,
    /// Why the file system must be mounted read-only (unknown RO_COMPAT features), if so.
    pub ro_reason: Option<String>,
}

impl Superblock {
    /// Parse and check the superblock of a disk of `disk_size` bytes.
    pub fn parse(raw: &[u8], disk_size: u64) -> Result<Superblock, String> {
        if raw.len() < SB_SIZE {
            return Err("disk too small for an ext2 superblock".into());
        }
        let magic = get16(raw, 56);
        if magic != EXT2_MAGIC {
            return Err(format!("bad superblock magic {magic:#06x} (not ext2)"));
        }
        let rev = get32(raw, 76);
        if rev > 1 {
            return Err(format!("unsupported revision {rev}"));
        }
        let log_bsize = get32(raw, 24);
        if log_bsize > 2 {
            return Err(format!("unsupported block size 1024 << {log_bsize}"));
        }
        let bsize = 1024u64 << log_bsize;
        let blocks = u64::from(get32(raw, 4));
        let inodes = get32(raw, 0);
        let first_data_block = u64::from(get32(raw, 20));
        let blocks_per_group = u64::from(get32(raw, 32));
        let inodes_per_group = get32(raw, 40);
        let (inode_size, first_ino) = if rev == 0 { (128, 11) } else { (u64::from(get16(raw, 88)), get32(raw, 84)) };
        let (compat_incompat, ro_compat) = if rev == 0 { (0, 0) } else { (get32(raw, 96), get32(raw, 100)) };
        let unknown = compat_incompat & !INCOMPAT_FILETYPE;
        if unknown != 0 {
            return Err(format!("unsupported INCOMPAT features: {}", feature_names(unknown, INCOMPAT_NAMES)));
        }
        if first_data_block != u64::from(bsize == 1024) {
            return Err(format!("bad first data block {first_data_block} for {bsize}-byte blocks"));
        }
        if blocks_per_group == 0 || blocks_per_group > 8 * bsize {
            return Err(format!("bad blocks per group {blocks_per_group}"));
        }
        if inodes_per_group == 0 || u64::from(inodes_per_group) > 8 * bsize {
            return Err(format!("bad inodes per group {inodes_per_group}"));
        }
        if inode_size < 128 || inode_size > bsize || !inode_size.is_power_of_two() {
            return Err(format!("bad inode size {inode_size}"));
        }
        if blocks <= first_data_block + 1 {
            return Err(format!("bad block count {blocks}"));
        }
        if blocks.checked_mul(bsize).is_none_or(|b| b > disk_size) {
            return Err(format!(
                "file system of {blocks} {bsize}-byte blocks is larger than the disk ({disk_size} bytes)"
            ));
        }
        let ngroups = (blocks - first_data_block).div_ceil(blocks_per_group);
        if u64::from(inodes) != ngroups * u64::from(inodes_per_group) {
            return Err(format!("inode count {inodes} is not {ngroups} groups of {inodes_per_group}"));
        }
        if first_ino < 11 || first_ino >= inodes {
            return Err(format!("bad first inode {first_ino}"));
        }
        let unknown_ro = ro_compat & !(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE);
        let ro_reason = (unknown_ro != 0)
            .then(|| format!("unsupported RO_COMPAT features: {}", feature_names(unknown_ro, RO_COMPAT_NAMES)));
        Ok(Superblock {
            raw: raw[..SB_SIZE].to_vec(),
            bsize,
            blocks,
            inodes,
            first_data_block,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            first_ino,
            ngroups,
            filetype: compat_incompat & INCOMPAT_FILETYPE != 0,
            ro_reason,
        })
    }

    /// Where the group descriptor table starts.
    pub fn gdt_block(&self) -> u64 {
        self.first_data_block + 1
    }

    pub fn free_blocks(&self) -> u64 {
        u64::from(get32(&self.raw, 12))
    }

    pub fn set_free_blocks(&mut self, n: u64) {
        put32(&mut self.raw, 12, low32(n));
    }

    pub fn free_inodes(&self) -> u64 {
        u64::from(get32(&self.raw, 16))
    }

    pub fn set_free_inodes(&mut self, n: u64) {
        put32(&mut self.raw, 16, low32(n));
    }

    pub fn reserved_blocks(&self) -> u64 {
        u64::from(get32(&self.raw, 8))
    }

    pub fn rev(&self) -> u32 {
        get32(&self.raw, 76)
    }

    pub fn ro_compat(&self) -> u32 {
        if self.rev() == 0 { 0 } else { get32(&self.raw, 100) }
    }

    pub fn set_ro_compat(&mut self, v: u32) {
        put32(&mut self.raw, 100, v);
    }

    pub fn state(&self) -> u16 {
        get16(&self.raw, 58)
    }

    pub fn set_state(&mut self, s: u16) {
        put16(&mut self.raw, 58, s);
    }

    /// Mount bookkeeping: mount time and count.
    pub fn note_mount(&mut self, now: u32) {
        put32(&mut self.raw, 44, now);
        let c = get16(&self.raw, 52);
        put16(&mut self.raw, 52, c.wrapping_add(1));
    }

    pub fn set_wtime(&mut self, now: u32) {
        put32(&mut self.raw, 48, now);
    }
}

/// One block group's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks: u32,
    pub free_inodes: u32,
    pub used_dirs: u32,
}

impl Group {
    pub fn parse(b: &[u8]) -> Group {
        Group {
            block_bitmap: u64::from(get32(b, 0)),
            inode_bitmap: u64::from(get32(b, 4)),
            inode_table: u64::from(get32(b, 8)),
            free_blocks: u32::from(get16(b, 12)),
            free_inodes: u32::from(get16(b, 14)),
            used_dirs: u32::from(get16(b, 16)),
        }
    }

    /// Write the counts back (the locations never change).
    pub fn store(&self, b: &mut [u8]) {
        // Group counts are below a group's 8 × block-size bits, which ext2 keeps in 16 bits.
        put16(b, 12, low16(self.free_blocks));
        put16(b, 14, low16(self.free_inodes));
        put16(b, 16, low16(self.used_dirs));
    }

    /// Check the group's metadata lies inside the file system.
    pub fn check(&self, g: u64, sb: &Superblock) -> Result<(), String> {
        let itable_blocks = (u64::from(sb.inodes_per_group) * sb.inode_size).div_ceil(sb.bsize);
        let inside = |b: u64, n: u64| b >= sb.first_data_block && b.checked_add(n).is_some_and(|e| e <= sb.blocks);
        if !inside(self.block_bitmap, 1) {
            return Err(format!("group {g}: block bitmap at {} is outside the file system", self.block_bitmap));
        }
        if !inside(self.inode_bitmap, 1) {
            return Err(format!("group {g}: inode bitmap at {} is outside the file system", self.inode_bitmap));
        }
        if !inside(self.inode_table, itable_blocks) {
            return Err(format!("group {g}: inode table at {} is outside the file system", self.inode_table));
        }
        if u64::from(self.free_blocks) > sb.blocks_per_group || self.free_inodes > sb.inodes_per_group {
            return Err(format!("group {g}: bad free counts"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rejects() {
        assert_eq!(feature_names(0x40 | 0x80, INCOMPAT_NAMES), "extent 64bit");
        assert_eq!(feature_names(0x4000_0000, INCOMPAT_NAMES), "0x40000000");
        let raw = vec![0u8; 1024];
        assert!(Superblock::parse(&raw, 1 << 20).unwrap_err().contains("magic"));
        let mut raw = vec![0u8; 1024];
        put16(&mut raw, 56, EXT2_MAGIC);
        put32(&mut raw, 76, 1);
        put32(&mut raw, 96, 0x42);
        assert!(Superblock::parse(&raw, 1 << 20).unwrap_err().contains("extent"));
    }
}
