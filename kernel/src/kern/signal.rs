//! Signals: actions, masks, queues, generation and delivery (signal(7)).
//!
//! * Generation: a signal goes on a process's queue (kill) or a thread's (tgkill, faults);
//!   the chosen thread is woken from an interruptible sleep or kicked out of user mode.
//! * Delivery happens on the way back to user mode: the lowest pending, unblocked signal is
//!   taken; its action is the default (terminate, core, ignore, stop, continue), ignore, or a
//!   handler, for which a Linux `rt_sigframe` is built on the guest stack (or its alternate
//!   stack) with the registers, the FPU state and the old mask, returning through the
//!   guest's `sa_restorer` into rt_sigreturn.
//! * A system call interrupted by a signal returns ERESTARTSYS (or a kin); delivery turns it
//!   into EINTR or a restart, per SA_RESTART, as Linux does.
//!
//! Lock order: a process's `sig` before a thread's `sig`.

use std::sync::atomic::{AtomicBool, Ordering};

use kvm_mem::abi::tflags;
use platform::stub::{UserRegs, reg};
use platform::sync::SpinLock;

use crate::abi::signal::{
    Fpstate64, RtSigframe, SaFlags, SiChld, SiFault, SiKill, Sigaction, Sigcontext, Siginfo, SsFlags, Stack,
    UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS, Ucontext,
};
use crate::abi::{c_int, linux};
use crate::kern::ctx::Exit;
use crate::kern::errno::Errno;
use crate::kern::exit::sigstatus;
use crate::kern::proc::UProc;
use crate::kern::sleep::wake_thread;
use crate::kern::thread::UThread;
use crate::kern::thread::{Thread, ThreadState, WakeReason};
use crate::vm::uaccess::{self, UserPtr, UserSlice};

/// Signals: 1..=NSIG (`_NSIG`).
pub const NSIG: usize = 64;
const _: () = assert!(linux::_NSIG == 64);
const NSIG_INT: i32 = c_int(linux::_NSIG);

// The signal numbers (asm/signal.h), each defined here once for the whole kernel.
pub const SIGHUP: i32 = c_int(linux::SIGHUP);
pub const SIGINT: i32 = c_int(linux::SIGINT);
pub const SIGQUIT: i32 = c_int(linux::SIGQUIT);
pub const SIGILL: i32 = c_int(linux::SIGILL);
pub const SIGTRAP: i32 = c_int(linux::SIGTRAP);
pub const SIGABRT: i32 = c_int(linux::SIGABRT);
pub const SIGBUS: i32 = c_int(linux::SIGBUS);
pub const SIGFPE: i32 = c_int(linux::SIGFPE);
pub const SIGKILL: i32 = c_int(linux::SIGKILL);
pub const SIGUSR1: i32 = c_int(linux::SIGUSR1);
pub const SIGSEGV: i32 = c_int(linux::SIGSEGV);
pub const SIGUSR2: i32 = c_int(linux::SIGUSR2);
pub const SIGPIPE: i32 = c_int(linux::SIGPIPE);
pub const SIGALRM: i32 = c_int(linux::SIGALRM);
pub const SIGTERM: i32 = c_int(linux::SIGTERM);
pub const SIGCHLD: i32 = c_int(linux::SIGCHLD);
pub const SIGCONT: i32 = c_int(linux::SIGCONT);
pub const SIGSTOP: i32 = c_int(linux::SIGSTOP);
pub const SIGTSTP: i32 = c_int(linux::SIGTSTP);
pub const SIGTTIN: i32 = c_int(linux::SIGTTIN);
pub const SIGTTOU: i32 = c_int(linux::SIGTTOU);
pub const SIGURG: i32 = c_int(linux::SIGURG);
pub const SIGXCPU: i32 = c_int(linux::SIGXCPU);
pub const SIGXFSZ: i32 = c_int(linux::SIGXFSZ);
pub const SIGVTALRM: i32 = c_int(linux::SIGVTALRM);
pub const SIGPROF: i32 = c_int(linux::SIGPROF);
pub const SIGWINCH: i32 = c_int(linux::SIGWINCH);
pub const SIGSYS: i32 = c_int(linux::SIGSYS);
/// The first real-time signal: from here on signals queue.
pub const SIGRTMIN: i32 = c_int(linux::SIGRTMIN);

pub use crate::abi::signal::{SIG_DFL, SIG_IGN};

// si_code values (asm-generic/siginfo.h).
pub const SI_USER: i32 = c_int(linux::SI_USER);
pub const SI_KERNEL: i32 = c_int(linux::SI_KERNEL);
pub const SI_TKILL: i32 = linux::SI_TKILL;
pub const CLD_EXITED: i32 = c_int(linux::CLD_EXITED);
pub const CLD_KILLED: i32 = c_int(linux::CLD_KILLED);
pub const CLD_DUMPED: i32 = c_int(linux::CLD_DUMPED);
pub const CLD_STOPPED: i32 = c_int(linux::CLD_STOPPED);
pub const CLD_CONTINUED: i32 = c_int(linux::CLD_CONTINUED);
pub const SEGV_MAPERR: i32 = c_int(linux::SEGV_MAPERR);
pub const SEGV_ACCERR: i32 = c_int(linux::SEGV_ACCERR);
pub const BUS_ADRERR: i32 = c_int(linux::BUS_ADRERR);

