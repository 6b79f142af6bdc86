//! POSIX timers: timer_create(2), timer_settime(2), timer_gettime(2), timer_getoverrun(2),
//! timer_delete(2) — argument checks as Linux's; the timers are `kern::posix_timer`'s.

use crate::abi::event::Itimerspec;
use crate::abi::time::{Sigevent, Timespec};
use crate::abi::{c_int, linux};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::posix_timer::{self, Notify, TimerClock};

const SIGEV_SIGNAL: i32 = c_int(linux::SIGEV_SIGNAL);
const SIGEV_NONE: i32 = c_int(linux::SIGEV_NONE);
const SIGEV_THREAD: i32 = c_int(linux::SIGEV_THREAD);
const SIGEV_THREAD_ID: i32 = c_int(linux::SIGEV_THREAD_ID);
const TIMER_ABSTIME: i32 = c_int(linux::TIMER_ABSTIME);
/// The highest signal number (SIGRTMAX).
const SIGRTMAX: i32 = 64;
/// RLIMIT_SIGPENDING's index.
const RLIMIT_SIGPENDING: usize = 11;

/// The clock a timer on `clk` measures: EINVAL for no clock, EOPNOTSUPP for a clock with no
/// timers (CLOCK_MONOTONIC_RAW, the _COARSE clocks), as Linux's clockid_to_kclock.
fn timer_clock(ctx: &Ctx<'_>, clk: i32) -> Result<TimerClock, Errno> {
    const REALTIME: i32 = c_int(linux::CLOCK_REALTIME);
    const MONOTONIC: i32 = c_int(linux::CLOCK_MONOTONIC);
    const PROCESS: i32 = c_int(linux::CLOCK_PROCESS_CPUTIME_ID);
    const THREAD: i32 = c_int(linux::CLOCK_THREAD_CPUTIME_ID);
    const RAW: i32 = c_int(linux::CLOCK_MONOTONIC_RAW);
    const REALTIME_COARSE: i32 = c_int(linux::CLOCK_REALTIME_COARSE);
    const MONOTONIC_COARSE: i32 = c_int(linux::CLOCK_MONOTONIC_COARSE);
    const BOOTTIME: i32 = c_int(linux::CLOCK_BOOTTIME);
    const REALTIME_ALARM: i32 = c_int(linux::CLOCK_REALTIME_ALARM);
    const BOOTTIME_ALARM: i32 = c_int(linux::CLOCK_BOOTTIME_ALARM);
    const TAI: i32 = c_int(linux::CLOCK_TAI);
    Ok(match clk {
        REALTIME | TAI => TimerClock::Realtime,
        MONOTONIC | BOOTTIME => TimerClock::Monotonic,
        REALTIME_ALARM | BOOTTIME_ALARM => {
            // Alarm timers may wake a suspended system: CAP_WAKE_ALARM.
            const CAP_WAKE_ALARM: u32 = 35;
            if !ctx.p.user().cred().capable(CAP_WAKE_ALARM) {
                return Err(Errno::EPERM);
            }
            if clk == REALTIME_ALARM { TimerClock::Realtime } else { TimerClock::Monotonic }
        }
        PROCESS => TimerClock::ProcessCpu { user_only: false },
        THREAD => TimerClock::ThreadCpu { tid: ctx.td.tid(), user_only: false },
        RAW | REALTIME_COARSE | MONOTONIC_COARSE => return Err(Errno::EOPNOTSUPP),
        c if c < 0 => cpu_timer_clock(ctx, c)?,
        _ => return Err(Errno::EINVAL),
    })
}

