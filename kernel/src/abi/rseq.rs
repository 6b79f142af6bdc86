//! rseq(2)'s structures (linux/rseq.h; linux-raw-sys does not carry them): the per-thread
//! area a thread registers, and the critical-section descriptor it points to.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The registered area's first fields, as the kernel updates them (`struct rseq`, 32 bytes
/// aligned to 32; `end` marks the feature size, 28).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RseqIds {
    /// The CPU the thread runs on, always valid (cpu_id_start).
    pub cpu_id_start: u32,
    /// The same, or RSEQ_CPU_ID_UNINITIALIZED / REGISTRATION_FAILED.
    pub cpu_id: u32,
}

/// The node id and the memory-map concurrency id (at offset 20 of `struct rseq`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RseqNodeCid {
    pub node_id: u32,
    pub mm_cid: u32,
}

/// `struct rseq_cs`: a critical section [start_ip, start_ip + post_commit_offset), and where
/// to go when it is interrupted (abort_ip, preceded by the registered signature).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RseqCs {
    pub version: u32,
    pub flags: u32,
    pub start_ip: u64,
    pub post_commit_offset: u64,
    pub abort_ip: u64,
}

/// Offsets in `struct rseq`.
pub const RSEQ_CPU_ID_START_OFF: u64 = 0;
pub const RSEQ_CS_OFF: u64 = 8;
pub const RSEQ_NODE_ID_OFF: u64 = 20;
/// The size of the original `struct rseq` (ORIG_RSEQ_SIZE), and its alignment.
pub const ORIG_RSEQ_SIZE: u32 = 32;
/// The fields this kernel updates end here (offsetof(struct rseq, end); AT_RSEQ_FEATURE_SIZE).
pub const RSEQ_FEATURE_SIZE: u32 = 28;
/// `struct rseq`'s alignment (AT_RSEQ_ALIGN).
pub const RSEQ_ALIGN: u32 = 32;
/// rseq(2)'s flag: unregister.
pub const RSEQ_FLAG_UNREGISTER: i32 = 1;
/// cpu_id before registration (RSEQ_CPU_ID_UNINITIALIZED).
pub const RSEQ_CPU_ID_UNINITIALIZED: u32 = u32::MAX;

const _: () = {
    assert!(size_of::<RseqIds>() == 8);
    assert!(size_of::<RseqNodeCid>() == 8);
    assert!(size_of::<RseqCs>() == 32);
    assert!(core::mem::offset_of!(RseqCs, start_ip) == 8);
    assert!(core::mem::offset_of!(RseqCs, abort_ip) == 24);
};