/// Bit of `sig` in a signal set (0 for a number that is no signal).
pub fn bit(sig: i32) -> u64 {
    sig.checked_sub(1).and_then(|s| u32::try_from(s).ok()).and_then(|s| 1u64.checked_shl(s)).unwrap_or(0)
}

/// Signals that can be neither blocked, caught nor ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn valid(sig: i32) -> bool {
    (1..=NSIG_INT).contains(&sig)
}

/// What a signal does by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Term,
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            DefaultAction::Core
        }
        _ => DefaultAction::Term,
    }
}

/// A signal's action, as the kernel keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: SaFlags,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    /// From the guest's `struct sigaction`: unknown flags cleared, SIGKILL and SIGSTOP never
    /// blocked, as rt_sigaction(2) does.
    pub fn from_guest(a: &Sigaction) -> SigAction {
        SigAction {
            handler: a.sa_handler,
            flags: SaFlags::from_guest(a.sa_flags),
            restorer: a.sa_restorer,
            mask: a.sa_mask & !UNBLOCKABLE,
        }
    }

    /// As the guest reads it back.
    pub fn to_guest(&self) -> Sigaction {
        Sigaction {
            sa_handler: self.handler,
            sa_flags: u64::from(self.flags.bits()),
            sa_restorer: self.restorer,
            sa_mask: self.mask,
        }
    }

    /// Whether a signal with this action is thrown away (ignored, explicitly or by default).
    pub fn ignores(&self, sig: i32) -> bool {
        self.handler == SIG_IGN || (self.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }
}

/// A siginfo, as queued and as the guest reads it.
pub type SigInfo = Siginfo;

impl Siginfo {
    /// From kill(2) or tgkill(2).
    pub fn user(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        Siginfo::new(signo, code).with(&SiKill { _pid: pid, _uid: uid })
    }

    /// From the kernel itself (a timer): no sender.
    pub fn kernel(signo: i32, code: i32) -> SigInfo {
        Siginfo::new(signo, code)
    }

    /// From a fault at `addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        Siginfo::new(signo, code).with(&SiFault { _addr: addr, ..SiFault::default() })
    }

    /// SIGCHLD for a child that exited with wait status `status`.
    pub fn child(pid: i32, uid: u32, status: i32) -> SigInfo {
        let (code, value) = if status & 0x7f == 0 {
            (CLD_EXITED, (status >> 8) & 0xff)
        } else if status & 0x80 != 0 {
            (CLD_DUMPED, status & 0x7f)
        } else {
            (CLD_KILLED, status & 0x7f)
        };
        SigInfo::child_event(pid, uid, code, value)
    }

    /// SIGCHLD for a child event `code` (CLD_*) with si_status `status`.
    pub fn child_event(pid: i32, uid: u32, code: i32, status: i32) -> SigInfo {
        Siginfo::new(SIGCHLD, code).with(&SiChld { _pid: pid, _uid: uid, _status: status, ..SiChld::default() })
    }
}

/// Pending signals: standard signals at most once each, real-time ones queued.
#[derive(Debug, Clone, Default)]
pub struct SigQueue {
    pub set: u64,
    infos: Vec<SigInfo>,
}

/// Most queued real-time signals per queue (RLIMIT_SIGPENDING, small).
const MAX_QUEUED: usize = 1024;

impl SigQueue {
    pub fn push(&mut self, info: SigInfo) {
        let b = bit(info.si_signo);
        let realtime = info.si_signo >= SIGRTMIN;
        if !realtime && self.set & b != 0 {
            return;
        }
        if realtime && self.infos.len() >= MAX_QUEUED {
            return;
        }
        self.set |= b;
        self.infos.push(info);
    }

    /// Take the lowest-numbered pending signal among `allowed`.
    pub fn take(&mut self, allowed: u64) -> Option<SigInfo> {
        let avail = self.set & allowed;
        if avail == 0 {
            return None;
        }
        let sig = i32::try_from(avail.trailing_zeros()).ok()? + 1;
        let i = self.infos.iter().position(|x| x.si_signo == sig)?;
        let info = self.infos.remove(i);
        if !self.infos.iter().any(|x| x.si_signo == sig) {
            self.set &= !bit(sig);
        }
        Some(info)
    }

    pub fn clear(&mut self) {
        *self = SigQueue::default();
    }

    /// Signals queued with their siginfo (what RLIMIT_SIGPENDING counts).
    pub fn queued(&self) -> usize {
        self.infos.len()
    }

