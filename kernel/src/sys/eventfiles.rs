//! The event files' system calls: eventfd(2)/eventfd2(2), signalfd(2)/signalfd4(2),
//! timerfd_create(2)/timerfd_settime(2)/timerfd_gettime(2) and memfd_create(2). The files
//! themselves are in fs/ (eventfd.rs, signalfd.rs, timerfd.rs, memfd.rs).

use std::sync::Arc;

use crate::abi::event::{EfdFlags, Itimerspec, MfdFlags, SfdFlags, TfdFlags, TfdSetFlags};
use crate::abi::signal::{SIGSET_SIZE, Sigset};
use crate::abi::time::Timespec;
use crate::abi::{c_int, linux};
use crate::fs::file::{self, File};
use crate::fs::signalfd::SignalFd;
use crate::fs::timerfd::{Clock, TimerFd};
use crate::fs::vfs::VnodeRef;
use crate::fs::{eventfd, memfd, signalfd, timerfd};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::cred;

/// Install a new file at the lowest free descriptor.
fn install(ctx: &Ctx<'_>, v: VnodeRef, status: u32, cloexec: bool) -> SysResult {
    let f = File::new(v, None, status);
    let fd = ctx.p.user().files().lock().alloc(f, cloexec, 0)?;
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

fn eventfd_common(ctx: &Ctx<'_>, flags: EfdFlags) -> SysResult {
    let c = cred(ctx);
    let v = eventfd::new(ctx.uint(0), flags.contains(EfdFlags::SEMAPHORE), c.fsuid, c.fsgid);
    let status = file::O_RDWR | if flags.contains(EfdFlags::NONBLOCK) { file::O_NONBLOCK } else { 0 };
    install(ctx, v, status, flags.contains(EfdFlags::CLOEXEC))
}

pub fn sys_eventfd(ctx: &mut Ctx<'_>) -> SysResult {
    eventfd_common(ctx, EfdFlags::empty())
}

pub fn sys_eventfd2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<EfdFlags>(1)?;
    eventfd_common(ctx, flags)
}

fn signalfd_common(ctx: &Ctx<'_>, flags: SfdFlags) -> SysResult {
    if ctx.size(2) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = ctx.read(ctx.ptr::<Sigset>(1))?;
    let fd = ctx.fd(0);
    if fd != -1 {
        // A new mask for an existing signalfd (EINVAL when fd is something else).
        let f = ctx.file(0)?;
        let sfd = f.vnode.as_any().and_then(|a| a.downcast_ref::<SignalFd>()).ok_or(Errno::EINVAL)?;
        sfd.set_mask(mask);
        return usize::try_from(fd).map_err(|_| Errno::EBADF);
    }
    let c = cred(ctx);
    let status = file::O_RDONLY | if flags.contains(SfdFlags::NONBLOCK) { file::O_NONBLOCK } else { 0 };
    install(ctx, signalfd::new(mask, c.fsuid, c.fsgid), status, flags.contains(SfdFlags::CLOEXEC))
}

pub fn sys_signalfd(ctx: &mut Ctx<'_>) -> SysResult {
    signalfd_common(ctx, SfdFlags::empty())
}

pub fn sys_signalfd4(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<SfdFlags>(3)?;
    signalfd_common(ctx, flags)
}

const CLOCK_REALTIME: i32 = c_int(linux::CLOCK_REALTIME);
const CLOCK_MONOTONIC: i32 = c_int(linux::CLOCK_MONOTONIC);
const CLOCK_BOOTTIME: i32 = c_int(linux::CLOCK_BOOTTIME);

pub fn sys_timerfd_create(ctx: &mut Ctx<'_>) -> SysResult {
    let clock = match ctx.int(0) {
        CLOCK_REALTIME => Clock::Realtime,
        CLOCK_MONOTONIC => Clock::Monotonic,
        CLOCK_BOOTTIME => Clock::Boottime,
        // The alarm clocks need a wake-up alarm the machine does not have.
        _ => return Err(Errno::EINVAL),
    };
    let flags = ctx.flags::<TfdFlags>(1)?;
    let c = cred(ctx);
    let status = file::O_RDWR | if flags.contains(TfdFlags::NONBLOCK) { file::O_NONBLOCK } else { 0 };
    install(ctx, timerfd::new(clock, c.fsuid, c.fsgid), status, flags.contains(TfdFlags::CLOEXEC))
}

/// The timerfd argument 0 names (EBADF, or EINVAL when it is another file).
fn timer(ctx: &Ctx<'_>) -> Result<Arc<File>, Errno> {
    let f = ctx.file(0)?;
    if f.vnode.as_any().and_then(|a| a.downcast_ref::<TimerFd>()).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

fn as_timerfd(f: &File) -> Result<&TimerFd, Errno> {
    f.vnode.as_any().and_then(|a| a.downcast_ref::<TimerFd>()).ok_or(Errno::EINVAL)
}

fn itimerspec(value_ns: u64, interval_ns: u64) -> Itimerspec {
    Itimerspec { it_interval: Timespec::from_ns(interval_ns), it_value: Timespec::from_ns(value_ns) }
}

pub fn sys_timerfd_settime(ctx: &mut Ctx<'_>) -> SysResult {
    let f = timer(ctx)?;
    let flags = ctx.flags::<TfdSetFlags>(1)?;
    let new = ctx.read(ctx.ptr::<Itimerspec>(2))?;
    let (value, interval) = (new.it_value.to_ns()?, new.it_interval.to_ns()?);
    let old_ptr = ctx.ptr::<Itimerspec>(3);
    let (old_value, old_interval) = as_timerfd(&f)?.set(value, interval, flags.contains(TfdSetFlags::ABSTIME));
    if !old_ptr.is_null() {
        ctx.write(old_ptr, &itimerspec(old_value, old_interval))?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(ctx: &mut Ctx<'_>) -> SysResult {
    let f = timer(ctx)?;
    let (value, interval) = as_timerfd(&f)?.get();
    ctx.write(ctx.ptr::<Itimerspec>(1), &itimerspec(value, interval))?;
    Ok(0)
}

pub fn sys_memfd_create(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<MfdFlags>(1)?;
    if flags.contains(MfdFlags::EXEC | MfdFlags::NOEXEC_SEAL) {
        return Err(Errno::EINVAL);
    }
    // The name is read whole first (EFAULT), then checked for length (EINVAL).
    let name = match ctx.read_cstr(ctx.ptr(0), memfd::NAME_MAX + 1) {
        Ok(n) if n.len() <= memfd::NAME_MAX => n,
        Ok(_) | Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        Err(e) => return Err(e),
    };
    let c = cred(ctx);
    // MFD_NOEXEC_SEAL: no execute bits, sealed against getting them, sealing allowed.
    let noexec = flags.contains(MfdFlags::NOEXEC_SEAL);
    let mode = if noexec { 0o666 } else { 0o777 };
    let sealing = flags.contains(MfdFlags::ALLOW_SEALING) || noexec;
    let v = memfd::new(&name, mode, c.fsuid, c.fsgid, sealing)?;
    if noexec && let Some(m) = v.as_any().and_then(|a| a.downcast_ref::<memfd::MemFd>()) {
        m.add_seals(crate::abi::event::Seals::EXEC)?;
    }
    install(ctx, v, file::O_RDWR, flags.contains(MfdFlags::CLOEXEC))
}
