//! ktrace: `-e debug.ktrace=1` prints every system call (pid/tid, name, arguments, result) and
//! every fault signal on the console — vk's strace, since the host cannot ptrace a guest.
//! ddb's `ktrace PID` does the same for one process. The flags live here, below the system
//! call layer that prints the calls.
//!
//! Processes traced one by one are a small table of (pid, process record address) pairs —
//! both, so a process that exits does not pass its tracing on to a later one with its pid. A
//! system call looks at the table only when it is not empty (one relaxed load).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

static KTRACE: AtomicBool = AtomicBool::new(false);

/// Whether tracing of every process is on.
pub fn enabled() -> bool {
    KTRACE.load(Ordering::Relaxed)
}

/// Turn tracing of every process on or off.
pub fn set_enabled(on: bool) {
    KTRACE.store(on, Ordering::Relaxed);
}

/// Processes traced one by one, at most.
pub const MAX_TRACED: usize = 16;

struct Traced {
    pid: AtomicI32,
    /// The process's record address; 0: a free slot.
    rec: AtomicU64,
}

static TRACED: [Traced; MAX_TRACED] = [const { Traced { pid: AtomicI32::new(0), rec: AtomicU64::new(0) } }; MAX_TRACED];
static NTRACED: AtomicU32 = AtomicU32::new(0);

/// Whether the process `pid` whose record is at `rec` is traced (all of them, or this one).
pub fn traced(pid: i32, rec: u64) -> bool {
    enabled()
        || (NTRACED.load(Ordering::Relaxed) != 0
            && TRACED.iter().any(|t| t.rec.load(Ordering::Relaxed) == rec && t.pid.load(Ordering::Relaxed) == pid))
}

/// Trace one process, or stop. `alive(pid, rec)` says whether a slot's process still exists
/// (slots of processes gone are reused). Err when the table is full.
pub fn set_traced(pid: i32, rec: u64, on: bool, alive: impl Fn(i32, u64) -> bool) -> Result<(), String> {
    let matches = |t: &Traced| t.rec.load(Ordering::Relaxed) == rec && t.pid.load(Ordering::Relaxed) == pid;
    if !on {
        for t in TRACED.iter().filter(|t| matches(t)) {
            t.rec.store(0, Ordering::Relaxed);
            NTRACED.fetch_sub(1, Ordering::Relaxed);
        }
        return Ok(());
    }
    if TRACED.iter().any(matches) {
        return Ok(());
    }
    for t in &TRACED {
        let old = t.rec.load(Ordering::Relaxed);
        if old != 0 && alive(t.pid.load(Ordering::Relaxed), old) {
            continue;
        }
        if old == 0 {
            NTRACED.fetch_add(1, Ordering::Relaxed);
        }
        t.pid.store(pid, Ordering::Relaxed);
        t.rec.store(rec, Ordering::Relaxed);
        return Ok(());
    }
    Err(format!("already tracing {MAX_TRACED} processes"))
}

/// The pids traced one by one.
pub fn traced_pids() -> Vec<i32> {
    TRACED.iter().filter(|t| t.rec.load(Ordering::Relaxed) != 0).map(|t| t.pid.load(Ordering::Relaxed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_traced_by_pid_and_record() {
        assert!(!traced(4242, 0x1000));
        set_traced(4242, 0x1000, true, |_, _| true).unwrap();
        assert!(traced(4242, 0x1000));
        assert!(!traced(4242, 0x2000), "a later process with the same pid");
        assert!(traced_pids().contains(&4242));
        set_traced(4242, 0x1000, false, |_, _| true).unwrap();
        assert!(!traced(4242, 0x1000));
        // A full table reuses the slots of processes that are gone.
        for (i, rec) in (0..i32::try_from(MAX_TRACED).unwrap()).zip(0x9000u64..) {
            set_traced(5000 + i, rec, true, |_, _| true).unwrap();
        }
        assert!(set_traced(6000, 0xa000, true, |_, _| true).is_err());
        set_traced(6000, 0xa000, true, |pid, _| pid != 5003).unwrap();
        assert!(traced(6000, 0xa000) && !traced(5003, 0x9003));
        for (i, rec) in (0..i32::try_from(MAX_TRACED).unwrap()).zip(0x9000u64..) {
            set_traced(5000 + i, rec, false, |_, _| true).unwrap();
        }
        set_traced(6000, 0xa000, false, |_, _| true).unwrap();
        assert_eq!(NTRACED.load(Ordering::Relaxed), 0);
    }
}
