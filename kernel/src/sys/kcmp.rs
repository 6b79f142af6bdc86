//! kcmp(2): whether two processes share a kernel resource — an open file description, the
//! address space, the descriptor table, the file system information (root, working
//! directory, umask), the signal handlers, the I/O context, the System V semaphore undo
//! list. Answers 0 (the same), or 1 or 2 ordering two different ones (by address, as
//! Linux orders its obfuscated pointers: consistent, meaningless). Both processes must be
//! readable to the caller as ptrace's PTRACE_MODE_READ_REALCREDS says (EPERM).

use std::sync::Arc;

use crate::kern::cred::CAP_SYS_PTRACE;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::UProc;

const KCMP_FILE: i32 = 0;
const KCMP_VM: i32 = 1;
const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;
const KCMP_SIGHAND: i32 = 4;
const KCMP_IO: i32 = 5;
const KCMP_SYSVSEM: i32 = 6;
const KCMP_EPOLL_TFD: i32 = 7;

/// The process of a pid, if the caller may read it.
fn readable(ctx: &Ctx<'_>, pid: i32) -> Result<UProc, Errno> {
    let p = crate::kern::proc::find_user(pid).filter(|p| !p.is_zombie()).ok_or(Errno::ESRCH)?;
    if p.pid == ctx.p.pid {
        return Ok(p);
    }
    let (me, them) = (ctx.p.user().cred(), p.user().cred());
    let ids = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
        && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
    if !ids && !me.capable(CAP_SYS_PTRACE) {
        return Err(Errno::EPERM);
    }
    Ok(p)
}

fn order(a: usize, b: usize) -> usize {
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 2,
    }
}

fn addr<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a).cast::<u8>() as usize
}

pub fn sys_kcmp(ctx: &mut Ctx<'_>) -> SysResult {
    let p1 = readable(ctx, ctx.int(0))?;
    let p2 = readable(ctx, ctx.int(1))?;
    let (u1, u2) = (p1.user(), p2.user());
    // Per-process state vk never shares between processes compares as the process.
    let by_proc = || order(std::ptr::from_ref(u1) as usize, std::ptr::from_ref(u2) as usize);
    match ctx.int(2) {
        KCMP_FILE => {
            let fd1 = i32::try_from(ctx.arg(3)).map_err(|_| Errno::EBADF)?;
            let fd2 = i32::try_from(ctx.arg(4)).map_err(|_| Errno::EBADF)?;
            let f1 = u1.files().lock().get(fd1)?;
            let f2 = u2.files().lock().get(fd2)?;
            Ok(order(addr(&f1), addr(&f2)))
        }
        KCMP_VM => Ok(order(addr(&u1.vm()), addr(&u2.vm()))),
        KCMP_FILES => Ok(order(addr(&u1.files()), addr(&u2.files()))),
        KCMP_FS => Ok(order(addr(&u1.fs), addr(&u2.fs))),
        KCMP_SIGHAND | KCMP_SYSVSEM => Ok(by_proc()),
        // No process has an I/O context: all the same (as Linux's two NULL pointers).
        KCMP_IO => Ok(0),
        KCMP_EPOLL_TFD => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}
