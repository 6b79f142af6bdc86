//! poll(2), ppoll(2), select(2), pselect6(2): check descriptors' readiness, and sleep on the
//! shared poll channel (woken by pipes and the console tty's input) until one is ready, a
//! signal comes, or the timeout passes.

use std::time::Duration;

use crate::abi::poll::{FD_SETSIZE, FdSetWord, NFDBITS, Pollfd, SigsetArgpack};
use crate::abi::signal::{SIGSET_SIZE, Sigset};
use crate::abi::time::Timeval;
use crate::fs::vfs::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, poll_chan};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::signal::UNBLOCKABLE;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::WakeReason;
use crate::vm::uaccess::{UserPtr, UserSlice};

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
fn wait_ready(
    ctx: &Ctx<'_>,
    fds: &[(i32, u16)],
    out: &mut [u16],
    timeout: Option<Duration>,
    wmesg: &str,
) -> Result<usize, Errno> {
    let deadline =
        timeout.map(|t| platform::time::uptime_ns().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)));
    loop {
        let g = sleepq_lock(poll_chan());
        let mut n = 0;
        for (slot, &(fd, ev)) in out.iter_mut().zip(fds) {
            *slot = revents(ctx, fd, ev);
            if *slot != 0 {
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

/// poll(2) and ppoll(2) on the guest's array: EINVAL past RLIMIT_NOFILE entries, as Linux.
fn poll_common(ctx: &mut Ctx<'_>, ufds: UserSlice<Pollfd>, timeout: Option<Duration>) -> SysResult {
    let limit = ctx.p.user().files().lock().limit;
    let mut fds = if ufds.len == 0 { Vec::new() } else { ctx.read_slice(ufds, limit)? };
    let want: Vec<(i32, u16)> = fds.iter().map(|f| (f.fd, f.events.cast_unsigned())).collect();
    let mut out = vec![0u16; fds.len()];
    let r = wait_ready(ctx, &want, &mut out, timeout, "poll")?;
    for (f, re) in fds.iter_mut().zip(out) {
        f.revents = re.cast_signed();
    }
    // poll(NULL, 0, ms) is a sleep: no array, nothing to write back.
    if !fds.is_empty() {
        ctx.write_slice(ufds, &fds)?;
    }
    Ok(r)
}

pub fn sys_poll(ctx: &mut Ctx<'_>) -> SysResult {
    // A negative timeout waits for ever.
    let timeout = u64::try_from(ctx.int(2)).ok().map(Duration::from_millis);
    poll_common(ctx, pollfds(ctx), timeout)
}

/// poll's and ppoll's array: a pointer and an `unsigned int` count.
fn pollfds(ctx: &Ctx<'_>) -> UserSlice<Pollfd> {
    ctx.ptr::<Pollfd>(0).slice(usize::try_from(ctx.uint(1)).unwrap_or(usize::MAX))
}

/// Run `f` with the signal mask at `mask` (ppoll, pselect6), as sigsuspend does: if a
/// signal interrupts (ERESTARTNOHAND, or EINTR from a call never restarted: epoll_pwait),
/// the old mask comes back when its handler returns.
pub(super) fn with_mask(ctx: &mut Ctx<'_>, mask: UserPtr<Sigset>, f: impl FnOnce(&mut Ctx<'_>) -> SysResult) -> SysResult {
    if mask.is_null() {
        return f(ctx);
    }
    let mask = ctx.read(mask)? & !UNBLOCKABLE;
    let old = {
        let mut ts = ctx.td.user().sigstate.sig.lock();
        let old = ts.mask;
        ts.mask = mask;
        old
    };
    ctx.td.user().sigstate.flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = f(ctx);
    let mut ts = ctx.td.user().sigstate.sig.lock();
    if r == Err(Errno::ERESTARTNOHAND) || r == Err(Errno::EINTR) {
        ts.saved_mask = Some(old);
    } else {
        ts.mask = old;
    }
    r
}

pub fn sys_ppoll(ctx: &mut Ctx<'_>) -> SysResult {
    let timeout = ctx.timeout_ns(2)?.map(Duration::from_nanos);
    let mask = ctx.ptr::<Sigset>(3);
    if !mask.is_null() && ctx.size(4) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let ufds = pollfds(ctx);
    with_mask(ctx, mask, |ctx| poll_common(ctx, ufds, timeout))
}

/// The poll events each of select's three sets stands for.
const SET_EVENTS: [u16; 3] = [POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI];

/// The descriptor of bit `bit` of word `word`.
fn fd_of(word: usize, bit: usize) -> Option<i32> {
    i32::try_from(word.checked_mul(NFDBITS)?.checked_add(bit)?).ok()
}

/// select(2) and pselect6(2): `nfds` as Linux takes it (EINVAL when negative, clamped to
/// the descriptors a process can have), then the three sets' words that cover it.
fn select_common(ctx: &mut Ctx<'_>, nfds: i32, sets: [UserPtr<FdSetWord>; 3], timeout: Option<Duration>) -> SysResult {
    let nfds = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?.min(FD_SETSIZE);
    let words = nfds.div_ceil(NFDBITS);
    let mut bits = [vec![0; words], vec![0; words], vec![0; words]];
    for (set, ptr) in bits.iter_mut().zip(sets) {
        if !ptr.is_null() && words > 0 {
            *set = ctx.read_slice(ptr.slice(words), words)?;
        }
    }
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let (word, bit) = (fd / NFDBITS, fd % NFDBITS);
        let ev =
            bits.iter().zip(SET_EVENTS).filter(|(set, _)| set[word] & (1 << bit) != 0).fold(0, |ev, (_, e)| ev | e);
        if ev != 0 {
            fds.push((fd_of(word, bit).ok_or(Errno::EINVAL)?, ev));
        }
    }
    let mut out = vec![0u16; fds.len()];
    wait_ready(ctx, &fds, &mut out, timeout, "select")?;
    if out.contains(&POLLNVAL) {
        return Err(Errno::EBADF);
    }
    let mut result = [vec![0; words], vec![0; words], vec![0; words]];
    let mut count = 0;
    for (&(fd, ev), &re) in fds.iter().zip(&out) {
        let fd = usize::try_from(fd).map_err(|_| Errno::EINVAL)?;
        for (set, e) in result.iter_mut().zip(SET_EVENTS) {
            if ev & e != 0 && re & e != 0 {
                set[fd / NFDBITS] |= 1 << (fd % NFDBITS);
                count += 1;
            }
        }
    }
    for (set, ptr) in result.iter().zip(sets) {
        if !ptr.is_null() && words > 0 {
            ctx.write_slice(ptr.slice(words), set)?;
        }
    }
    Ok(count)
}

/// select's three set arguments (1, 2, 3).
fn set_args(ctx: &Ctx<'_>) -> [UserPtr<FdSetWord>; 3] {
    [ctx.ptr(1), ctx.ptr(2), ctx.ptr(3)]
}

/// A select(2) timeout as a duration (EINVAL when out of range).
fn timeval_duration(tv: &Timeval) -> Result<Duration, Errno> {
    let (Ok(sec), Ok(usec)) = (u64::try_from(tv.tv_sec), u32::try_from(tv.tv_usec)) else {
        return Err(Errno::EINVAL);
    };
    if usec >= 1_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec, usec * 1000))
}

