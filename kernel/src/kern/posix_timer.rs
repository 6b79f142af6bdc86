//! POSIX per-process timers (timer_create(2), timer_settime(2), timer_gettime(2),
//! timer_getoverrun(2), timer_delete(2)).
//!
//! A process's timers live in a table keyed by the id timer_create returns (the lowest free
//! one). A timer measures one clock: the wall clocks (CLOCK_REALTIME, CLOCK_MONOTONIC,
//! CLOCK_BOOTTIME, their _ALARM kin and CLOCK_TAI) expire through a callout at the uptime the
//! clock is expected to reach the expiry, which checks the clock again and re-arms for what is
//! left; the CPU clocks (the process's, a thread's, or one clock_getcpuclockid(3) named) are
//! looked at each time a thread of the process returns from the guest (`cputime::charge_user`),
//! so they expire with a time slice's granularity, as setitimer's ITIMER_PROF does.
//!
//! On expiry the timer's signal (SIGEV_SIGNAL, SIGEV_THREAD, or SIGEV_THREAD_ID to one thread)
//! is queued with SI_TIMER, the timer id and its value; SIGEV_NONE sends nothing. While that
//! signal is still queued further expiries are counted as overruns instead (as Linux's
//! preallocated timer signal does); when the signal is taken ([`delivered`]) its si_overrun
//! carries the count, which timer_getoverrun then returns. A periodic timer that fires late
//! counts the periods it missed as overruns too. Timers are not inherited by fork and are
//! deleted by exec and exit.
//!
//! Lock order: a process's timer table before the signal locks.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};

use platform::sync::SpinLock;
use platform::timer::CalloutId;

use crate::abi::linux;
use crate::abi::signal::SiTimer;
use crate::kern::cputime;
use crate::kern::errno::Errno;
use crate::kern::proc::{Proc, UProc};
use crate::kern::signal::{self, SigInfo};

/// si_code of a timer's signal.
pub const SI_TIMER: i32 = linux::SI_TIMER;
/// DELAYTIMER_MAX: the overrun count saturates here.
const DELAYTIMER_MAX: u64 = i32::MAX as u64;

/// The clock a timer measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerClock {
    /// CLOCK_REALTIME, CLOCK_REALTIME_ALARM, CLOCK_TAI (no leap-second offset is kept).
    Realtime,
    /// CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM (vk does not suspend).
    Monotonic,
    /// The process's CPU time (user + system; `user_only`: user time, a VIRT clock).
    ProcessCpu { user_only: bool },
    /// A thread's CPU time, by thread id.
    ThreadCpu { tid: u64, user_only: bool },
}

impl TimerClock {
    fn is_cpu(self) -> bool {
        matches!(self, TimerClock::ProcessCpu { .. } | TimerClock::ThreadCpu { .. })
    }

    /// The clock's value now in `p` (None: the thread is gone).
    fn now_ns(self, p: &UProc) -> Option<u64> {
        Some(match self {
            TimerClock::Realtime => platform::time::realtime_ns(),
            TimerClock::Monotonic => platform::time::host_monotonic_ns(),
            TimerClock::ProcessCpu { user_only } => {
                let t = cputime::proc_times(p);
                if user_only { t.user_ns } else { t.total() }
            }
            TimerClock::ThreadCpu { tid, user_only } => {
                let td = p.threads().into_iter().find(|t| t.tid() == tid)?;
                let t = cputime::thread_times(&td);
                if user_only { t.user_ns } else { t.total() }
            }
        })
    }
}

/// How the expiry is told (struct sigevent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_NONE.
    None,
    /// SIGEV_SIGNAL (and SIGEV_THREAD, which the C library builds on it): to the process.
    Process { signo: i32, value: u64 },
    /// SIGEV_THREAD_ID: to one thread of the process.
    Thread { tid: u64, signo: i32, value: u64 },
}

#[derive(Debug)]
struct Timer {
    clock: TimerClock,
    notify: Notify,
    /// The clock's value at the next expiry (0: disarmed).
    expires_ns: u64,
    interval_ns: u64,
    /// Expiries not signalled because the signal was still queued (and missed periods).
    overrun: u64,
    /// The overruns of the last signal taken (timer_getoverrun).
    overrun_last: u64,
    /// A signal was queued and not yet taken.
    queued: bool,
    callout: Option<CalloutId>,
    /// Bumped by every set and delete, so a callout that lost a race does nothing.
    generation: u64,
}

/// A process's timers.
#[derive(Debug)]
pub struct Timers {
    table: SpinLock<BTreeMap<i32, Timer>>,
    /// Armed timers on CPU clocks (a return from the guest looks at the table only if any).
    cpu_armed: AtomicUsize,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { table: SpinLock::new("ptimers", BTreeMap::new()), cpu_armed: AtomicUsize::new(0) }
    }
}

