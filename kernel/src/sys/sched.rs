//! The scheduling-policy calls: sched_setscheduler(2), sched_getscheduler(2),
//! sched_setparam(2), sched_getparam(2), sched_get_priority_max(2)/min(2),
//! sched_rr_get_interval(2), sched_setattr(2), sched_getattr(2).
//!
//! A process's policy (SCHED_OTHER, BATCH, IDLE, FIFO, RR, DEADLINE), its real-time priority
//! and deadline parameters are checked with Linux's rules (ranges, CAP_SYS_NICE or
//! RLIMIT_RTPRIO for real-time policies, who may change whom) and kept in
//! [`UserProc::sched`](crate::kern::uproc::UserProc); fork inherits them unless
//! SCHED_RESET_ON_FORK says otherwise. vk's scheduler does not act on them: every thread is
//! scheduled as SCHED_OTHER. A thread id names its whole process (the policy is per process).

use linux_raw_sys::general as g;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::abi::time::Timespec;
use crate::kern::cred::CAP_SYS_NICE;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::UProc;

pub use crate::kern::sched_policy::{SCHED_BATCH, SCHED_DEADLINE, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER, SCHED_RR, SchedPolicy, is_rt};
/// The bit sched_setscheduler's policy may carry.
const SCHED_RESET_ON_FORK: u32 = g::SCHED_RESET_ON_FORK;
/// sched_setattr's flags vk takes (reset-on-fork, and keeping the policy or the parameters).
const FLAGS_KNOWN: u64 = (g::SCHED_FLAG_RESET_ON_FORK | g::SCHED_FLAG_KEEP_POLICY | g::SCHED_FLAG_KEEP_PARAMS) as u64;
const MAX_RT_PRIO: u32 = 99;
/// RLIMIT_RTPRIO's index.
const RLIMIT_RTPRIO: usize = 14;
/// SCHED_RR's time slice (sched_rr_timeslice_ms's default).
const RR_TIMESLICE_NS: i64 = 100_000_000;
/// What sched_rr_get_interval answers for SCHED_OTHER: CFS's slice of a lone task (4 ms
/// with the default sched_min_granularity of 0.75 ms × 8 / 1.5 … as a nominal value).
const OTHER_TIMESLICE_NS: i64 = 4_000_000;
/// SCHED_DEADLINE's smallest runtime (2^DL_SCALE ns) and largest period (~4 s, sched_dl_period_max_us's default).
const DL_MIN_NS: u64 = 1 << 10;
const DL_PERIOD_MAX_NS: u64 = 4_194_304_000_000;

/// `struct sched_attr` as of SCHED_ATTR_SIZE_VER1 (56 bytes; VER0 is the first 48).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}
const ATTR_SIZE_VER0: usize = 48;
const ATTR_SIZE: usize = size_of::<SchedAttr>();
const _: () = assert!(ATTR_SIZE == 56);
const ATTR_SIZE_U32: u32 = 56;

fn valid_policy(policy: u32) -> bool {
    matches!(policy, SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE)
}

/// The process a pid (a thread id; 0 for the caller) names: EINVAL for a negative one,
/// ESRCH for none.
fn target(ctx: &Ctx<'_>, pid: i32) -> Result<UProc, Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 {
        return crate::kern::proc::find_user(ctx.p.pid).ok_or(Errno::ESRCH);
    }
    // A zombie is still there to ask (until it is reaped), as on Linux.
    crate::kern::ptrace::find_thread(pid).map(|(p, _)| p).or_else(|| crate::kern::proc::find_user(pid)).ok_or(Errno::ESRCH)
}

