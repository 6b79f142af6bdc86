//! getpriority(2) and setpriority(2): a process's nice value, -20 to 19, kept in its process
//! record (shown by /proc/PID/stat, ps and vps) and inherited by fork. The scheduler does not
//! weigh it yet. ioprio_get(2) and ioprio_set(2): the I/O priority (class and level), kept
//! per process and inherited; nothing orders disk requests by it.

use std::sync::atomic::Ordering;

use crate::abi::linux;
use crate::kern::cred::{CAP_SYS_ADMIN, CAP_SYS_NICE};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::{self, UProc};

/// The nice values there are.
const NICE_MIN: i32 = -20;
const NICE_MAX: i32 = 19;
/// RLIMIT_NICE's index.
const RLIMIT_NICE: usize = linux::RLIMIT_NICE as usize;

/// The processes `which` (PRIO_PROCESS, PRIO_PGRP, PRIO_USER) and `who` name; `who` 0 is the
/// caller, its process group, its real user.
fn targets(ctx: &Ctx<'_>, which: u32, who: i32) -> Result<Vec<UProc>, Errno> {
    let who_u = u32::try_from(who).map_err(|_| Errno::ESRCH);
    let found = match which {
        linux::PRIO_PROCESS => {
            let pid = if who == 0 { ctx.p.pid } else { who };
            proc::find_user(pid).into_iter().collect()
        }
        linux::PRIO_PGRP => {
            let pgid = if who == 0 { ctx.p.rec.pgid.load(Ordering::Relaxed) } else { who };
            proc::all_user()
                .into_iter()
                .filter(|p| !p.is_zombie() && p.rec.pgid.load(Ordering::Relaxed) == pgid)
                .collect()
        }
        linux::PRIO_USER => {
            let uid = if who == 0 { ctx.p.user().cred().uid } else { who_u? };
            proc::all_user().into_iter().filter(|p| !p.is_zombie() && p.user().cred().uid == uid).collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(found)
}

/// getpriority(2): the highest priority (lowest nice) among the processes named, as the
/// system call returns it: 20 - nice, 1 to 40 (glibc turns it back into the nice value).
pub fn sys_getpriority(ctx: &mut Ctx<'_>) -> SysResult {
    let procs = targets(ctx, ctx.uint(0), ctx.int(1))?;
    let nice = procs.iter().map(|p| p.rec.nice.load(Ordering::Relaxed)).min().ok_or(Errno::ESRCH)?;
    Ok(usize::try_from(20 - nice).unwrap_or(0))
}

/// setpriority(2): set the nice value (clamped to -20..19) of the processes named. EPERM for
/// one whose real or effective uid is not the caller's effective uid, EACCES for lowering a
/// nice value past RLIMIT_NICE, both unless the caller has CAP_SYS_NICE; ESRCH when none is
/// named. As Linux's set_one_prio, the last error is returned.
pub fn sys_setpriority(ctx: &mut Ctx<'_>) -> SysResult {
    let procs = targets(ctx, ctx.uint(0), ctx.int(1))?;
    let nice = ctx.int(2).clamp(NICE_MIN, NICE_MAX);
    if procs.is_empty() {
        return Err(Errno::ESRCH);
    }
    let cred = ctx.p.user().cred();
    let capable = cred.capable(CAP_SYS_NICE);
    let nice_limit = ctx.p.user().rlimits.lock()[RLIMIT_NICE].0;
    let mut result = Ok(0);
    for p in &procs {
        let pcred = p.user().cred();
        if pcred.uid != cred.euid && pcred.euid != cred.euid && !capable {
            result = Err(Errno::EPERM);
            continue;
        }
        let may_lower = capable || u64::try_from(20 - nice).unwrap_or(0) <= nice_limit;
        if nice < p.rec.nice.load(Ordering::Relaxed) && !may_lower {
            result = Err(Errno::EACCES);
            continue;
        }
        p.rec.nice.store(nice, Ordering::Relaxed);
    }
    result
}

/// The I/O priority classes (IOPRIO_CLASS_*) and the levels of the RT and BE classes.
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_CLASS_NONE: u32 = 0;
const IOPRIO_CLASS_RT: u32 = 1;
const IOPRIO_CLASS_BE: u32 = 2;
const IOPRIO_CLASS_IDLE: u32 = 3;
const IOPRIO_NR_LEVELS: u32 = 8;

/// ioprio's `which` (IOPRIO_WHO_PROCESS, _PGRP, _USER) as getpriority's PRIO_*.
fn ioprio_targets(ctx: &Ctx<'_>) -> Result<Vec<UProc>, Errno> {
    let which = match ctx.uint(0) {
        1 => linux::PRIO_PROCESS,
        2 => linux::PRIO_PGRP,
        3 => linux::PRIO_USER,
        _ => return Err(Errno::EINVAL),
    };
    targets(ctx, which, ctx.int(1))
}

/// ioprio_set(2): EINVAL for an unknown class or a level out of range, EPERM for the
/// real-time class without CAP_SYS_NICE or CAP_SYS_ADMIN, and for another user's process.
pub fn sys_ioprio_set(ctx: &mut Ctx<'_>) -> SysResult {
    let ioprio = ctx.uint(2);
    let class = ioprio >> IOPRIO_CLASS_SHIFT;
    let level = ioprio & ((1 << IOPRIO_CLASS_SHIFT) - 1);
    let cred = ctx.p.user().cred();
    let capable = cred.capable(CAP_SYS_NICE) || cred.capable(CAP_SYS_ADMIN);
    match class {
        IOPRIO_CLASS_RT if !capable => return Err(Errno::EPERM),
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE if level >= IOPRIO_NR_LEVELS => return Err(Errno::EINVAL),
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE => {}
        IOPRIO_CLASS_NONE if level != 0 => return Err(Errno::EINVAL),
        IOPRIO_CLASS_NONE => {}
        _ => return Err(Errno::EINVAL),
    }
    let procs = ioprio_targets(ctx)?;
    if procs.is_empty() {
        return Err(Errno::ESRCH);
    }
    let mut result = Ok(0);
    for p in &procs {
        let pcred = p.user().cred();
        if pcred.uid != cred.euid && pcred.euid != cred.euid && !cred.capable(CAP_SYS_NICE) {
            result = Err(Errno::EPERM);
            continue;
        }
        p.user().ioprio.store(ioprio, Ordering::Relaxed);
    }
    result
}

/// ioprio_get(2): the best priority among the processes named (the lowest class number
/// but NONE, then the lowest level), as Linux's ioprio_best.
pub fn sys_ioprio_get(ctx: &mut Ctx<'_>) -> SysResult {
    let procs = ioprio_targets(ctx)?;
    let key = |v: u32| {
        let class = v >> IOPRIO_CLASS_SHIFT;
        (if class == IOPRIO_CLASS_NONE { IOPRIO_CLASS_BE } else { class }, v & ((1 << IOPRIO_CLASS_SHIFT) - 1))
    };
    let best = procs.iter().map(|p| p.user().ioprio.load(Ordering::Relaxed)).min_by_key(|v| key(*v)).ok_or(Errno::ESRCH)?;
    Ok(usize::try_from(best).unwrap_or(0))
}