    /// Up to `n` queued siginfos from the `off`-th on, in queue order (PTRACE_PEEKSIGINFO).
    pub fn peek(&self, off: usize, n: usize) -> Vec<SigInfo> {
        self.infos.iter().skip(off).take(n).copied().collect()
    }

    /// Whether a queued siginfo matches `f`.
    pub fn any(&self, f: impl Fn(&SigInfo) -> bool) -> bool {
        self.infos.iter().any(f)
    }

    /// Drop every pending signal in `mask`.
    pub fn discard(&mut self, mask: u64) {
        if self.set & mask == 0 {
            return;
        }
        self.infos.retain(|x| bit(x.si_signo) & mask == 0);
        self.set &= !mask;
    }
}

/// An alternate signal stack (sigaltstack(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub disabled: bool,
    /// SS_AUTODISARM: a delivered signal disarms it until its handler returns.
    pub autodisarm: bool,
}

impl AltStack {
    pub fn on(&self, sp: u64) -> bool {
        !self.disabled && self.size > 0 && sp > self.sp && sp <= self.sp.saturating_add(self.size)
    }

    /// The guest's `stack_t` for it, `sp` being the thread's stack pointer now: SS_DISABLE,
    /// SS_ONSTACK while on it, or neither; and SS_AUTODISARM if it was asked for.
    pub fn to_guest(&self, sp: u64) -> Stack {
        let mut flags = if self.disabled || self.size == 0 {
            SsFlags::DISABLE
        } else if self.on(sp) {
            SsFlags::ONSTACK
        } else {
            SsFlags::empty()
        };
        flags.set(SsFlags::AUTODISARM, self.autodisarm);
        Stack { ss_sp: self.sp, ss_flags: flags.bits().cast_signed(), ss_size: self.size, ..Stack::default() }
    }

    /// A stack disabled (what SS_DISABLE sets, and what SS_AUTODISARM leaves for a handler).
    pub const DISABLED: AltStack = AltStack { sp: 0, size: 0, disabled: true, autodisarm: false };
}

/// A thread's signal state.
#[derive(Debug, Clone, Default)]
pub struct ThreadSig {
    pub mask: u64,
    pub pending: SigQueue,
    pub altstack: AltStack,
    /// The mask to restore after a handler that interrupted sigsuspend.
    pub saved_mask: Option<u64>,
}

/// A process's signal state.
#[derive(Debug, Clone)]
pub struct ProcSig {
    /// By signal number (0 unused).
    pub actions: [SigAction; NSIG + 1],
    pub pending: SigQueue,
}

impl ProcSig {
    pub fn new() -> ProcSig {
        ProcSig { actions: [SigAction::default(); NSIG + 1], pending: SigQueue::default() }
    }

    /// The action of `sig` (the default one for a number that is no signal).
    pub fn action(&self, sig: i32) -> SigAction {
        usize::try_from(sig).ok().and_then(|i| self.actions.get(i)).copied().unwrap_or_default()
    }

    /// Set the action of `sig` (a number that is no signal is ignored).
    pub fn set_action(&mut self, sig: i32, a: SigAction) {
        if let Some(slot) = usize::try_from(sig).ok().and_then(|i| self.actions.get_mut(i)) {
            *slot = a;
        }
    }

    /// After exec: handlers become the default, ignored signals stay ignored.
    pub fn reset_handlers(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
            a.flags.remove(SaFlags::ONSTACK);
        }
    }
}

