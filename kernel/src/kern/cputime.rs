//! CPU time and interval timers: the CPU clocks, getrusage(2), times(2), and setitimer(2)'s
//! three timers (alarm(2) is ITIMER_REAL).
//!
//! A thread's CPU time is the time its kernel thread held a vCPU (the scheduler's runtime,
//! plus the slice it is running now). Of that, user time is the time the guest ran in its
//! stub: the wall time of [`crate::kern::usertrap`]'s run, during which the vCPU waits for
//! the stub's trap; the rest is system time. Exited threads' times are summed into their
//! process; a reaped child's whole time into its parent's "children" times.
//!
//! ITIMER_REAL is a callout that sends SIGALRM; ITIMER_VIRTUAL and ITIMER_PROF count down by
//! the user (resp. user + system) time charged at each return from the guest, so they fire
//! with the granularity of a time slice (10 ms), as a tick-based kernel's do.

use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use platform::sync::SpinLock;
use platform::timer::CalloutId;

use crate::abi::{c_int, linux};
use crate::kern::errno::Errno;
use crate::kern::proc::Proc;
use crate::kern::proc::UProc;
use crate::kern::sched;
use crate::kern::signal::{self, SI_KERNEL, SIGALRM, SIGPROF, SIGVTALRM, SigInfo};
use crate::kern::thread::Thread;
use crate::kern::thread::UThread;

/// Clock ticks per second of times(2), AT_CLKTCK and /proc (USER_HZ).
pub const USER_HZ: u64 = 100;

/// One of a process's three interval timers (setitimer(2)'s `which`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// ITIMER_REAL: wall time, SIGALRM.
    Real,
    /// ITIMER_VIRTUAL: user time, SIGVTALRM.
    Virtual,
    /// ITIMER_PROF: user and system time, SIGPROF.
    Prof,
}

impl Which {
    const ALL: [Which; 3] = [Which::Real, Which::Virtual, Which::Prof];

    fn index(self) -> usize {
        match self {
            Which::Real => 0,
            Which::Virtual => 1,
            Which::Prof => 2,
        }
    }
}

impl TryFrom<i32> for Which {
    type Error = Errno;

