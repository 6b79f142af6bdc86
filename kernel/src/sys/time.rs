//! Clocks and sleeping: clock_gettime(2), clock_getres(2), gettimeofday(2), time(2),
//! nanosleep(2), clock_nanosleep(2); interval timers (getitimer(2), setitimer(2), alarm(2));
//! CPU time (getrusage(2), times(2)).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::abi::proc::{Rusage, Tms};
use crate::abi::time::{Itimerval, Timespec, Timeval, Timezone};
use crate::abi::{c_int, linux};
use crate::kern::cputime::{self, Times, Which};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

const CLOCK_REALTIME: i32 = c_int(linux::CLOCK_REALTIME);
const CLOCK_MONOTONIC: i32 = c_int(linux::CLOCK_MONOTONIC);
const CLOCK_PROCESS_CPUTIME_ID: i32 = c_int(linux::CLOCK_PROCESS_CPUTIME_ID);
const CLOCK_THREAD_CPUTIME_ID: i32 = c_int(linux::CLOCK_THREAD_CPUTIME_ID);
const CLOCK_MONOTONIC_RAW: i32 = c_int(linux::CLOCK_MONOTONIC_RAW);
const CLOCK_REALTIME_COARSE: i32 = c_int(linux::CLOCK_REALTIME_COARSE);
const CLOCK_MONOTONIC_COARSE: i32 = c_int(linux::CLOCK_MONOTONIC_COARSE);
const CLOCK_BOOTTIME: i32 = c_int(linux::CLOCK_BOOTTIME);
const CLOCK_REALTIME_ALARM: i32 = c_int(linux::CLOCK_REALTIME_ALARM);
const CLOCK_BOOTTIME_ALARM: i32 = c_int(linux::CLOCK_BOOTTIME_ALARM);
/// International atomic time: vk keeps no TAI offset (0, as Linux until NTP sets one).
const CLOCK_TAI: i32 = c_int(linux::CLOCK_TAI);
/// clock_nanosleep(2)'s one flag; Linux ignores the other bits.
const TIMER_ABSTIME: i32 = c_int(linux::TIMER_ABSTIME);

const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_US: u64 = 1000;

/// A clock's value in ns.
fn clock_ns(ctx: &Ctx<'_>, clk: i32) -> Result<u64, Errno> {
    Ok(match clk {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => platform::time::realtime_ns(),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => {
            platform::time::host_monotonic_ns()
        }
        CLOCK_THREAD_CPUTIME_ID => cputime::thread_times(ctx.td).total(),
        CLOCK_PROCESS_CPUTIME_ID => cputime::proc_times(ctx.p).total(),
        c if c < 0 => cpu_clock_ns(ctx, c)?,
        _ => return Err(Errno::EINVAL),
    })
}

/// A CPU clock made by clock_getcpuclockid(3) / pthread_getcpuclockid(3): `~pid << 3 | kind`,
/// with 4 set for a thread's clock. Kinds: 0 PROF (user + system), 1 VIRT (user), 2 SCHED.
/// A thread clock must name a thread of the caller's process, as on Linux.
fn cpu_clock_ns(ctx: &Ctx<'_>, clk: i32) -> Result<u64, Errno> {
    let kind = clk & 3;
    if kind == 3 {
        return Err(Errno::EINVAL);
    }
    let id = !(clk >> 3);
    let times = if clk & 4 != 0 {
        let td = if id == 0 {
            ctx.td.clone()
        } else {
            let tid = u64::try_from(id).map_err(|_| Errno::EINVAL)?;
            ctx.p.threads().into_iter().find(|t| t.tid() == tid).ok_or(Errno::EINVAL)?
        };
        cputime::thread_times(&td)
    } else {
        let p = if id == 0 { ctx.p.clone() } else { crate::kern::proc::find_user(id).ok_or(Errno::EINVAL)? };
        if p.is_zombie() {
            return Err(Errno::EINVAL);
        }
        cputime::proc_times(&p)
    };
    Ok(if kind == 1 { times.user_ns } else { times.total() })
}