impl Default for ProcSig {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-thread signal bookkeeping held in [`crate::kern::uproc::UserThread`].
#[derive(Debug)]
pub struct ThreadSigState {
    pub sig: SpinLock<ThreadSig>,
    /// Something may be deliverable: checked by interruptible sleeps and the return path.
    pub flag: AtomicBool,
}

impl ThreadSigState {
    pub fn new(mask: u64) -> ThreadSigState {
        ThreadSigState {
            sig: SpinLock::new("thread_sig", ThreadSig { mask, ..Default::default() }),
            flag: AtomicBool::new(false),
        }
    }
}

/// Whether a signal sent now would be thrown away: its action ignores it and no thread has
/// it blocked (a blocked signal stays pending, as the action may change before it is taken).
fn is_ignored(p: &UProc, sig: i32) -> bool {
    let ignores = p.user().sig.lock().action(sig).ignores(sig);
    // A tracer sees even an ignored signal (its signal-delivery-stop), as Linux's sig_ignored.
    ignores
        && !p.threads().iter().any(|t| {
            let blocked = t.user().sigstate.sig.lock().mask & bit(sig) != 0;
            blocked || crate::kern::ptrace::is_traced(t)
        })
}

/// Make a thread notice a signal: wake it from an interruptible sleep, or kick it out of
/// user mode.
pub fn signal_wake(td: &UThread) {
    let u = td.user();
    u.sigstate.flag.store(true, Ordering::SeqCst);
    // Pairs with the fence in `tsleep_locked_state`, which shows the thread asleep before it
    // looks at this flag: either it sees the flag or this sees it asleep.
    std::sync::atomic::fence(Ordering::SeqCst);
    if td.state() == ThreadState::Sleeping && td.rec.flags.load(Ordering::SeqCst) & tflags::SINTR != 0 {
        let wchan = td.rec.wchan.load(Ordering::SeqCst);
        let generation = td.sleep_gen.load(Ordering::SeqCst);
        if wchan != 0 {
            wake_thread(td.arc(), wchan, generation, WakeReason::Interrupted);
        }
    } else if td.rec.flags.load(Ordering::SeqCst) & tflags::INUSER != 0
        && let Some(stub) = u.stub.lock().clone()
    {
        stub.kick();
    } else if td.state() == ThreadState::Stopped && crate::kern::ptrace::is_traced(td) {
        crate::kern::ptrace::release_thread(td);
    }
}

/// Signals queued for the processes and threads of real user `uid` (Linux's per-user
/// UCOUNT_RLIMIT_SIGPENDING count, taken by a walk).
pub fn queued_for_user(uid: u32) -> usize {
    crate::kern::proc::all_user()
        .into_iter()
        .filter(|p| p.user().cred().uid == uid)
        .map(|p| {
            let own = p.user().sig.lock().pending.queued();
            own + p.threads().iter().map(|t| t.user().sigstate.sig.lock().pending.queued()).sum::<usize>()
        })
        .sum()
}

/// Send a signal to a process (kill(2)).
pub fn send_to_proc(p: &UProc, info: SigInfo) {
    let sig = info.si_signo;
    if p.is_zombie() {
        return;
    }
    if sig == SIGKILL {
        kill_process(p, sigstatus(SIGKILL));
        return;
    }
    // Queued before the job-control effects: SIGCONT wakes the stopped threads, which must
    // find it queued (a traced one stops for it before it runs on; a handler runs first).
    if is_ignored(p, sig) {
        crate::kern::jobctl::on_send(p, sig);
        return;
    }
    p.user().sig.lock().pending.push(info);
    crate::kern::jobctl::on_send(p, sig);
    // signalfd readers and pollers sleep on the poll channel, whatever their masks.
    crate::fs::vfs::poll_wakeup();
    let threads = p.threads();
    let target = threads.iter().find(|t| t.user().sigstate.sig.lock().mask & bit(sig) == 0).or(threads.first());
    if let Some(t) = target {
        signal_wake(t);
    }
}

/// Send a signal to one thread (tgkill(2), faults).
pub fn send_to_thread(td: &UThread, info: SigInfo) {
    let Some(p) = td.uproc() else { return };
    if info.si_signo == SIGKILL {
        kill_process(&p, sigstatus(SIGKILL));
        return;
    }
    let sig = info.si_signo;
    // Queued before the job-control effects, as in `send_to_proc`.
    if is_ignored(&p, sig) {
        crate::kern::jobctl::on_send(&p, sig);
        return;
    }
    td.user().sigstate.sig.lock().pending.push(info);
    crate::kern::jobctl::on_send(&p, sig);
    crate::fs::vfs::poll_wakeup();
    signal_wake(td);
}

/// The whole process dies with `status`: every thread is told to exit.
pub fn kill_process(p: &UProc, status: i32) {
    {
        let mut st = p.user().exit_status.lock();
        if st.is_none() {
            *st = Some(status);
        }
    }
    for t in p.threads() {
        signal_wake(&t);
    }
    crate::kern::jobctl::release(p);
    crate::kern::ptrace::release(p);
}

/// Whether a thread has a signal it would take now (for interruptible sleeps).
pub fn pending(td: &Thread) -> bool {
    let Some(u) = td.as_user() else { return false };
    if !u.sigstate.flag.load(Ordering::SeqCst) {
        return false;
    }
    let Some(p) = td.proc_().and_then(UProc::new) else { return false };
    // The flag is cleared before the state is read and set again if there is something to
    // take: a sender sets it after its change, so a change made meanwhile leaves it set
    // (clearing it after the reads could lose one).
    u.sigstate.flag.store(false, Ordering::SeqCst);
    let take = crate::kern::exit::exiting(&p)
        // A stopped process's threads leave their sleeps to stop — but not a traced one the
        // tracer let run on; a PTRACE_INTERRUPT makes a traced thread leave too.
        || (crate::kern::jobctl::is_stopped(&p) && !crate::kern::ptrace::group_stop_seen(u))
        || crate::kern::ptrace::interrupt_pending(u)
        || {
            let ps = p.user().sig.lock();
            let ts = u.sigstate.sig.lock();
            (ts.pending.set | ps.pending.set) & !ts.mask != 0
        };
    if take {
        u.sigstate.flag.store(true, Ordering::SeqCst);
    }
    take
}

/// Take the next deliverable signal (thread queue first) among those not in `mask`.
pub fn dequeue(td: &UThread, p: &UProc, allowed: u64) -> Option<SigInfo> {
    let u = td.user();
    let mut info = {
        let mut ps = p.user().sig.lock();
        let mut ts = u.sigstate.sig.lock();
        ts.pending.take(allowed).or_else(|| ps.pending.take(allowed))
    };
    // A POSIX timer's signal carries the overruns counted while it was queued.
    if let Some(i) = info.as_mut().filter(|i| i.si_code == crate::kern::posix_timer::SI_TIMER) {
        crate::kern::posix_timer::delivered(p, i);
    }
    info
}

/// The calling thread's process dies of `info`'s signal, taken with its default action (or
/// forced: a fault that is blocked or ignored). For a signal whose default action is "Core"
/// a core file is written first if RLIMIT_CORE allows (`kern::coredump`), and then the wait
/// status has WCOREDUMP. `regs` are the thread's registers at the signal.
pub fn die_of(td: &UThread, p: &UProc, regs: &UserRegs, info: &SigInfo) -> Exit {
    let sig = info.si_signo;
    if default_action(sig) == DefaultAction::Core && crate::kern::coredump::do_coredump(td, p, regs, info) {
        return Exit::Group(sigstatus(sig) | crate::kern::coredump::WCOREFLAG);
    }
    Exit::Group(sigstatus(sig))
}

/// Back up to re-execute the system call instruction (`syscall` is two bytes).
fn restart(regs: &mut UserRegs, orig_rax: u64) {
    regs.set_rax(orig_rax);
    regs.set_rip(regs.rip().wrapping_sub(2));
}

/// On the way back to user mode: deliver what is pending. `syscall` says the trap was a
/// system call whose number was `orig_rax` (for restarts). Returns an exit if a signal
/// kills the process.
pub fn deliver(td: &UThread, p: &UProc, regs: &mut UserRegs, syscall: Option<u64>) -> Option<Exit> {
    let mut restart_pending = syscall.filter(|_| Errno::from_rax(regs.rax()).is_some_and(Errno::is_restart));
    loop {
        if crate::kern::exit::exiting(p) {
            return Some(Exit::Group(0));
        }
        // Looked at on each round: a tracer may have attached while the thread was parked
        // (its PTRACE_INTERRUPT must stop the thread before it returns to user mode).
        let traced = crate::kern::ptrace::is_traced(td);
        if traced {
            crate::kern::ptrace::interrupt_stop(td, p, regs);
        }
        if crate::kern::jobctl::is_stopped(p) {
            if !crate::kern::ptrace::is_traced(td) {
                crate::kern::jobctl::park(td, p);
                continue;
            }
            // Traced: the group-stop report, then on as the tracer says.
            let sig = p.user().jobctl.lock().stop_sig;
            crate::kern::ptrace::group_stop(td, p, regs, sig);
            if crate::kern::exit::exiting(p) {
                continue;
            }
        } else if traced {
            crate::kern::ptrace::group_stop_over(td);
        }
        let mask = td.user().sigstate.sig.lock().mask;
        let Some(mut info) = dequeue(td, p, !mask | UNBLOCKABLE) else { break };
        if info.si_signo != SIGKILL && crate::kern::ptrace::is_traced(td) {
            // The signal-delivery-stop: the tracer may drop, keep or replace the signal, and
            // may have changed the registers (orig_rax decides a restart, as on Linux).
            let kept = crate::kern::ptrace::signal_stop(td, p, regs, info);
            restart_pending = restart_pending.and_then(|_| {
                let orig = crate::kern::ptrace::orig_rax(td);
                let restart = Errno::from_rax(regs.rax()).is_some_and(Errno::is_restart);
                (orig != u64::MAX && restart).then_some(orig)
            });
            match kept {
                Some(i) => info = i,
                None => continue,
            }
        }
        let sig = info.si_signo;
        let act = p.user().sig.lock().action(sig);
        if sig == SIGKILL {
            return Some(Exit::Group(sigstatus(SIGKILL)));
        }
        match act.handler {
            SIG_IGN => continue,
            SIG_DFL => match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                DefaultAction::Stop => {
                    crate::kern::jobctl::group_stop(p, sig);
                    continue;
                }
                DefaultAction::Term | DefaultAction::Core => return Some(die_of(td, p, regs, &info)),
            },
            _ => {}
        }
        if let Some(orig) = restart_pending.take() {
            let r = Errno::from_rax(regs.rax());
            if r == Some(Errno::ERESTARTNOINTR)
                || (r == Some(Errno::ERESTARTSYS) && act.flags.contains(SaFlags::RESTART))
            {
                restart(regs, orig);
            } else {
                regs.set_rax(crate::kern::errno::to_rax(Err(Errno::EINTR)));
            }
        }
        if setup_frame(td, p, regs, &info, &act).is_err() {
            // Linux's force_sigsegv: the frame could not be written (a bad or read-only
            // stack). A SIGSEGV handler that cannot be entered becomes the default action, and
            // a SIGSEGV that is blocked or ignored is taken with it; otherwise SIGSEGV's own
            // handler runs next (it may use another stack) and the process goes on.
            if sig == SIGSEGV {
                return Some(die_of(td, p, regs, &SigInfo::kernel(SIGSEGV, SI_KERNEL)));
            }
            let segv_blocked = td.user().sigstate.sig.lock().mask & bit(SIGSEGV) != 0;
            let segv = p.user().sig.lock().action(SIGSEGV);
            if segv_blocked || segv.handler == SIG_IGN || segv.handler == SIG_DFL {
                return Some(die_of(td, p, regs, &SigInfo::kernel(SIGSEGV, SI_KERNEL)));
            }
            td.user().sigstate.sig.lock().pending.push(SigInfo::kernel(SIGSEGV, SI_KERNEL));
        }
    }
    if let Some(orig) = restart_pending {
        // No handler ran: the interrupted call starts again.
        restart(regs, orig);
    }
    None
}

