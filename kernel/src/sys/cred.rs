//! Credential system calls: the get/set*id family, setfsuid/setfsgid, getgroups/setgroups,
//! capget/capset (credentials(7), capabilities(7)). The rules live in `kern::cred`; these
//! handlers copy arguments in and out and install the new credentials.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use linux_raw_sys::general::{_LINUX_CAPABILITY_VERSION_1, _LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3};

use crate::abi::cred::{CapData, CapHeader};
use crate::kern::cred::{CAP_SETGID, CapSet, Cred, IdChange, NGROUPS_MAX, id_arg};
use crate::kern::errno::{Errno, SysResult};
use crate::sys::Ctx;
use crate::vm::uaccess::UserSlice;

/// The caller's credentials.
fn cred(ctx: &Ctx<'_>) -> Arc<Cred> {
    ctx.p.user().cred()
}

/// Change the caller's credentials with `f`; on success install them (and the ids ps shows).
pub fn change<T>(ctx: &Ctx<'_>, f: impl FnOnce(&mut Cred) -> Result<T, Errno>) -> Result<T, Errno> {
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
        ctx.write(ctx.ptr::<u32>(i), v)?;
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
    let size = size.unsigned_abs() as usize;
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    ctx.write_slice(UserSlice::new(ctx.arg(1), size), &groups)?;
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
    let mut groups = ctx.read_slice(UserSlice::<u32>::new(ctx.arg(1), n), NGROUPS_MAX)?;
    groups.sort_unstable();
    change(ctx, |c| c.setgroups(groups))?;
    Ok(0)
}

/// A capget/capset header: how many data words its version carries, and the pid. An unknown
/// version is answered with the preferred one written back and EINVAL.
fn cap_header(ctx: &Ctx<'_>) -> Result<(usize, i32), Errno> {
    let hp = ctx.ptr::<CapHeader>(0);
    let h = ctx.read(hp)?;
    let words = match h.version {
        _LINUX_CAPABILITY_VERSION_1 => 1,
        _LINUX_CAPABILITY_VERSION_2 | _LINUX_CAPABILITY_VERSION_3 => 2,
        _ => {
            ctx.write(hp, &CapHeader { version: _LINUX_CAPABILITY_VERSION_3, pid: h.pid })?;
            return Err(Errno::EINVAL);
        }
    };
    Ok((words, h.pid))
}

/// capget(2): the sets of the caller or of process `pid` (ESRCH). A NULL data pointer
/// probes the version: 0 even when the version was unknown (and rewritten).
pub fn sys_capget(ctx: &mut Ctx<'_>) -> SysResult {
    let null_data = ctx.arg(1) == 0;
    let (words, pid) = match cap_header(ctx) {
        Err(Errno::EINVAL) if null_data => return Ok(0),
        r => r?,
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if null_data {
        return Ok(0);
    }
    let c = if pid == 0 || pid == ctx.p.pid {
        cred(ctx)
    } else {
        crate::kern::proc::find_user(pid).ok_or(Errno::ESRCH)?.user().cred()
    };
    let word = |set: CapSet, w: usize| crate::abi::lower_32_bits(set >> (32 * w));
    let data: Vec<CapData> = (0..words)
        .map(|w| CapData {
            effective: word(c.cap_effective, w),
            permitted: word(c.cap_permitted, w),
            inheritable: word(c.cap_inheritable, w),
        })
        .collect();
    ctx.write_slice(UserSlice::new(ctx.arg(1), words), &data)?;
    Ok(0)
}

/// capset(2): the caller's own sets only (EPERM for another pid), within capset's rules.
pub fn sys_capset(ctx: &mut Ctx<'_>) -> SysResult {
    let (words, pid) = cap_header(ctx)?;
    if pid != 0 && pid != ctx.p.pid {
        return Err(Errno::EPERM);
    }
    let data = ctx.read_slice(UserSlice::<CapData>::new(ctx.arg(1), words), 2)?;
    let (mut eff, mut prm, mut inh): (CapSet, CapSet, CapSet) = (0, 0, 0);
    for (w, d) in data.iter().enumerate() {
        eff |= CapSet::from(d.effective) << (32 * w);
        prm |= CapSet::from(d.permitted) << (32 * w);
        inh |= CapSet::from(d.inheritable) << (32 * w);
    }
    change(ctx, |c| c.capset(eff, prm, inh))?;
    Ok(0)
}
