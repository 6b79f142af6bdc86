//! Thread and task calls: futex(2), set_robust_list(2), prctl(2).

use std::sync::atomic::Ordering;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::futex::{self, FUTEX_BITSET_MATCH_ANY};

pub fn sys_futex(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, op, val) = (ctx.arg(0), ctx.int(1), ctx.uint(2));
    let cmd = op & !(futex::FUTEX_PRIVATE_FLAG | futex::FUTEX_CLOCK_REALTIME);
    let p = ctx.p;
    match cmd {
        futex::FUTEX_WAIT => {
            let deadline = ctx.timeout_ns(ctx.arg(3))?.map(|t| platform::time::uptime_ns().saturating_add(t));
            futex::wait(p, addr, val, FUTEX_BITSET_MATCH_ANY, deadline)
        }
        futex::FUTEX_WAIT_BITSET => {
            let deadline = ctx.timeout_ns(ctx.arg(3))?.map(|t| {
                let now = if op & futex::FUTEX_CLOCK_REALTIME != 0 {
                    platform::time::realtime_ns()
                } else {
                    platform::time::host_monotonic_ns()
                };
                platform::time::uptime_ns().saturating_add(t.saturating_sub(now))
            });
            futex::wait(p, addr, val, ctx.uint(5), deadline)
        }
        futex::FUTEX_WAKE => futex::wake(p, addr, val, FUTEX_BITSET_MATCH_ANY),
        futex::FUTEX_WAKE_BITSET => futex::wake(p, addr, val, ctx.uint(5)),
        futex::FUTEX_REQUEUE => futex::requeue(p, addr, val, ctx.uint(3), ctx.arg(4), None),
        futex::FUTEX_CMP_REQUEUE => futex::requeue(p, addr, val, ctx.uint(3), ctx.arg(4), Some(ctx.uint(5))),
        futex::FUTEX_WAKE_OP => futex::wake_op(p, addr, val, ctx.arg(4), ctx.uint(3), ctx.uint(5)),
        _ => Err(Errno::ENOSYS),
    }
}

pub fn sys_set_robust_list(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.arg(1) != 24 {
        return Err(Errno::EINVAL);
    }
    ctx.td.user().robust_list.store(ctx.arg(0), Ordering::Relaxed);
    Ok(0)
}

pub fn sys_get_robust_list(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid != 0 && pid as u64 != ctx.td.tid() {
        return Err(Errno::ESRCH);
    }
    ctx.copyout_u64(ctx.arg(1), ctx.td.user().robust_list.load(Ordering::Relaxed))?;
    ctx.copyout_u64(ctx.arg(2), 24)?;
    Ok(0)
}

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;

pub fn sys_prctl(ctx: &mut Ctx<'_>) -> SysResult {
    match ctx.int(0) {
        PR_SET_NAME => {
            let mut b = [0u8; 16];
            ctx.copyin(ctx.arg(1), &mut b)?;
            let end = b.iter().position(|&c| c == 0).unwrap_or(15).min(15);
            ctx.p.set_comm(&String::from_utf8_lossy(&b[..end]));
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b = [0u8; 16];
            let comm = ctx.p.comm();
            let n = comm.len().min(15);
            b[..n].copy_from_slice(&comm.as_bytes()[..n]);
            ctx.copyout(ctx.arg(1), &b)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            let sig = ctx.int(1);
            if sig != 0 && !crate::kern::signal::valid(sig) {
                return Err(Errno::EINVAL);
            }
            ctx.td.user().pdeathsig.store(sig, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            ctx.copyout_i32(ctx.arg(1), ctx.td.user().pdeathsig.load(Ordering::Relaxed))?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE => {
            if ctx.arg(1) > 1 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
