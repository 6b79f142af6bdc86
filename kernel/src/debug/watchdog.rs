//! The watchdog: a vCPU that has not passed a safe point for `debug.watchdog` seconds (default
//! 10, 0 turns it off) is stuck — in a loop, or waiting for something that never comes — and
//! is broken into with the NMI-style IPI, wherever it is: `watchdog: cpu1 stuck for 10 s`,
//! then `db>` with its backtrace (FreeBSD's software watchdog, `debug.kdb.break_to_debugger`).
//!
//! A host thread that is not a CPU looks at each CPU's safe-point count (`kern::pcpu`) four
//! times a second. A CPU asleep in `cpu_idle`, a CPU waiting for its guest thread's stub
//! (`pcpu::IN_GUEST`: the guest runs in user mode — a program may spin there as long as it
//! likes — or the host is slow to start its stub thread), or any CPU while the debugger runs,
//! is not stuck: only kernel time counts; and when the watchdog itself did not run for a while (the host did not schedule it,
//! or a host debugger stopped the process) it starts counting afresh rather than blame a CPU.

use std::sync::atomic::Ordering;
use std::time::Duration;

use platform::MAXCPU;

use crate::kern::pcpu::{IN_GUEST, SAFE_POINTS};
use crate::kprintf_nolock;

/// Seconds without a safe point before the watchdog fires, unless `-e debug.watchdog=N`.
pub const DEFAULT_TIMEOUT_S: u64 = 10;
/// How often the CPUs are looked at.
const PERIOD: Duration = Duration::from_millis(250);

/// The timeout `-e debug.watchdog=N` asks for (None: off).
pub fn timeout_s() -> Option<u64> {
    let n = match crate::kern::kenv::get("debug.watchdog") {
        None => DEFAULT_TIMEOUT_S,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                crate::kprintf!("debug.watchdog={v}: not a number of seconds; the watchdog uses {DEFAULT_TIMEOUT_S}\n");
                DEFAULT_TIMEOUT_S
            }
        },
    };
    (n > 0).then_some(n)
}

/// Start the watchdog thread, when it is on.
pub fn start() {
    let Some(secs) = timeout_s() else { return };
    if let Err(e) = platform::cpu::spawn_host_thread("watchdog", move || watch(secs)) {
        crate::kprintf!("watchdog: cannot start: {e}\n");
    }
}

/// What the watchdog knows of one CPU.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    count: u64,
    /// When the count last changed, or the CPU was last seen idle (host monotonic ns).
    since_ns: u64,
}

/// One look at the CPUs (each one's safe-point count, and whether it is idle or in guest
/// code); returns the CPU to break into and how long it has been stuck.
fn check(seen: &mut [Seen; MAXCPU], now_ns: u64, limit_ns: u64, counts: &[(u64, bool)]) -> Option<(u32, u64)> {
    let mut stuck = None;
    for (c, (&(count, not_kernel), s)) in counts.iter().zip(seen.iter_mut()).enumerate() {
        if count != s.count || not_kernel {
            *s = Seen { count, since_ns: now_ns };
        } else if stuck.is_none() && now_ns.saturating_sub(s.since_ns) >= limit_ns {
            stuck = Some((u32::try_from(c).unwrap_or(u32::MAX), now_ns - s.since_ns));
            s.since_ns = now_ns;
        }
    }
    stuck
}

/// Every CPU as first seen at `now_ns`: a CPU is stuck only after a whole period without a
/// safe point from here (the host's monotonic clock does not start at boot).
fn first_seen(now_ns: u64) -> [Seen; MAXCPU] {
    [Seen { count: 0, since_ns: now_ns }; MAXCPU]
}

fn watch(secs: u64) -> ! {
    let limit_ns = secs * 1_000_000_000;
    let mut last_ns = platform::time::host_monotonic_ns();
    let mut seen = first_seen(last_ns);
    loop {
        std::thread::sleep(PERIOD);
        let now = platform::time::host_monotonic_ns();
        let overslept = u128::from(now.saturating_sub(last_ns)) > 4 * PERIOD.as_nanos();
        last_ns = now;
        let ncpus = (platform::cpu::ncpus() as usize).min(MAXCPU);
        // No allocation here: a stuck CPU may hold an allocator lock.
        let mut all = [(0u64, false); MAXCPU];
        for ((c, slot), n) in all.iter_mut().enumerate().take(ncpus).zip(0u32..) {
            let not_kernel = platform::cpu::pcpu(n).is_idle() || IN_GUEST[c].load(Ordering::Relaxed);
            *slot = (SAFE_POINTS[c].load(Ordering::Relaxed), not_kernel);
        }
        let counts = &all[..ncpus];
        if overslept || crate::debug::kdb::active() {
            for (s, &(count, _)) in seen.iter_mut().zip(counts) {
                *s = Seen { count, since_ns: now };
            }
            continue;
        }
        if let Some((cpu, stuck_ns)) = check(&mut seen, now, limit_ns, counts) {
            kprintf_nolock!("watchdog: cpu{cpu} stuck for {} s\n", stuck_ns / 1_000_000_000);
            crate::debug::kdb::watchdog_breakin(cpu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_without_safe_points_is_stuck_and_an_idle_one_is_not() {
        let mut seen = [Seen::default(); MAXCPU];
        let s = 1_000_000_000;
        // cpu0 passes safe points, cpu1 is stuck, cpu2 sleeps idle.
        assert_eq!(check(&mut seen, 0, 10 * s, &[(1, false), (7, false), (3, true)]), None);
        assert_eq!(check(&mut seen, 5 * s, 10 * s, &[(2, false), (7, false), (3, true)]), None);
        assert_eq!(check(&mut seen, 10 * s, 10 * s, &[(3, false), (7, false), (3, true)]), Some((1, 10 * s)));
        // It fires once per timeout, not on every look.
        assert_eq!(check(&mut seen, 11 * s, 10 * s, &[(4, false), (7, false), (3, true)]), None);
        assert_eq!(check(&mut seen, 30 * s, 10 * s, &[(5, false), (8, false), (3, true)]), None);
    }

    #[test]
    fn guest_time_does_not_count_only_kernel_time_does() {
        let s = 1_000_000_000;
        let mut seen = first_seen(0);
        // cpu0 spins in guest user code for 12 s (no safe point, in the guest): not stuck.
        for t in 1..=12 {
            assert_eq!(check(&mut seen, t * s, 10 * s, &[(5, true)]), None);
        }
        // Back in the kernel at 12 s and stuck there: 10 s of kernel time from then.
        assert_eq!(check(&mut seen, 13 * s, 10 * s, &[(5, false)]), None);
        assert_eq!(check(&mut seen, 21 * s, 10 * s, &[(5, false)]), None);
        assert_eq!(check(&mut seen, 22 * s, 10 * s, &[(5, false)]), Some((0, 10 * s)));
    }

    #[test]
    fn a_cpu_is_not_stuck_for_the_time_before_the_watchdog_started() {
        let s = 1_000_000_000;
        // The host has been up for hours; cpu0 has passed no safe point yet (boot).
        let mut seen = first_seen(8000 * s);
        assert_eq!(check(&mut seen, 8005 * s, 10 * s, &[(0, false)]), None);
        assert_eq!(check(&mut seen, 8010 * s, 10 * s, &[(0, false)]), Some((0, 10 * s)));
    }
}
