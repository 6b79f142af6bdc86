//! Thread and task calls: futex(2), futex_waitv(2), set_robust_list(2), get_robust_list(2), prctl(2).

use std::sync::atomic::Ordering;

use linux_raw_sys::prctl as pr;

use crate::abi::futex::{
    FUTEX_BITSET_MATCH_ANY, FUTEX2_PRIVATE, FUTEX2_SIZE_MASK, FUTEX2_SIZE_U32, FutexCmd, FutexOp, FutexWaitv,
};
use crate::abi::rseq::RSEQ_FLAG_UNREGISTER;
use crate::abi::time::Timespec;
use crate::abi::{c_int, linux};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::futex;

const CLOCK_REALTIME: i32 = c_int(linux::CLOCK_REALTIME);
const CLOCK_MONOTONIC: i32 = c_int(linux::CLOCK_MONOTONIC);

/// futex(2)'s bitset argument: EINVAL when it is 0 (it would match no waiter).
fn bitset(ctx: &Ctx<'_>) -> Result<u32, Errno> {
    match ctx.uint(5) {
        0 => Err(Errno::EINVAL),
        b => Ok(b),
    }
}

pub fn sys_futex(ctx: &mut Ctx<'_>) -> SysResult {
    let op = FutexOp::try_from(ctx.int(1))?;
    let (addr, val) = (ctx.arg(0), ctx.uint(2));
    let p = ctx.p;
    match op.cmd {
        FutexCmd::Wait => {
            // A relative timeout.
            let deadline = ctx.timeout_ns(3)?.map(|t| platform::time::uptime_ns().saturating_add(t));
            futex::wait(p, addr, val, FUTEX_BITSET_MATCH_ANY, deadline)
        }
        FutexCmd::WaitBitset => {
            let bits = bitset(ctx)?;
            // An absolute timeout, on CLOCK_REALTIME or CLOCK_MONOTONIC.
            let deadline = ctx.timeout_ns(3)?.map(|t| {
                let now =
                    if op.clock_realtime { platform::time::realtime_ns() } else { platform::time::host_monotonic_ns() };
                platform::time::uptime_ns().saturating_add(t.saturating_sub(now))
            });
            futex::wait(p, addr, val, bits, deadline)
        }
        FutexCmd::Wake => futex::wake(p, addr, val, FUTEX_BITSET_MATCH_ANY),
        FutexCmd::WakeBitset => futex::wake(p, addr, val, bitset(ctx)?),
        // The fourth argument is a count here, not a timeout.
        FutexCmd::Requeue => futex::requeue(p, addr, val, ctx.uint(3), ctx.arg(4), None),
        FutexCmd::CmpRequeue => futex::requeue(p, addr, val, ctx.uint(3), ctx.arg(4), Some(ctx.uint(5))),
        FutexCmd::WakeOp => futex::wake_op(p, addr, val, ctx.arg(4), ctx.uint(3), ctx.uint(5)),
    }
}

/// futex_waitv(2): wait on up to 128 words at once; the index of the one woken.
pub fn sys_futex_waitv(ctx: &mut Ctx<'_>) -> SysResult {
    let (waiters, nr) = (ctx.ptr::<FutexWaitv>(0), ctx.uint(1) as usize);
    // The checks in Linux's order (kernel/futex/syscalls.c): flags, count, the timeout's
    // clock and copy, then each entry.
    if ctx.uint(2) != 0 || nr == 0 || nr > futex::FUTEX_WAITV_MAX || waiters.is_null() {
        return Err(Errno::EINVAL);
    }
    let deadline = if ctx.ptr::<Timespec>(3).is_null() {
        None
    } else {
        let now = match ctx.int(4) {
            CLOCK_REALTIME => platform::time::realtime_ns(),
            CLOCK_MONOTONIC => platform::time::host_monotonic_ns(),
            _ => return Err(Errno::EINVAL),
        };
        // An absolute time: EINVAL for a negative second or nanoseconds out of range.
        let left_ns = ctx.timespec(3)?.saturating_sub(now);
        Some(platform::time::uptime_ns().saturating_add(left_ns))
    };
    let entries = ctx.read_slice(ctx.slice::<FutexWaitv>(0, 1), nr)?;
    let mut words = Vec::with_capacity(nr);
    for e in &entries {
        let known = FUTEX2_SIZE_MASK | FUTEX2_PRIVATE;
        if e.flags & !known != 0 || e.__reserved != 0 || e.flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32 {
            return Err(Errno::EINVAL);
        }
        let val = u32::try_from(e.val).map_err(|_| Errno::EINVAL)?;
        words.push((e.uaddr, val));
    }
    futex::waitv(ctx.p, &words, deadline)
}

