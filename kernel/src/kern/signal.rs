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

use crate::kern::ctx::Exit;
use crate::kern::errno::Errno;
use crate::kern::exit::sigstatus;
use crate::kern::proc::UProc;
use crate::kern::sleep::wake_thread;
use crate::kern::thread::UThread;
use crate::kern::thread::{Thread, WakeReason, ThreadState};
use crate::vm::uaccess;

pub const NSIG: usize = 64;
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const MINSIGSTKSZ: u64 = 2048;

// si_code values
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;

/// Bit of `sig` in a signal set.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can be neither blocked, caught nor ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn valid(sig: i32) -> bool {
    (1..=NSIG as i32).contains(&sig)
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

/// A sigaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A siginfo: signal, errno, code, and the 112-byte union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub fields: [u8; 112],
}

impl SigInfo {
    fn with(signo: i32, code: i32) -> SigInfo {
        SigInfo { signo, code, fields: [0; 112] }
    }

    fn put(&mut self, off: usize, b: &[u8]) {
        self.fields[off..off + b.len()].copy_from_slice(b);
    }

    /// From kill(2) or tgkill(2).
    pub fn user(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut i = SigInfo::with(signo, code);
        i.put(0, &pid.to_le_bytes());
        i.put(4, &uid.to_le_bytes());
        i
    }

    /// From the kernel itself (a timer): no sender.
    pub fn kernel(signo: i32, code: i32) -> SigInfo {
        SigInfo::with(signo, code)
    }

    /// From a fault at `addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut i = SigInfo::with(signo, code);
        i.put(0, &addr.to_le_bytes());
        i
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
        let mut i = SigInfo::with(SIGCHLD, code);
        i.put(0, &pid.to_le_bytes());
        i.put(4, &uid.to_le_bytes());
        i.put(8, &value.to_le_bytes());
        i
    }

    /// SIGCHLD for a child event `code` (CLD_STOPPED, CLD_CONTINUED) with si_status `status`.
    pub fn child_event(pid: i32, uid: u32, code: i32, status: i32) -> SigInfo {
        let mut i = SigInfo::with(SIGCHLD, code);
        i.put(0, &pid.to_le_bytes());
        i.put(4, &uid.to_le_bytes());
        i.put(8, &status.to_le_bytes());
        i
    }

    /// The guest's `siginfo_t` (128 bytes).
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        b[16..128].copy_from_slice(&self.fields);
        b
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
        let b = bit(info.signo);
        if info.signo < 32 && self.set & b != 0 {
            return;
        }
        if self.infos.len() >= MAX_QUEUED && info.signo >= 32 {
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
        let sig = avail.trailing_zeros() as i32 + 1;
        let i = self.infos.iter().position(|x| x.signo == sig)?;
        let info = self.infos.remove(i);
        if !self.infos.iter().any(|x| x.signo == sig) {
            self.set &= !bit(sig);
        }
        Some(info)
    }

    pub fn clear(&mut self) {
        *self = SigQueue::default();
    }

    /// Drop every pending signal in `mask`.
    pub fn discard(&mut self, mask: u64) {
        if self.set & mask == 0 {
            return;
        }
        self.infos.retain(|x| bit(x.signo) & mask == 0);
        self.set &= !mask;
    }
}

/// An alternate signal stack (sigaltstack(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub disabled: bool,
}

impl AltStack {
    pub fn on(&self, sp: u64) -> bool {
        !self.disabled && self.size > 0 && sp > self.sp && sp <= self.sp + self.size
    }
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
    pub actions: [SigAction; NSIG + 1],
    pub pending: SigQueue,
}

impl ProcSig {
    pub fn new() -> ProcSig {
        ProcSig { actions: [SigAction::default(); NSIG + 1], pending: SigQueue::default() }
    }

    /// After exec: handlers become the default, ignored signals stay ignored.
    pub fn reset_handlers(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
            a.flags &= !SA_ONSTACK;
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
        ThreadSigState { sig: SpinLock::new("thread_sig", ThreadSig { mask, ..Default::default() }), flag: AtomicBool::new(false) }
    }
}

