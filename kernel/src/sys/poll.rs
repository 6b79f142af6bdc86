//! poll(2), ppoll(2), select(2), pselect6(2): check descriptors' readiness, and sleep on the
//! shared poll channel (woken by pipes and the console tty's input) until one is ready, a signal comes, or
//! the timeout passes.

use std::time::Duration;

use crate::fs::vfs::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, poll_chan};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::signal::UNBLOCKABLE;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::WakeReason;

/// Descriptors one call may watch.
const MAX_FDS: usize = 1024;

/// Readiness of one descriptor for `events` (error and hang-up always count).
fn revents(ctx: &Ctx<'_>, fd: i32, events: u16) -> u16 {
    if fd < 0 {
        return 0;
    }
    match ctx.p.user().files().lock().get(fd) {
        Ok(f) => f.vnode.poll() & (events | POLLERR | POLLHUP),
        Err(_) => POLLNVAL,
    }
}

/// Wait until some descriptor is ready; fills `out` with each one's revents and returns how
/// many are ready (0 on timeout).
fn wait_ready(ctx: &Ctx<'_>, fds: &[(i32, u16)], out: &mut [u16], timeout: Option<Duration>, wmesg: &str) -> Result<usize, Errno> {
    let deadline = timeout.map(|t| platform::time::uptime_ns().saturating_add(t.as_nanos().min(u128::from(u64::MAX)) as u64));
    loop {
        let g = sleepq_lock(poll_chan());
        let mut n = 0;
        for (i, &(fd, ev)) in fds.iter().enumerate() {
            out[i] = revents(ctx, fd, ev);
            if out[i] != 0 {
                n += 1;
            }
        }
        if n > 0 {
            return Ok(n);
        }
        let now = platform::time::uptime_ns();
        let left = match deadline {
            Some(d) if now >= d => return Ok(0),
            Some(d) => Some(Duration::from_nanos(d - now)),
            None => None,
        };
        if tsleep_locked(g, wmesg, SleepOpts { interruptible: true, timeout: left }) == WakeReason::Interrupted {
            return Err(Errno::ERESTARTNOHAND);
        }
    }
}

fn read_pollfds(ctx: &Ctx<'_>, addr: u64, n: usize) -> Result<Vec<(i32, u16)>, Errno> {
    if n > MAX_FDS {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; n * 8];
    ctx.copyin(addr, &mut raw)?;
    Ok(raw.chunks_exact(8).map(|c| (i32::from_le_bytes([c[0], c[1], c[2], c[3]]), u16::from_le_bytes([c[4], c[5]]))).collect())
}

fn poll_common(ctx: &mut Ctx<'_>, addr: u64, n: usize, timeout: Option<Duration>) -> SysResult {
    let fds = read_pollfds(ctx, addr, n)?;
    let mut out = vec![0u16; fds.len()];
    let r = wait_ready(ctx, &fds, &mut out, timeout, "poll")?;
    for (i, re) in out.iter().enumerate() {
        ctx.copyout(addr + 8 * i as u64 + 6, &re.to_le_bytes())?;
    }
    Ok(r)
}

pub fn sys_poll(ctx: &mut Ctx<'_>) -> SysResult {
    let ms = ctx.int(2);
    let timeout = if ms < 0 { None } else { Some(Duration::from_millis(ms as u64)) };
    poll_common(ctx, ctx.arg(0), ctx.size(1), timeout)
}

/// Run `f` with the signal mask at `mask_addr` (ppoll, pselect6), as sigsuspend does: if a
/// signal interrupts, the old mask comes back when its handler returns.
fn with_mask(ctx: &mut Ctx<'_>, mask_addr: u64, f: impl FnOnce(&mut Ctx<'_>) -> SysResult) -> SysResult {
    if mask_addr == 0 {
        return f(ctx);
    }
    let mask = ctx.copyin_u64(mask_addr)? & !UNBLOCKABLE;
    let old = {
        let mut ts = ctx.td.user().sigstate.sig.lock();
        let old = ts.mask;
        ts.mask = mask;
        old
    };
    ctx.td.user().sigstate.flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = f(ctx);
    let mut ts = ctx.td.user().sigstate.sig.lock();
    if r == Err(Errno::ERESTARTNOHAND) {
        ts.saved_mask = Some(old);
    } else {
        ts.mask = old;
    }
    r
}

