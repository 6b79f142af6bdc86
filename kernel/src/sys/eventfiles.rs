//! The event files' system calls: eventfd(2)/eventfd2(2), signalfd(2)/signalfd4(2),
//! timerfd_create(2)/timerfd_settime(2)/timerfd_gettime(2), memfd_create(2) and
//! inotify_init(2)/inotify_init1(2)/inotify_add_watch(2)/inotify_rm_watch(2). The files
//! themselves are in fs/ (eventfd.rs, signalfd.rs, timerfd.rs, memfd.rs, inotify.rs).

use std::sync::Arc;

use crate::abi::event::{EfdFlags, Itimerspec, MfdFlags, SfdFlags, TfdFlags, TfdSetFlags};
use crate::abi::signal::{SIGSET_SIZE, Sigset};
use crate::abi::time::Timespec;
use crate::abi::{c_int, linux};
use crate::fs::file::{self, File};
use crate::fs::signalfd::SignalFd;
use crate::fs::timerfd::{Clock, TimerFd};
use crate::fs::vfs::VnodeRef;
use crate::fs::inotify::{self, Inotify};
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

/// inotify_init1(2)'s flags: IN_NONBLOCK and IN_CLOEXEC (O_NONBLOCK, O_CLOEXEC).
const IN_NONBLOCK: u32 = file::O_NONBLOCK;
const IN_CLOEXEC: u32 = file::O_CLOEXEC;

fn inotify_common(ctx: &Ctx<'_>, flags: u32) -> SysResult {
    if flags & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let c = cred(ctx);
    let v = inotify::new(c.fsuid, c.fsgid)?;
    install(ctx, v, file::O_RDONLY | (flags & IN_NONBLOCK), flags & IN_CLOEXEC != 0)
}

pub fn sys_inotify_init(ctx: &mut Ctx<'_>) -> SysResult {
    inotify_common(ctx, 0)
}

pub fn sys_inotify_init1(ctx: &mut Ctx<'_>) -> SysResult {
    inotify_common(ctx, ctx.uint(0))
}

/// The inotify instance of descriptor `i`: EBADF for no descriptor, EINVAL for another file.
fn instance(ctx: &Ctx<'_>, i: usize) -> Result<Arc<File>, Errno> {
    let f = ctx.file(i)?;
    if !f.vnode.as_any().is_some_and(|a| a.is::<Inotify>()) {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

/// inotify_add_watch(2): EINVAL for no event bits, unknown bits or IN_MASK_ADD with
/// IN_MASK_CREATE; the path is followed unless IN_DONT_FOLLOW; ENOTDIR for IN_ONLYDIR on
/// what is not a directory; the caller needs read permission on the file (EACCES).
pub fn sys_inotify_add_watch(ctx: &mut Ctx<'_>) -> SysResult {
    let f = instance(ctx, 0)?;
    let mask = ctx.uint(2);
    if mask & inotify::IN_ALL_EVENTS == 0
        || mask & !inotify::VALID_MASK != 0
        || (mask & inotify::IN_MASK_ADD != 0 && mask & inotify::IN_MASK_CREATE != 0)
    {
        return Err(Errno::EINVAL);
    }
    let path = ctx.path(1)?;
    let np = crate::sys::fs::lookup_at(ctx, crate::sys::fs::AT_FDCWD, &path, mask & inotify::IN_DONT_FOLLOW == 0)?;
    let v = np.vnode();
    if mask & inotify::IN_ONLYDIR != 0 && v.vtype() != crate::fs::vfs::VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    crate::fs::perm::permission(&cred(ctx), &v.attr()?, crate::fs::perm::MAY_READ)?;
    let ino = f.vnode.as_any().and_then(|a| a.downcast_ref::<Inotify>()).ok_or(Errno::EINVAL)?;
    usize::try_from(ino.add_watch(v, mask)?).map_err(|_| Errno::EINVAL)
}

pub fn sys_inotify_rm_watch(ctx: &mut Ctx<'_>) -> SysResult {
    let f = instance(ctx, 0)?;
    let ino = f.vnode.as_any().and_then(|a| a.downcast_ref::<Inotify>()).ok_or(Errno::EINVAL)?;
    ino.rm_watch(ctx.int(1))?;
    Ok(0)
}