pub fn sys_clock_gettime(ctx: &mut Ctx<'_>) -> SysResult {
    let ns = clock_ns(ctx, ctx.int(0))?;
    ctx.write(ctx.ptr::<Timespec>(1), &Timespec::from_ns(ns))?;
    Ok(0)
}

pub fn sys_clock_getres(ctx: &mut Ctx<'_>) -> SysResult {
    let clk = ctx.int(0);
    clock_ns(ctx, clk)?;
    let res = if clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE { 4_000_000 } else { 1 };
    let out = ctx.ptr::<Timespec>(1);
    if !out.is_null() {
        ctx.write(out, &Timespec::from_ns(res))?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(ctx: &mut Ctx<'_>) -> SysResult {
    let (tv, tz) = (ctx.ptr::<Timeval>(0), ctx.ptr::<Timezone>(1));
    if !tv.is_null() {
        ctx.write(tv, &Timeval::from_ns(platform::time::realtime_ns()))?;
    }
    if !tz.is_null() {
        ctx.write(tz, &Timezone::default())?;
    }
    Ok(0)
}

pub fn sys_time(ctx: &mut Ctx<'_>) -> SysResult {
    let s = platform::time::realtime_ns() / NS_PER_S;
    let out = ctx.ptr::<i64>(0);
    if !out.is_null() {
        ctx.write(out, &i64::try_from(s).unwrap_or(i64::MAX))?;
    }
    usize::try_from(s).map_err(|_| Errno::EOVERFLOW)
}

/// Sleep `ns`, or until a signal interrupts: then Err with the time left.
fn sleep_ns(ctx: &Ctx<'_>, ns: u64) -> Result<(), u64> {
    use crate::kern::sleep::{SleepOpts, tsleep, wchan_of};
    use crate::kern::thread::WakeReason;
    let deadline = platform::time::uptime_ns().saturating_add(ns);
    let chan = wchan_of(&**ctx.td) + 3;
    loop {
        let now = platform::time::uptime_ns();
        if now >= deadline {
            return Ok(());
        }
        let opts = SleepOpts { interruptible: true, timeout: Some(Duration::from_nanos(deadline - now)) };
        // A signal the thread blocks wakes it too (it may be what sigtimedwait waits for
        // elsewhere); only one it would take now ends the sleep.
        if tsleep(chan, "nanslp", opts) == WakeReason::Interrupted && crate::kern::signal::pending(ctx.td) {
            return Err(deadline.saturating_sub(platform::time::uptime_ns()));
        }
    }
}

pub fn sys_nanosleep(ctx: &mut Ctx<'_>) -> SysResult {
    let ns = ctx.timespec(0)?;
    match sleep_ns(ctx, ns) {
        Ok(()) => Ok(0),
        Err(left) => {
            let rem = ctx.ptr::<Timespec>(1);
            if !rem.is_null() {
                ctx.write(rem, &Timespec::from_ns(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

/// clock_nanosleep(2): the clock first (EINVAL; EOPNOTSUPP for the thread CPU clock, which
/// has no sleep on Linux 6), then the time. Flags other than TIMER_ABSTIME are ignored, as
/// Linux does.
pub fn sys_clock_nanosleep(ctx: &mut Ctx<'_>) -> SysResult {
    let clk = ctx.int(0);
    let now = clock_ns(ctx, clk)?;
    if clk == CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EOPNOTSUPP);
    }
    let ns = ctx.timespec(2)?;
    let abs = ctx.int(1) & TIMER_ABSTIME != 0;
    let wait = if abs { ns.saturating_sub(now) } else { ns };
    match sleep_ns(ctx, wait) {
        Ok(()) => Ok(0),
        Err(left) => {
            let rem = ctx.ptr::<Timespec>(3);
            if !abs && !rem.is_null() {
                ctx.write(rem, &Timespec::from_ns(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

/// A guest timeval as ns (EINVAL when out of range, as setitimer(2) checks).
fn timeval_ns(tv: &Timeval) -> Result<u64, Errno> {
    let (Ok(sec), Ok(usec)) = (u64::try_from(tv.tv_sec), u64::try_from(tv.tv_usec)) else {
        return Err(Errno::EINVAL);
    };
    if usec >= 1_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(sec.saturating_mul(NS_PER_S).saturating_add(usec * NS_PER_US))
}

/// ns as a timeval, rounded up to the next microsecond (a running timer never shows 0).
fn timeval_ceil(ns: u64) -> Timeval {
    Timeval::from_ns(ns.div_ceil(NS_PER_US).saturating_mul(NS_PER_US))
}

fn itimerval((value, interval): (u64, u64)) -> Itimerval {
    Itimerval { it_interval: timeval_ceil(interval), it_value: timeval_ceil(value) }
}

pub fn sys_getitimer(ctx: &mut Ctx<'_>) -> SysResult {
    let which = Which::try_from(ctx.int(0))?;
    let cur = cputime::get(ctx.p, which);
    ctx.write(ctx.ptr::<Itimerval>(1), &itimerval(cur))?;
    Ok(0)
}

pub fn sys_setitimer(ctx: &mut Ctx<'_>) -> SysResult {
    let which = Which::try_from(ctx.int(0))?;
    let (new, old) = (ctx.ptr::<Itimerval>(1), ctx.ptr::<Itimerval>(2));
    // A NULL new value disarms the timer (Linux's long-standing behaviour).
    let (value, interval) = if new.is_null() {
        (0, 0)
    } else {
        let v = ctx.read(new)?;
        (timeval_ns(&v.it_value)?, timeval_ns(&v.it_interval)?)
    };
    if !old.is_null() {
        // Check the old-value buffer before changing anything.
        ctx.write(old, &itimerval(cputime::get(ctx.p, which)))?;
    }
    let prev = cputime::set(ctx.p, which, value, interval);
    if !old.is_null() {
        ctx.write(old, &itimerval(prev))?;
    }
    Ok(0)
}

pub fn sys_alarm(ctx: &mut Ctx<'_>) -> SysResult {
    let secs = u64::from(ctx.uint(0));
    let (left, _) = cputime::set(ctx.p, Which::Real, secs * NS_PER_S, 0);
    // Seconds left, rounded to the nearest; never 0 for a timer that was still running.
    let mut s = left / NS_PER_S;
    if left % NS_PER_S >= NS_PER_S / 2 || (s == 0 && left > 0) {
        s += 1;
    }
    usize::try_from(s).map_err(|_| Errno::EOVERFLOW)
}

const RUSAGE_SELF: i32 = c_int(linux::RUSAGE_SELF);
const RUSAGE_CHILDREN: i32 = linux::RUSAGE_CHILDREN;
const RUSAGE_THREAD: i32 = c_int(linux::RUSAGE_THREAD);

/// A `struct rusage` with the two times (truncated to microseconds), the maximum resident
/// set in KiB and the voluntary context switches; vk counts nothing else.
fn rusage(t: Times, maxrss_kib: u64, nvcsw: u64) -> Rusage {
    let trunc = |ns: u64| Timeval::from_ns(ns / NS_PER_US * NS_PER_US);
    Rusage {
        ru_utime: trunc(t.user_ns),
        ru_stime: trunc(t.sys_ns),
        ru_maxrss: i64::try_from(maxrss_kib).unwrap_or(i64::MAX),
        ru_nvcsw: i64::try_from(nvcsw).unwrap_or(i64::MAX),
        ..Rusage::default()
    }
}

/// A reaped child's rusage.
pub fn child_rusage(t: Times) -> Rusage {
    rusage(t, 0, 0)
}

/// Resident set in KiB from pages.
fn rss_kib(pages: u64) -> u64 {
    pages.saturating_mul(u64::try_from(platform::PAGE_SIZE / 1024).unwrap_or(4))
}

/// A process's rusage.
pub fn proc_rusage(p: &crate::kern::proc::UProc) -> Rusage {
    let t = cputime::proc_times(p);
    let rss = rss_kib(p.rec.rss_pages.load(Ordering::Relaxed));
    let sw = p.threads().iter().map(|t| t.rec.switches.load(Ordering::Relaxed)).sum();
    rusage(t, rss, sw)
}

pub fn sys_getrusage(ctx: &mut Ctx<'_>) -> SysResult {
    let r = match ctx.int(0) {
        RUSAGE_SELF => proc_rusage(ctx.p),
        RUSAGE_THREAD => rusage(
            cputime::thread_times(ctx.td),
            rss_kib(ctx.p.rec.rss_pages.load(Ordering::Relaxed)),
            ctx.td.rec.switches.load(Ordering::Relaxed),
        ),
        RUSAGE_CHILDREN => rusage(*ctx.p.user().times.children.lock(), 0, 0),
        _ => return Err(Errno::EINVAL),
    };
    ctx.write(ctx.ptr::<Rusage>(1), &r)?;
    Ok(0)
}

pub use crate::kern::cputime::USER_HZ;
const NS_PER_TICK: u64 = NS_PER_S / USER_HZ;

fn ticks(ns: u64) -> i64 {
    i64::try_from(ns / NS_PER_TICK).unwrap_or(i64::MAX)
}

pub fn sys_times(ctx: &mut Ctx<'_>) -> SysResult {
    let out = ctx.ptr::<Tms>(0);
    if !out.is_null() {
        let me = cputime::proc_times(ctx.p);
        let kids = *ctx.p.user().times.children.lock();
        let t = Tms {
            tms_utime: ticks(me.user_ns),
            tms_stime: ticks(me.sys_ns),
            tms_cutime: ticks(kids.user_ns),
            tms_cstime: ticks(kids.sys_ns),
        };
        ctx.write(out, &t)?;
    }
    usize::try_from(platform::time::uptime_ns() / NS_PER_TICK).map_err(|_| Errno::EOVERFLOW)
}

/// clock_settime(2): EINVAL for a clock that cannot be set (every one but CLOCK_REALTIME) or a
/// time out of range, then EPERM without CAP_SYS_TIME — and, in vk, for root too: the
/// guest's realtime clock is the host's, which a guest does not change.
pub fn sys_clock_settime(ctx: &mut Ctx<'_>) -> SysResult {
    let clk = ctx.int(0);
    clock_ns(ctx, clk)?;
    if clk != CLOCK_REALTIME {
        return Err(Errno::EINVAL);
    }
    let ts: Timespec = ctx.read(ctx.ptr(1))?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    refuse_settime(ctx)
}

/// settimeofday(2): EINVAL for microseconds out of range or a bad time zone, EPERM as
/// clock_settime; with both arguments NULL, nothing to do.
pub fn sys_settimeofday(ctx: &mut Ctx<'_>) -> SysResult {
    let (tv, tz) = (ctx.ptr::<Timeval>(0), ctx.ptr::<Timezone>(1));
    if !tv.is_null() {
        let t = ctx.read(tv)?;
        if t.tv_sec < 0 || !(0..1_000_000).contains(&t.tv_usec) {
            return Err(Errno::EINVAL);
        }
    }
    if !tz.is_null() {
        let z = ctx.read(tz)?;
        if !(-15 * 60..=15 * 60).contains(&z.tz_minuteswest) {
            return Err(Errno::EINVAL);
        }
    }
    if tv.is_null() && tz.is_null() {
        return Ok(0);
    }
    refuse_settime(ctx)
}

fn refuse_settime(ctx: &Ctx<'_>) -> SysResult {
    if ctx.p.user().cred().capable(linux::CAP_SYS_TIME) {
        log::info!("pid {}: setting the realtime clock is refused (it is the host's)", ctx.p.pid);
    }
    Err(Errno::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timevals() {
        assert_eq!(timeval_ns(&Timeval { tv_sec: 1, tv_usec: 5 }), Ok(1_000_005_000));
        assert_eq!(timeval_ns(&Timeval { tv_sec: -1, tv_usec: 0 }), Err(Errno::EINVAL));
        assert_eq!(timeval_ns(&Timeval { tv_sec: 0, tv_usec: 1_000_000 }), Err(Errno::EINVAL));
        assert_eq!(timeval_ceil(1), Timeval { tv_sec: 0, tv_usec: 1 });
        assert_eq!(ticks(25_000_000), 2);
        let r = rusage(Times { user_ns: 1_500_999, sys_ns: 0 }, 8, 3);
        assert_eq!((r.ru_utime, r.ru_maxrss, r.ru_nvcsw), (Timeval { tv_sec: 0, tv_usec: 1500 }, 8, 3));
    }
}
