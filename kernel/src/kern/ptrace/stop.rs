//! The tracee's side of ptrace: the stops a traced thread makes for its tracer (signal
//! delivery, group stop, system call entry and exit, PTRACE_EVENT_*, INTERRUPT, LISTEN), and
//! how a traced thread's children start traced.

use super::*;

/// Stop for the tracer with `code` and wait to be restarted. `regs` go to the tracer and come
/// back as it left them. None when the thread is not traced (any more), or is dying.
pub(super) fn stop(td: &UThread, p: &UProc, regs: &mut UserRegs, code: i32, info: Option<SigInfo>) -> Option<Resume> {
    stop_as(td, p, regs, code, info, false)
}

/// [`stop`], `group` for a group stop's report.
pub(super) fn stop_as(
    td: &UThread,
    p: &UProc,
    regs: &mut UserRegs,
    code: i32,
    info: Option<SigInfo>,
    group: bool,
) -> Option<Resume> {
    let pt = &td.user().ptrace;
    *td.user().regs.lock() = *regs;
    let tracer = {
        let mut st = pt.st.lock();
        if st.tracer == 0 || exiting(p) {
            return None;
        }
        st.stop = Some(Stop { code, reported: false, group });
        st.resume = None;
        st.listening = false;
        st.siginfo = info;
        st.tracer
    };
    notify_tracer(tracer, td, p, code);
    let c = chan(td);
    let retrap_code = SIGTRAP | (crate::abi::c_int(PTRACE_EVENT_STOP) << 8);
    let retrap_info = trap_info(td, p, retrap_code);
    let resume = loop {
        let g = sleepq_lock(c);
        let retrap = {
            let mut st = pt.st.lock();
            if let Some(r) = st.resume.take() {
                st.stop = None;
                st.listening = false;
                break Some(r);
            }
            // Untraced, dying, or told to leave (another thread's execve).
            if st.tracer == 0 || exiting(p) || td.user().exit_req.load(Ordering::Acquire) {
                st.stop = None;
                st.listening = false;
                break None;
            }
            // Listening: SIGCONT (the process runs again) or INTERRUPT makes a new stop.
            if st.listening && (st.interrupt || !crate::kern::jobctl::is_stopped(p)) {
                st.listening = false;
                st.interrupt = false;
                st.stop = Some(Stop { code: retrap_code, reported: false, group: false });
                st.siginfo = Some(retrap_info);
                Some(st.tracer)
            } else {
                None
            }
        };
        if let Some(tracer) = retrap {
            drop(g);
            notify_tracer(tracer, td, p, retrap_code);
            continue;
        }
        tsleep_locked_state(g, "ptrace", SleepOpts::UNINTERRUPTIBLE, ThreadState::Stopped);
    };
    *regs = *td.user().regs.lock();
    let mut st = pt.st.lock();
    if st.tracer != 0 && st.mode.steps() {
        if regs.gregs[reg::EFL] & X86_EFLAGS_TF == 0 {
            regs.gregs[reg::EFL] |= X86_EFLAGS_TF;
            st.forced_tf = true;
        }
    } else if st.forced_tf {
        regs.gregs[reg::EFL] &= !X86_EFLAGS_TF;
        st.forced_tf = false;
    }
    resume
}

/// SIGCHLD (CLD_TRAPPED) to the tracer unless it asked for none, and a wake-up for its wait.
pub(super) fn notify_tracer(tracer: i32, td: &UThread, p: &UProc, code: i32) {
    let Some(t) = proc::find_user(tracer) else { return };
    let act = t.user().sig.lock().action(SIGCHLD);
    if !act.flags.contains(SaFlags::NOCLDSTOP) {
        let pid = crate::kern::uproc::pid_of(td.tid()).unwrap_or(p.pid);
        let uid = p.user().cred.lock().uid;
        signal::send_to_proc(&t, SigInfo::child_event(pid, uid, CLD_TRAPPED, code & 0x7f));
    }
    wakeup(t.wchan());
}

/// A signal is about to be delivered to a traced thread: the signal-delivery-stop. Returns
/// the signal to deliver as the tracer left it (None: suppressed, or requeued because the
/// tracer's replacement is blocked).
pub fn signal_stop(td: &UThread, p: &UProc, regs: &mut UserRegs, info: SigInfo) -> Option<SigInfo> {
    let Some(r) = stop(td, p, regs, info.si_signo, Some(info)) else { return Some(info) };
    if r.sig == 0 {
        return None;
    }
    let kept = td.user().ptrace.st.lock().siginfo.take().unwrap_or(info);
    let info = if r.sig == kept.si_signo {
        kept
    } else {
        // ptrace(2): a different signal comes from the tracer.
        let tracer = td.user().ptrace.st.lock().tracer;
        let uid = proc::find_user(tracer).map_or(0, |t| t.user().cred.lock().uid);
        SigInfo::user(r.sig, signal::SI_USER, tracer, uid)
    };
    if td.user().sigstate.sig.lock().mask & signal::bit(info.si_signo) != 0 {
        td.user().sigstate.sig.lock().pending.push(info);
        return None;
    }
    Some(info)
}

