//! Signal system calls: rt_sigaction(2), rt_sigprocmask(2), rt_sigreturn(2), kill(2),
//! tgkill(2), tkill(2), rt_sigpending(2), rt_sigsuspend(2), rt_sigtimedwait(2),
//! sigaltstack(2), pause(2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::abi::signal::{MINSIGSTKSZ, SIGSET_SIZE, Sigaction, Siginfo, SigmaskHow, Sigset, SsFlags, Stack};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::{self, UProc};
use crate::kern::signal::{self, AltStack, SI_TKILL, SI_USER, SIGKILL, SIGSTOP, SigAction, SigInfo, UNBLOCKABLE};
use crate::kern::sleep::{SleepOpts, tsleep, wchan_of};
use crate::kern::thread::UThread;
use crate::kern::thread::WakeReason;

/// The `sigsetsize` argument every rt_sig* call takes: EINVAL unless it is 8.
fn sigset_size(ctx: &Ctx<'_>, i: usize) -> Result<(), Errno> {
    if ctx.size(i) != SIGSET_SIZE { Err(Errno::EINVAL) } else { Ok(()) }
}

pub fn sys_rt_sigaction(ctx: &mut Ctx<'_>) -> SysResult {
    let sig = ctx.int(0);
    sigset_size(ctx, 3)?;
    let (act, oact) = (ctx.ptr::<Sigaction>(1), ctx.ptr::<Sigaction>(2));
    let new = if act.is_null() { None } else { Some(SigAction::from_guest(&ctx.read(act)?)) };
    if !signal::valid(sig) || (new.is_some() && (sig == SIGKILL || sig == SIGSTOP)) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut ps = ctx.p.user().sig.lock();
        let old = ps.action(sig);
        if let Some(n) = new {
            ps.set_action(sig, n);
            // Setting a signal to be ignored discards it if pending (POSIX).
            if n.ignores(sig) {
                ps.pending.discard(signal::bit(sig));
            }
        }
        old
    };
    if new.is_some_and(|n| n.ignores(sig)) {
        for t in ctx.p.threads() {
            t.user().sigstate.sig.lock().pending.discard(signal::bit(sig));
        }
    }
    if !oact.is_null() {
        ctx.write(oact, &old.to_guest())?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_size(ctx, 3)?;
    let (set, oset) = (ctx.ptr::<Sigset>(1), ctx.ptr::<Sigset>(2));
    // `how` is looked at only when there is a new set, as on Linux.
    let change = if set.is_null() { None } else { Some((ctx.read(set)?, SigmaskHow::try_from(ctx.int(0))?)) };
    let u = ctx.td.user();
    let old = {
        let mut ts = u.sigstate.sig.lock();
        let old = ts.mask;
        if let Some((n, how)) = change {
            ts.mask = match how {
                SigmaskHow::Block => old | n,
                SigmaskHow::Unblock => old & !n,
                SigmaskHow::SetMask => n,
            } & !UNBLOCKABLE;
        }
        old
    };
    u.sigstate.flag.store(true, Ordering::SeqCst);
    if !oset.is_null() {
        ctx.write(oset, &old)?;
    }
    Ok(0)
}

pub fn sys_rt_sigreturn(ctx: &mut Ctx<'_>) -> SysResult {
    match signal::sigreturn(ctx.td, ctx.p, ctx.regs) {
        Ok(rax) => usize::try_from(rax).map_err(|_| Errno::EINVAL),
        Err(_) => {
            // A frame we cannot read: the process gets SIGSEGV, as on Linux.
            ctx.exit = Some(crate::kern::ctx::Exit::Group(crate::kern::exit::sigstatus(signal::SIGSEGV)));
            Ok(0)
        }
    }
}

/// May the caller signal `target`? (CAP_KILL, or the same real or effective uid)
pub(super) fn may_signal(ctx: &Ctx<'_>, target: &UProc, sig: i32) -> bool {
    let me = ctx.p.user().cred.lock().clone();
    let them = target.user().cred.lock().clone();
    me.capable(crate::kern::cred::CAP_KILL)
        || me.uid == them.uid
        || me.euid == them.uid
        || me.uid == them.suid
        || me.euid == them.suid
        || (sig == signal::SIGCONT && ctx.p.rec.sid.load(Ordering::Relaxed) == target.rec.sid.load(Ordering::Relaxed))
}

fn guest_procs() -> Vec<UProc> {
    proc::all_user()
}

