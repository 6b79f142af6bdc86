//! ptrace(2)'s state machine: who traces a guest thread, the stops it makes for its tracer,
//! and how the tracer lets it go (ptrace(2) is the spec; the requests are in `sys/ptrace.rs`).
//!
//! * **Tracing** is per thread, as on Linux: [`PtraceThread`] in each `UserThread` says which
//!   process traces it (`tracer`, a pid; vk's tracer is a process, not one of its threads:
//!   any thread of the tracer may issue requests), with which options, and whether it was
//!   seized. PTRACE_TRACEME, ATTACH, SEIZE and the fork/clone events set it; DETACH, the
//!   tracee's exit and the tracer's exit clear it.
//! * **Stops**: a traced thread stops itself, in its own kernel thread, at the points Linux
//!   does — a signal about to be delivered (signal-delivery-stop), a group stop, system call
//!   entry and exit (after PTRACE_SYSCALL), PTRACE_EVENT_* (fork, vfork, clone, exec, exit,
//!   vfork done, PTRACE_INTERRUPT's EVENT_STOP) — see [`stop`]. It saves its registers where
//!   the tracer reads them (`UserThread::regs`), records the stop's code (the wait status is
//!   `code << 8 | 0x7f`), tells the tracer (SIGCHLD with CLD_TRAPPED, a wake-up of its wait)
//!   and sleeps in state STOPPED ("ptrace") until the tracer restarts it (CONT, SYSCALL,
//!   SINGLESTEP, SYSEMU, DETACH) or it is killed. It then takes its registers back, so what
//!   the tracer changed (SETREGS, POKEUSER) is what runs.
//! * **Single-stepping** sets the trap flag in the saved rflags (remembered as forced, hidden
//!   from GETREGS and cleared at the next restart that is not a step); the stub's host
//!   SIGTRAP after one instruction becomes the guest's SIGTRAP (TRAP_TRACE), which stops the
//!   thread as any signal does. A step over `syscall` (which traps to vk rather than
//!   executing) reports its SIGTRAP right after the call, as Linux's
//!   `user_single_step_report`. Hardware watchpoints are not offered: the debug registers in
//!   `struct user` read as stored, and DR7 takes no enable bit (EIO), so a debugger falls back
//!   to software watchpoints.
//! * **wait**: the tracer finds its tracees' stops and their exits through [`wait_scan`]
//!   (from `kern::wait`), beside its own children; a child it traces reports its stops to it
//!   as ptrace stops only.
//! * **Permissions** ([`may_attach`]): the real ids of the tracer equal all of the target's
//!   ids, or CAP_SYS_PTRACE; then Yama's `ptrace_scope` (/proc/sys/kernel/yama/ptrace_scope,
//!   1 by default as on Debian: only descendants, unless CAP_SYS_PTRACE; 2: CAP_SYS_PTRACE
//!   only; 3: no attaching at all).
//!
//! | file        | what                                                                   |
//! |-------------|------------------------------------------------------------------------|
//! | `mod.rs`    | the per-thread state (`PtraceThread`), its fast flags, lookups          |
//! | `stop.rs`   | the tracee's stops, events, group stops, traced children               |
//! | `attach.rs` | permission (ids, Yama), TRACEME/ATTACH/SEIZE, restarts, DETACH, LISTEN  |
//! | `exits.rs`  | wait's scan of tracees, tracee exits, the tracer's exit                |
//! | `mem.rs`    | the tracee's memory (PEEK/POKE, process_vm_*, /proc/PID/mem)           |
//!
//! Locks: a thread's `ptrace` state is a leaf spinlock; it is taken under a sleep-queue
//! bucket (the stopped thread's and the tracer's wait check their conditions under it).

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use platform::stub::{UserRegs, reg};
use platform::sync::SpinLock;

use crate::abi::ptrace::*;
use crate::abi::signal::{SaFlags, SiFault};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::exit::exiting;
use crate::kern::jobctl::Report;
use crate::kern::proc::{self, UProc};
use crate::kern::signal::{self, SIGCHLD, SIGKILL, SIGSTOP, SIGTRAP, SigInfo};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked_state, wakeup, wchan_of};
use crate::kern::thread::{ThreadState, UThread};
use crate::kern::uproc::UserThread;
use crate::kern::wait::{Reaped, WaitOpts, Which};

mod attach;
mod exits;
mod mem;
mod stop;

pub use attach::*;
pub use exits::*;
pub use mem::*;
pub use stop::*;


/// waitid's si_code for a ptrace stop.
pub const CLD_TRAPPED: i32 = crate::abi::c_int(crate::abi::linux::CLD_TRAPPED);
/// si_code of a single-step trap, and of the SIGTRAP after a stepped system call.
pub const TRAP_TRACE: i32 = crate::abi::c_int(crate::abi::linux::TRAP_TRACE);
pub const TRAP_BRKPT: i32 = crate::abi::c_int(crate::abi::linux::TRAP_BRKPT);
/// The x86 trap flag.
pub const X86_EFLAGS_TF: u64 = 1 << 8;

