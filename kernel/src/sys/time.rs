//! Clocks and sleeping: clock_gettime(2), gettimeofday(2), time(2), nanosleep(2),
//! clock_nanosleep(2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const TIMER_ABSTIME: i32 = 1;

/// A clock's value in ns.
fn clock_ns(ctx: &Ctx<'_>, clk: i32) -> Result<u64, Errno> {
    Ok(match clk {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => platform::time::realtime_ns(),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => {
            platform::time::host_monotonic_ns()
        }
        CLOCK_THREAD_CPUTIME_ID => crate::kern::cputime::thread_times(ctx.td).total(),
        CLOCK_PROCESS_CPUTIME_ID => crate::kern::cputime::proc_times(ctx.p).total(),
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
            ctx.p.threads().into_iter().find(|t| t.tid() == id as u64).ok_or(Errno::EINVAL)?
        };
        crate::kern::cputime::thread_times(&td)
    } else {
        let p = if id == 0 { ctx.p.clone() } else { crate::kern::proc::find_user(id).ok_or(Errno::EINVAL)? };
        if p.is_zombie() {
            return Err(Errno::EINVAL);
        }
        crate::kern::cputime::proc_times(&p)
    };
    Ok(if kind == 1 { times.user_ns } else { times.total() })
}

fn timespec_bytes(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    b
}

pub fn sys_clock_gettime(ctx: &mut Ctx<'_>) -> SysResult {
    let ns = clock_ns(ctx, ctx.int(0))?;
    ctx.copyout(ctx.arg(1), &timespec_bytes(ns))?;
    Ok(0)
}

pub fn sys_clock_getres(ctx: &mut Ctx<'_>) -> SysResult {
    let clk = ctx.int(0);
    clock_ns(ctx, clk)?;
    let res = if clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE { 4_000_000 } else { 1 };
    if ctx.arg(1) != 0 {
        ctx.copyout(ctx.arg(1), &timespec_bytes(res))?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.arg(0) != 0 {
        let ns = platform::time::realtime_ns();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        ctx.copyout(ctx.arg(0), &b)?;
    }
    if ctx.arg(1) != 0 {
        ctx.copyout(ctx.arg(1), &[0u8; 8])?;
    }
    Ok(0)
}

pub fn sys_time(ctx: &mut Ctx<'_>) -> SysResult {
    let s = platform::time::realtime_ns() / 1_000_000_000;
    if ctx.arg(0) != 0 {
        ctx.copyout_u64(ctx.arg(0), s)?;
    }
    Ok(s as usize)
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
        if tsleep(chan, "nanslp", opts) == WakeReason::Interrupted {
            return Err(deadline.saturating_sub(platform::time::uptime_ns()));
        }
    }
}