/// At system call entry: the syscall-entry-stop when the tracer asked for one. Returns the
/// number to run, or None when the call is skipped (the tracer set orig_rax to -1, SYSEMU, or
/// the thread is dying); rax is then the result.
pub fn syscall_entry(td: &UThread, p: &UProc, regs: &mut UserRegs) -> Option<u64> {
    let pt = &td.user().ptrace;
    if pt.flags.load(Ordering::Acquire) & F_SYSCALL == 0 {
        return Some(regs.rax());
    }
    let code = {
        let mut st = pt.st.lock();
        st.syscall_at = SyscallAt::Entry;
        st.event_msg = u64::from(PTRACE_EVENTMSG_SYSCALL_ENTRY);
        sysgood(&st)
    };
    let emulate = pt.st.lock().mode.emulates();
    regs.set_rax(crate::kern::errno::to_rax(Err(Errno::ENOSYS)));
    stop(td, p, regs, code, Some(trap_info(td, p, code)));
    pt.st.lock().syscall_at = SyscallAt::None;
    let nr = orig_rax(td);
    if exiting(p) || emulate || nr == u64::MAX {
        return None;
    }
    Some(nr)
}

pub(super) fn sysgood(st: &TraceState) -> i32 {
    if st.options & PTRACE_O_TRACESYSGOOD != 0 { SIGTRAP | 0x80 } else { SIGTRAP }
}

/// After a system call: the syscall-exit-stop, or — when single-stepping — the SIGTRAP a
/// step over the `syscall` instruction gives.
pub fn syscall_exit(td: &UThread, p: &UProc, regs: &mut UserRegs) {
    let pt = &td.user().ptrace;
    let flags = pt.flags.load(Ordering::Acquire);
    if flags & F_TRACED == 0 {
        return;
    }
    let (mode, code) = {
        let st = pt.st.lock();
        (st.mode, sysgood(&st))
    };
    if mode.steps() && !mode.emulates() {
        let info = SigInfo::new(SIGTRAP, TRAP_BRKPT).with(&SiFault { _addr: regs.rip(), ..SiFault::default() });
        td.user().sigstate.sig.lock().pending.push(info);
        td.user().sigstate.flag.store(true, Ordering::SeqCst);
        return;
    }
    if flags & F_SYSCALL == 0 || mode.emulates() {
        return;
    }
    {
        let mut st = pt.st.lock();
        st.syscall_at = SyscallAt::Exit;
        st.event_msg = u64::from(PTRACE_EVENTMSG_SYSCALL_EXIT);
    }
    stop(td, p, regs, code, Some(trap_info(td, p, code)));
    pt.st.lock().syscall_at = SyscallAt::None;
}

/// Whether the tracer asked for PTRACE_EVENT `event` (its option bit).
pub fn event_enabled(td: &UThread, event: u32) -> bool {
    if !is_traced(td) {
        return false;
    }
    let opt = match event {
        PTRACE_EVENT_FORK => PTRACE_O_TRACEFORK,
        PTRACE_EVENT_VFORK => PTRACE_O_TRACEVFORK,
        PTRACE_EVENT_CLONE => PTRACE_O_TRACECLONE,
        PTRACE_EVENT_EXEC => PTRACE_O_TRACEEXEC,
        PTRACE_EVENT_VFORK_DONE => PTRACE_O_TRACEVFORKDONE,
        PTRACE_EVENT_EXIT => PTRACE_O_TRACEEXIT,
        _ => return false,
    };
    td.user().ptrace.st.lock().options & opt != 0
}

/// A PTRACE_EVENT stop (`code` SIGTRAP | event << 8) with GETEVENTMSG's `msg`, if enabled.
pub fn event_stop(td: &UThread, p: &UProc, regs: &mut UserRegs, event: u32, msg: u64) {
    if !event_enabled(td, event) {
        return;
    }
    td.user().ptrace.st.lock().event_msg = msg;
    let code = SIGTRAP | (crate::abi::c_int(event) << 8);
    stop(td, p, regs, code, Some(trap_info(td, p, code)));
}

/// After a successful execve: PTRACE_EVENT_EXEC (message: the thread's former id), or the
/// SIGTRAP a traced, not seized, program gets without the option.
pub fn exec_done(td: &UThread, p: &UProc, regs: &mut UserRegs, old_tid: u64) {
    if !is_traced(td) {
        return;
    }
    if event_enabled(td, PTRACE_EVENT_EXEC) {
        event_stop(td, p, regs, PTRACE_EVENT_EXEC, old_tid);
    } else if !td.user().ptrace.st.lock().seized {
        let uid = p.user().cred.lock().uid;
        signal::send_to_thread(td, SigInfo::user(SIGTRAP, signal::SI_USER, p.pid, uid));
    }
}

