//! Process descriptors: pidfd_open(2), pidfd_send_signal(2), pidfd_getfd(2) (the files are
//! fs/pidfd.rs's; waitid(P_PIDFD) is in proc.rs).

use crate::abi::signal::Siginfo;
use crate::fs::file::{self, File};
use crate::fs::pidfd;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc;
use crate::kern::signal::{self, SI_TKILL, SI_USER, SigInfo};

/// PIDFD_NONBLOCK: O_NONBLOCK.
const PIDFD_NONBLOCK: u32 = file::O_NONBLOCK;

/// pidfd_open(pid, flags): a close-on-exec descriptor for the process `pid` (zombies too).
/// EINVAL for other flags than PIDFD_NONBLOCK or a pid below 1; ESRCH when there is no such
/// process (a thread that leads none is ESRCH too, where Linux says EINVAL).
pub fn sys_pidfd_open(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let flags = ctx.uint(1);
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = proc::find_user(pid).ok_or(Errno::ESRCH)?;
    let f = File::new(pidfd::new(p.into_arc()), None, file::O_RDWR | (flags & PIDFD_NONBLOCK));
    let fd = ctx.p.user().files().lock().alloc(f, true, 0)?;
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

/// pidfd_send_signal(pidfd, sig, info, flags): kill(2) — or rt_sigqueueinfo(2) when `info`
/// is given — through a process descriptor or a `/proc/PID` directory. EINVAL for flags or
/// an info whose signal is another; EPERM for an info that claims to come from the kernel
/// or kill(2) sent to another process, or a process the caller may not signal; ESRCH once
/// the process has been reaped; EBADF for a descriptor that names no process.
pub fn sys_pidfd_send_signal(ctx: &mut Ctx<'_>) -> SysResult {
    let sig = ctx.int(1);
    if ctx.uint(3) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = crate::sys::fs::file_not_path(ctx, ctx.fd(0))?;
    let p = pidfd::target(&f.vnode)?;
    let uid = ctx.p.user().cred.lock().uid;
    let info = if ctx.arg(2) == 0 {
        SigInfo::user(sig, SI_USER, ctx.p.pid, uid)
    } else {
        let uinfo: Siginfo = ctx.read(ctx.ptr::<Siginfo>(2))?;
        if uinfo.si_signo != sig {
            return Err(Errno::EINVAL);
        }
        if p.pid != ctx.p.pid && (uinfo.si_code >= 0 || uinfo.si_code == SI_TKILL) {
            return Err(Errno::EPERM);
        }
        uinfo
    };
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    if !crate::sys::signal::may_signal(ctx, &p, sig) {
        return Err(Errno::EPERM);
    }
    if sig != 0 && !p.is_zombie() {
        signal::send_to_proc(&p, info);
    }
    Ok(0)
}

/// pidfd_getfd(pidfd, targetfd, flags): a close-on-exec duplicate of the process's
/// descriptor `targetfd` (the same open file). EINVAL for flags; EBADF for a descriptor that
/// is no process descriptor or a target that is not open; ESRCH for a process reaped or
/// exited; EPERM unless the caller may ptrace-attach to it.
pub fn sys_pidfd_getfd(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.uint(2) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = crate::sys::fs::file_not_path(ctx, ctx.fd(0))?;
    let pf = f.vnode.as_any().and_then(|a| a.downcast_ref::<pidfd::PidFd>()).ok_or(Errno::EBADF)?;
    let p = pf.live().filter(|p| !p.is_zombie()).ok_or(Errno::ESRCH)?;
    if p.pid != ctx.p.pid {
        let (me, them) = (ctx.p.user().cred(), p.user().cred());
        if !crate::kern::ptrace::may_attach(ctx.p, &me, &p, &them) {
            return Err(Errno::EPERM);
        }
    }
    let target = p.user().files().lock().get(ctx.fd(1))?;
    let fd = ctx.p.user().files().lock().alloc(target, true, 0)?;
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}