    /// EINVAL for anything but ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF.
    fn try_from(which: i32) -> Result<Which, Errno> {
        const REAL: i32 = c_int(linux::ITIMER_REAL);
        const VIRTUAL: i32 = c_int(linux::ITIMER_VIRTUAL);
        const PROF: i32 = c_int(linux::ITIMER_PROF);
        match which {
            REAL => Ok(Which::Real),
            VIRTUAL => Ok(Which::Virtual),
            PROF => Ok(Which::Prof),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// User and system time, in ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub user_ns: u64,
    pub sys_ns: u64,
}

impl Times {
    pub fn add(&mut self, o: Times) {
        self.user_ns = self.user_ns.saturating_add(o.user_ns);
        self.sys_ns = self.sys_ns.saturating_add(o.sys_ns);
    }

    pub fn total(&self) -> u64 {
        self.user_ns.saturating_add(self.sys_ns)
    }
}

/// One interval timer: time left and the reload value, in ns (0: disarmed).
#[derive(Debug, Default)]
pub struct ITimer {
    /// ITIMER_REAL: the uptime at which it fires; the others: CPU time left.
    pub value_ns: u64,
    pub interval_ns: u64,
    /// ITIMER_REAL's pending callout.
    callout: Option<CalloutId>,
    /// Bumped on every set, so a callout that lost a race with a set does nothing.
    generation: u64,
}

/// A process's CPU-time bookkeeping.
#[derive(Debug)]
pub struct ProcTimes {
    /// Threads that have exited.
    pub dead: SpinLock<Times>,
    /// Reaped children (and their reaped children).
    pub children: SpinLock<Times>,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF (by [`Which`]).
    itimers: [SpinLock<ITimer>; 3],
}

impl Default for ProcTimes {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcTimes {
    fn itimer(&self, which: Which) -> &SpinLock<ITimer> {
        &self.itimers[which.index()]
    }

    pub fn new() -> ProcTimes {
        ProcTimes {
            dead: SpinLock::new("ptimes", Times::default()),
            children: SpinLock::new("ptimes", Times::default()),
            itimers: [const { SpinLock::new("itimer", ITimer { value_ns: 0, interval_ns: 0, callout: None, generation: 0 }) };
                3],
        }
    }
}

/// A guest thread's user time so far.
#[derive(Debug, Default)]
pub struct ThreadTimes {
    pub user_ns: AtomicU64,
}

/// The thread's CPU time (including the slice it is running now) split into user and system.
pub fn thread_times(td: &Thread) -> Times {
    let total = sched::thread_cputime_ns(td);
    let user = td.as_user().map_or(0, |u| u.times.user_ns.load(Ordering::Relaxed)).min(total);
    Times { user_ns: user, sys_ns: total - user }
}

/// The process's CPU time: live threads and exited ones.
pub fn proc_times(p: &UProc) -> Times {
    let mut t = *p.user().times.dead.lock();
    for td in p.threads() {
        t.add(thread_times(&td));
    }
    t
}

/// A thread is leaving: its time goes to its process.
pub fn thread_gone(td: &Thread, p: &UProc) {
    let t = thread_times(td);
    p.user().times.dead.lock().add(t);
}

/// A child was reaped: its time and its children's go to the parent.
pub fn child_reaped(parent: &UProc, child: &UProc) {
    let mut t = *child.user().times.dead.lock();
    t.add(*child.user().times.children.lock());
    parent.user().times.children.lock().add(t);
}

/// The guest ran `user_ns` in its stub: account it. This is all the return path does at
/// every trap (two plain adds: each count has one writer, its CPU or its thread); the CPU-time
/// timers and RLIMIT_CPU, which take locks, are run down in batches ([`run_cpu_timers`],
/// [`CPU_TIMER_BATCH_NS`]): they fire with a time slice's granularity anyway.
pub fn charge_user(td: &UThread, user_ns: u64) {
    crate::kern::cpustat::charge_user(user_ns);
    // Only the thread itself adds to its user time: a plain add, no locked instruction.
    let t = &td.user().times.user_ns;
    t.store(t.load(Ordering::Relaxed) + user_ns, Ordering::Relaxed);
}

/// How much wall time the return path lets pass between two runs of [`run_cpu_timers`].
pub const CPU_TIMER_BATCH_NS: u64 = 1_000_000;

/// Run down ITIMER_VIRTUAL and ITIMER_PROF by `user_ns` of user time and `total_ns` of CPU
/// time charged since the last call, and check RLIMIT_CPU.
pub fn run_cpu_timers(p: &UProc, user_ns: u64, total_ns: u64) {
    for (which, used, sig) in [(Which::Virtual, user_ns, SIGVTALRM), (Which::Prof, total_ns, SIGPROF)] {
        let fired = {
            let mut t = p.user().times.itimer(which).lock();
            if t.value_ns == 0 || used == 0 {
                false
            } else if used < t.value_ns {
                t.value_ns -= used;
                false
            } else {
                t.value_ns = t.interval_ns;
                true
            }
        };
        if fired {
            signal::send_to_proc(p, SigInfo::kernel(sig, SI_KERNEL));
        }
    }
    cpu_limit(p);
    crate::kern::posix_timer::cpu_check(p);
}

/// RLIMIT_CPU: past the soft limit (in seconds of the process's CPU time) SIGXCPU, and the
/// soft limit one second higher while it is below the hard one, as Linux does; at the hard
/// limit SIGKILL.
fn cpu_limit(p: &UProc) {
    const RLIMIT_CPU: usize = 0;
    let (soft, hard) = p.user().rlimits.lock()[RLIMIT_CPU];
    if soft == crate::kern::uproc::RLIM_INFINITY {
        return;
    }
    let secs = proc_times(p).total() / 1_000_000_000;
    if secs >= hard {
        signal::send_to_proc(p, SigInfo::kernel(signal::SIGKILL, SI_KERNEL));
    } else if secs >= soft {
        {
            let mut l = p.user().rlimits.lock();
            if l[RLIMIT_CPU].0 != soft {
                return; // another thread got there first
            }
            l[RLIMIT_CPU].0 = soft + 1;
        }
        signal::send_to_proc(p, SigInfo::kernel(signal::SIGXCPU, SI_KERNEL));
    }
}

/// getitimer: (value, interval) in ns.
pub fn get(p: &UProc, which: Which) -> (u64, u64) {
    let t = p.user().times.itimer(which).lock();
    let value = if which == Which::Real && t.value_ns != 0 {
        t.value_ns.saturating_sub(platform::time::uptime_ns()).max(1)
    } else {
        t.value_ns
    };
    (value, t.interval_ns)
}

/// setitimer: arm (or with `value_ns` 0, disarm) a timer; returns the old setting.
pub fn set(p: &UProc, which: Which, value_ns: u64, interval_ns: u64) -> (u64, u64) {
    let old = get(p, which);
    let mut t = p.user().times.itimer(which).lock();
    if let Some(id) = t.callout.take() {
        platform::timer::callout_stop(id);
    }
    t.generation += 1;
    t.interval_ns = if value_ns == 0 { 0 } else { interval_ns };
    if which != Which::Real {
        t.value_ns = value_ns;
        return old;
    }
    if value_ns == 0 {
        t.value_ns = 0;
        return old;
    }
    let deadline = platform::time::uptime_ns().saturating_add(value_ns);
    t.value_ns = deadline;
    t.callout = Some(arm_real(Arc::downgrade(p.arc()), deadline, t.generation));
    old
}

fn arm_real(p: Weak<Proc>, deadline: u64, generation: u64) -> CalloutId {
    platform::timer::callout_at(deadline, move || real_fired(p, generation))
}

/// ITIMER_REAL expired: SIGALRM, and re-arm a periodic timer (from its last deadline, so it
/// does not drift; skipping periods that have already passed).
fn real_fired(wp: Weak<Proc>, generation: u64) {
    let Some(p) = wp.upgrade().and_then(UProc::new) else { return };
    {
        let mut t = p.user().times.itimer(Which::Real).lock();
        if t.generation != generation || t.value_ns == 0 {
            return;
        }
        t.callout = None;
        if t.interval_ns == 0 {
            t.value_ns = 0;
        } else {
            let now = platform::time::uptime_ns();
            let mut next = t.value_ns.saturating_add(t.interval_ns);
            if next <= now {
                let behind = (now - next) / t.interval_ns + 1;
                next = next.saturating_add(behind.saturating_mul(t.interval_ns));
            }
            t.value_ns = next;
            t.callout = Some(arm_real(wp.clone(), next, generation));
        }
    }
    signal::send_to_proc(&p, SigInfo::kernel(SIGALRM, SI_KERNEL));
}

/// The process is gone (or its timers are not inherited): stop ITIMER_REAL.
pub fn cancel_all(p: &UProc) {
    for which in Which::ALL {
        let mut t = p.user().times.itimer(which).lock();
        if let Some(id) = t.callout.take() {
            platform::timer::callout_stop(id);
        }
        t.generation += 1;
        t.value_ns = 0;
        t.interval_ns = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_add_and_saturate() {
        let mut a = Times { user_ns: 5, sys_ns: 7 };
        a.add(Times { user_ns: u64::MAX, sys_ns: 1 });
        assert_eq!(a, Times { user_ns: u64::MAX, sys_ns: 8 });
        assert_eq!(a.total(), u64::MAX);
    }
}