pub fn sys_nanosleep(ctx: &mut Ctx<'_>) -> SysResult {
    let ns = ctx.timespec_ns(ctx.arg(0))?;
    match sleep_ns(ctx, ns) {
        Ok(()) => Ok(0),
        Err(left) => {
            if ctx.arg(1) != 0 {
                ctx.copyout(ctx.arg(1), &timespec_bytes(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

pub fn sys_clock_nanosleep(ctx: &mut Ctx<'_>) -> SysResult {
    let clk = ctx.int(0);
    if clk == CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EINVAL);
    }
    let ns = ctx.timespec_ns(ctx.arg(2))?;
    let now = clock_ns(ctx, clk)?;
    let abs = ctx.int(1) & TIMER_ABSTIME != 0;
    let wait = if abs { ns.saturating_sub(now) } else { ns };
    match sleep_ns(ctx, wait) {
        Ok(()) => Ok(0),
        Err(left) => {
            if !abs && ctx.arg(3) != 0 {
                ctx.copyout(ctx.arg(3), &timespec_bytes(left))?;
            }
            Err(Errno::EINTR)
        }
    }
}

const NS_PER_US: u64 = 1000;
const NS_PER_S: u64 = 1_000_000_000;

/// A guest timeval as ns (EINVAL when out of range).
fn read_timeval(b: &[u8]) -> Result<u64, Errno> {
    let sec = i64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
    let usec = i64::from_le_bytes(b[8..16].try_into().map_err(|_| Errno::EFAULT)?);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(NS_PER_S).saturating_add(usec as u64 * NS_PER_US))
}

/// ns as a timeval, rounded up to the next microsecond (a running timer never shows 0).
fn timeval_bytes(ns: u64) -> [u8; 16] {
    let us = ns.div_ceil(NS_PER_US);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    b
}

/// ns as a timeval, truncated (for CPU times).
fn timeval_trunc(ns: u64) -> [u8; 16] {
    timeval_bytes(ns / NS_PER_US * NS_PER_US)
}

fn itimerval_bytes((value, interval): (u64, u64)) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&timeval_bytes(interval));
    b[16..].copy_from_slice(&timeval_bytes(value));
    b
}

fn itimer_which(which: i32) -> Result<i32, Errno> {
    use crate::kern::cputime::{ITIMER_PROF, ITIMER_REAL, ITIMER_VIRTUAL};
    match which {
        ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF => Ok(which),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_getitimer(ctx: &mut Ctx<'_>) -> SysResult {
    let which = itimer_which(ctx.int(0))?;
    let cur = crate::kern::cputime::get(ctx.p, which);
    ctx.copyout(ctx.arg(1), &itimerval_bytes(cur))?;
    Ok(0)
}

pub fn sys_setitimer(ctx: &mut Ctx<'_>) -> SysResult {
    let which = itimer_which(ctx.int(0))?;
    let (new, old) = (ctx.arg(1), ctx.arg(2));
    // A NULL new value disarms the timer (Linux's long-standing behaviour).
    let (value, interval) = if new == 0 {
        (0, 0)
    } else {
        let mut b = [0u8; 32];
        ctx.copyin(new, &mut b)?;
        let interval = read_timeval(&b[..16])?;
        (read_timeval(&b[16..])?, interval)
    };
    if old != 0 {
        // Check the old-value buffer before changing anything.
        let cur = crate::kern::cputime::get(ctx.p, which);
        ctx.copyout(old, &itimerval_bytes(cur))?;
    }
    let prev = crate::kern::cputime::set(ctx.p, which, value, interval);
    if old != 0 {
        ctx.copyout(old, &itimerval_bytes(prev))?;
    }
    Ok(0)
}

pub fn sys_alarm(ctx: &mut Ctx<'_>) -> SysResult {
    use crate::kern::cputime::ITIMER_REAL;
    let secs = u64::from(ctx.uint(0));
    let (left, _) = crate::kern::cputime::set(ctx.p, ITIMER_REAL, secs * NS_PER_S, 0);
    // Seconds left, rounded to the nearest; never 0 for a timer that was still running.
    let mut s = left / NS_PER_S;
    if left % NS_PER_S >= NS_PER_S / 2 || (s == 0 && left > 0) {
        s += 1;
    }
    Ok(s as usize)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// struct rusage: the two times, then 14 longs (maxrss in KiB, voluntary switches).
fn rusage_bytes(t: crate::kern::cputime::Times, maxrss_kib: u64, nvcsw: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    b[..16].copy_from_slice(&timeval_trunc(t.user_ns));
    b[16..32].copy_from_slice(&timeval_trunc(t.sys_ns));
    b[32..40].copy_from_slice(&maxrss_kib.to_le_bytes());
    b[32 + 12 * 8..32 + 13 * 8].copy_from_slice(&nvcsw.to_le_bytes());
    b
}

/// A reaped child's rusage.
pub fn child_rusage(t: crate::kern::cputime::Times) -> [u8; 144] {
    rusage_bytes(t, 0, 0)
}

/// A process's rusage.
pub fn proc_rusage(p: &crate::kern::proc::UProc) -> [u8; 144] {
    let t = crate::kern::cputime::proc_times(p);
    let rss = p.rec.rss_pages.load(Ordering::Relaxed) * 4;
    let sw = p.threads().iter().map(|t| t.rec.switches.load(Ordering::Relaxed)).sum();
    rusage_bytes(t, rss, sw)
}

pub fn sys_getrusage(ctx: &mut Ctx<'_>) -> SysResult {
    let b = match ctx.int(0) {
        RUSAGE_SELF => proc_rusage(ctx.p),
        RUSAGE_THREAD => rusage_bytes(
            crate::kern::cputime::thread_times(ctx.td),
            ctx.p.rec.rss_pages.load(Ordering::Relaxed) * 4,
            ctx.td.rec.switches.load(Ordering::Relaxed),
        ),
        RUSAGE_CHILDREN => rusage_bytes(*ctx.p.user().times.children.lock(), 0, 0),
        _ => return Err(Errno::EINVAL),
    };
    ctx.copyout(ctx.arg(1), &b)?;
    Ok(0)
}

/// Clock ticks per second of times(2) and /proc (USER_HZ).
pub const USER_HZ: u64 = 100;

pub fn sys_times(ctx: &mut Ctx<'_>) -> SysResult {
    let tick = NS_PER_S / USER_HZ;
    if ctx.arg(0) != 0 {
        let me = crate::kern::cputime::proc_times(ctx.p);
        let kids = *ctx.p.user().times.children.lock();
        let mut b = [0u8; 32];
        for (i, v) in [me.user_ns, me.sys_ns, kids.user_ns, kids.sys_ns].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&(v / tick).to_le_bytes());
        }
        ctx.copyout(ctx.arg(0), &b)?;
    }
    Ok((platform::time::uptime_ns() / tick) as usize)
}
