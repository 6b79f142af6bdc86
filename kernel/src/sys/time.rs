//! Clocks and sleeping: clock_gettime(2), gettimeofday(2), time(2), nanosleep(2),
//! clock_nanosleep(2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::kern::errno::{Errno, SysResult};
use crate::sys::Ctx;

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
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => platform::time::host_monotonic_ns(),
        CLOCK_THREAD_CPUTIME_ID => ctx.td.rec.runtime_ns.load(Ordering::Relaxed),
        CLOCK_PROCESS_CPUTIME_ID => ctx.p.threads().iter().map(|t| t.rec.runtime_ns.load(Ordering::Relaxed)).sum(),
        _ => return Err(Errno::EINVAL),
    })
}

fn timespec_bytes(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    b
}

/// A guest timespec as ns (EINVAL when out of range).
fn read_timespec(ctx: &Ctx<'_>, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 16];
    ctx.copyin(addr, &mut b)?;
    let sec = i64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
    let nsec = i64::from_le_bytes(b[8..].try_into().map_err(|_| Errno::EFAULT)?);
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64))
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
    let ns = read_timespec(ctx, ctx.arg(0))?;
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
    let ns = read_timespec(ctx, ctx.arg(2))?;
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