pub fn sys_kill(ctx: &mut Ctx<'_>) -> SysResult {
    let (pid, sig) = (ctx.int(0), ctx.int(1));
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let targets: Vec<UProc> = match pid {
        p if p > 0 => vec![find_by_id(p).ok_or(Errno::ESRCH)?],
        // -INT_MIN names no group.
        i32::MIN => return Err(Errno::ESRCH),
        _ => {
            let pgid = if pid == 0 { ctx.p.rec.pgid.load(Ordering::Relaxed) } else { pid.saturating_neg() };
            guest_procs()
                .into_iter()
                .filter(|p| {
                    if pid == -1 {
                        p.pid != 1 && p.pid != ctx.p.pid
                    } else {
                        p.rec.pgid.load(Ordering::Relaxed) == pgid
                    }
                })
                .collect()
        }
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let uid = ctx.p.user().cred.lock().uid;
    let mut sent = 0;
    for t in &targets {
        if !may_signal(ctx, t, sig) {
            continue;
        }
        sent += 1;
        if sig != 0 {
            signal::send_to_proc(t, SigInfo::user(sig, SI_USER, ctx.p.pid, uid));
        }
    }
    if sent == 0 { Err(Errno::EPERM) } else { Ok(0) }
}

/// The process a positive id of kill(2) or rt_sigqueueinfo(2) names: the process with that
/// pid, or the one with a thread of that id (Linux's find_vpid finds any task, and the
/// signal goes to its thread group).
fn find_by_id(id: i32) -> Option<UProc> {
    proc::find_user(id).or_else(|| find_thread(id).and_then(|t| t.uproc()))
}

/// Whether a real-time signal `sig` for `p` would pass its real user's RLIMIT_SIGPENDING
/// (__send_signal's queue overflow: EAGAIN for a signal that must carry its siginfo).
fn sigpending_full(p: &UProc, sig: i32) -> bool {
    if sig < signal::SIGRTMIN {
        return false;
    }
    let limit = p.user().rlimits.lock()[RLIMIT_SIGPENDING].0;
    let queued = signal::queued_for_user(p.user().cred().uid);
    u64::try_from(queued).unwrap_or(u64::MAX) >= limit
}

fn find_thread(tid: i32) -> Option<UThread> {
    let tid = u64::try_from(tid).ok()?;
    guest_procs().into_iter().flat_map(|p| p.threads()).find(|t| t.tid() == tid)
}

fn thread_kill(ctx: &Ctx<'_>, tgid: Option<i32>, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || (sig != 0 && !signal::valid(sig)) || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno::EINVAL);
    }
    let t = find_thread(tid).ok_or(Errno::ESRCH)?;
    let p = t.uproc().ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != p.pid) {
        return Err(Errno::ESRCH);
    }
    if !may_signal(ctx, &p, sig) {
        return Err(Errno::EPERM);
    }
    // SI_TKILL is a negative code: the queue's limit applies, as to sigqueue(3).
    if sig != 0 && sigpending_full(&p, sig) {
        return Err(Errno::EAGAIN);
    }
    if sig != 0 {
        let uid = ctx.p.user().cred.lock().uid;
        signal::send_to_thread(&t, SigInfo::user(sig, SI_TKILL, ctx.p.pid, uid));
    }
    Ok(0)
}

pub fn sys_tgkill(ctx: &mut Ctx<'_>) -> SysResult {
    thread_kill(ctx, Some(ctx.int(0)), ctx.int(1), ctx.int(2))
}

pub fn sys_tkill(ctx: &mut Ctx<'_>) -> SysResult {
    thread_kill(ctx, None, ctx.int(0), ctx.int(1))
}

pub fn sys_rt_sigpending(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_size(ctx, 1)?;
    let set: Sigset = {
        let ps = ctx.p.user().sig.lock();
        let ts = ctx.td.user().sigstate.sig.lock();
        (ps.pending.set | ts.pending.set) & ts.mask
    };
    ctx.write(ctx.ptr::<Sigset>(0), &set)?;
    Ok(0)
}

/// Sleep until a signal arrives (the caller then takes it on the way out).
fn sleep_for_signal(td: &UThread, wmesg: &str, timeout: Option<Duration>) -> WakeReason {
    let chan = wchan_of(&**td) + 2; // a channel nobody wakes: only signals and the clock
    tsleep(chan, wmesg, SleepOpts { interruptible: true, timeout })
}

pub fn sys_rt_sigsuspend(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_size(ctx, 1)?;
    let mask = ctx.read(ctx.ptr::<Sigset>(0))? & !UNBLOCKABLE;
    {
        let mut ts = ctx.td.user().sigstate.sig.lock();
        ts.saved_mask = Some(ts.mask);
        ts.mask = mask;
    }
    ctx.td.user().sigstate.flag.store(true, Ordering::SeqCst);
    while sleep_for_signal(ctx.td, "sigsusp", None) != WakeReason::Interrupted {}
    Err(Errno::ERESTARTNOHAND)
}

pub fn sys_pause(ctx: &mut Ctx<'_>) -> SysResult {
    while sleep_for_signal(ctx.td, "pause", None) != WakeReason::Interrupted {}
    Err(Errno::ERESTARTNOHAND)
}

