//! Time from the host clocks: monotonic nanoseconds since boot, and the realtime clock.

use std::sync::atomic::{AtomicU64, Ordering};

static BOOT_MONO_NS: AtomicU64 = AtomicU64::new(0);

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the local we pass.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// Host CLOCK_MONOTONIC in ns.
pub fn host_monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Record the boot instant; `uptime_ns` counts from here.
pub fn mark_boot() {
    BOOT_MONO_NS.store(host_monotonic_ns(), Ordering::Relaxed);
}

/// Nanoseconds since boot (monotonic).
pub fn uptime_ns() -> u64 {
    host_monotonic_ns().saturating_sub(BOOT_MONO_NS.load(Ordering::Relaxed))
}

/// Host CLOCK_REALTIME in ns since the epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Time spent on CPU by the calling host thread, ns.
pub fn thread_cputime_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}