/// The thread begins to exit with wait status `status`: PTRACE_EVENT_EXIT, if enabled.
pub fn exit_event(td: &UThread, p: &UProc, status: i32) {
    if !event_enabled(td, PTRACE_EVENT_EXIT) {
        return;
    }
    let mut regs = *td.user().regs.lock();
    event_stop(td, p, &mut regs, PTRACE_EVENT_EXIT, u64::from(status.cast_unsigned()));
    *td.user().regs.lock() = regs;
}

/// PTRACE_INTERRUPT's EVENT_STOP, when one is pending (on the way back to user mode). In a
/// stopped process it is the group-stop report, with the stop signal (Linux's
/// do_jobctl_trap); otherwise its signal is SIGTRAP.
pub fn interrupt_stop(td: &UThread, p: &UProc, regs: &mut UserRegs) {
    let pt = &td.user().ptrace;
    if pt.flags.load(Ordering::Acquire) & F_TRACED == 0 {
        return;
    }
    let want = std::mem::take(&mut pt.st.lock().interrupt);
    if !want {
        return;
    }
    let stop_sig = crate::kern::jobctl::is_stopped(p).then(|| p.user().jobctl.lock().stop_sig);
    let code = stop_sig.unwrap_or(SIGTRAP) | (crate::abi::c_int(PTRACE_EVENT_STOP) << 8);
    if stop_sig.is_some() {
        pt.st.lock().group_stop_seen = true;
    }
    stop_as(td, p, regs, code, Some(trap_info(td, p, code)), stop_sig.is_some());
}

/// Whether a PTRACE_INTERRUPT waits for the thread (it must leave an interruptible sleep).
pub fn interrupt_pending(u: &UserThread) -> bool {
    u.ptrace.flags.load(Ordering::Acquire) & F_TRACED != 0 && u.ptrace.st.lock().interrupt
}

/// A traced thread of a stopped process: its group-stop report, once per group stop (the
/// stop signal; with EVENT_STOP for a seized thread). The thread then runs when the tracer
/// restarts it, while the process stays stopped for everyone else.
pub fn group_stop(td: &UThread, p: &UProc, regs: &mut UserRegs, sig: i32) {
    let (code, seized) = {
        let mut st = td.user().ptrace.st.lock();
        if st.group_stop_seen {
            return;
        }
        st.group_stop_seen = true;
        if st.seized { (sig | (crate::abi::c_int(PTRACE_EVENT_STOP) << 8), true) } else { (sig, false) }
    };
    // A seized tracee's group stop is an EVENT_STOP with its siginfo; a plain one has none.
    let info = seized.then(|| trap_info(td, p, code));
    stop_as(td, p, regs, code, info, true);
}

/// The process is no longer stopped: a later group stop is reported again.
pub fn group_stop_over(td: &UThread) {
    td.user().ptrace.st.lock().group_stop_seen = false;
}

/// Whether the thread made its group-stop report (so it runs although its process is stopped).
pub fn group_stop_seen(u: &UserThread) -> bool {
    u.ptrace.flags.load(Ordering::Acquire) & F_TRACED != 0 && u.ptrace.st.lock().group_stop_seen
}

/// A new thread or process `child` made by traced `parent` with clone flags `flags` and exit
/// signal `exit_signal`: it is traced too when the tracer asked for the event (or
/// CLONE_PTRACE), starting with a SIGSTOP (an EVENT_STOP when seized) before its first
/// instruction. Returns the event the parent reports once the child is running.
pub fn on_clone(
    parent: &UThread,
    child: &UThread,
    flags: crate::abi::proc::CloneFlags,
    exit_signal: u32,
) -> Option<u32> {
    use crate::abi::proc::CloneFlags;
    if !is_traced(parent) || flags.contains(CloneFlags::UNTRACED) {
        return None;
    }
    let event = if flags.contains(CloneFlags::VFORK) {
        PTRACE_EVENT_VFORK
    } else if exit_signal != SIGCHLD.unsigned_abs() || flags.contains(CloneFlags::THREAD) {
        PTRACE_EVENT_CLONE
    } else {
        PTRACE_EVENT_FORK
    };
    let enabled = event_enabled(parent, event);
    if !enabled && !flags.contains(CloneFlags::PTRACE) {
        return None;
    }
    let (tracer, seized, options) = {
        let st = parent.user().ptrace.st.lock();
        (st.tracer, st.seized, st.options)
    };
    let cp = &child.user().ptrace;
    {
        let mut st = cp.st.lock();
        st.tracer = tracer;
        st.seized = seized;
        st.options = options;
        st.interrupt = seized;
        cp.set_flags(&st);
    }
    if !seized {
        child.user().sigstate.sig.lock().pending.push(SigInfo::user(SIGSTOP, signal::SI_USER, 0, 0));
    }
    child.user().sigstate.flag.store(true, Ordering::SeqCst);
    enabled.then_some(event)
}
