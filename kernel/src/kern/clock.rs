//! The wall clock at boot (FreeBSD's `boottime`): uptime plus this is the time of day, and
//! /proc/stat's btime and ps's start times are computed from it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Realtime clock at boot, ns since the epoch (exported as `vk_boottime_ns`).
pub static BOOTTIME_NS: AtomicU64 = AtomicU64::new(0);

/// Note the wall clock now as the boot time.
pub fn mark_boot() {
    BOOTTIME_NS.store(platform::time::realtime_ns(), Ordering::Relaxed);
}

/// The wall clock at boot, ns since the epoch.
pub fn boottime_ns() -> u64 {
    BOOTTIME_NS.load(Ordering::Relaxed)
}
