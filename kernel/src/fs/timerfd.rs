//! timerfd (timerfd_create(2)): a timer whose expirations are read from a file. Arming takes
//! an initial expiration (relative, or absolute with TFD_TIMER_ABSTIME) and an interval; each
//! expiration adds one to a count that a read returns (8 bytes) and resets, sleeping while it
//! is 0. Readable while the count is not 0. Re-arming or disarming resets the count.
//!
//! Clocks: CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME (the guest's boot time is its
//! monotonic time: the machine never suspends). An expiration is a callout on the kernel's
//! monotonic (uptime) queue at the same distance from now; each firing re-arms the next one
//! and counts the intervals it missed, as Linux's hrtimer_forward does.
//!
//! Lock order: `timerfd` → `callout` (arming); the callout runs with `callout` dropped and
//! takes `timerfd`.

use std::sync::{Arc, OnceLock, Weak};

use platform::sync::SpinLock;
use platform::timer::CalloutId;

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLIN, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// The clocks a timerfd can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Realtime,
    Monotonic,
    Boottime,
}

impl Clock {
    /// The clock's time now, in ns (the clocks clock_gettime(2) reads).
    pub fn now_ns(self) -> u64 {
        match self {
            Clock::Realtime => platform::time::realtime_ns(),
            Clock::Monotonic | Clock::Boottime => platform::time::host_monotonic_ns(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The next expiration, in the clock's ns (None: disarmed).
    next_ns: Option<u64>,
    interval_ns: u64,
    /// Expirations not yet read.
    ticks: u64,
    callout: Option<CalloutId>,
    /// Arming generation: a callout of an older arming does nothing.
    armed_gen: u64,
    /// Wake-ups sent to readers (edge-triggered epoll).
    in_gen: u64,
}

/// A timerfd.
#[derive(Debug)]
pub struct TimerFd {
    clock: Clock,
    st: SpinLock<State>,
    me: Weak<TimerFd>,
    ino: u64,
    uid: u32,
    gid: u32,
}

/// A new, disarmed timerfd on `clock`.
pub fn new(clock: Clock, uid: u32, gid: u32) -> VnodeRef {
    Arc::new_cyclic(|me| TimerFd {
        clock,
        st: SpinLock::new("timerfd", State::default()),
        me: me.clone(),
        ino: anon::new_ino(),
        uid,
        gid,
    })
}

/// A timer's setting as timerfd_gettime(2) shows it: (time to the next expiration, interval),
/// in ns; (0, 0) when disarmed.
pub type Setting = (u64, u64);

impl TimerFd {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    /// The current setting.
    pub fn get(&self) -> Setting {
        let st = self.st.lock();
        self.setting(&st)
    }

    fn setting(&self, st: &State) -> Setting {
        match st.next_ns {
            // A timer due but not yet fired shows 1 ns left, never 0 (0 means disarmed).
            Some(next) => (next.saturating_sub(self.clock.now_ns()).max(1), st.interval_ns),
            None => (0, st.interval_ns),
        }
    }

    /// Arm (value not 0) or disarm (value 0) the timer; `value_ns` is absolute in the
    /// clock's time when `abstime`, else relative to now. Returns the old setting.
    pub fn set(&self, value_ns: u64, interval_ns: u64, abstime: bool) -> Setting {
        let mut st = self.st.lock();
        let old = self.setting(&st);
        if let Some(id) = st.callout.take() {
            platform::timer::callout_stop(id);
        }
        st.armed_gen += 1;
        st.ticks = 0;
        st.interval_ns = interval_ns;
        st.next_ns = None;
        if value_ns != 0 {
            let now = self.clock.now_ns();
            let next = if abstime { value_ns } else { now.saturating_add(value_ns) };
            st.next_ns = Some(next);
            self.arm(&mut st, next, now);
        }
        old
    }

    /// Queue the callout for the expiration at `next_ns` (the clock's time `now_ns` now).
    fn arm(&self, st: &mut State, next_ns: u64, now_ns: u64) {
        let deadline = platform::time::uptime_ns().saturating_add(next_ns.saturating_sub(now_ns));
        let (me, armed) = (self.me.clone(), st.armed_gen);
        st.callout = Some(platform::timer::callout_at(deadline, move || {
            if let Some(t) = me.upgrade() {
                t.expire(armed);
            }
        }));
    }

    /// The callout: count the expirations due and arm the next one.
    fn expire(&self, armed: u64) {
        {
            let mut st = self.st.lock();
            if st.armed_gen != armed {
                return;
            }
            st.callout = None;
            let Some(next) = st.next_ns else { return };
            let now = self.clock.now_ns();
            if now < next {
                // Early (the clocks differ by a hair): wait out the rest.
                self.arm(&mut st, next, now);
                return;
            }
            if let Some(behind) = (now - next).checked_div(st.interval_ns) {
                let missed = behind + 1;
                st.ticks = st.ticks.saturating_add(missed);
                let n = next.saturating_add(missed.saturating_mul(st.interval_ns));
                st.next_ns = Some(n);
                self.arm(&mut st, n, now);
            } else {
                // One-shot: no interval.
                st.ticks = st.ticks.saturating_add(1);
                st.next_ns = None;
            }
            st.in_gen += 1;
        }
        wakeup(self.chan());
        poll_wakeup();
    }

    /// Expirations not yet read.
    pub fn ticks(&self) -> u64 {
        self.st.lock().ticks
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        if let Some(id) = self.st.lock().callout.take() {
            platform::timer::callout_stop(id);
        }
    }
}

impl Vnode for TimerFd {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, self.uid, self.gid))
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "timerfd")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let Some(out) = buf.get_mut(..8) else { return Err(Errno::EINVAL) };
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                if st.ticks > 0 {
                    let n = std::mem::take(&mut st.ticks);
                    drop(st);
                    drop(g);
                    out.copy_from_slice(&n.to_ne_bytes());
                    return Ok(8);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if tsleep_locked(g, "timerfd", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    fn poll(&self) -> u16 {
        if self.st.lock().ticks > 0 { POLLIN } else { 0 }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_gen(&self) -> (u64, u64) {
        (self.st.lock().in_gen, 0)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