/// Whether a signal sent now would be thrown away: its action ignores it and no thread has
/// it blocked (a blocked signal stays pending, as the action may change before it is taken).
fn is_ignored(p: &UProc, sig: i32) -> bool {
    let a = p.user().sig.lock().actions[sig as usize];
    let ignores = a.handler == SIG_IGN || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore);
    ignores && !p.threads().iter().any(|t| t.user().sigstate.sig.lock().mask & bit(sig) != 0)
}

/// Make a thread notice a signal: wake it from an interruptible sleep, or kick it out of
/// user mode.
pub fn signal_wake(td: &UThread) {
    let u = td.user();
    u.sigstate.flag.store(true, Ordering::SeqCst);
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
    }
}

/// Send a signal to a process (kill(2)).
pub fn send_to_proc(p: &UProc, info: SigInfo) {
    let sig = info.signo;
    if p.is_zombie() {
        return;
    }
    if sig == SIGKILL {
        kill_process(p, sigstatus(SIGKILL));
        return;
    }
    crate::kern::jobctl::on_send(p, sig);
    if is_ignored(p, sig) {
        return;
    }
    p.user().sig.lock().pending.push(info);
    let threads = p.threads();
    let target = threads.iter().find(|t| t.user().sigstate.sig.lock().mask & bit(sig) == 0).or(threads.first());
    if let Some(t) = target {
        signal_wake(t);
    }
}

/// Send a signal to one thread (tgkill(2), faults).
pub fn send_to_thread(td: &UThread, info: SigInfo) {
    let Some(p) = td.uproc() else { return };
    if info.signo == SIGKILL {
        kill_process(&p, sigstatus(SIGKILL));
        return;
    }
    crate::kern::jobctl::on_send(&p, info.signo);
    if is_ignored(&p, info.signo) {
        return;
    }
    td.user().sigstate.sig.lock().pending.push(info);
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
}

/// Whether a thread has a signal it would take now (for interruptible sleeps).
pub fn pending(td: &Thread) -> bool {
    let Some(u) = td.as_user() else { return false };
    if !u.sigstate.flag.load(Ordering::SeqCst) {
        return false;
    }
    let Some(p) = td.proc_().and_then(UProc::new) else { return false };
    if crate::kern::exit::exiting(&p) || crate::kern::jobctl::is_stopped(&p) {
        return true;
    }
    let ps = p.user().sig.lock();
    let ts = u.sigstate.sig.lock();
    let deliverable = (ts.pending.set | ps.pending.set) & !ts.mask;
    if deliverable == 0 {
        u.sigstate.flag.store(false, Ordering::SeqCst);
    }
    deliverable != 0
}

/// Take the next deliverable signal (thread queue first) among those not in `mask`.
pub fn dequeue(td: &UThread, p: &UProc, allowed: u64) -> Option<SigInfo> {
    let u = td.user();
    let mut ps = p.user().sig.lock();
    let mut ts = u.sigstate.sig.lock();
    ts.pending.take(allowed).or_else(|| ps.pending.take(allowed))
}

const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;

/// Back up to re-execute the system call instruction.
fn restart(regs: &mut UserRegs, orig_rax: u64) {
    regs.set_rax(orig_rax);
    regs.set_rip(regs.rip().wrapping_sub(2));
}

