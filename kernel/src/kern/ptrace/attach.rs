//! The tracer's side of ptrace: who may attach (the ids, CAP_SYS_PTRACE, Yama), TRACEME,
//! ATTACH and SEIZE, and restarting, detaching, interrupting and LISTEN.

use super::*;

/// PTRACE_ATTACH's and SEIZE's permission (ptrace_may_access with the real ids, then Yama):
/// `tracer` may attach to `target`'s process `tp`.
pub fn may_attach(tracer: &UProc, tc: &Cred, tp: &UProc, target: &Cred) -> bool {
    use crate::kern::cred::CAP_SYS_PTRACE;
    let ids = [target.uid, target.euid, target.suid].iter().all(|&u| u == tc.uid)
        && [target.gid, target.egid, target.sgid].iter().all(|&g| g == tc.gid);
    if !ids && !tc.capable(CAP_SYS_PTRACE) {
        return false;
    }
    yama_allows(tracer, tp)
}

/// Yama's part of an attach (and of opening /proc/PID/mem): scope 0 anything, 1 descendants
/// unless CAP_SYS_PTRACE, 2 CAP_SYS_PTRACE only, 3 nothing.
pub fn yama_allows(tracer: &UProc, tp: &UProc) -> bool {
    let cap = tracer.user().cred().capable(crate::kern::cred::CAP_SYS_PTRACE);
    match PTRACE_SCOPE.load(Ordering::Relaxed) {
        0 => true,
        1 => cap || is_descendant(tp, tracer),
        2 => cap,
        _ => false,
    }
}

/// Whether `p` descends from `ancestor` (Yama's relationship).
pub(super) fn is_descendant(p: &UProc, ancestor: &UProc) -> bool {
    let mut cur = p.clone();
    for _ in 0..crate::kern::uproc::PID_MAX {
        if cur.pid == ancestor.pid {
            return true;
        }
        match cur.user().uparent() {
            Some(pp) => cur = pp,
            None => return false,
        }
    }
    false
}

/// Whether an execve by `td` must ignore set-id bits: it is traced by a process without
/// CAP_SYS_PTRACE (Linux's LSM_UNSAFE_PTRACE: no tracer gains privileges through its tracee).
pub fn setid_exec_refused(td: &UThread) -> bool {
    if !is_traced(td) {
        return false;
    }
    let tracer = td.user().ptrace.st.lock().tracer;
    !proc::find_user(tracer).is_some_and(|t| t.user().cred().capable(crate::kern::cred::CAP_SYS_PTRACE))
}

/// PTRACE_TRACEME: the caller's parent traces it. EPERM when traced already, with no guest
/// parent, or when Yama forbids it (scope 3; scope 2 unless the parent has CAP_SYS_PTRACE).
pub fn traceme(td: &UThread, p: &UProc) -> Result<(), Errno> {
    let parent = p.user().uparent().ok_or(Errno::EPERM)?;
    match PTRACE_SCOPE.load(Ordering::Relaxed) {
        3 => return Err(Errno::EPERM),
        2 if !parent.user().cred().capable(crate::kern::cred::CAP_SYS_PTRACE) => return Err(Errno::EPERM),
        _ => {}
    }
    let pt = &td.user().ptrace;
    let mut st = pt.st.lock();
    if st.tracer != 0 {
        return Err(Errno::EPERM);
    }
    st.tracer = parent.pid;
    pt.set_flags(&st);
    drop(st);
    crate::kern::callsite::put_back(p);
    Ok(())
}

/// PTRACE_ATTACH (`seize` false: a SIGSTOP follows) or PTRACE_SEIZE with `options`.
pub fn attach(tracer: &UProc, td: &UThread, tp: &UProc, seize: bool, options: u32) -> Result<(), Errno> {
    if UProc::ptr_eq(tracer, tp) {
        return Err(Errno::EPERM);
    }
    if tp.is_zombie() || exiting(tp) {
        return Err(Errno::EPERM);
    }
    if !may_attach(tracer, &tracer.user().cred(), tp, &tp.user().cred()) {
        return Err(Errno::EPERM);
    }
    let pt = &td.user().ptrace;
    let stopped = crate::kern::jobctl::is_stopped(tp);
    {
        let mut st = pt.st.lock();
        if st.tracer != 0 {
            return Err(Errno::EPERM);
        }
        st.tracer = tracer.pid;
        st.seized = seize;
        st.options = if seize { options } else { 0 };
        st.mode = Mode::Cont;
        // Seizing a stopped thread makes it trap (Linux's JOBCTL_TRAP_STOP): it reports a
        // stop before it runs again, even if SIGCONT reaches it before it wakes.
        st.interrupt = seize && stopped;
        pt.set_flags(&st);
    }
    crate::kern::callsite::put_back(tp);
    // A thread parked in a group stop wakes to report it to its new tracer.
    crate::kern::jobctl::release(tp);
    if !seize {
        signal::send_to_thread(td, SigInfo::kernel(SIGSTOP, signal::SI_KERNEL));
    }
    Ok(())
}

/// Restart a stopped tracee in `mode` with signal `sig` (0: none).
pub fn resume(td: &UThread, mode: Mode, sig: i32) {
    let pt = &td.user().ptrace;
    {
        let mut st = pt.st.lock();
        st.mode = mode;
        // Running from now on for the tracer's requests (Linux wakes it at once).
        st.stop = None;
        st.resume = Some(Resume { sig });
        pt.set_flags(&st);
    }
    wakeup(chan(td));
}

/// PTRACE_DETACH: no longer traced; a stopped thread goes on with `sig`.
pub fn detach(td: &UThread, sig: i32) {
    let pt = &td.user().ptrace;
    {
        let mut st = pt.st.lock();
        let stopped = st.stop.is_some();
        detach_locked(&mut st);
        if stopped {
            st.resume = Some(Resume { sig });
        }
        pt.set_flags(&st);
    }
    wakeup(chan(td));
}

/// PTRACE_INTERRUPT: a seized tracee stops (EVENT_STOP) at its next return to user mode,
/// leaving an interruptible sleep to do so (a listening one traps again at once).
pub fn interrupt(td: &UThread) {
    td.user().ptrace.st.lock().interrupt = true;
    signal::signal_wake(td);
    wakeup(chan(td));
}

/// PTRACE_LISTEN: a seized tracee in a group stop leaves the ptrace stop but stays stopped
/// (EIO for any other stop).
pub fn listen(td: &UThread) -> Result<(), Errno> {
    {
        let mut st = td.user().ptrace.st.lock();
        if !st.seized || !st.stop.is_some_and(|s| s.group) {
            return Err(Errno::EIO);
        }
        st.stop = None;
        st.listening = true;
    }
    wakeup(chan(td));
    Ok(())
}
