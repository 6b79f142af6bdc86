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

/// Stop for the tracer with `code` and wait to be restarted. `regs` go to the tracer and come
/// back as it left them. None when the thread is not traced (any more), or is dying.
fn stop(td: &UThread, p: &UProc, regs: &mut UserRegs, code: i32, info: Option<SigInfo>) -> Option<Resume> {
    stop_as(td, p, regs, code, info, false)
}

/// [`stop`], `group` for a group stop's report.
fn stop_as(
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
fn notify_tracer(tracer: i32, td: &UThread, p: &UProc, code: i32) {
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

fn sysgood(st: &TraceState) -> i32 {
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

/// PTRACE_INTERRUPT's EVENT_STOP, when one is pending (on the way back to user mode).
pub fn interrupt_stop(td: &UThread, p: &UProc, regs: &mut UserRegs) {
    let pt = &td.user().ptrace;
    if pt.flags.load(Ordering::Acquire) & F_TRACED == 0 {
        return;
    }
    let want = std::mem::take(&mut pt.st.lock().interrupt);
    if want {
        let code = SIGTRAP | (crate::abi::c_int(PTRACE_EVENT_STOP) << 8);
        stop(td, p, regs, code, Some(trap_info(td, p, code)));
    }
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

/// A traced thread has exited with wait status `status`: its tracer learns it through wait
/// (unless the tracer is the parent of the process that ends with it: the zombie tells).
pub fn exited(td: &UThread, p: &UProc, status: i32, last: bool) {
    let pt = &td.user().ptrace;
    let tracer = {
        let mut st = pt.st.lock();
        let t = std::mem::take(&mut st.tracer);
        st.stop = None;
        pt.set_flags(&st);
        t
    };
    if tracer == 0 {
        return;
    }
    let tid = crate::kern::uproc::pid_of(td.tid()).unwrap_or(p.pid);
    let leader = tid == p.pid;
    let parent = p.rec.ppid.load(Ordering::Relaxed);
    if leader && last && parent == tracer {
        return;
    }
    let uid = p.user().cred.lock().uid;
    EXITS.lock().push(ExitReport { tracer, tid, pgid: p.rec.pgid.load(Ordering::Relaxed), status, uid });
    if let Some(t) = proc::find_user(tracer) {
        signal::send_to_proc(&t, SigInfo::child(tid, uid, status));
        wakeup(t.wchan());
    }
}

/// An exit of a tracee not reported as a zombie to the tracer: kept until it waits.
#[derive(Debug, Clone, Copy)]
struct ExitReport {
    tracer: i32,
    tid: i32,
    pgid: i32,
    status: i32,
    uid: u32,
}

static EXITS: SpinLock<Vec<ExitReport>> = SpinLock::new("ptrace_exits", Vec::new());

/// The tracer process `p` is gone: its tracees are let go (resumed where stopped) or, with
/// PTRACE_O_EXITKILL, killed.
pub fn tracer_gone(p: &UProc) {
    EXITS.lock().retain(|e| e.tracer != p.pid);
    for tp in proc::all_user() {
        for t in tp.threads() {
            let kill = {
                let pt = &t.user().ptrace;
                let mut st = pt.st.lock();
                if st.tracer != p.pid {
                    continue;
                }
                let kill = st.options & PTRACE_O_EXITKILL != 0;
                detach_locked(&mut st);
                pt.set_flags(&st);
                kill
            };
            wakeup(chan(&t));
            if kill {
                signal::send_to_proc(&tp, SigInfo::kernel(SIGKILL, signal::SI_KERNEL));
            }
        }
    }
}

fn detach_locked(st: &mut TraceState) {
    let (forced, debugreg) = (st.forced_tf, st.debugreg);
    *st = TraceState { forced_tf: forced, debugreg, ..TraceState::default() };
    st.mode = Mode::Cont;
}

/// Whether a tracee's id matches what wait asked for.
fn wanted(which: Which, tid: i32, pgid: i32) -> bool {
    match which {
        Which::Any => true,
        Which::Pid(p) => p == tid,
        Which::Pgid(g) => g == pgid,
    }
}

/// wait(2) for tracer `w`: whether any of its tracees matches `which` (so wait must not say
/// ECHILD), and the first unreported stop or exit (taken unless `nowait`). A tracee is
/// waited for whatever its kind, as if __WALL were given (Linux's eligible_child). Called under the
/// tracer's sleep-queue lock, so a stop made after the scan wakes the wait.
pub fn wait_scan(w: &UProc, which: Which, o: &WaitOpts) -> (bool, Option<Reaped>) {
    let mut any = false;
    {
        let mut exits = EXITS.lock();
        if exits.is_empty() && NTRACED.load(Ordering::Acquire) == 0 {
            return (false, None);
        }
        if let Some(i) = exits.iter().position(|e| e.tracer == w.pid && wanted(which, e.tid, e.pgid)) {
            any = true;
            if o.exited {
                let e = exits[i];
                if !o.nowait {
                    exits.remove(i);
                }
                let r = Reaped { pid: e.tid, status: e.status, uid: e.uid, event: None, times: Default::default() };
                return (true, Some(r));
            }
        }
    }
    for tp in proc::all_user() {
        for t in tp.threads() {
            let tid = crate::kern::uproc::pid_of(t.tid()).unwrap_or(0);
            let mut st = t.user().ptrace.st.lock();
            if st.tracer != w.pid || !wanted(which, tid, tp.rec.pgid.load(Ordering::Relaxed)) {
                continue;
            }
            any = true;
            if let Some(s) = st.stop.as_mut().filter(|s| !s.reported) {
                if !o.nowait {
                    s.reported = true;
                }
                let code = s.code;
                drop(st);
                let uid = tp.user().cred.lock().uid;
                let ev = Report::Trapped(code);
                return (
                    true,
                    Some(Reaped { pid: tid, status: ev.status(), uid, event: Some(ev), times: Default::default() }),
                );
            }
        }
    }
    (any, None)
}

/// Whether `child` (a child of `w`) is traced by `w`: its job-control stops then reach `w`
/// as ptrace stops only.
pub fn traced_by(child: &UProc, w: &UProc) -> bool {
    NTRACED.load(Ordering::Acquire) != 0 && child.threads().iter().any(|t| t.user().ptrace.st.lock().tracer == w.pid)
}

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

/// Read another process's memory (PEEK, process_vm_readv).
pub fn read_mem(tp: &UProc, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let vm = tp.user().vm();
    let g = vm.read();
    crate::vm::uaccess::copyin(&g, addr, buf)
}

/// Write another process's memory; `force` writes read-only private mappings too (a
/// debugger's breakpoint in the text: Linux's FOLL_FORCE).
pub fn write_mem(tp: &UProc, addr: u64, data: &[u8], force: bool) -> Result<(), Errno> {
    let vm = tp.user().vm();
    let g = vm.read();
    if !force {
        return crate::vm::uaccess::copyout(&g, addr, data);
    }
    addr.checked_add(data.len() as u64).filter(|&e| e <= platform::stub::layout::USER_END).ok_or(Errno::EFAULT)?;
    let mut done = 0;
    while done < data.len() {
        let a = addr + done as u64;
        let n = crate::vm::space::to_page_end(a).min(data.len() - done);
        let pa = g.resolve_force_write(a).map_err(|_| Errno::EFAULT)?;
        g.physmem().write(pa, &data[done..done + n]);
        done += n;
    }
    Ok(())
}

/// /proc/PID/mem's read at address `off`: page by page as far as the memory goes; EIO when
/// not even the first byte can be read.
pub fn mem_read(tp: &UProc, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let a = off.saturating_add(done as u64);
        let n = crate::vm::space::to_page_end(a).min(buf.len() - done);
        if read_mem(tp, a, &mut buf[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    if done == 0 && !buf.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}

/// /proc/PID/mem's write (forced, as a debugger's): as far as the memory goes; EIO when not
/// even the first byte can be written.
pub fn mem_write(tp: &UProc, off: u64, data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < data.len() {
        let a = off.saturating_add(done as u64);
        let n = crate::vm::space::to_page_end(a).min(data.len() - done);
        if write_mem(tp, a, &data[done..done + n], true).is_err() {
            break;
        }
        done += n;
    }
    if done == 0 && !data.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}

/// Whether `p` descends from `ancestor` (Yama's relationship).
fn is_descendant(p: &UProc, ancestor: &UProc) -> bool {
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
    {
        let mut st = pt.st.lock();
        if st.tracer != 0 {
            return Err(Errno::EPERM);
        }
        st.tracer = tracer.pid;
        st.seized = seize;
        st.options = if seize { options } else { 0 };
        st.mode = Mode::Cont;
        pt.set_flags(&st);
    }
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