/// The red zone below the stack pointer that a signal frame must not touch (x86-64 ABI).
const RED_ZONE: u64 = 128;

/// The machine context of `regs` for a signal frame (without the FPU state pointer).
fn sigcontext_of(regs: &UserRegs) -> Sigcontext {
    let g = &regs.gregs;
    let [cs0, cs1, gs0, gs1, fs0, fs1, ss0, ss1] = g[reg::CSGSFS].to_le_bytes();
    Sigcontext {
        r8: g[reg::R8],
        r9: g[reg::R9],
        r10: g[reg::R10],
        r11: g[reg::R11],
        r12: g[reg::R12],
        r13: g[reg::R13],
        r14: g[reg::R14],
        r15: g[reg::R15],
        rdi: g[reg::RDI],
        rsi: g[reg::RSI],
        rbp: g[reg::RBP],
        rbx: g[reg::RBX],
        rdx: g[reg::RDX],
        rax: g[reg::RAX],
        rcx: g[reg::RCX],
        rsp: g[reg::RSP],
        rip: g[reg::RIP],
        eflags: g[reg::EFL],
        cs: u16::from_le_bytes([cs0, cs1]),
        gs: u16::from_le_bytes([gs0, gs1]),
        fs: u16::from_le_bytes([fs0, fs1]),
        ss: u16::from_le_bytes([ss0, ss1]),
        err: g[reg::ERR],
        trapno: g[reg::TRAPNO],
        oldmask: g[reg::OLDMASK],
        cr2: g[reg::CR2],
        ..Sigcontext::default()
    }
}