/// Yama's ptrace_scope (0 classic, 1 restricted to descendants, 2 admin only, 3 none).
static PTRACE_SCOPE: AtomicU32 = AtomicU32::new(1);

/// /proc/sys/kernel/yama/ptrace_scope.
pub fn ptrace_scope() -> u32 {
    PTRACE_SCOPE.load(Ordering::Relaxed)
}

/// Set ptrace_scope: EINVAL past 3; once 3 it stays (Yama's rule), EINVAL for a change.
pub fn set_ptrace_scope(v: u32) -> Result<(), Errno> {
    if v > 3 || (PTRACE_SCOPE.load(Ordering::Relaxed) == 3 && v != 3) {
        return Err(Errno::EINVAL);
    }
    PTRACE_SCOPE.store(v, Ordering::Relaxed);
    Ok(())
}

/// How the tracer last restarted the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Cont,
    Syscall,
    Step,
    Sysemu,
    SysemuStep,
}

impl Mode {
    fn syscalls(self) -> bool {
        matches!(self, Mode::Syscall | Mode::Sysemu | Mode::SysemuStep)
    }
    fn steps(self) -> bool {
        matches!(self, Mode::Step | Mode::SysemuStep)
    }
    fn emulates(self) -> bool {
        matches!(self, Mode::Sysemu | Mode::SysemuStep)
    }
}

/// Where a system call stop is (PTRACE_GET_SYSCALL_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyscallAt {
    #[default]
    None,
    Entry,
    Exit,
}

/// A ptrace stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// The stop's code: the wait status is `code << 8 | 0x7f`.
    pub code: i32,
    /// Already reported to wait(2).
    pub reported: bool,
    /// A group stop's report (PTRACE_LISTEN applies).
    pub group: bool,
}

/// The tracer's restart of a stopped thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    /// The signal to deliver (0: none).
    sig: i32,
}

/// A traced thread's state (under its spinlock).
#[derive(Debug, Default)]
pub struct TraceState {
    /// The tracer's pid (0: not traced).
    pub tracer: i32,
    pub seized: bool,
    /// PTRACE_O_* options.
    pub options: u32,
    pub stop: Option<Stop>,
    resume: Option<Resume>,
    pub mode: Mode,
    /// The siginfo of the stop (GETSIGINFO: EINVAL when None, as in a group stop).
    pub siginfo: Option<SigInfo>,
    /// GETEVENTMSG's word.
    pub event_msg: u64,
    pub syscall_at: SyscallAt,
    /// PTRACE_INTERRUPT (or a new seized child) wants an EVENT_STOP.
    pub interrupt: bool,
    /// PTRACE_LISTEN: out of the ptrace stop, still stopped with its process; SIGCONT (or
    /// INTERRUPT) makes it trap again with EVENT_STOP.
    pub listening: bool,
    /// The trap flag was set by PTRACE_SINGLESTEP, not by the program.
    pub forced_tf: bool,
    /// This thread has made its group-stop report for the current group stop.
    pub group_stop_seen: bool,
    /// The debug registers as POKEUSER stored them.
    pub debugreg: [u64; 8],
}

/// Fast flags (read on every trap without the lock).
const F_TRACED: u8 = 1;
const F_SYSCALL: u8 = 2;

/// What a guest thread carries for ptrace.
#[derive(Debug)]
pub struct PtraceThread {
    flags: AtomicU8,
    /// The system call number at the last trap (`orig_rax`; -1 after any other trap).
    orig_rax: AtomicU64,
    pub st: SpinLock<TraceState>,
}

impl Default for PtraceThread {
    fn default() -> Self {
        PtraceThread {
            flags: AtomicU8::new(0),
            orig_rax: AtomicU64::new(u64::MAX),
            st: SpinLock::new("ptrace", TraceState::default()),
        }
    }
}

/// Threads traced now: wait(2) looks for tracees only when there are any.
static NTRACED: AtomicUsize = AtomicUsize::new(0);

