//! Signal system calls: rt_sigaction(2), rt_sigprocmask(2), rt_sigreturn(2), kill(2),
//! tgkill(2), tkill(2), rt_sigpending(2), rt_sigsuspend(2), rt_sigtimedwait(2),
//! sigaltstack(2), pause(2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::{self, UProc};
use crate::kern::signal::{
    self, AltStack, MINSIGSTKSZ, SI_TKILL, SI_USER, SIGKILL, SIGSTOP, SS_DISABLE, SS_ONSTACK, SigAction, SigInfo, UNBLOCKABLE,
};
use crate::kern::sleep::{SleepOpts, tsleep, wchan_of};
use crate::kern::thread::UThread;
use crate::kern::thread::WakeReason;

fn sigset_arg(ctx: &Ctx<'_>, size_arg: usize) -> Result<(), Errno> {
    if ctx.arg(size_arg) != 8 { Err(Errno::EINVAL) } else { Ok(()) }
}

pub fn sys_rt_sigaction(ctx: &mut Ctx<'_>) -> SysResult {
    let sig = ctx.int(0);
    sigset_arg(ctx, 3)?;
    if !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let (act, oact) = (ctx.arg(1), ctx.arg(2));
    let new = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 32];
        ctx.copyin(act, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(SigAction { handler: w(0), flags: w(1), restorer: w(2), mask: w(3) & !UNBLOCKABLE })
    } else {
        None
    };
    let old = {
        let mut ps = ctx.p.user().sig.lock();
        let old = ps.actions[sig as usize];
        if let Some(n) = new {
            ps.actions[sig as usize] = n;
            // Setting a signal to be ignored discards it if pending (POSIX).
            if n.handler == signal::SIG_IGN || (n.handler == signal::SIG_DFL && signal::default_action(sig) == signal::DefaultAction::Ignore) {
                ps.pending.set &= !signal::bit(sig);
            }
        }
        old
    };
    if oact != 0 {
        let mut b = [0u8; 32];
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        ctx.copyout(oact, &b)?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_arg(ctx, 3)?;
    let (how, set, oset) = (ctx.int(0), ctx.arg(1), ctx.arg(2));
    let newset = if set != 0 { Some(ctx.copyin_u64(set)?) } else { None };
    let u = ctx.td.user();
    let old = {
        let mut ts = u.sigstate.sig.lock();
        let old = ts.mask;
        if let Some(n) = newset {
            ts.mask = match how {
                0 => old | n,
                1 => old & !n,
                2 => n,
                _ => return Err(Errno::EINVAL),
            } & !UNBLOCKABLE;
        }
        old
    };
    u.sigstate.flag.store(true, Ordering::SeqCst);
    if oset != 0 {
        ctx.copyout_u64(oset, old)?;
    }
    Ok(0)
}

pub fn sys_rt_sigreturn(ctx: &mut Ctx<'_>) -> SysResult {
    match signal::sigreturn(ctx.td, ctx.p, ctx.regs) {
        Ok(rax) => Ok(rax as usize),
        Err(_) => {
            // A frame we cannot read: the process gets SIGSEGV, as on Linux.
            ctx.exit = Some(crate::kern::ctx::Exit::Group(crate::kern::exit::sigstatus(signal::SIGSEGV)));
            Ok(0)
        }
    }
}