pub fn sys_ppoll(ctx: &mut Ctx<'_>) -> SysResult {
    let timeout = ctx.timeout_ns(ctx.arg(2))?.map(Duration::from_nanos);
    if ctx.arg(3) != 0 && ctx.arg(4) != 8 {
        return Err(Errno::EINVAL);
    }
    let (addr, n, mask) = (ctx.arg(0), ctx.size(1), ctx.arg(3));
    with_mask(ctx, mask, |ctx| poll_common(ctx, addr, n, timeout))
}

/// select's three fd_sets and the poll events each bit means.
fn select_common(ctx: &mut Ctx<'_>, nfds: usize, sets: [u64; 3], timeout: Option<Duration>) -> SysResult {
    if nfds > MAX_FDS {
        return Err(Errno::EINVAL);
    }
    let words = nfds.div_ceil(64);
    let mut bits = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (k, &addr) in sets.iter().enumerate() {
        if addr != 0 && words > 0 {
            let mut raw = vec![0u8; words * 8];
            ctx.copyin(addr, &mut raw)?;
            for (i, c) in raw.chunks_exact(8).enumerate() {
                bits[k][i] = u64::from_le_bytes(c.try_into().map_err(|_| Errno::EFAULT)?);
            }
        }
    }
    const EV: [u16; 3] = [POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI];
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let mut ev = 0;
        for k in 0..3 {
            if bits[k][fd / 64] & (1 << (fd % 64)) != 0 {
                ev |= EV[k];
            }
        }
        if ev != 0 {
            fds.push((fd as i32, ev));
        }
    }
    let mut out = vec![0u16; fds.len()];
    wait_ready(ctx, &fds, &mut out, timeout, "select")?;
    if out.contains(&POLLNVAL) {
        return Err(Errno::EBADF);
    }
    let mut result = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0;
    for (i, &(fd, ev)) in fds.iter().enumerate() {
        let fd = fd as usize;
        for k in 0..3 {
            if ev & EV[k] != 0 && out[i] & EV[k] != 0 {
                result[k][fd / 64] |= 1 << (fd % 64);
                count += 1;
            }
        }
    }
    for (k, &addr) in sets.iter().enumerate() {
        if addr != 0 && words > 0 {
            let raw: Vec<u8> = result[k].iter().flat_map(|w| w.to_le_bytes()).collect();
            ctx.copyout(addr, &raw)?;
        }
    }
    Ok(count)
}

pub fn sys_select(ctx: &mut Ctx<'_>) -> SysResult {
    let tv = ctx.arg(4);
    let start = platform::time::uptime_ns();
    let timeout = if tv == 0 {
        None
    } else {
        let mut b = [0u8; 16];
        ctx.copyin(tv, &mut b)?;
        let sec = i64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let usec = i64::from_le_bytes(b[8..].try_into().map_err(|_| Errno::EFAULT)?);
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        Some(Duration::new(sec as u64, (usec * 1000) as u32))
    };
    let r = select_common(ctx, ctx.size(0), [ctx.arg(1), ctx.arg(2), ctx.arg(3)], timeout);
    // Linux's select(2) leaves the time not slept in the timeout.
    if let (Some(t), true) = (timeout, r.is_ok()) {
        let slept = platform::time::uptime_ns().saturating_sub(start);
        let left = (t.as_nanos() as u64).saturating_sub(slept);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(left / 1_000_000_000).to_le_bytes());
        b[8..].copy_from_slice(&((left % 1_000_000_000) / 1000).to_le_bytes());
        ctx.copyout(tv, &b)?;
    }
    r
}

pub fn sys_pselect6(ctx: &mut Ctx<'_>) -> SysResult {
    let timeout = ctx.timeout_ns(ctx.arg(4))?.map(Duration::from_nanos);
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let mask = if ctx.arg(5) != 0 {
        let ptr = ctx.copyin_u64(ctx.arg(5))?;
        let len = ctx.copyin_u64(ctx.arg(5) + 8)?;
        if ptr != 0 && len != 8 {
            return Err(Errno::EINVAL);
        }
        ptr
    } else {
        0
    };
    let (n, sets) = (ctx.size(0), [ctx.arg(1), ctx.arg(2), ctx.arg(3)]);
    with_mask(ctx, mask, |ctx| select_common(ctx, n, sets, timeout))
}
