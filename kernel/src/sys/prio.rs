//! getpriority(2) and setpriority(2): a process's nice value, -20 to 19, kept in its process
//! record (shown by /proc/PID/stat, ps and vps) and inherited by fork. The scheduler does not
//! weigh it yet.

use std::sync::atomic::Ordering;

use crate::abi::linux;
use crate::kern::cred::CAP_SYS_NICE;
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
