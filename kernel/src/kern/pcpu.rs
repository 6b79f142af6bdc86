//! Per-CPU data the scheduler keeps in the exported form (`PcpuRecord`: state, current and
//! idle thread, run-queue length, counters, the trap frame ddb shows), and how many CPUs
//! started. The records are this module's; `debug::export` only publishes their address.

use std::sync::atomic::{AtomicU32, Ordering};

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

/// CPU `c`'s record.
pub fn pcpu(c: u32) -> &'static PcpuRecord {
    &PCPU[usize::try_from(c).unwrap_or(MAXCPU - 1).min(MAXCPU - 1)]
}

/// Record how many CPUs boot starts.
pub fn set_ncpus(n: u32) {
    NCPUS.store(n, Ordering::Relaxed);
}
