//! Per-CPU data the scheduler keeps in the exported form (`PcpuRecord`: state, current and
//! idle thread, run-queue length, counters, the trap frame ddb shows), and how many CPUs
//! started, and the safe points each CPU passed and whether it is in guest code (the
//! watchdog's sign of life). The records
//! are this module's; `debug::export` only publishes their address.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use kvm_mem::abi::{MAXCPU, PcpuRecord};

/// One record per possible CPU.
pub static PCPU: [PcpuRecord; MAXCPU] = {
    let mut arr = [const { PcpuRecord::new(0) }; MAXCPU];
    let mut i: u32 = 0;
    while (i as usize) < MAXCPU {
        arr[i as usize] = PcpuRecord::new(i);
        i += 1;
    }
    arr
};

/// CPUs started.
pub static NCPUS: AtomicU32 = AtomicU32::new(0);

/// Safe points each CPU has passed (the watchdog's sign of life; one relaxed add per pass).
/// Each CPU's counters here and below have a cache line of their own: written on every
/// trap or safe point, they must not take a line another CPU writes too.
pub static SAFE_POINTS: [CachePadded<AtomicU64>; MAXCPU] = [const { CachePadded::new(AtomicU64::new(0)) }; MAXCPU];

/// CPUs whose guest thread runs in its stub (user mode, or the host starting its stub
/// thread): the time is the guest's, not the kernel's, so the watchdog does not count it.
pub static IN_GUEST: [CachePadded<AtomicBool>; MAXCPU] = [const { CachePadded::new(AtomicBool::new(false)) }; MAXCPU];

/// CPU `c` hands over to its guest thread's stub (`true`) or is back in the kernel.
pub fn set_in_guest(c: u32, v: bool) {
    if let Some(f) = IN_GUEST.get(c as usize) {
        f.store(v, Ordering::Relaxed);
    }
}

/// Count a safe point passed on CPU `c`.
pub fn safe_point_passed(c: u32) {
    if let Some(n) = SAFE_POINTS.get(c as usize) {
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// CPU `c`'s record.
pub fn pcpu(c: u32) -> &'static PcpuRecord {
    &PCPU[usize::try_from(c).unwrap_or(MAXCPU - 1).min(MAXCPU - 1)]
}

/// Record how many CPUs boot starts.
pub fn set_ncpus(n: u32) {
    NCPUS.store(n, Ordering::Relaxed);
}