/// The registers rt_sigreturn(2) takes back from a machine context (the general registers,
/// the instruction pointer and the flags; the rest describe the trap).
fn restore_sigcontext(regs: &mut UserRegs, mc: &Sigcontext) {
    let g = &mut regs.gregs;
    for (i, v) in [
        (reg::R8, mc.r8),
        (reg::R9, mc.r9),
        (reg::R10, mc.r10),
        (reg::R11, mc.r11),
        (reg::R12, mc.r12),
        (reg::R13, mc.r13),
        (reg::R14, mc.r14),
        (reg::R15, mc.r15),
        (reg::RDI, mc.rdi),
        (reg::RSI, mc.rsi),
        (reg::RBP, mc.rbp),
        (reg::RBX, mc.rbx),
        (reg::RDX, mc.rdx),
        (reg::RAX, mc.rax),
        (reg::RCX, mc.rcx),
        (reg::RSP, mc.rsp),
        (reg::RIP, mc.rip),
    ] {
        g[i] = v;
    }
    g[reg::EFL] = (g[reg::EFL] & !FIX_EFLAGS) | (mc.eflags & FIX_EFLAGS);
}

/// Build the handler's frame and point the registers at the handler.
fn setup_frame(td: &UThread, p: &UProc, regs: &mut UserRegs, info: &SigInfo, act: &SigAction) -> Result<(), Errno> {
    let u = td.user();
    let sig = info.si_signo;
    if !act.flags.contains(SaFlags::RESTORER) || act.restorer == 0 {
        // x86-64 programs always give a restorer; without one the handler could not return.
        return Err(Errno::EFAULT);
    }
    let (old_mask, alt) = {
        let mut ts = u.sigstate.sig.lock();
        let old = ts.saved_mask.take().unwrap_or(ts.mask);
        let alt = ts.altstack;
        if alt.autodisarm {
            // The frame keeps it; rt_sigreturn puts it back (Linux's signal_delivered).
            ts.altstack = AltStack::DISABLED;
        }
        (old, alt)
    };
    let user_sp = regs.rsp();
    let mut sp = if act.flags.contains(SaFlags::ONSTACK) && !alt.disabled && alt.size > 0 && !alt.on(user_sp) {
        alt.sp.wrapping_add(alt.size)
    } else {
        user_sp.wrapping_sub(RED_ZONE)
    };
    // The FPU state (64-byte aligned, as xsave wants), then the frame below it, placed so
    // that the handler starts as if called: rsp + 8 is 16-byte aligned.
    let fp = u.stub.lock().as_ref().and_then(|s| s.fpstate()).unwrap_or_default();
    let fp_len = u64::try_from(fp.len()).map_err(|_| Errno::EFAULT)?;
    sp = sp.wrapping_sub(fp_len) & !63;
    let fp_addr = sp;
    let frame_len = u64::try_from(size_of::<RtSigframe>()).map_err(|_| Errno::EFAULT)?;
    let frame = (sp.wrapping_sub(frame_len) & !15).wrapping_sub(8);
    let mut mcontext = sigcontext_of(regs);
    mcontext.fpstate = if fp.is_empty() { 0 } else { fp_addr };
    let xstate = if Fpstate64::has_xstate(&fp) { UC_FP_XSTATE } else { 0 };
    let f = RtSigframe {
        pretcode: act.restorer,
        uc: Ucontext {
            uc_flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | xstate,
            uc_link: 0,
            uc_stack: alt.to_guest(user_sp),
            uc_mcontext: mcontext,
            uc_sigmask: old_mask,
        },
        info: *info,
    };
    {
        let vm = p.user().vm();
        let g = vm.read();
        if !fp.is_empty() {
            uaccess::write_slice(&g, UserSlice::new(fp_addr, fp.len()), &fp)?;
        }
        uaccess::write(&g, UserPtr::new(frame), &f)?;
    }
    if let Some(s) = u.stub.lock().as_ref() {
        s.reset_fpstate();
    }
    // handler(sig, &frame.info, &frame.uc), returning to the restorer.
    regs.gregs[reg::RDI] = u64::from(sig.unsigned_abs());
    regs.gregs[reg::RSI] = RtSigframe::info_addr(frame)?;
    regs.gregs[reg::RDX] = RtSigframe::uc_addr(frame)?;
    regs.set_rax(0);
    regs.set_rsp(frame);
    regs.set_rip(act.handler);
    // Clear DF and TF for the handler, as Linux does.
    regs.gregs[reg::EFL] &= !(X86_EFLAGS_DF | X86_EFLAGS_TF);
    let mut new_mask = old_mask | act.mask;
    if !act.flags.contains(SaFlags::NODEFER) {
        new_mask |= bit(sig);
    }
    u.sigstate.sig.lock().mask = new_mask & !UNBLOCKABLE;
    // SA_RESETHAND (SA_ONESHOT): the handler goes back to SIG_DFL; the flags and mask stay,
    // as Linux leaves them (sigaction(2) then still reports SA_SIGINFO).
    if act.flags.contains(SaFlags::RESETHAND) {
        let mut sig_state = p.user().sig.lock();
        let reset = SigAction { handler: SigAction::default().handler, ..sig_state.action(sig) };
        sig_state.set_action(sig, reset);
    }
    Ok(())
}

