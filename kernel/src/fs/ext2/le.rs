//! Little-endian fields in on-disk structures. Offsets come from the code, not the disk; a
//! slice too short for one is a bug in the caller, so these index directly.

pub fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The low 16 bits (ext2 keeps a uid's or gid's high half in another field: Linux's
/// `low_16_bits`).
pub fn low16(v: u32) -> u16 {
    let [a, b, ..] = v.to_le_bytes();
    u16::from_le_bytes([a, b])
}

/// The low 32 bits (a size's or time's high part is kept in another field, or dropped as
/// ext2's 32-bit times drop it).
pub fn low32(v: u64) -> u32 {
    crate::abi::lower_32_bits(v)
}

/// A block number as the 32 bits ext2 stores (EIO past them: no valid block is).
pub fn blk32(b: u64) -> Result<u32, crate::kern::errno::Errno> {
    u32::try_from(b).map_err(|_| crate::kern::errno::Errno::EIO)
}