/// On the way back to user mode: deliver what is pending. `syscall` says the trap was a
/// system call whose number was `orig_rax` (for restarts). Returns an exit if a signal
/// kills the process.
pub fn deliver(td: &UThread, p: &UProc, regs: &mut UserRegs, syscall: Option<u64>) -> Option<Exit> {
    let mut restart_pending = syscall.filter(|_| {
        let r = regs.rax() as i64;
        r == ERESTARTSYS || r == ERESTARTNOINTR || r == ERESTARTNOHAND || r == ERESTART_RESTARTBLOCK
    });
    loop {
        if crate::kern::exit::exiting(p) {
            return Some(Exit::Group(0));
        }
        if crate::kern::jobctl::is_stopped(p) {
            crate::kern::jobctl::park(p);
            continue;
        }
        let mask = td.user().sigstate.sig.lock().mask;
        let Some(info) = dequeue(td, p, !mask | UNBLOCKABLE) else { break };
        let sig = info.signo;
        let act = p.user().sig.lock().actions[sig as usize];
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
                DefaultAction::Term => return Some(Exit::Group(sigstatus(sig))),
                DefaultAction::Core => return Some(Exit::Group(sigstatus(sig))), // no core file is written, so no WCOREDUMP
            },
            _ => {}
        }
        if let Some(orig) = restart_pending.take() {
            let r = regs.rax() as i64;
            if r == ERESTARTNOINTR || (r == ERESTARTSYS && act.flags & SA_RESTART != 0) {
                restart(regs, orig);
            } else {
                regs.set_rax(crate::kern::errno::to_rax(Err(Errno::EINTR)));
            }
        }
        if setup_frame(td, p, regs, &info, &act).is_err() {
            return Some(Exit::Group(sigstatus(SIGSEGV)));
        }
    }
    if let Some(orig) = restart_pending {
        // No handler ran: the interrupted call starts again.
        restart(regs, orig);
    }
    None
}

/// Size of the rt_sigframe: the return address, the ucontext, the siginfo.
const FRAME_SIZE: u64 = 8 + 304 + 128;
const UC_OFF: u64 = 8;
const INFO_OFF: u64 = 8 + 304;

/// Build the handler's frame and point the registers at the handler.
fn setup_frame(td: &UThread, p: &UProc, regs: &mut UserRegs, info: &SigInfo, act: &SigAction) -> Result<(), Errno> {
    let u = td.user();
    let sig = info.signo;
    if act.flags & SA_RESTORER == 0 || act.restorer == 0 {
        // x86-64 programs always give a restorer; without one the handler could not return.
        return Err(Errno::EFAULT);
    }
    let (old_mask, alt) = {
        let mut ts = u.sigstate.sig.lock();
        let old = ts.saved_mask.take().unwrap_or(ts.mask);
        (old, ts.altstack)
    };
    let mut sp = regs.rsp();
    let on_alt = alt.on(sp);
    if act.flags & SA_ONSTACK != 0 && !alt.disabled && alt.size > 0 && !on_alt {
        sp = alt.sp + alt.size;
    } else {
        sp = sp.wrapping_sub(128); // the red zone
    }
    let fp = u.stub.lock().as_ref().and_then(|s| s.fpstate()).unwrap_or_default();
    sp = sp.wrapping_sub(fp.len() as u64) & !63;
    let fp_addr = sp;
    sp = (sp.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    let frame = sp;
    let mut f = vec![0u8; FRAME_SIZE as usize];
    f[0..8].copy_from_slice(&act.restorer.to_le_bytes());
    let uc = UC_OFF as usize;
    let xsave = fp.len() > 512;
    let uc_flags: u64 = 0x6 | u64::from(xsave);
    f[uc..uc + 8].copy_from_slice(&uc_flags.to_le_bytes());
    f[uc + 16..uc + 24].copy_from_slice(&alt.sp.to_le_bytes());
    let ss_flags: i32 = if alt.disabled || alt.size == 0 { SS_DISABLE } else if on_alt { SS_ONSTACK } else { 0 };
    f[uc + 24..uc + 28].copy_from_slice(&ss_flags.to_le_bytes());
    f[uc + 32..uc + 40].copy_from_slice(&alt.size.to_le_bytes());
    let mc = uc + 40;
    for (i, g) in regs.gregs.iter().enumerate() {
        f[mc + 8 * i..mc + 8 * i + 8].copy_from_slice(&g.to_le_bytes());
    }
    let fp_ptr = if fp.is_empty() { 0 } else { fp_addr };
    f[mc + 8 * 23..mc + 8 * 24].copy_from_slice(&fp_ptr.to_le_bytes());
    f[uc + 296..uc + 304].copy_from_slice(&old_mask.to_le_bytes());
    f[INFO_OFF as usize..].copy_from_slice(&info.to_bytes());
    {
        let vm = p.user().vm();
        let g = vm.read();
        if !fp.is_empty() {
            uaccess::copyout(&g, fp_addr, &fp)?;
        }
        uaccess::copyout(&g, frame, &f)?;
    }
    if let Some(s) = u.stub.lock().as_ref() {
        s.reset_fpstate();
    }
    regs.gregs[reg::RDI] = sig as u64;
    regs.gregs[reg::RSI] = frame + INFO_OFF;
    regs.gregs[reg::RDX] = frame + UC_OFF;
    regs.set_rax(0);
    regs.set_rsp(frame);
    regs.set_rip(act.handler);
    // Clear DF and TF for the handler, as Linux does.
    regs.gregs[reg::EFL] &= !(0x400 | 0x100);
    let mut new_mask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        new_mask |= bit(sig);
    }
    u.sigstate.sig.lock().mask = new_mask & !UNBLOCKABLE;
    if act.flags & SA_RESETHAND != 0 {
        p.user().sig.lock().actions[sig as usize] = SigAction::default();
    }
    Ok(())
}