impl PtraceThread {
    /// Publish the fast flags after `st` changed (always under its lock).
    fn set_flags(&self, st: &TraceState) {
        let mut f = 0;
        if st.tracer != 0 {
            f |= F_TRACED;
            if st.mode.syscalls() {
                f |= F_SYSCALL;
            }
        }
        let old = self.flags.swap(f, Ordering::AcqRel);
        match (old & F_TRACED != 0, f & F_TRACED != 0) {
            (false, true) => {
                NTRACED.fetch_add(1, Ordering::AcqRel);
            }
            (true, false) => {
                NTRACED.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }
}

/// Whether `td` is traced.
pub fn is_traced(td: &UThread) -> bool {
    td.user().ptrace.flags.load(Ordering::Acquire) & F_TRACED != 0
}

/// The trap loop records each trap: the system call number, or -1 (Linux's orig_ax).
pub fn note_trap(td: &UThread, orig_rax: u64) {
    td.user().ptrace.orig_rax.store(orig_rax, Ordering::Relaxed);
}

/// `orig_rax` as the tracer sees and sets it.
pub fn orig_rax(td: &UThread) -> u64 {
    td.user().ptrace.orig_rax.load(Ordering::Relaxed)
}

pub fn set_orig_rax(td: &UThread, v: u64) {
    td.user().ptrace.orig_rax.store(v, Ordering::Relaxed);
}

/// The pid tracing `p`'s main thread (TracerPid in /proc/PID/status), 0 when none.
pub fn tracer_pid(p: &UProc) -> i32 {
    let threads = p.threads();
    let td = threads.iter().find(|t| t.tid() == crate::kern::uproc::tid_of(p.pid)).or(threads.first());
    td.map_or(0, |t| t.user().ptrace.st.lock().tracer)
}

/// Whether the thread sits in a ptrace stop (or listens in a group stop): `t` in /proc.
pub fn in_stop(u: &UserThread) -> bool {
    let st = u.ptrace.st.lock();
    st.stop.is_some() || st.listening
}

/// The pid tracing one thread (/proc/PID/task/TID/status), 0 when none.
pub fn thread_tracer(u: &UserThread) -> i32 {
    u.ptrace.st.lock().tracer
}

fn chan(td: &UThread) -> u64 {
    wchan_of(&td.user().ptrace)
}

/// The siginfo of a stop that is not a signal's: SIGTRAP with the stop's code (ptrace_notify).
fn trap_info(td: &UThread, p: &UProc, code: i32) -> SigInfo {
    let pid = crate::kern::uproc::pid_of(td.tid()).unwrap_or(p.pid);
    SigInfo::user(SIGTRAP, code, pid, p.user().cred.lock().uid)
}

/// The process is being killed: its stopped threads must wake to die.
pub fn release(p: &UProc) {
    for t in p.threads() {
        wakeup(chan(&t));
    }
}

/// Wake `td` if it sits in a ptrace stop, to look at its state again (an execve in another
/// thread wants it gone).
pub fn release_thread(td: &UThread) {
    wakeup(chan(td));
}

fn detach_locked(st: &mut TraceState) {
    let (forced, debugreg) = (st.forced_tf, st.debugreg);
    *st = TraceState { forced_tf: forced, debugreg, ..TraceState::default() };
    st.mode = Mode::Cont;
}

/// The tracee `tid` of tracer `w` (ESRCH when it is not one, or when `stopped` is asked and
/// it is not in a ptrace stop).
pub fn tracee(w: &UProc, tid: i32, stopped: bool) -> Result<(UProc, UThread), Errno> {
    let (tp, td) = find_thread(tid).ok_or(Errno::ESRCH)?;
    let st = td.user().ptrace.st.lock();
    if st.tracer != w.pid || (stopped && st.stop.is_none()) {
        return Err(Errno::ESRCH);
    }
    drop(st);
    Ok((tp, td))
}

/// A guest thread by id, with its process.
pub fn find_thread(tid: i32) -> Option<(UProc, UThread)> {
    let key = crate::kern::uproc::tid_of(tid);
    if tid <= 0 {
        return None;
    }
    if let Some(p) = proc::find_user(tid)
        && let Some(t) = p.threads().into_iter().find(|t| t.tid() == key)
    {
        return Some((p, t));
    }
    proc::all_user().into_iter().find_map(|p| {
        let t = p.threads().into_iter().find(|t| t.tid() == key)?;
        Some((p, t))
    })
}

/// A one-line summary for the debugger's `show proc` (try-lock only: None when busy; empty
/// when the thread is not traced): the tracer, its options and the stop.
pub fn describe(u: &UserThread) -> Option<String> {
    let st = u.ptrace.st.try_lock()?;
    if st.tracer == 0 {
        return Some(String::new());
    }
    let stop = match st.stop {
        Some(s) => format!("ptrace stop code {:#x}{}", s.code, if s.reported { " (reported)" } else { "" }),
        None => format!("running ({:?})", st.mode),
    };
    Some(format!(
        "traced by {}{}, options {:#x}, {stop}",
        st.tracer,
        if st.seized { " (seized)" } else { "" },
        st.options
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapped_status() {
        assert_eq!(Report::Trapped(SIGTRAP | 0x80).status(), 0x857f);
        let ev = SIGTRAP | (crate::abi::c_int(PTRACE_EVENT_FORK) << 8);
        assert_eq!(Report::Trapped(ev).status() >> 16, 1);
    }

    #[test]
    fn modes() {
        assert!(Mode::Syscall.syscalls() && !Mode::Cont.syscalls() && Mode::SysemuStep.steps());
        assert!(Mode::Sysemu.emulates() && !Mode::Step.emulates());
    }
}