/// A clock of clock_getcpuclockid(3) or pthread_getcpuclockid(3) (`~pid << 3 | kind`, 4 for
/// a thread): timers on the caller's own process or its threads (another process's CPU
/// clock: EINVAL here, where Linux allows it).
fn cpu_timer_clock(ctx: &Ctx<'_>, clk: i32) -> Result<TimerClock, Errno> {
    let kind = clk & 3;
    if kind == 3 {
        return Err(Errno::EINVAL);
    }
    let user_only = kind == 1;
    let id = !(clk >> 3);
    if clk & 4 != 0 {
        let tid = if id == 0 { ctx.td.tid() } else { u64::try_from(id).map_err(|_| Errno::EINVAL)? };
        if !ctx.p.threads().iter().any(|t| t.tid() == tid) {
            return Err(Errno::EINVAL);
        }
        Ok(TimerClock::ThreadCpu { tid, user_only })
    } else if id == 0 || id == ctx.p.pid {
        Ok(TimerClock::ProcessCpu { user_only })
    } else {
        Err(Errno::EINVAL)
    }
}

/// The notification a sigevent asks for (EINVAL as Linux's good_sigevent).
fn notify(ctx: &Ctx<'_>, ev: &Sigevent) -> Result<Notify, Errno> {
    let signo_ok = |s: i32| (1..=SIGRTMAX).contains(&s);
    match ev.sigev_notify {
        SIGEV_NONE => Ok(Notify::None),
        SIGEV_SIGNAL | SIGEV_THREAD if signo_ok(ev.sigev_signo) => {
            Ok(Notify::Process { signo: ev.sigev_signo, value: ev.sigev_value })
        }
        SIGEV_THREAD_ID if signo_ok(ev.sigev_signo) => {
            let tid = u64::try_from(ev._sigev_un[0]).map_err(|_| Errno::EINVAL)?;
            if !ctx.p.threads().iter().any(|t| t.tid() == tid) {
                return Err(Errno::EINVAL);
            }
            Ok(Notify::Thread { tid, signo: ev.sigev_signo, value: ev.sigev_value })
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_timer_create(ctx: &mut Ctx<'_>) -> SysResult {
    let clock = timer_clock(ctx, ctx.int(0))?;
    let evp = ctx.ptr::<Sigevent>(1);
    let how = if evp.is_null() { None } else { Some(notify(ctx, &ctx.read(evp)?)?) };
    let idp = ctx.ptr::<i32>(2);
    if idp.is_null() {
        return Err(Errno::EFAULT);
    }
    let limit = ctx.p.user().rlimits.lock()[RLIMIT_SIGPENDING].0;
    let id = posix_timer::create(ctx.p, clock, how, limit)?;
    if let Err(e) = ctx.write(idp, &id) {
        let _ = posix_timer::delete(ctx.p, id);
        return Err(e);
    }
    Ok(0)
}

fn itimerspec(value_ns: u64, interval_ns: u64) -> Itimerspec {
    Itimerspec { it_interval: Timespec::from_ns(interval_ns), it_value: Timespec::from_ns(value_ns) }
}

pub fn sys_timer_settime(ctx: &mut Ctx<'_>) -> SysResult {
    let id = ctx.int(0);
    let abstime = ctx.int(1) & TIMER_ABSTIME != 0;
    let newp = ctx.ptr::<Itimerspec>(2);
    if newp.is_null() {
        return Err(Errno::EINVAL);
    }
    let new = ctx.read(newp)?;
    let (value, interval) = (new.it_value.to_ns()?, new.it_interval.to_ns()?);
    let (old_value, old_interval) = posix_timer::set(ctx.p, id, value, interval, abstime)?;
    let oldp = ctx.ptr::<Itimerspec>(3);
    if !oldp.is_null() {
        ctx.write(oldp, &itimerspec(old_value, old_interval))?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(ctx: &mut Ctx<'_>) -> SysResult {
    let (value, interval) = posix_timer::get(ctx.p, ctx.int(0))?;
    ctx.write(ctx.ptr::<Itimerspec>(1), &itimerspec(value, interval))?;
    Ok(0)
}

pub fn sys_timer_getoverrun(ctx: &mut Ctx<'_>) -> SysResult {
    let n = posix_timer::overrun(ctx.p, ctx.int(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub fn sys_timer_delete(ctx: &mut Ctx<'_>) -> SysResult {
    posix_timer::delete(ctx.p, ctx.int(0))?;
    Ok(0)
}