pub fn sys_rt_sigtimedwait(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_size(ctx, 3)?;
    let set = ctx.read(ctx.ptr::<Sigset>(0))? & !UNBLOCKABLE;
    let infop = ctx.ptr::<Siginfo>(1);
    let deadline = ctx.timeout_ns(2)?.map(|t| platform::time::uptime_ns().saturating_add(t));
    loop {
        if let Some(info) = signal::dequeue(ctx.td, ctx.p, set) {
            if !infop.is_null() {
                ctx.write(infop, &info)?;
            }
            return usize::try_from(info.si_signo).map_err(|_| Errno::EINVAL);
        }
        let timeout = match deadline {
            Some(d) => {
                let now = platform::time::uptime_ns();
                if now >= d {
                    return Err(Errno::EAGAIN);
                }
                Some(Duration::from_nanos(d - now))
            }
            None => None,
        };
        if sleep_for_signal(ctx.td, "sigwait", timeout) == WakeReason::Interrupted {
            // A signal arrived: if it is one we wait for, the loop takes it; another one
            // interrupts the call.
            let (ps, ts) = (ctx.p.user().sig.lock().pending.set, ctx.td.user().sigstate.sig.lock().pending.set);
            if (ps | ts) & set == 0 {
                return Err(Errno::EINTR);
            }
        }
    }
}

pub fn sys_sigaltstack(ctx: &mut Ctx<'_>) -> SysResult {
    let (ss, oss) = (ctx.ptr::<Stack>(0), ctx.ptr::<Stack>(1));
    let u = ctx.td.user();
    let sp = ctx.regs.rsp();
    let cur = u.sigstate.sig.lock().altstack;
    let old = cur.to_guest(sp);
    if !ss.is_null() {
        let new = ctx.read(ss)?;
        if cur.on(sp) {
            return Err(Errno::EPERM);
        }
        // One mode (none, SS_ONSTACK or SS_DISABLE), SS_AUTODISARM aside; nothing else.
        let flags = SsFlags::from_bits(new.ss_flags.cast_unsigned()).ok_or(Errno::EINVAL)?;
        let mode = flags.difference(SsFlags::AUTODISARM);
        let autodisarm = flags.contains(SsFlags::AUTODISARM);
        let next = if mode == SsFlags::DISABLE {
            AltStack { autodisarm, ..AltStack::DISABLED }
        } else if mode.is_empty() || mode == SsFlags::ONSTACK {
            if new.ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            AltStack { sp: new.ss_sp, size: new.ss_size, disabled: false, autodisarm }
        } else {
            return Err(Errno::EINVAL);
        };
        u.sigstate.sig.lock().altstack = next;
    }
    if !oss.is_null() {
        ctx.write(oss, &old)?;
    }
    Ok(0)
}

/// rt_sigqueueinfo(2) / rt_tgsigqueueinfo(2): a signal with a caller-given siginfo. Only
/// negative codes (SI_QUEUE and kin) may be given by a process other than the kernel.
/// RLIMIT_SIGPENDING's index.
const RLIMIT_SIGPENDING: usize = linux_raw_sys::general::RLIMIT_SIGPENDING as usize;

fn queue_info(ctx: &Ctx<'_>, tgid: i32, tid: Option<i32>, sig: i32) -> SysResult {
    let uinfo = ctx.read(ctx.ptr::<Siginfo>(if tid.is_some() { 3 } else { 2 }))?;
    if !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let p = match tid {
        None => find_by_id(tgid),
        Some(_) => proc::find_user(tgid),
    }
    .ok_or(Errno::ESRCH)?;
    let code = uinfo.si_code;
    if (code >= 0 || code == SI_TKILL) && p.pid != ctx.p.pid {
        return Err(Errno::EPERM);
    }
    if !may_signal(ctx, &p, sig) {
        return Err(Errno::EPERM);
    }
    // RLIMIT_SIGPENDING (the target's, for its real user): a real-time signal that cannot be
    // queued is EAGAIN (__send_signal's queue overflow); others would go without siginfo.
    if sigpending_full(&p, sig) {
        return Err(Errno::EAGAIN);
    }
    let info = SigInfo { si_signo: sig, ..uinfo };
    match tid {
        None => signal::send_to_proc(&p, info),
        Some(t) => {
            let t = u64::try_from(t).map_err(|_| Errno::EINVAL)?;
            let td = p.threads().into_iter().find(|x| x.tid() == t).ok_or(Errno::ESRCH)?;
            signal::send_to_thread(&td, info);
        }
    }
    Ok(0)
}

pub fn sys_rt_sigqueueinfo(ctx: &mut Ctx<'_>) -> SysResult {
    queue_info(ctx, ctx.int(0), None, ctx.int(1))
}

pub fn sys_rt_tgsigqueueinfo(ctx: &mut Ctx<'_>) -> SysResult {
    queue_info(ctx, ctx.int(0), Some(ctx.int(1)), ctx.int(2))
}