/// May the caller signal `target`? (root, or the same real or effective uid)
fn may_signal(ctx: &Ctx<'_>, target: &UProc, sig: i32) -> bool {
    let me = ctx.p.user().cred.lock().clone();
    let them = target.user().cred.lock().clone();
    me.euid == 0 || me.uid == them.uid || me.euid == them.uid || me.uid == them.suid || me.euid == them.suid
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
        p if p > 0 => vec![proc::find_user(p).ok_or(Errno::ESRCH)?],
        0 | -1 | i32::MIN..=-2 => {
            let pgid = if pid == 0 { ctx.p.rec.pgid.load(Ordering::Relaxed) } else { -pid };
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
        _ => return Err(Errno::ESRCH),
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

fn find_thread(tid: i32) -> Option<UThread> {
    guest_procs().into_iter().flat_map(|p| p.threads()).find(|t| t.tid() == tid as u64)
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
    sigset_arg(ctx, 1)?;
    let set = {
        let ps = ctx.p.user().sig.lock();
        let ts = ctx.td.user().sigstate.sig.lock();
        (ps.pending.set | ts.pending.set) & ts.mask
    };
    ctx.copyout_u64(ctx.arg(0), set)?;
    Ok(0)
}

/// Sleep until a signal arrives (the caller then takes it on the way out).
fn sleep_for_signal(td: &UThread, wmesg: &str, timeout: Option<Duration>) -> WakeReason {
    let chan = wchan_of(&**td) + 2; // a channel nobody wakes: only signals and the clock
    tsleep(chan, wmesg, SleepOpts { interruptible: true, timeout })
}

pub fn sys_rt_sigsuspend(ctx: &mut Ctx<'_>) -> SysResult {
    sigset_arg(ctx, 1)?;
    let mask = ctx.copyin_u64(ctx.arg(0))? & !UNBLOCKABLE;
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
    sigset_arg(ctx, 3)?;
    let set = ctx.copyin_u64(ctx.arg(0))? & !UNBLOCKABLE;
    let (infop, tsp) = (ctx.arg(1), ctx.arg(2));
    let deadline = ctx.timeout_ns(tsp)?.map(|t| platform::time::uptime_ns().saturating_add(t));
    loop {
        if let Some(info) = signal::dequeue(ctx.td, ctx.p, set) {
            if infop != 0 {
                ctx.copyout(infop, &info.to_bytes())?;
            }
            return Ok(info.signo as usize);
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
    let (ss, oss) = (ctx.arg(0), ctx.arg(1));
    let u = ctx.td.user();
    let cur = u.sigstate.sig.lock().altstack;
    let on = cur.on(ctx.regs.rsp());
    if oss != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&cur.sp.to_le_bytes());
        let flags = if cur.disabled || cur.size == 0 { SS_DISABLE } else if on { SS_ONSTACK } else { 0 };
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&cur.size.to_le_bytes());
        ctx.copyout(oss, &b)?;
    }
    if ss != 0 {
        let mut b = [0u8; 24];
        ctx.copyin(ss, &mut b)?;
        let sp = u64::from_le_bytes(b[0..8].try_into().map_err(|_| Errno::EFAULT)?);
        let flags = i32::from_le_bytes(b[8..12].try_into().map_err(|_| Errno::EFAULT)?);
        let size = u64::from_le_bytes(b[16..24].try_into().map_err(|_| Errno::EFAULT)?);
        if on {
            return Err(Errno::EPERM);
        }
        let new = if flags & SS_DISABLE != 0 {
            if flags & !SS_DISABLE != 0 {
                return Err(Errno::EINVAL);
            }
            AltStack { sp: 0, size: 0, disabled: true }
        } else {
            if flags & !(SS_ONSTACK | (1 << 31)) != 0 {
                return Err(Errno::EINVAL);
            }
            if size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            AltStack { sp, size, disabled: false }
        };
        u.sigstate.sig.lock().altstack = new;
    }
    Ok(0)
}

/// rt_sigqueueinfo(2) / rt_tgsigqueueinfo(2): a signal with a caller-given siginfo. Only
/// negative codes (SI_QUEUE and kin) may be given by a process other than the kernel.
fn queue_info(ctx: &Ctx<'_>, tgid: i32, tid: Option<i32>, sig: i32, uinfo: u64) -> SysResult {
    if !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut raw = [0u8; 128];
    ctx.copyin(uinfo, &mut raw)?;
    let code = i32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
    let p = proc::find_user(tgid).ok_or(Errno::ESRCH)?;
    if (code >= 0 || code == SI_TKILL) && p.pid != ctx.p.pid {
        return Err(Errno::EPERM);
    }
    if !may_signal(ctx, &p, sig) {
        return Err(Errno::EPERM);
    }
    let mut fields = [0u8; 112];
    fields.copy_from_slice(&raw[16..128]);
    let info = SigInfo { signo: sig, code, fields };
    match tid {
        None => signal::send_to_proc(&p, info),
        Some(t) => {
            let td = p.threads().into_iter().find(|x| x.tid() == t as u64).ok_or(Errno::ESRCH)?;
            signal::send_to_thread(&td, info);
        }
    }
    Ok(0)
}

pub fn sys_rt_sigqueueinfo(ctx: &mut Ctx<'_>) -> SysResult {
    queue_info(ctx, ctx.int(0), None, ctx.int(1), ctx.arg(2))
}

pub fn sys_rt_tgsigqueueinfo(ctx: &mut Ctx<'_>) -> SysResult {
    queue_info(ctx, ctx.int(0), Some(ctx.int(1)), ctx.int(2), ctx.arg(3))
}
