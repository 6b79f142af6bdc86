//! Credential system calls: the get/set*id family, setfsuid/setfsgid, getgroups/setgroups,
//! capget/capset (credentials(7), capabilities(7)). The rules live in `kern::cred`; these
//! handlers copy arguments in and out and install the new credentials.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::kern::cred::{CAP_SETGID, CapSet, Cred, IdChange, NGROUPS_MAX, id_arg};
use crate::kern::errno::{Errno, SysResult};
use crate::sys::Ctx;

/// The caller's credentials.
fn cred(ctx: &Ctx<'_>) -> Arc<Cred> {
    ctx.p.user().cred()
}

/// Change the caller's credentials with `f`; on success install them (and the ids ps shows).
fn change<T>(ctx: &Ctx<'_>, f: impl FnOnce(&mut Cred) -> Result<T, Errno>) -> Result<T, Errno> {
    let u = ctx.p.user();
    let mut slot = u.cred.lock();
    let mut new = Cred::clone(&slot);
    let r = f(&mut new)?;
    ctx.p.rec.uid.store(new.uid, Ordering::Relaxed);
    ctx.p.rec.gid.store(new.gid, Ordering::Relaxed);
    *slot = Arc::new(new);
    Ok(r)
}

pub fn sys_getuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(cred(ctx).uid as usize)
}

pub fn sys_geteuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(cred(ctx).euid as usize)
}

pub fn sys_getgid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(cred(ctx).gid as usize)
}

pub fn sys_getegid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(cred(ctx).egid as usize)
}

pub fn sys_setuid(ctx: &mut Ctx<'_>) -> SysResult {
    let uid = id_arg(ctx.uint(0)).ok_or(Errno::EINVAL)?;
    change(ctx, |c| c.setuid(uid))?;
    Ok(0)
}

pub fn sys_setgid(ctx: &mut Ctx<'_>) -> SysResult {
    let gid = id_arg(ctx.uint(0)).ok_or(Errno::EINVAL)?;
    change(ctx, |c| c.setgid(gid))?;
    Ok(0)
}

pub fn sys_setreuid(ctx: &mut Ctx<'_>) -> SysResult {
    let (r, e) = (id_arg(ctx.uint(0)), id_arg(ctx.uint(1)));
    change(ctx, |c| c.setreuid(r, e))?;
    Ok(0)
}

pub fn sys_setregid(ctx: &mut Ctx<'_>) -> SysResult {
    let (r, e) = (id_arg(ctx.uint(0)), id_arg(ctx.uint(1)));
    change(ctx, |c| c.setregid(r, e))?;
    Ok(0)
}

fn id_change(ctx: &Ctx<'_>) -> IdChange {
    IdChange { real: id_arg(ctx.uint(0)), effective: id_arg(ctx.uint(1)), saved: id_arg(ctx.uint(2)) }
}

pub fn sys_setresuid(ctx: &mut Ctx<'_>) -> SysResult {
    let ch = id_change(ctx);
    change(ctx, |c| c.setresuid(ch))?;
    Ok(0)
}

pub fn sys_setresgid(ctx: &mut Ctx<'_>) -> SysResult {
    let ch = id_change(ctx);
    change(ctx, |c| c.setresgid(ch))?;
    Ok(0)
}

fn get_ids(ctx: &Ctx<'_>, ids: [u32; 3]) -> SysResult {
    for (i, v) in ids.iter().enumerate() {
        ctx.copyout(ctx.arg(i), &v.to_le_bytes())?;
    }
    Ok(0)
}

pub fn sys_getresuid(ctx: &mut Ctx<'_>) -> SysResult {
    let c = cred(ctx);
    get_ids(ctx, [c.uid, c.euid, c.suid])
}

pub fn sys_getresgid(ctx: &mut Ctx<'_>) -> SysResult {
    let c = cred(ctx);
    get_ids(ctx, [c.gid, c.egid, c.sgid])
}

