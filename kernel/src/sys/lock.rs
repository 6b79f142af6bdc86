//! File locks from the system call side: fcntl(2)'s F_GETLK, F_SETLK, F_SETLKW and their
//! F_OFD_* forms, flock(2), and fcntl(2)'s leases and signal owners (F_SETLEASE, F_GETLEASE,
//! F_SETOWN(_EX), F_GETOWN(_EX), F_SETSIG, F_GETSIG). The locks themselves are fs/lock.rs's,
//! the leases fs/lease.rs's.

use std::sync::Arc;

use crate::abi::lock::{
    F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_RDLCK, F_SETLKW, F_UNLCK, F_WRLCK, Flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN,
};
use crate::fs::file::File;
use crate::fs::lease::{self, OwnerKind};
use crate::fs::lock::{self, Lock, LockType, Owner};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// The bytes a `struct flock` names, as (start, end) with `end` inclusive (u64::MAX: to the
/// end and beyond): l_whence's base plus l_start, then l_len forward (0: to the end) or back
/// (negative). EINVAL for a bad whence or a start before 0, EOVERFLOW past the largest offset.
fn range(f: &File, fl: &Flock) -> Result<(u64, u64), Errno> {
    let base: i64 = match fl.l_whence {
        0 => 0,
        1 => i64::try_from(*f.offset.lock()).map_err(|_| Errno::EOVERFLOW)?,
        2 => i64::try_from(f.vnode.attr()?.size).map_err(|_| Errno::EOVERFLOW)?,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(fl.l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match fl.l_len {
        0 => (start, None),
        len if len > 0 => (start, Some(start.checked_add(len - 1).ok_or(Errno::EOVERFLOW)?)),
        len => (start.checked_add(len).ok_or(Errno::EINVAL)?, Some(start - 1)),
    };
    let start = u64::try_from(start).map_err(|_| Errno::EINVAL)?;
    let end = match end {
        Some(e) => u64::try_from(e).map_err(|_| Errno::EINVAL)?,
        None => u64::MAX,
    };
    Ok((start, end))
}

/// fcntl(2)'s lock commands on the open file `f`.
pub fn fcntl_lock(ctx: &Ctx<'_>, f: &Arc<File>, cmd: i32) -> SysResult {
    let p = ctx.ptr::<Flock>(2);
    let mut fl = ctx.read(p)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = match fl.l_type {
        F_RDLCK => Some(LockType::Read),
        F_WRLCK => Some(LockType::Write),
        F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    let owner = if ofd { Owner::Ofd(Arc::as_ptr(f).addr()) } else { ctx.p.user().files().lock().lock_owner() };
    let (start, end) = range(f, &fl)?;
    let pid = if ofd { -1 } else { ctx.p.pid };
    let file = f.vnode.id();
    if cmd == F_GETLK || cmd == F_OFD_GETLK {
        let ty = ty.ok_or(Errno::EINVAL)?;
        match lock::test(file, &Lock { owner, ty, start, end, pid }) {
            Some(l) => {
                fl.l_type = if l.ty == LockType::Write { F_WRLCK } else { F_RDLCK };
                fl.l_whence = 0;
                fl.l_start = i64::try_from(l.start).unwrap_or(i64::MAX);
                fl.l_len = if l.end == u64::MAX { 0 } else { i64::try_from(l.end - l.start + 1).unwrap_or(0) };
                fl.l_pid = l.pid;
            }
            None => fl.l_type = F_UNLCK,
        }
        ctx.write(p, &fl)?;
        return Ok(0);
    }
    // A read lock needs the file open for reading, a write lock for writing.
    match ty {
        Some(LockType::Read) if !f.readable() => return Err(Errno::EBADF),
        Some(LockType::Write) if !f.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    let want = Lock { owner, ty: ty.unwrap_or(LockType::Read), start, end, pid };
    lock::set(file, want, ty.is_none(), cmd == F_SETLKW || cmd == F_OFD_SETLKW)?;
    Ok(0)
}

pub fn sys_flock(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if f.flags() & crate::fs::file::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let op = ctx.uint(1);
    let ty = match op & !LOCK_NB {
        LOCK_SH => Some(LockType::Read),
        LOCK_EX => Some(LockType::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let owner = Owner::Flock(Arc::as_ptr(&f).addr());
    let file = f.vnode.id();
    let want = Lock { owner, ty: ty.unwrap_or(LockType::Read), start: 0, end: u64::MAX, pid: -1 };
    // A conversion first lets the old lock go, as Linux does (it is not atomic).
    if ty.is_some() && lock::held(file, owner).is_some_and(|held| held != want.ty) {
        lock::set(file, want, true, false)?;
    }
    lock::set(file, want, ty.is_none(), op & LOCK_NB == 0)?;
    Ok(0)
}

/// fcntl(2)'s lease and signal-owner commands on descriptor `fd`, the open file `f`.
pub fn fcntl_lease(ctx: &Ctx<'_>, fd: i32, f: &Arc<File>, cmd: i32) -> SysResult {
    use crate::abi::lock::{
        F_GETLEASE, F_GETOWN, F_GETOWN_EX, F_GETSIG, F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID, F_SETLEASE, F_SETOWN,
        F_SETOWN_EX, F_SETSIG, FOwnerEx,
    };
    // A negative value (a process group) goes back as the two's complement in rax.
    let ret = |v: i32| usize::try_from(i64::from(v).cast_unsigned()).map_err(|_| Errno::EINVAL);
    // An O_PATH descriptor takes none of these (fcntl's check_fcntl_cmd).
    if f.flags() & crate::fs::file::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    match cmd {
        F_GETLEASE => ret(match lease::get(f) {
            Some(LockType::Read) => i32::from(F_RDLCK),
            Some(LockType::Write) => i32::from(F_WRLCK),
            None => i32::from(F_UNLCK),
        }),
        F_SETLEASE => {
            let ty = match ctx.int(2) {
                a if a == i32::from(F_RDLCK) => Some(LockType::Read),
                a if a == i32::from(F_WRLCK) => Some(LockType::Write),
                a if a == i32::from(F_UNLCK) => None,
                _ => return Err(Errno::EINVAL),
            };
            lease::set(f, fd, ty, &ctx.p.user().cred(), ctx.p.pid)?;
            Ok(0)
        }
        // f_getown: a process group as its negated id.
        F_GETOWN => {
            let (kind, id) = lease::owner(f);
            ret(if kind == OwnerKind::Pgrp { -id } else { id })
        }
        F_SETOWN => {
            let who = ctx.int(2);
            let (kind, id) = match who {
                i32::MIN => return Err(Errno::EINVAL),
                w if w < 0 => (OwnerKind::Pgrp, -w),
                w => (OwnerKind::Pid, w),
            };
            lease::set_owner(f, kind, id, &ctx.p.user().cred())?;
            Ok(0)
        }
        F_GETOWN_EX => {
            let (kind, id) = lease::owner(f);
            let type_ = match kind {
                OwnerKind::Tid => F_OWNER_TID,
                OwnerKind::Pid => F_OWNER_PID,
                OwnerKind::Pgrp => F_OWNER_PGRP,
            };
            ctx.write(ctx.ptr::<FOwnerEx>(2), &FOwnerEx { type_, pid: id })?;
            Ok(0)
        }
        F_SETOWN_EX => {
            let o = ctx.read(ctx.ptr::<FOwnerEx>(2))?;
            let kind = match o.type_ {
                F_OWNER_TID => OwnerKind::Tid,
                F_OWNER_PID => OwnerKind::Pid,
                F_OWNER_PGRP => OwnerKind::Pgrp,
                _ => return Err(Errno::EINVAL),
            };
            if o.pid < 0 {
                return Err(Errno::EINVAL);
            }
            lease::set_owner(f, kind, o.pid, &ctx.p.user().cred())?;
            Ok(0)
        }
        F_GETSIG => ret(lease::sig(f)),
        F_SETSIG => {
            lease::set_sig(f, ctx.int(2))?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
