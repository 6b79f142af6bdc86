//! Per-CPU time accounting for `/proc/stat`: how long each CPU ran guest code (user time).
//! Idle time is the scheduler's (`PCPU[c].idle_ns`); the rest of a CPU's time since boot
//! is system time. Idle time is added when an idle period ends, so between times "the rest"
//! would shrink: system time is kept from going back (top(1) takes differences).

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use platform::MAXCPU;

/// Each CPU's user time, on a cache line of its own: every trap adds to it.
static USER_NS: [CachePadded<AtomicU64>; MAXCPU] = [const { CachePadded::new(AtomicU64::new(0)) }; MAXCPU];
/// The system time last reported, per CPU.
static SYS_NS: [AtomicU64; MAXCPU] = [const { AtomicU64::new(0) }; MAXCPU];

/// The calling CPU ran `ns` of guest code.
pub fn charge_user(ns: u64) {
    let c = platform::cpu::curcpu() as usize;
    if let Some(u) = USER_NS.get(c) {
        // Only this CPU writes its count: a plain add, no locked instruction.
        u.store(u.load(Ordering::Relaxed) + ns, Ordering::Relaxed);
    }
}

/// CPU `c`'s times: (user, system, idle) in ns since boot.
pub fn cpu_times(c: u32) -> (u64, u64, u64) {
    let i = (c as usize).min(MAXCPU - 1);
    let idle = crate::kern::pcpu::PCPU[i].idle_ns.load(Ordering::Relaxed);
    let user = USER_NS[i].load(Ordering::Relaxed);
    let up = platform::time::uptime_ns();
    let sys = up.saturating_sub(idle).saturating_sub(user);
    let sys = SYS_NS[i].fetch_max(sys, Ordering::Relaxed).max(sys);
    (user, sys, idle)
}