fn timers(p: &UProc) -> &Timers {
    &p.user().posix_timers
}

/// timer_create: a new disarmed timer; returns its id. `limit` is how many timers the
/// process may have (its RLIMIT_SIGPENDING: each holds a signal ready).
pub fn create(p: &UProc, clock: TimerClock, notify: Option<Notify>, limit: u64) -> Result<i32, Errno> {
    let mut t = timers(p).table.lock();
    if t.len() as u64 >= limit {
        return Err(Errno::EAGAIN);
    }
    let id = (0..=i32::MAX).find(|i| !t.contains_key(i)).ok_or(Errno::EAGAIN)?;
    // No sigevent: SIGALRM to the process, with the timer id as its value.
    let notify = notify.unwrap_or(Notify::Process { signo: signal::SIGALRM, value: u64::from(id.unsigned_abs()) });
    t.insert(
        id,
        Timer {
            clock,
            notify,
            expires_ns: 0,
            interval_ns: 0,
            overrun: 0,
            overrun_last: 0,
            queued: false,
            callout: None,
            generation: 0,
        },
    );
    Ok(id)
}

/// Time left and interval of an armed timer, in ns (value 0: disarmed).
fn left(p: &UProc, tm: &Timer) -> (u64, u64) {
    if tm.expires_ns == 0 {
        return (0, tm.interval_ns);
    }
    let now = tm.clock.now_ns(p).unwrap_or(0);
    (tm.expires_ns.saturating_sub(now).max(1), tm.interval_ns)
}

/// timer_gettime: (value, interval) in ns.
pub fn get(p: &UProc, id: i32) -> Result<(u64, u64), Errno> {
    let t = timers(p).table.lock();
    let tm = t.get(&id).ok_or(Errno::EINVAL)?;
    Ok(left(p, tm))
}

/// timer_getoverrun.
pub fn overrun(p: &UProc, id: i32) -> Result<i32, Errno> {
    let t = timers(p).table.lock();
    let tm = t.get(&id).ok_or(Errno::EINVAL)?;
    Ok(i32::try_from(tm.overrun_last.min(DELAYTIMER_MAX)).unwrap_or(i32::MAX))
}

fn disarm(ts: &Timers, tm: &mut Timer) {
    if let Some(c) = tm.callout.take() {
        platform::timer::callout_stop(c);
    }
    if tm.expires_ns != 0 && tm.clock.is_cpu() {
        ts.cpu_armed.fetch_sub(1, Ordering::Relaxed);
    }
    tm.expires_ns = 0;
    tm.generation += 1;
}

/// timer_settime: arm (value in ns; 0 disarms) with `interval_ns`, the value absolute on the
/// timer's clock when `abstime`; returns the old (value, interval).
pub fn set(p: &UProc, id: i32, value_ns: u64, interval_ns: u64, abstime: bool) -> Result<(u64, u64), Errno> {
    let ts = timers(p);
    let fire_now = {
        let mut t = ts.table.lock();
        let tm = t.get_mut(&id).ok_or(Errno::EINVAL)?;
        let old = left(p, tm);
        disarm(ts, tm);
        tm.overrun = 0;
        tm.interval_ns = interval_ns;
        if value_ns == 0 {
            return Ok(old);
        }
        let now = tm.clock.now_ns(p).unwrap_or(0);
        tm.expires_ns = if abstime { value_ns.max(1) } else { now.saturating_add(value_ns) };
        if tm.clock.is_cpu() {
            ts.cpu_armed.fetch_add(1, Ordering::Relaxed);
        } else {
            arm_callout(p, id, tm, now);
        }
        (old, tm.clock.is_cpu() && tm.expires_ns <= now)
    };
    let (old, now) = fire_now;
    if now {
        cpu_check(p);
    }
    Ok(old)
}

/// A callout for a wall-clock timer at the uptime its clock should reach the expiry.
fn arm_callout(p: &UProc, id: i32, tm: &mut Timer, clock_now_ns: u64) {
    let delay = tm.expires_ns.saturating_sub(clock_now_ns);
    let at = platform::time::uptime_ns().saturating_add(delay);
    let (wp, generation) = (std::sync::Arc::downgrade(p.arc()), tm.generation);
    tm.callout = Some(platform::timer::callout_at(at, move || callout_fired(wp, id, generation)));
}