pub fn sys_select(ctx: &mut Ctx<'_>) -> SysResult {
    let tv = ctx.ptr::<Timeval>(4);
    let start = platform::time::uptime_ns();
    let timeout = if tv.is_null() { None } else { Some(timeval_duration(&ctx.read(tv)?)?) };
    let r = select_common(ctx, ctx.int(0), set_args(ctx), timeout);
    // Linux's select(2) leaves the time not slept in the timeout.
    if let (Some(t), true) = (timeout, r.is_ok()) {
        let slept = platform::time::uptime_ns().saturating_sub(start);
        let left = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).saturating_sub(slept);
        ctx.write(tv, &Timeval::from_ns(left))?;
    }
    r
}

pub fn sys_pselect6(ctx: &mut Ctx<'_>) -> SysResult {
    let timeout = ctx.timeout_ns(4)?.map(Duration::from_nanos);
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let pack = ctx.ptr::<SigsetArgpack>(5);
    let mask = if pack.is_null() {
        UserPtr::new(0)
    } else {
        let a = ctx.read(pack)?;
        if a.p != 0 && usize::try_from(a.size).ok() != Some(SIGSET_SIZE) {
            return Err(Errno::EINVAL);
        }
        UserPtr::new(a.p)
    };
    let (n, sets) = (ctx.int(0), set_args(ctx));
    with_mask(ctx, mask, |ctx| select_common(ctx, n, sets, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_helpers() {
        assert_eq!(fd_of(1, 3), Some(67));
        assert_eq!(fd_of(usize::MAX, 1), None);
        assert_eq!(timeval_duration(&Timeval { tv_sec: 1, tv_usec: 500 }), Ok(Duration::new(1, 500_000)));
        assert!(timeval_duration(&Timeval { tv_sec: 0, tv_usec: -1 }).is_err());
        assert!(timeval_duration(&Timeval { tv_sec: -1, tv_usec: 0 }).is_err());
        assert_eq!(FD_SETSIZE, 1024);
    }
}
