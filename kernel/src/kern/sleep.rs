//! Sleep and wakeup on a wait channel, after BSD's `tsleep`/`wakeup` and sleep queues.
//!
//! A wait channel is an address (of the object waited for). Sleepers sit in one of
//! [`NBUCKETS`] hashed queues. To sleep on a condition without losing a wake-up, lock the
//! channel's queue with [`sleepq_lock`], check the condition, and sleep with
//! [`tsleep_locked`], which queues the thread before it lets the lock go; a waker takes the
//! same lock. A timeout is a callout that wakes the thread if it still sleeps in the same
//! sleep (the sleep generation tells).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kvm_mem::abi::tflags;
use platform::sync::{SpinGuard, SpinLock};

use crate::kern::sched::{curthread, mi_switch, setrunnable};
use crate::kern::thread::{Thread, WakeReason, ThreadState};

/// Sleep-queue hash buckets.
pub const NBUCKETS: usize = 64;

static SLEEPQ: [SpinLock<Vec<Arc<Thread>>>; NBUCKETS] = [const { SpinLock::new("sleepq", Vec::new()) }; NBUCKETS];

/// The wait channel of an object: its address.
pub fn wchan_of<T: ?Sized>(obj: &T) -> u64 {
    obj as *const T as *const u8 as u64
}

fn bucket(wchan: u64) -> &'static SpinLock<Vec<Arc<Thread>>> {
    let h = (wchan >> 4) ^ (wchan >> 12);
    &SLEEPQ[crate::kern::conv::bucket(h, NBUCKETS)]
}

/// A locked sleep queue.
pub struct SleepqGuard {
    guard: SpinGuard<'static, Vec<Arc<Thread>>>,
    wchan: u64,
}

/// Lock the sleep queue of `wchan` (to check a condition before sleeping on it).
pub fn sleepq_lock(wchan: u64) -> SleepqGuard {
    SleepqGuard { guard: bucket(wchan).lock(), wchan }
}

/// How a sleep may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepOpts {
    /// A signal may interrupt it (`S`/`I` in ps rather than `D`).
    pub interruptible: bool,
    pub timeout: Option<Duration>,
}

impl SleepOpts {
    pub const UNINTERRUPTIBLE: SleepOpts = SleepOpts { interruptible: false, timeout: None };

    pub fn timeout(d: Duration) -> SleepOpts {
        SleepOpts { interruptible: false, timeout: Some(d) }
    }
}

/// Sleep on the locked channel; the lock is released once the thread is queued.
pub fn tsleep_locked(g: SleepqGuard, wmesg: &str, opts: SleepOpts) -> WakeReason {
    tsleep_locked_state(g, wmesg, opts, ThreadState::Sleeping)
}

/// [`tsleep_locked`] showing the thread in `state` while it sleeps (STOPPED for a job-control
/// stop: `T` in ps).
pub fn tsleep_locked_state(mut g: SleepqGuard, wmesg: &str, opts: SleepOpts, state: ThreadState) -> WakeReason {
    let td = curthread().expect("tsleep off CPU");
    let wchan = g.wchan;
    let generation = td.sleep_gen.fetch_add(1, Ordering::AcqRel) + 1;
    td.wake_reason.store(WakeReason::Woken as u32, Ordering::Relaxed);
    td.set_wmesg(wchan, wmesg);
    td.rec.slptime_ns.store(platform::time::uptime_ns(), Ordering::Relaxed);
    if opts.interruptible {
        td.rec.flags.fetch_or(tflags::SINTR, Ordering::SeqCst);
    } else {
        td.rec.flags.fetch_and(!tflags::SINTR, Ordering::SeqCst);
    }
    td.set_state(state);
    // A signal is checked for only after the thread shows itself asleep: `signal_wake` sets
    // the thread's signal flag and then looks for a sleep to interrupt, without this lock, so
    // one of the two sees the other (a check before would miss a signal sent between it and
    // the state change, and the sleep would not end). A wake-up the signal sends meanwhile
    // finds the thread not queued (it waits for this lock) and does nothing.
    std::sync::atomic::fence(Ordering::SeqCst);
    if opts.interruptible && crate::kern::signal::pending(&td) {
        td.set_state(ThreadState::Running);
        clear_sleep(&td);
        return WakeReason::Interrupted;
    }
    g.guard.push(Arc::clone(&td));
    drop(g);
    let callout = opts.timeout.map(|d| {
        let sleeper = Arc::clone(&td);
        let deadline = platform::time::uptime_ns().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        platform::timer::callout_at(deadline, move || {
            wake_thread(&sleeper, wchan, generation, WakeReason::TimedOut);
        })
    });
    mi_switch();
    if let Some(id) = callout {
        platform::timer::callout_stop(id);
    }
    match td.wake_reason.load(Ordering::Acquire) {
        x if x == WakeReason::TimedOut as u32 => WakeReason::TimedOut,
        x if x == WakeReason::Interrupted as u32 => WakeReason::Interrupted,
        _ => WakeReason::Woken,
    }
}

/// Sleep on `wchan` (no condition to check: wake-ups before this call are lost).
pub fn tsleep(wchan: u64, wmesg: &str, opts: SleepOpts) -> WakeReason {
    tsleep_locked(sleepq_lock(wchan), wmesg, opts)
}

/// Sleep for a while (`pause(9)`): nothing wakes it but the clock.
pub fn pause(wmesg: &str, d: Duration) {
    let td = curthread().expect("pause off CPU");
    let chan = wchan_of(&*td) + 1; // a channel nobody else uses
    while tsleep(chan, wmesg, SleepOpts::timeout(d)) != WakeReason::TimedOut {}
}

fn clear_sleep(td: &Thread) {
    td.set_wmesg(0, "");
}

/// Wake every thread sleeping on `wchan`; returns how many.
pub fn wakeup(wchan: u64) -> usize {
    let woken: Vec<Arc<Thread>> = {
        let mut q = bucket(wchan).lock();
        let (hit, keep): (Vec<_>, Vec<_>) = q.drain(..).partition(|t| t.rec.wchan.load(Ordering::Relaxed) == wchan);
        *q = keep;
        for t in &hit {
            clear_sleep(t);
        }
        hit
    };
    let n = woken.len();
    for t in woken {
        setrunnable(t);
    }
    n
}

/// Wake one thread sleeping on `wchan` (the longest sleeper).
pub fn wakeup_one(wchan: u64) -> bool {
    let td = {
        let mut q = bucket(wchan).lock();
        let pos = q.iter().position(|t| t.rec.wchan.load(Ordering::Relaxed) == wchan);
        pos.map(|i| {
            let t = q.remove(i);
            clear_sleep(&t);
            t
        })
    };
    match td {
        Some(t) => {
            setrunnable(t);
            true
        }
        None => false,
    }
}

/// Wake `td` out of the sleep numbered `generation` on `wchan`, if it is still in it.
pub fn wake_thread(td: &Arc<Thread>, wchan: u64, generation: u64, why: WakeReason) -> bool {
    let found = {
        let mut q = bucket(wchan).lock();
        if td.sleep_gen.load(Ordering::Acquire) != generation {
            return false;
        }
        match q.iter().position(|t| Arc::ptr_eq(t, td)) {
            Some(i) => {
                let t = q.remove(i);
                t.wake_reason.store(why as u32, Ordering::Release);
                clear_sleep(&t);
                Some(t)
            }
            None => None,
        }
    };
    match found {
        Some(t) => {
            setrunnable(t);
            true
        }
        None => false,
    }
}
