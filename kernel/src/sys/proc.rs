//! Process system calls: exit, ids, credentials, uname(2), limits, TLS, randomness.

use std::sync::atomic::Ordering;

use crate::kern::errno::{Errno, SysResult};
use crate::kern::uproc::RLIM_NLIMITS;
use crate::sys::{Ctx, Exit};

pub fn sys_exit(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Thread(ctx.int(0) & 0xff));
    Ok(0)
}

pub fn sys_exit_group(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Group((ctx.int(0) & 0xff) << 8));
    Ok(0)
}

pub fn sys_getpid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.pid as usize)
}

pub fn sys_gettid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.td.tid as usize)
}

pub fn sys_getppid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.rec.ppid.load(Ordering::Relaxed).max(0) as usize)
}

pub fn sys_getuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().uid as usize)
}

pub fn sys_geteuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().euid as usize)
}

pub fn sys_getgid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().gid as usize)
}

pub fn sys_getegid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().egid as usize)
}

pub fn sys_sched_yield(_ctx: &mut Ctx<'_>) -> SysResult {
    crate::kern::sched::yield_cpu();
    Ok(0)
}

pub fn sys_set_tid_address(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.td.user().clear_child_tid.store(ctx.arg(0), Ordering::Relaxed);
    Ok(ctx.td.tid as usize)
}

/// The node name uname(2) reports (sethostname later).
pub fn hostname() -> String {
    crate::kern::kenv::get("hostname").unwrap_or("vk").to_string()
}

pub fn sys_uname(ctx: &mut Ctx<'_>) -> SysResult {
    let fields = [
        "Linux".to_string(),
        hostname(),
        "6.1.0-vk".to_string(),
        format!("#1 SMP vk {}", env!("CARGO_PKG_VERSION")),
        "x86_64".to_string(),
        "(none)".to_string(),
    ];
    let mut b = vec![0u8; 65 * 6];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f.as_bytes()[..n]);
    }
    ctx.copyout(ctx.arg(0), &b)?;
    Ok(0)
}

const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;

pub fn sys_arch_prctl(ctx: &mut Ctx<'_>) -> SysResult {
    let u = ctx.td.user();
    match ctx.int(0) {
        ARCH_SET_FS => {
            let base = ctx.arg(1);
            if base >= platform::stub::layout::USER_END {
                return Err(Errno::EPERM);
            }
            u.fs_base.store(base, Ordering::Relaxed);
            u.ops.lock().set_fs(base);
            Ok(0)
        }
        ARCH_GET_FS => {
            ctx.copyout_u64(ctx.arg(1), u.fs_base.load(Ordering::Relaxed))?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prlimit64(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid != 0 && pid != ctx.p.pid {
        return Err(Errno::ESRCH);
    }
    let res = usize::try_from(ctx.uint(1)).ok().filter(|&r| r < RLIM_NLIMITS).ok_or(Errno::EINVAL)?;
    let (new, old) = (ctx.arg(2), ctx.arg(3));
    let mut limits = *ctx.p.user().rlimits.lock();
    let prev = limits[res];
    if new != 0 {
        let mut b = [0u8; 16];
        ctx.copyin(new, &mut b)?;
        let soft = u64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let hard = u64::from_le_bytes(b[8..].try_into().map_err(|_| Errno::EFAULT)?);
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if hard > prev.1 && ctx.p.user().cred.lock().euid != 0 {
            return Err(Errno::EPERM);
        }
        limits[res] = (soft, hard);
    }
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&prev.0.to_le_bytes());
        b[8..].copy_from_slice(&prev.1.to_le_bytes());
        ctx.copyout(old, &b)?;
    }
    *ctx.p.user().rlimits.lock() = limits;
    Ok(0)
}

pub fn sys_getrandom(ctx: &mut Ctx<'_>) -> SysResult {
    let len = ctx.size(1).min(1 << 20);
    if ctx.uint(2) & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; len];
    platform::io::random_bytes(&mut b);
    ctx.copyout(ctx.arg(0), &b)?;
    Ok(len)
}
