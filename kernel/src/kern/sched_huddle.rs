//! Huddling: call-bound guest threads share a vCPU when the host has too few CPUs for each
//! to have a spinning pair of host threads (the mechanics are in [`crate::kern::sched`]).
//!
//! A guest thread whose system calls come one right after the other (a loop on getppid, on a
//! small pread, on mmap+munmap) runs at its best when its stub thread and its vCPU spin at
//! each other from two host CPUs: a hand-over is then a cache-line transfer. Two such threads
//! on two vCPUs want four host CPUs; on a host with two, each pair is co-located on one host
//! CPU (`platform::stub::spin`) and every hand-over becomes a switch between two host
//! processes (~1.8 µs on the development machine). Measured there, two threads looping on
//! getppid: 1.81 µs a call on `-n 2` against 0.44 µs on `-n 1`, where one vCPU serves both
//! in turn, a spinning pair at a time. So when the vCPUs running call-bound threads
//! ([`platform::stub::StubThread::call_bound`]) want more host CPUs than there are, such a
//! thread moves onto the queue of a lower-numbered vCPU running one too and the two take
//! turns there (time slices); an idle vCPU does not steal a call-bound thread back while that
//! would make too many pairs again, and its own CPU is left to the host (the stubs).
//! When the crowd thins (a thread blocks, exits, or stops being call-bound) the idle vCPU
//! is woken to steal as usual.
//!
//! Threads that compute between their calls are not call-bound and spread over the vCPUs
//! as before: two CPU-bound threads on two vCPUs keep native scaling. `-e sched.huddle=0`
//! turns huddling off.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether call-bound threads huddle (`-e sched.huddle=0`: never).
pub static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether `cb_cpus` vCPUs each running a call-bound thread — each a pair of host threads
/// that want a host CPU apiece — are more than the host's `host_cpus` hold. One such vCPU
/// never is (it has nothing to huddle with).
pub fn crowded(cb_cpus: u32, host_cpus: u32) -> bool {
    ENABLED.load(Ordering::Relaxed) && cb_cpus >= 2 && 2 * cb_cpus > host_cpus
}

/// Where a call-bound thread on vCPU `c` huddles: the lowest-numbered other vCPU below `c`
/// running a call-bound thread (`cb_mask`, bit N: vCPU N) that its affinity allows. Only
/// ever downwards, so two vCPUs deciding at once do not swap their threads.
pub fn target(c: u32, cb_mask: u64, affinity: u64) -> Option<u32> {
    let below = if c >= 64 { u64::MAX } else { (1u64 << c) - 1 };
    let m = cb_mask & affinity & below;
    (m != 0).then(|| m.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_pairs_crowd_two_host_cpus_not_four() {
        assert!(!crowded(1, 1), "one call-bound vCPU has no one to huddle with");
        assert!(!crowded(1, 2));
        assert!(crowded(2, 2));
        assert!(crowded(2, 3));
        assert!(!crowded(2, 4));
        assert!(crowded(3, 4));
        assert!(!crowded(0, 2));
    }

    #[test]
    fn a_thread_huddles_downwards_only_where_it_may_run() {
        assert_eq!(target(1, 0b11, u64::MAX), Some(0));
        assert_eq!(target(0, 0b11, u64::MAX), None, "vCPU 0 never moves");
        assert_eq!(target(3, 0b1110, u64::MAX), Some(1));
        assert_eq!(target(3, 0b1110, !0b10), Some(2), "its affinity rules vCPU 1 out");
        assert_eq!(target(2, 0b100, u64::MAX), None, "no one else is call-bound");
        assert_eq!(target(15, 1 << 15, u64::MAX), None);
    }
}