/// Linux's __sched_setscheduler checks for `new` on `p`, then the change.
fn set(ctx: &Ctx<'_>, p: &UProc, new: SchedPolicy, nice: Option<i32>) -> SysResult {
    if !valid_policy(new.policy) {
        return Err(Errno::EINVAL);
    }
    if is_rt(new.policy) {
        if !(1..=MAX_RT_PRIO).contains(&new.priority) {
            return Err(Errno::EINVAL);
        }
    } else if new.priority != 0 {
        return Err(Errno::EINVAL);
    }
    if new.policy == SCHED_DEADLINE {
        let period = if new.period_ns == 0 { new.deadline_ns } else { new.period_ns };
        if new.deadline_ns == 0
            || new.runtime_ns < DL_MIN_NS
            || new.runtime_ns > new.deadline_ns
            || new.deadline_ns > period
            || period > DL_PERIOD_MAX_NS
            || new.deadline_ns & (1 << 63) != 0
        {
            return Err(Errno::EINVAL);
        }
    }
    let mut new = new;
    if new.policy == SCHED_DEADLINE && new.period_ns == 0 {
        new.period_ns = new.deadline_ns;
    }
    let cred = ctx.p.user().cred();
    let capable = cred.capable(CAP_SYS_NICE);
    let old = *p.user().sched.lock();
    if !capable {
        // Real-time: up to RLIMIT_RTPRIO, and only raising within it; deadline never.
        if is_rt(new.policy) {
            let limit = p.user().rlimits.lock()[RLIMIT_RTPRIO].0;
            let raising = !is_rt(old.policy) || new.priority > old.priority;
            if limit == 0 || (raising && u64::from(new.priority) > limit) {
                return Err(Errno::EPERM);
            }
        }
        if new.policy == SCHED_DEADLINE || old.policy == SCHED_DEADLINE {
            return Err(Errno::EPERM);
        }
        // Leaving SCHED_IDLE needs the nice value's rules; clearing reset-on-fork needs privilege.
        if old.reset_on_fork && !new.reset_on_fork {
            return Err(Errno::EPERM);
        }
        let pcred = p.user().cred();
        if pcred.uid != cred.euid && pcred.euid != cred.euid {
            return Err(Errno::EPERM);
        }
    }
    if let Some(n) = nice {
        let n = n.clamp(-20, 19);
        if n < p.rec.nice.load(std::sync::atomic::Ordering::Relaxed) && !capable {
            return Err(Errno::EPERM);
        }
        p.rec.nice.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    *p.user().sched.lock() = new;
    Ok(0)
}

/// sched_param's one field, from a guest pointer (EINVAL for NULL, EFAULT for a bad one).
fn read_param(ctx: &Ctx<'_>, i: usize) -> Result<u32, Errno> {
    if ctx.arg(i) == 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = ctx.read(ctx.ptr::<i32>(i))?;
    u32::try_from(prio).map_err(|_| Errno::EINVAL)
}

pub fn sys_sched_setscheduler(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let raw = ctx.int(1);
    if pid < 0 || ctx.arg(2) == 0 {
        return Err(Errno::EINVAL);
    }
    let policy = u32::try_from(raw).map_err(|_| Errno::EINVAL)?;
    let priority = read_param(ctx, 2)?;
    let p = target(ctx, pid)?;
    let old = *p.user().sched.lock();
    let new = SchedPolicy {
        policy: policy & !SCHED_RESET_ON_FORK,
        priority,
        reset_on_fork: policy & SCHED_RESET_ON_FORK != 0,
        ..old
    };
    set(ctx, &p, new, None)
}

pub fn sys_sched_setparam(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid < 0 || ctx.arg(1) == 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(ctx, 1)?;
    let p = target(ctx, pid)?;
    let old = *p.user().sched.lock();
    set(ctx, &p, SchedPolicy { priority, ..old }, None)
}

pub fn sys_sched_getscheduler(ctx: &mut Ctx<'_>) -> SysResult {
    let p = target(ctx, ctx.int(0))?;
    let s = *p.user().sched.lock();
    let bits = s.policy | if s.reset_on_fork { SCHED_RESET_ON_FORK } else { 0 };
    Ok(usize::try_from(bits).unwrap_or(0))
}

pub fn sys_sched_getparam(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid < 0 || ctx.arg(1) == 0 {
        return Err(Errno::EINVAL);
    }
    let p = target(ctx, pid)?;
    let prio = i32::try_from(p.user().sched.lock().priority).unwrap_or(0);
    ctx.write(ctx.ptr::<i32>(1), &prio)?;
    Ok(0)
}

pub fn sys_sched_get_priority_max(ctx: &mut Ctx<'_>) -> SysResult {
    match u32::try_from(ctx.int(0)) {
        Ok(SCHED_FIFO | SCHED_RR) => Ok(MAX_RT_PRIO as usize),
        Ok(SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE) => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_min(ctx: &mut Ctx<'_>) -> SysResult {
    match u32::try_from(ctx.int(0)) {
        Ok(SCHED_FIFO | SCHED_RR) => Ok(1),
        Ok(SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE) => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_rr_get_interval(2): SCHED_RR's time slice, 0 for SCHED_FIFO, a nominal slice for the
/// others.
pub fn sys_sched_rr_get_interval(ctx: &mut Ctx<'_>) -> SysResult {
    let p = target(ctx, ctx.int(0))?;
    let ns = match p.user().sched.lock().policy {
        SCHED_RR => RR_TIMESLICE_NS,
        SCHED_FIFO => 0,
        _ => OTHER_TIMESLICE_NS,
    };
    let ts = Timespec { tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000 };
    ctx.write(ctx.ptr::<Timespec>(1), &ts)?;
    Ok(0)
}

/// sched_setattr(2): `size` 0 means VER0; a smaller one (or a larger one with non-zero bytes
/// past what vk knows) is E2BIG, with the size vk knows written back.
pub fn sys_sched_setattr(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid < 0 || ctx.arg(1) == 0 || ctx.uint(2) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = ctx.arg(1);
    let size: u32 = ctx.read(ctx.ptr::<u32>(1))?;
    let size = usize::try_from(size).map_err(|_| Errno::E2BIG)?;
    let size = if size == 0 { ATTR_SIZE_VER0 } else { size };
    let too_big = || -> Result<usize, Errno> {
        ctx.write(ctx.ptr::<u32>(1), &ATTR_SIZE_U32)?;
        Err(Errno::E2BIG)
    };
    if !(ATTR_SIZE_VER0..=4096).contains(&size) {
        return too_big();
    }
    let mut bytes = vec![0u8; size];
    ctx.copyin(crate::vm::uaccess::UserSlice::new(base, size), &mut bytes)?;
    if bytes.len() > ATTR_SIZE && bytes[ATTR_SIZE..].iter().any(|&b| b != 0) {
        return too_big();
    }
    bytes.resize(ATTR_SIZE, 0);
    let a = SchedAttr::read_from_bytes(&bytes).map_err(|_| Errno::EINVAL)?;
    if a.sched_flags & !FLAGS_KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let p = target(ctx, pid)?;
    let old = *p.user().sched.lock();
    let keep_policy = a.sched_flags & u64::from(g::SCHED_FLAG_KEEP_POLICY) != 0;
    let keep_params = a.sched_flags & u64::from(g::SCHED_FLAG_KEEP_PARAMS) != 0;
    let mut new = if keep_params { old } else { SchedPolicy { priority: a.sched_priority, runtime_ns: a.sched_runtime, deadline_ns: a.sched_deadline, period_ns: a.sched_period, ..old } };
    new.policy = if keep_policy { old.policy } else { a.sched_policy };
    new.reset_on_fork = a.sched_flags & u64::from(g::SCHED_FLAG_RESET_ON_FORK) != 0;
    let nice = matches!(new.policy, SCHED_OTHER | SCHED_BATCH).then_some(a.sched_nice);
    set(ctx, &p, new, nice)
}

/// sched_getattr(2): as much of `struct sched_attr` as `size` has room for, its size field
/// saying how much that is.
pub fn sys_sched_getattr(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let size = ctx.size(2);
    if pid < 0 || ctx.arg(1) == 0 || !(ATTR_SIZE_VER0..=4096).contains(&size) || ctx.uint(3) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = target(ctx, pid)?;
    let s = *p.user().sched.lock();
    let n = size.min(ATTR_SIZE);
    let a = SchedAttr {
        size: u32::try_from(n).unwrap_or(ATTR_SIZE_U32),
        sched_policy: s.policy,
        sched_flags: if s.reset_on_fork { u64::from(g::SCHED_FLAG_RESET_ON_FORK) } else { 0 },
        sched_nice: p.rec.nice.load(std::sync::atomic::Ordering::Relaxed),
        sched_priority: s.priority,
        sched_runtime: s.runtime_ns,
        sched_deadline: s.deadline_ns,
        sched_period: s.period_ns,
        sched_util_min: 0,
        sched_util_max: 1024,
    };
    ctx.write_slice(crate::vm::uaccess::UserSlice::new(ctx.arg(1), n), &a.as_bytes()[..n])?;
    Ok(0)
}
