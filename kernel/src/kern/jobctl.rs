//! Job control: stopping and continuing a process (SIGSTOP, SIGTSTP/SIGTTIN/SIGTTOU by default,
//! SIGCONT), after Linux's group stop.
//!
//! * Sending a stop signal discards a pending SIGCONT; sending SIGCONT discards pending stop
//!   signals and, if the process is stopped, continues it at once — whether or not SIGCONT is
//!   blocked, caught or ignored — and tells the parent (`CLD_CONTINUED`).
//! * A stop signal takes effect when a thread dequeues it with the default action: the
//!   process is marked stopped, the parent told (`CLD_STOPPED`, unless it set SA_NOCLDSTOP)
//!   and every thread kicked; each thread parks in "stopped" on its way back to user mode
//!   (state `T`), until SIGCONT or SIGKILL.
//! * wait(2) reports a stop once to WUNTRACED and a continue once to WCONTINUED; the report
//!   is kept in [`JobCtl::report`].

use crate::abi::signal::SaFlags;
use crate::kern::proc::UProc;
use crate::kern::signal::{self, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SigInfo};
pub use crate::kern::signal::{CLD_CONTINUED, CLD_STOPPED};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked_state, wakeup, wchan_of};
use crate::kern::thread::ThreadState;

/// The stop signals.
pub const STOP_MASK: u64 = (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

/// An event for wait(2) with WUNTRACED or WCONTINUED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Stopped(i32),
    Continued,
    /// A ptrace stop (kern::ptrace), with its code: reported to the tracer only.
    Trapped(i32),
}

impl Report {
    /// The wait status word.
    pub fn status(self) -> i32 {
        match self {
            Report::Stopped(sig) | Report::Trapped(sig) => (sig << 8) | 0x7f,
            Report::Continued => 0xffff,
        }
    }
}

/// A process's job-control state.
#[derive(Debug, Default)]
pub struct JobCtl {
    /// Stopped: its threads park on their way to user mode.
    pub stopped: bool,
    /// The event not yet reported to wait(2).
    pub report: Option<Report>,
    /// The signal that stopped it (a traced thread's group-stop report).
    pub stop_sig: i32,
}

/// The channel stopped threads sleep on.
fn stop_chan(p: &UProc) -> u64 {
    wchan_of(&p.user().jobctl)
}

/// Whether `p` is stopped.
pub fn is_stopped(p: &UProc) -> bool {
    p.user().jobctl.lock().stopped
}

/// A signal was sent to `p` (and queued unless ignored): apply the side effects of generating it.
pub fn on_send(p: &UProc, sig: i32) {
    if STOP_MASK & signal::bit(sig) != 0 {
        discard(p, signal::bit(SIGCONT));
    } else if sig == SIGCONT {
        discard(p, STOP_MASK);
        resume(p);
    }
}

/// Drop pending signals in `mask` from the process's and its threads' queues.
fn discard(p: &UProc, mask: u64) {
    p.user().sig.lock().pending.discard(mask);
    for t in p.threads() {
        t.user().sigstate.sig.lock().pending.discard(mask);
    }
}

/// Continue a stopped process.
fn resume(p: &UProc) {
    {
        let mut j = p.user().jobctl.lock();
        if !j.stopped {
            return;
        }
        j.stopped = false;
        j.report = Some(Report::Continued);
    }
    wakeup(stop_chan(p));
    // Traced threads listening (PTRACE_LISTEN) in the group stop re-trap.
    crate::kern::ptrace::release(p);
    notify_parent(p, CLD_CONTINUED, SIGCONT);
}

/// A thread of `p` took stop signal `sig` with its default action: stop the whole process.
pub fn group_stop(p: &UProc, sig: i32) {
    {
        let mut j = p.user().jobctl.lock();
        if j.stopped || crate::kern::exit::exiting(p) {
            return;
        }
        j.stopped = true;
        j.stop_sig = sig;
        j.report = Some(Report::Stopped(sig));
    }
    for t in p.threads() {
        signal::signal_wake(&t);
    }
    notify_parent(p, CLD_STOPPED, sig);
}

/// Park the calling thread `td` while its process is stopped (or until it is killed, or a
/// tracer attaches: it then makes its group-stop report to the tracer instead).
pub fn park(td: &crate::kern::thread::UThread, p: &UProc) {
    loop {
        let g = sleepq_lock(stop_chan(p));
        if !p.user().jobctl.lock().stopped || crate::kern::exit::exiting(p) || crate::kern::ptrace::is_traced(td) {
            return;
        }
        tsleep_locked_state(g, "stopped", SleepOpts::UNINTERRUPTIBLE, ThreadState::Stopped);
    }
}

/// The process is going away (SIGKILL, exit): let its parked threads run to their exit.
pub fn release(p: &UProc) {
    wakeup(stop_chan(p));
}

/// SIGCHLD with `code` to the parent, unless it asked for none (SA_NOCLDSTOP); and a wake-up
/// for its wait(2).
fn notify_parent(p: &UProc, code: i32, status: i32) {
    let Some(parent) = p.user().uparent() else { return };
    let act = parent.user().sig.lock().action(SIGCHLD);
    if !act.flags.contains(SaFlags::NOCLDSTOP) {
        let uid = p.user().cred.lock().uid;
        signal::send_to_proc(&parent, SigInfo::child_event(p.pid, uid, code, status));
    }
    wakeup(parent.wchan());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses() {
        // WIFSTOPPED: low byte 0x7f; WSTOPSIG: the next byte. WIFCONTINUED: 0xffff.
        assert_eq!(Report::Stopped(SIGSTOP).status(), 0x137f);
        assert_eq!(Report::Continued.status(), 0xffff);
    }
}