fn callout_fired(wp: Weak<Proc>, id: i32, generation: u64) {
    let Some(p) = wp.upgrade().and_then(UProc::new) else { return };
    let send = {
        let mut t = timers(&p).table.lock();
        let Some(tm) = t.get_mut(&id) else { return };
        if tm.generation != generation || tm.expires_ns == 0 {
            return;
        }
        tm.callout = None;
        let now = tm.clock.now_ns(&p).unwrap_or(u64::MAX);
        if now < tm.expires_ns {
            // The clock is behind the uptime's estimate: wait for the rest.
            arm_callout(&p, id, tm, now);
            return;
        }
        let send = expire(&p, id, tm, now);
        if tm.expires_ns != 0 {
            arm_callout(&p, id, tm, now);
        }
        send.map(|s| (s, tm.notify))
    };
    if let Some((info, notify)) = send {
        notify_send(&p, notify, info);
    }
}

/// The timer expired at clock value `now`: advance or disarm it; returns the signal to send
/// (None: SIGEV_NONE, or the last signal is still queued and this counts as an overrun).
fn expire(p: &UProc, id: i32, tm: &mut Timer, now: u64) -> Option<SigInfo> {
    match now.saturating_sub(tm.expires_ns).checked_div(tm.interval_ns) {
        None => tm.expires_ns = 0,
        Some(missed) => {
            tm.overrun = tm.overrun.saturating_add(missed);
            tm.expires_ns = tm.expires_ns.saturating_add((missed + 1).saturating_mul(tm.interval_ns));
        }
    }
    let (signo, value) = match tm.notify {
        Notify::None => return None,
        Notify::Process { signo, value } | Notify::Thread { signo, value, .. } => (signo, value),
    };
    if tm.queued && still_queued(p, tm, signo) {
        tm.overrun = tm.overrun.saturating_add(1);
        return None;
    }
    tm.queued = true;
    Some(SigInfo::kernel(signo, SI_TIMER).with(&SiTimer {
        _tid: id,
        _overrun: 0,
        _sigval: value,
        ..SiTimer::default()
    }))
}

/// Whether the timer's last signal is still queued (not taken, not discarded).
fn still_queued(p: &UProc, tm: &Timer, signo: i32) -> bool {
    let is_ours = |x: &SigInfo| x.si_signo == signo && x.si_code == SI_TIMER;
    match tm.notify {
        Notify::Thread { tid, .. } => p
            .threads()
            .into_iter()
            .find(|t| t.tid() == tid)
            .is_some_and(|t| t.user().sigstate.sig.lock().pending.any(is_ours)),
        _ => p.user().sig.lock().pending.any(is_ours),
    }
}

fn notify_send(p: &UProc, notify: Notify, info: SigInfo) {
    match notify {
        Notify::None => {}
        Notify::Process { .. } => signal::send_to_proc(p, info),
        Notify::Thread { tid, .. } => match p.threads().into_iter().find(|t| t.tid() == tid) {
            Some(td) => signal::send_to_thread(&td, info),
            None => signal::send_to_proc(p, info),
        },
    }
}

/// A thread of `p` returned from the guest: expire the CPU-clock timers that are due.
pub fn cpu_check(p: &UProc) {
    let ts = timers(p);
    if ts.cpu_armed.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut sends = Vec::new();
    {
        let mut t = ts.table.lock();
        for (&id, tm) in t.iter_mut() {
            if tm.expires_ns == 0 || !tm.clock.is_cpu() {
                continue;
            }
            let Some(now) = tm.clock.now_ns(p) else { continue };
            if now < tm.expires_ns {
                continue;
            }
            let info = expire(p, id, tm, now);
            if tm.expires_ns == 0 {
                ts.cpu_armed.fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(info) = info {
                sends.push((info, tm.notify));
            }
        }
    }
    for (info, notify) in sends {
        notify_send(p, notify, info);
    }
}

/// A timer signal of `p` is being taken: it carries the overruns counted since it was queued,
/// and the timer may signal again.
pub fn delivered(p: &UProc, info: &mut SigInfo) {
    let id = info.fields::<SiTimer>()._tid;
    let mut t = timers(p).table.lock();
    let Some(tm) = t.get_mut(&id) else { return };
    tm.queued = false;
    tm.overrun_last = tm.overrun.min(DELAYTIMER_MAX);
    tm.overrun = 0;
    let fields = SiTimer { _overrun: i32::try_from(tm.overrun_last).unwrap_or(i32::MAX), ..info.fields::<SiTimer>() };
    *info = info.with(&fields);
}

/// timer_delete: the timer goes; a signal of it still queued stays, as on Linux.
pub fn delete(p: &UProc, id: i32) -> Result<(), Errno> {
    let ts = timers(p);
    let mut tm = ts.table.lock().remove(&id).ok_or(Errno::EINVAL)?;
    disarm(ts, &mut tm);
    Ok(())
}

/// exec and exit: every timer goes.
pub fn delete_all(p: &UProc) {
    let ids: Vec<i32> = timers(p).table.lock().keys().copied().collect();
    for id in ids {
        let _ = delete(p, id);
    }
}