/// setfsuid(2): always the old fsuid, changed or not.
pub fn sys_setfsuid(ctx: &mut Ctx<'_>) -> SysResult {
    let fsuid = ctx.uint(0);
    change(ctx, |c| Ok(c.setfsuid(fsuid))).map(|old| old as usize)
}

pub fn sys_setfsgid(ctx: &mut Ctx<'_>) -> SysResult {
    let fsgid = ctx.uint(0);
    change(ctx, |c| Ok(c.setfsgid(fsgid))).map(|old| old as usize)
}

pub fn sys_getgroups(ctx: &mut Ctx<'_>) -> SysResult {
    let groups = cred(ctx).groups.clone();
    let size = ctx.int(0);
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len());
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let b: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    ctx.copyout(ctx.arg(1), &b)?;
    Ok(groups.len())
}

/// setgroups(2): EINVAL past NGROUPS_MAX, EPERM without CAP_SETGID, then the copy; the list
/// is kept sorted, as Linux keeps it (getgroups returns it so).
pub fn sys_setgroups(ctx: &mut Ctx<'_>) -> SysResult {
    let n = ctx.int(0);
    let n = usize::try_from(n).ok().filter(|&n| n <= NGROUPS_MAX).ok_or(Errno::EINVAL)?;
    if !cred(ctx).capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut b = vec![0u8; n * 4];
    ctx.copyin(ctx.arg(1), &mut b)?;
    let mut groups: Vec<u32> = b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    groups.sort_unstable();
    change(ctx, |c| c.setgroups(groups))?;
    Ok(0)
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// A capget/capset header: the number of 32-bit words its version carries, and the pid.
/// An unknown version is answered with the preferred one written back and EINVAL.
fn cap_header(ctx: &Ctx<'_>) -> Result<(usize, i32), Errno> {
    let mut h = [0u8; 8];
    ctx.copyin(ctx.arg(0), &mut h)?;
    let version = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let pid = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let words = match version {
        CAP_V1 => 1,
        CAP_V2 | CAP_V3 => 2,
        _ => {
            ctx.copyout(ctx.arg(0), &CAP_V3.to_le_bytes())?;
            return Err(Errno::EINVAL);
        }
    };
    Ok((words, pid))
}

/// capget(2): the sets of the caller or of process `pid` (ESRCH). A NULL data pointer
/// probes the version: 0 even when the version was unknown (and rewritten).
pub fn sys_capget(ctx: &mut Ctx<'_>) -> SysResult {
    let data = ctx.arg(1);
    let (words, pid) = match cap_header(ctx) {
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        r => r?,
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if data == 0 {
        return Ok(0);
    }
    let c = if pid == 0 || pid == ctx.p.pid {
        cred(ctx)
    } else {
        crate::kern::proc::find_user(pid).ok_or(Errno::ESRCH)?.user().cred()
    };
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [c.cap_effective, c.cap_permitted, c.cap_inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    ctx.copyout(data, &out)?;
    Ok(0)
}

/// capset(2): the caller's own sets only (EPERM for another pid), within capset's rules.
pub fn sys_capset(ctx: &mut Ctx<'_>) -> SysResult {
    let (words, pid) = cap_header(ctx)?;
    if pid != 0 && pid != ctx.p.pid {
        return Err(Errno::EPERM);
    }
    let mut b = vec![0u8; words * 12];
    ctx.copyin(ctx.arg(1), &mut b)?;
    let mut sets: [CapSet; 3] = [0; 3];
    for (w, chunk) in b.chunks_exact(12).enumerate() {
        for (i, set) in sets.iter_mut().enumerate() {
            let v = u32::from_le_bytes([chunk[i * 4], chunk[i * 4 + 1], chunk[i * 4 + 2], chunk[i * 4 + 3]]);
            *set |= CapSet::from(v) << (32 * w);
        }
    }
    let [eff, prm, inh] = sets;
    change(ctx, |c| c.capset(eff, prm, inh))?;
    Ok(0)
}
