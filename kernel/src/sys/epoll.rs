//! epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2),
//! epoll_pwait2(2): the system calls of fs/epoll.rs's instances. A wait sleeps on the poll
//! channel like poll(2); a signal ends it with EINTR (epoll_wait is never restarted, as
//! signal(7) says).

use std::sync::Arc;
use std::time::Duration;

use crate::abi::event::{EpollCreateFlags, EpollEvent, EpollFlags};
use crate::abi::signal::{SIGSET_SIZE, Sigset};
use crate::fs::epoll::{self, Epoll, MAX_NESTS};
use crate::fs::file::{self, File};
use crate::fs::vfs::poll_chan;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::WakeReason;
use crate::sys::fs::cred;
use crate::sys::poll::with_mask;
use crate::vm::uaccess::UserSlice;

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;

/// Most events one wait returns (fs/eventpoll.c's EP_MAX_EVENTS: what fits in INT_MAX bytes).
const MAX_EVENTS: usize = i32::MAX as usize / size_of::<EpollEvent>();

fn create(ctx: &Ctx<'_>, cloexec: bool) -> SysResult {
    let c = cred(ctx);
    let f = File::new(epoll::new(c.fsuid, c.fsgid), None, file::O_RDWR);
    let fd = ctx.p.user().files().lock().alloc(f, cloexec, 0)?;
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

pub fn sys_epoll_create(ctx: &mut Ctx<'_>) -> SysResult {
    // The size is a hint since Linux 2.6.8, but must be positive.
    if ctx.int(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    create(ctx, false)
}

pub fn sys_epoll_create1(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<EpollCreateFlags>(0)?;
    create(ctx, flags.contains(EpollCreateFlags::CLOEXEC))
}

/// The epoll instance behind an open file (EINVAL when it is none).
fn instance(f: &File) -> Result<&Epoll, Errno> {
    f.vnode.as_any().and_then(|a| a.downcast_ref::<Epoll>()).ok_or(Errno::EINVAL)
}

pub fn sys_epoll_ctl(ctx: &mut Ctx<'_>) -> SysResult {
    let (epfd, op, fd) = (ctx.fd(0), ctx.int(1), ctx.fd(2));
    let ev_ptr = ctx.ptr::<EpollEvent>(3);
    // The event is read first (EFAULT) for the operations that take one.
    let ev = if op == EPOLL_CTL_DEL { EpollEvent::default() } else { ctx.read(ev_ptr)? };
    let epf = crate::sys::fs::file_not_path(ctx, epfd)?;
    let target = crate::sys::fs::file_not_path(ctx, fd)?;
    if !target.vnode.pollable() {
        return Err(Errno::EPERM);
    }
    let ep = instance(&epf)?;
    if epfd == fd || Arc::ptr_eq(&epf, &target) {
        return Err(Errno::EINVAL);
    }
    // Linux keeps whatever bits come; EPOLLEXCLUSIVE only with its allowed companions,
    // never on an epoll instance, never in a modification.
    let events = EpollFlags::from_bits_retain(ev.events);
    let inner = target.vnode.as_any().and_then(|a| a.downcast_ref::<Epoll>());
    if events.contains(EpollFlags::EXCLUSIVE)
        && (op == EPOLL_CTL_MOD || !EpollFlags::EXCLUSIVE_OK.contains(events) || inner.is_some())
    {
        return Err(Errno::EINVAL);
    }
    // Every item waits for errors and hang-ups (and /proc/PID/fdinfo shows them).
    let events = events | EpollFlags::ERR | EpollFlags::HUP;
    match op {
        EPOLL_CTL_ADD => {
            if let Some(inner) = inner
                && (inner.reaches(ep, MAX_NESTS)? || inner.nest_depth(MAX_NESTS) >= MAX_NESTS)
            {
                return Err(Errno::ELOOP);
            }
            ep.add(fd, &target, events, ev.data())?;
        }
        EPOLL_CTL_MOD => ep.modify(fd, &target, events, ev.data())?,
        EPOLL_CTL_DEL => ep.delete(fd, &target)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// The common wait: `timeout` None waits for ever.
fn wait(ctx: &Ctx<'_>, timeout: Option<Duration>) -> SysResult {
    let max = usize::try_from(ctx.int(2)).map_err(|_| Errno::EINVAL)?;
    if max == 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let out: UserSlice<EpollEvent> = ctx.ptr::<EpollEvent>(1).slice(max);
    let bytes = u64::try_from(max * size_of::<EpollEvent>()).map_err(|_| Errno::EINVAL)?;
    // Linux checks the range is user memory (access_ok), not that it is mapped: a bad
    // buffer fails only when there is something to write.
    if out.addr().checked_add(bytes).is_none_or(|end| end > platform::stub::layout::USER_END) {
        return Err(Errno::EFAULT);
    }
    let epf = ctx.file(0)?;
    let ep = instance(&epf)?;
    let deadline =
        timeout.map(|t| platform::time::uptime_ns().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)));
    loop {
        let g = sleepq_lock(poll_chan());
        let ready = ep.scan(max, true);
        if !ready.is_empty() {
            drop(g);
            let evs: Vec<EpollEvent> = ready.iter().map(|r| EpollEvent::new(r.events, r.data)).collect();
            ctx.write_slice(out, &evs)?;
            return Ok(evs.len());
        }
        let now = platform::time::uptime_ns();
        let left = match deadline {
            Some(d) if now >= d => return Ok(0),
            Some(d) => Some(Duration::from_nanos(d - now)),
            None => None,
        };
        if tsleep_locked(g, "epoll", SleepOpts { interruptible: true, timeout: left }) == WakeReason::Interrupted {
            return Err(Errno::EINTR);
        }
    }
}

/// A millisecond timeout argument: negative waits for ever.
fn ms_timeout(ctx: &Ctx<'_>, i: usize) -> Option<Duration> {
    u64::try_from(ctx.int(i)).ok().map(Duration::from_millis)
}

pub fn sys_epoll_wait(ctx: &mut Ctx<'_>) -> SysResult {
    let t = ms_timeout(ctx, 3);
    wait(ctx, t)
}

/// epoll_pwait and epoll_pwait2's signal mask (arguments 4 and 5): EINVAL for a size other
/// than the kernel's sigset_t.
fn mask_arg(ctx: &Ctx<'_>) -> Result<crate::vm::uaccess::UserPtr<Sigset>, Errno> {
    let mask = ctx.ptr::<Sigset>(4);
    if !mask.is_null() && ctx.size(5) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    Ok(mask)
}

pub fn sys_epoll_pwait(ctx: &mut Ctx<'_>) -> SysResult {
    let t = ms_timeout(ctx, 3);
    let mask = mask_arg(ctx)?;
    with_mask(ctx, mask, |ctx| wait(ctx, t))
}

pub fn sys_epoll_pwait2(ctx: &mut Ctx<'_>) -> SysResult {
    let t = ctx.timeout_ns(3)?.map(Duration::from_nanos);
    let mask = mask_arg(ctx)?;
    with_mask(ctx, mask, |ctx| wait(ctx, t))
}
