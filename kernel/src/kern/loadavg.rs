//! Load averages (`/proc/loadavg`, sysinfo(2)): Linux's exponentially-decayed averages of
//! the number of active threads — runnable or running, plus guest threads in an
//! uninterruptible sleep — sampled every 5 seconds by a callout (kernel/sched/loadavg.c).
//!
//! The averages are fixed-point numbers with [`FSHIFT`] fraction bits, as Linux keeps them:
//! `load = load * e + active * (1 - e)` with `e = exp(-5 s / 1, 5, 15 min)`.

use crate::kern::thread::ThreadState;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kvm_mem::abi::tflags;

/// Fraction bits of a load average.
pub const FSHIFT: u32 = 11;
/// 1.0 in fixed point.
pub const FIXED_1: u64 = 1 << FSHIFT;
/// exp(-5/60), exp(-5/300), exp(-5/900) in fixed point.
const EXP: [u64; 3] = [1884, 2014, 2037];
/// Sampling period.
pub const LOAD_FREQ_NS: u64 = 5_000_000_000;

static AVENRUN: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static STARTED: AtomicBool = AtomicBool::new(false);

/// One step of the average (Linux's `calc_load`, which rounds up while the load rises).
pub fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut new = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        new += FIXED_1 - 1;
    }
    new / FIXED_1
}

/// Threads that count: (runnable or running, uninterruptibly asleep). Idle threads never
/// count; a kernel thread's uninterruptible sleep (the syncer's pause) does not either.
pub fn nr_active() -> (u64, u64) {
    let (mut running, mut blocked) = (0, 0);
    for p in crate::kern::proc::all() {
        for td in p.threads() {
            let flags = td.rec.flags.load(Ordering::Relaxed);
            if flags & tflags::IDLE != 0 {
                continue;
            }
            match td.state() {
                ThreadState::Running | ThreadState::Runnable => running += 1,
                ThreadState::Sleeping if td.is_user() && flags & tflags::SINTR == 0 => blocked += 1,
                _ => {}
            }
        }
    }
    (running, blocked)
}

/// Take a sample now.
fn sample() {
    let (running, blocked) = nr_active();
    let active = (running + blocked) * FIXED_1;
    for (avg, exp) in AVENRUN.iter().zip(EXP) {
        avg.store(calc_load(avg.load(Ordering::Relaxed), exp, active), Ordering::Relaxed);
    }
}

fn arm(deadline_ns: u64) {
    platform::timer::callout_at(deadline_ns, move || {
        sample();
        arm(deadline_ns.saturating_add(LOAD_FREQ_NS).max(platform::time::uptime_ns()));
    });
}

/// Start sampling (once, at boot).
pub fn start() {
    if !STARTED.swap(true, Ordering::Relaxed) {
        arm(platform::time::uptime_ns().saturating_add(LOAD_FREQ_NS));
    }
}

/// The 1, 5 and 15 minute averages, fixed point with [`FSHIFT`] bits.
pub fn loads() -> [u64; 3] {
    [0, 1, 2].map(|i| AVENRUN[i].load(Ordering::Relaxed))
}

/// The averages as sysinfo(2) reports them (16 fraction bits).
pub fn loads_sysinfo() -> [u64; 3] {
    loads().map(|l| l << (16 - FSHIFT))
}

/// A load as `/proc/loadavg` prints it: "0.42" (Linux's LOAD_INT / LOAD_FRAC rounding).
pub fn format(load: u64) -> String {
    let l = load + FIXED_1 / 200;
    format!("{}.{:02}", l >> FSHIFT, ((l & (FIXED_1 - 1)) * 100) >> FSHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_load_converges_and_decays() {
        let mut l = 0;
        for _ in 0..200 {
            l = calc_load(l, EXP[0], 2 * FIXED_1);
        }
        assert_eq!(format(l), "2.00");
        for _ in 0..200 {
            l = calc_load(l, EXP[0], 0);
        }
        assert_eq!(format(l), "0.00");
    }

    #[test]
    fn one_sample_of_one_thread() {
        // After 5 s of one runnable thread the 1-minute average is 1 - exp(-1/12) = 0.08.
        assert_eq!(format(calc_load(0, EXP[0], FIXED_1)), "0.08");
        assert_eq!(format(0), "0.00");
        assert_eq!(format(FIXED_1 + FIXED_1 / 2), "1.50");
    }
}
