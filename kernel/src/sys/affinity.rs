//! CPU affinity: sched_setaffinity(2) and sched_getaffinity(2) over the kernel's vCPUs (`-n`).
//! A thread's mask lives on its [`Thread`](crate::kern::thread::Thread); the scheduler keeps
//! it on the CPUs the mask allows (kern/sched.rs).

use std::sync::Arc;

use crate::kern::cred::CAP_SYS_NICE;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::thread::Thread;

/// The kernel's CPU mask size in bytes (cpumask_size(): one long for up to 64 CPUs).
const CPUMASK_BYTES: usize = 8;

/// The CPUs online: bit N for vCPU N.
fn online_mask() -> u64 {
    let n = platform::cpu::ncpus().min(64);
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// The thread `pid` names (0: the caller), ESRCH when none has that id.
fn target(ctx: &Ctx<'_>, pid: i32) -> Result<Arc<Thread>, Errno> {
    if pid == 0 {
        return Ok(Arc::clone(ctx.td.arc()));
    }
    let tid = u64::try_from(pid).map_err(|_| Errno::ESRCH)?;
    crate::kern::proc::all_user()
        .into_iter()
        .flat_map(|p| p.threads())
        .find(|t| t.tid() == tid)
        .map(|t| Arc::clone(t.arc()))
        .ok_or(Errno::ESRCH)
}

/// sched_setaffinity(2): EINVAL for a mask with no online CPU, EPERM for another user's
/// thread without CAP_SYS_NICE. The caller moves off a CPU its new mask leaves out at once.
pub fn sys_sched_setaffinity(ctx: &mut Ctx<'_>) -> SysResult {
    let td = target(ctx, ctx.int(0))?;
    // get_user_cpu_mask: a shorter mask is zero-extended, a longer one cut.
    let len = ctx.size(1).min(CPUMASK_BYTES);
    let mut b = [0u8; CPUMASK_BYTES];
    ctx.copyin(ctx.ptr::<u8>(2).slice(len), &mut b[..len])?;
    let mask = u64::from_le_bytes(b) & online_mask();
    if !Arc::ptr_eq(&td, ctx.td.arc()) {
        let me = ctx.p.user().cred();
        let them = td.proc_().and_then(crate::kern::proc::UProc::new).map(|p| p.user().cred()).ok_or(Errno::ESRCH)?;
        if me.euid != them.euid && me.euid != them.uid && !me.capable(CAP_SYS_NICE) {
            return Err(Errno::EPERM);
        }
    }
    if mask == 0 {
        return Err(Errno::EINVAL);
    }
    td.set_affinity(mask);
    if Arc::ptr_eq(&td, ctx.td.arc()) && mask & (1u64 << platform::cpu::curcpu().min(63)) == 0 {
        crate::kern::sched::yield_cpu();
    }
    Ok(0)
}

/// sched_getaffinity(2): the thread's mask among the online CPUs; EINVAL for a buffer too
/// small for the CPUs or not a whole number of longs. Returns the bytes written.
pub fn sys_sched_getaffinity(ctx: &mut Ctx<'_>) -> SysResult {
    let td = target(ctx, ctx.int(0))?;
    let size = ctx.size(1);
    let ncpus = usize::try_from(platform::cpu::ncpus()).unwrap_or(1);
    if size * 8 < ncpus || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mask = td.affinity() & online_mask();
    ctx.write_slice(ctx.ptr::<u8>(2).slice(CPUMASK_BYTES), &mask.to_le_bytes())?;
    Ok(CPUMASK_BYTES)
}