// x86 flag bits (arch/x86/include/uapi/asm/processor-flags.h).
const X86_EFLAGS_CF: u64 = 1 << 0;
const X86_EFLAGS_PF: u64 = 1 << 2;
const X86_EFLAGS_AF: u64 = 1 << 4;
const X86_EFLAGS_ZF: u64 = 1 << 6;
const X86_EFLAGS_SF: u64 = 1 << 7;
const X86_EFLAGS_TF: u64 = 1 << 8;
const X86_EFLAGS_DF: u64 = 1 << 10;
const X86_EFLAGS_OF: u64 = 1 << 11;
const X86_EFLAGS_RF: u64 = 1 << 16;
const X86_EFLAGS_AC: u64 = 1 << 18;

/// Flags rt_sigreturn takes from the frame, the rest staying as they were (FIX_EFLAGS in
/// arch/x86/kernel/signal_64.c).
const FIX_EFLAGS: u64 = X86_EFLAGS_AC
    | X86_EFLAGS_OF
    | X86_EFLAGS_DF
    | X86_EFLAGS_TF
    | X86_EFLAGS_SF
    | X86_EFLAGS_ZF
    | X86_EFLAGS_AF
    | X86_EFLAGS_PF
    | X86_EFLAGS_CF
    | X86_EFLAGS_RF;

