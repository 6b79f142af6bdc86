//! Integer conversions that the cast lints cannot see are lossless by themselves. vk runs on
//! x86-64 only, where `usize` is 64 bits (asserted at compile time here), so a `u64` length,
//! index or offset within memory is a `usize` and back without loss. Anything that can really
//! be out of range (a guest's number, a size from disk) goes through `try_from` instead.

const _: () = assert!(usize::BITS == u64::BITS, "vk is a 64-bit kernel");

/// A `u64` as a `usize` (lossless: `usize` is 64 bits).
#[expect(clippy::cast_possible_truncation, reason = "usize is 64 bits, asserted above")]
pub const fn usize_of(v: u64) -> usize {
    v as usize
}

/// `h` reduced to an index below `n` (a hash bucket, a ring position); `n` > 0.
pub fn bucket(h: u64, n: usize) -> usize {
    usize_of(h % (n as u64).max(1))
}