/// Flags rt_sigreturn takes from the frame (the rest stay as they were).
const FIX_EFLAGS: u64 = 0x0004_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;

/// rt_sigreturn(2): restore what the frame at `rsp - 8` saved.
pub fn sigreturn(td: &UThread, p: &UProc, regs: &mut UserRegs) -> Result<u64, Errno> {
    let frame = regs.rsp().wrapping_sub(8);
    let mut uc = vec![0u8; 304];
    {
        let vm = p.user().vm();
        let g = vm.read();
        uaccess::copyin(&g, frame + UC_OFF, &mut uc)?;
    }
    let word = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().unwrap_or([0; 8]));
    let mc = 40;
    let old_efl = regs.gregs[reg::EFL];
    for i in 0..reg::WRITABLE {
        regs.gregs[i] = word(mc + 8 * i);
    }
    regs.gregs[reg::EFL] = (old_efl & !FIX_EFLAGS) | (regs.gregs[reg::EFL] & FIX_EFLAGS);
    let fp_ptr = word(mc + 8 * 23);
    let mask = word(296) & !UNBLOCKABLE;
    let (ss_sp, ss_flags, ss_size) = (word(16), word(24) as i32, word(32));
    let u = td.user();
    if fp_ptr != 0
        && let Some(stub) = u.stub.lock().clone()
        && let Some(host) = stub.fpstate()
    {
        let mut fp = vec![0u8; host.len()];
        let vm = p.user().vm();
        let g = vm.read();
        uaccess::copyin(&g, fp_ptr, &mut fp)?;
        drop(g);
        stub.set_fpstate(&fp);
    }
    {
        let mut ts = u.sigstate.sig.lock();
        ts.mask = mask;
        if !ts.altstack.on(regs.rsp()) {
            ts.altstack = AltStack { sp: ss_sp, size: ss_size, disabled: ss_flags & SS_DISABLE != 0 };
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
        assert_eq!(q.take(!0).map(|i| i.signo), Some(SIGINT), "lowest first");
        assert_eq!(q.take(!bit(SIGTERM)).map(|i| i.signo), Some(34), "blocked ones stay");
        assert_eq!(q.take(!0).map(|i| i.signo), Some(SIGTERM));
        assert_eq!(q.take(!0).map(|i| i.signo), Some(34));
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
    fn child_status_codes() {
        let i = SigInfo::child(5, 0, 3 << 8);
        assert_eq!(i.code, CLD_EXITED);
        assert_eq!(i32::from_le_bytes(i.fields[8..12].try_into().unwrap()), 3);
        assert_eq!(SigInfo::child(5, 0, 9).code, CLD_KILLED);
        assert_eq!(SigInfo::child(5, 0, 11 | 0x80).code, CLD_DUMPED);
    }

    #[test]
    fn altstack_range() {
        let a = AltStack { sp: 0x1000, size: 0x1000, disabled: false };
        assert!(a.on(0x1800) && a.on(0x2000) && !a.on(0x1000) && !a.on(0x2001));
        assert!(!AltStack { disabled: true, ..a }.on(0x1800));
    }
}