/// `sizeof(struct robust_list_head)`: the only length set_robust_list(2) takes.
const ROBUST_LIST_HEAD_LEN: usize = size_of::<linux::robust_list_head>();

pub fn sys_set_robust_list(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.size(1) != ROBUST_LIST_HEAD_LEN {
        return Err(Errno::EINVAL);
    }
    ctx.td.user().robust_list.store(ctx.arg(0), Ordering::Relaxed);
    Ok(0)
}

/// get_robust_list(2): the caller's list head, or another thread's when the caller may read
/// its process (ptrace's PTRACE_MODE_READ_REALCREDS: the same real ids, or CAP_SYS_PTRACE;
/// EPERM), ESRCH for no such thread. The length is written first, as Linux does.
pub fn sys_get_robust_list(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let head = if pid == 0 || u64::try_from(pid).ok() == Some(ctx.td.tid()) {
        ctx.td.user().robust_list.load(Ordering::Relaxed)
    } else {
        let (p, t) = crate::kern::ptrace::find_thread(pid).ok_or(Errno::ESRCH)?;
        let (me, them) = (ctx.p.user().cred(), p.user().cred());
        let ids = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
            && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
        if p.pid != ctx.p.pid && !ids && !me.capable(crate::kern::cred::CAP_SYS_PTRACE) {
            return Err(Errno::EPERM);
        }
        t.user().robust_list.load(Ordering::Relaxed)
    };
    ctx.write(ctx.ptr::<usize>(2), &ROBUST_LIST_HEAD_LEN)?;
    ctx.write(ctx.ptr::<u64>(1), &head)?;
    Ok(0)
}

const PR_SET_PDEATHSIG: i32 = c_int(pr::PR_SET_PDEATHSIG);
const PR_GET_PDEATHSIG: i32 = c_int(pr::PR_GET_PDEATHSIG);
const PR_GET_DUMPABLE: i32 = c_int(pr::PR_GET_DUMPABLE);
const PR_SET_DUMPABLE: i32 = c_int(pr::PR_SET_DUMPABLE);
const PR_SET_NAME: i32 = c_int(pr::PR_SET_NAME);
const PR_GET_NAME: i32 = c_int(pr::PR_GET_NAME);
/// PR_SET_DUMPABLE's values: SUID_DUMP_DISABLE and SUID_DUMP_USER (EINVAL otherwise).
const SUID_DUMP_USER: u64 = 1;

/// A task's name as PR_SET_NAME and PR_GET_NAME carry it (TASK_COMM_LEN, NUL included).
type Comm = [u8; 16];

/// prctl(2): EINVAL for an option vk does not know, as Linux answers an unknown one.
pub fn sys_prctl(ctx: &mut Ctx<'_>) -> SysResult {
    match ctx.int(0) {
        PR_SET_NAME => {
            let b: Comm = ctx.read(ctx.ptr::<Comm>(1))?;
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len() - 1).min(b.len() - 1);
            ctx.p.set_comm(&String::from_utf8_lossy(&b[..end]));
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b: Comm = [0; 16];
            let comm = ctx.p.comm();
            let n = comm.len().min(b.len() - 1);
            b[..n].copy_from_slice(&comm.as_bytes()[..n]);
            ctx.write(ctx.ptr::<Comm>(1), &b)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            // The whole register: a signal number or 0 (valid_signal on an unsigned long).
            let sig = i32::try_from(ctx.arg(1))
                .ok()
                .filter(|&s| s == 0 || crate::kern::signal::valid(s))
                .ok_or(Errno::EINVAL)?;
            ctx.td.user().pdeathsig.store(sig, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            ctx.write(ctx.ptr::<i32>(1), &ctx.td.user().pdeathsig.load(Ordering::Relaxed))?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE => {
            if ctx.arg(1) > SUID_DUMP_USER {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        o => crate::sys::prctl::prctl(ctx, o),
    }
}

/// rseq(2): register (or, with RSEQ_FLAG_UNREGISTER, unregister) the calling thread's
/// restartable-sequence area ([`crate::kern::rseq`]).
pub fn sys_rseq(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, len, flags, sig) = (ctx.arg(0), ctx.uint(1), ctx.int(2), ctx.uint(3));
    let vm = ctx.p.user().vm();
    let g = vm.read();
    let rseq = &ctx.td.user().rseq;
    match flags {
        0 => rseq.register(&g, addr, len, sig)?,
        RSEQ_FLAG_UNREGISTER => rseq.unregister(&g, addr, len, sig)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}