/// rt_sigreturn(2): restore what the frame at `rsp - 8` saved (the handler's `ret` popped
/// its return address).
pub fn sigreturn(td: &UThread, p: &UProc, regs: &mut UserRegs) -> Result<u64, Errno> {
    let frame = regs.rsp().wrapping_sub(8);
    let uc: Ucontext = {
        let vm = p.user().vm();
        let g = vm.read();
        uaccess::read(&g, UserPtr::new(RtSigframe::uc_addr(frame)?))?
    };
    restore_sigcontext(regs, &uc.uc_mcontext);
    let u = td.user();
    // (The stub's spin lock is let go before the address space's sleep lock is taken.)
    let stub = u.stub.lock().clone();
    if uc.uc_mcontext.fpstate != 0
        && let Some(stub) = stub
        && let Some(host) = stub.fpstate()
    {
        let fp = {
            let vm = p.user().vm();
            let g = vm.read();
            uaccess::read_slice(&g, UserSlice::<u8>::new(uc.uc_mcontext.fpstate, host.len()))?
        };
        stub.set_fpstate(&fp);
    }
    let st = uc.uc_stack;
    {
        let mut ts = u.sigstate.sig.lock();
        ts.mask = uc.uc_sigmask & !UNBLOCKABLE;
        if !ts.altstack.on(regs.rsp()) {
            let flags = SsFlags::from_bits_retain(st.ss_flags.cast_unsigned());
            ts.altstack = AltStack {
                sp: st.ss_sp,
                size: st.ss_size,
                disabled: flags.contains(SsFlags::DISABLE),
                autodisarm: flags.contains(SsFlags::AUTODISARM),
            };
        }
    }
    u.sigstate.flag.store(true, Ordering::SeqCst);
    Ok(regs.rax())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sig: i32) -> SigInfo {
        SigInfo::user(sig, SI_USER, 1, 0)
    }

    #[test]
    fn standard_signals_merge_and_realtime_ones_queue() {
        let mut q = SigQueue::default();
        q.push(info(SIGTERM));
        q.push(info(SIGTERM));
        q.push(info(34));
        q.push(info(34));
        q.push(info(SIGINT));
        assert_eq!(q.take(!0).map(|i| i.si_signo), Some(SIGINT), "lowest first");
        assert_eq!(q.take(!bit(SIGTERM)).map(|i| i.si_signo), Some(34), "blocked ones stay");
        assert_eq!(q.take(!0).map(|i| i.si_signo), Some(SIGTERM));
        assert_eq!(q.take(!0).map(|i| i.si_signo), Some(34));
        assert_eq!(q.take(!0), None);
        assert_eq!(q.set, 0);
    }

    #[test]
    fn defaults() {
        assert_eq!(default_action(SIGCHLD), DefaultAction::Ignore);
        assert_eq!(default_action(SIGSEGV), DefaultAction::Core);
        assert_eq!(default_action(SIGTERM), DefaultAction::Term);
        assert_eq!(default_action(SIGTSTP), DefaultAction::Stop);
        assert_eq!(default_action(40), DefaultAction::Term);
    }

    #[test]
    fn numbers_and_bits() {
        assert_eq!((SIGKILL, SIGCHLD, SIGSYS, SIGRTMIN), (9, 17, 31, 32));
        assert_eq!(bit(1), 1);
        assert_eq!(bit(64), 1 << 63);
        assert_eq!((bit(0), bit(65), bit(-1), bit(i32::MIN)), (0, 0, 0, 0));
        assert!(valid(64) && !valid(65) && !valid(0));
    }

    #[test]
    fn child_status_codes() {
        let i = SigInfo::child(5, 0, 3 << 8);
        assert_eq!(i.si_code, CLD_EXITED);
        assert_eq!(i.fields::<SiChld>()._status, 3);
        assert_eq!(SigInfo::child(5, 0, 9).si_code, CLD_KILLED);
        assert_eq!(SigInfo::child(5, 0, 11 | 0x80).si_code, CLD_DUMPED);
    }

    #[test]
    fn altstack_range() {
        let a = AltStack { sp: 0x1000, size: 0x1000, disabled: false, autodisarm: false };
        assert!(a.on(0x1800) && a.on(0x2000) && !a.on(0x1000) && !a.on(0x2001));
        assert!(!AltStack { disabled: true, ..a }.on(0x1800));
        assert_eq!(a.to_guest(0x1800).ss_flags, 1);
        assert_eq!(a.to_guest(0x9000).ss_flags, 0);
        assert_eq!(AltStack::default().to_guest(0).ss_flags, 2);
        let armed = AltStack { autodisarm: true, ..a };
        assert_eq!(armed.to_guest(0x9000).ss_flags.cast_unsigned(), linux::SS_AUTODISARM);
    }

    #[test]
    fn sigcontext_round_trip() {
        let mut regs = UserRegs::default();
        for (i, g) in regs.gregs.iter_mut().enumerate() {
            *g = 0x100 + u64::try_from(i).unwrap();
        }
        regs.gregs[reg::CSGSFS] = 0x002b_0000_0000_0033;
        let mc = sigcontext_of(&regs);
        assert_eq!((mc.r8, mc.rip, mc.cr2), (0x100, 0x100 + 16, 0x100 + 22));
        assert_eq!((mc.cs, mc.gs, mc.fs, mc.ss), (0x33, 0, 0, 0x2b));
        let mut back = UserRegs::default();
        restore_sigcontext(&mut back, &mc);
        assert_eq!(back.gregs[..reg::EFL], regs.gregs[..reg::EFL]);
        assert_eq!(back.gregs[reg::EFL], regs.gregs[reg::EFL] & FIX_EFLAGS);
    }
}
