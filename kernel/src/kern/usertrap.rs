//! The life of a guest thread's kernel thread: run the guest until it traps, handle the trap
//! (a system call, a page fault, an exception, a preemption), and go back — vkernel's
//! `user_trap` / `go_user` loop, with the stub in place of the hardware.

use std::sync::{Arc, OnceLock, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kvm_mem::abi::tflags;
use platform::stub::{Ops, RunControl, StubThread, Trap, UserRegs};

use crate::kern::ctx::{Ctx, Exit};
use crate::kern::exit::{self, sigstatus};
use crate::kern::proc::UProc;
use crate::kern::signal::{SIGBUS, SIGKILL, SIGSEGV};
use crate::kern::thread::UThread;
use crate::kern::{ptrace, sched, signal};
use crate::vm::space::{Access, FaultError, VmMap};

/// The system call layer's entry: `sys::dispatch`, registered at boot (`sys::install`), since
/// `kern` sits below `sys` and does not name it. It runs the call in `ctx.regs` (`compat`: an
/// `int 0x80`) and leaves the result in rax.
pub type SyscallEntry = fn(&mut Ctx<'_>, bool);

static SYSCALL_ENTRY: OnceLock<SyscallEntry> = OnceLock::new();

/// Register the system call entry (once, before the first guest thread runs).
pub fn set_syscall_entry(f: SyscallEntry) {
    let _ = SYSCALL_ENTRY.set(f);
}

const NR_EXECVE: u64 = linux_raw_sys::general::__NR_execve as u64;
const NR_EXECVEAT: u64 = linux_raw_sys::general::__NR_execveat as u64;

/// A guest's time slice.
pub const SLICE: Duration = Duration::from_millis(SLICE_MS);
const SLICE_MS: u64 = 10;

/// How long the guest may run on this CPU, and whether the CPU is wanted back.
struct Ctl(u32);

impl RunControl for Ctl {
    fn slice(&self) -> Duration {
        // Come back for the next callout too: this CPU may be the one to run it; and for a
        // thread a sync wake-up queued here, if the guest did not sleep within its grace.
        let slice = match platform::timer::next_deadline() {
            Some(d) => Duration::from_nanos(d.saturating_sub(platform::time::uptime_ns())).min(SLICE),
            None => SLICE,
        };
        sched::sync_slice(self.0).map_or(slice, |s| s.min(slice))
    }

    fn wants_cpu(&self) -> bool {
        platform::cpu::ipis_pending(self.0)
    }
}

/// What the trap loop keeps of its thread between traps, fetched again when exec replaces
/// them (`UserThread::stub_gen`), so that a trap takes no lock to find them: its stub thread
/// — weakly, so that exec and exit, which end it with `Arc::try_unwrap`, still hold the only
/// strong reference while the thread is in a system call — and the flag that says operations
/// wait for the stub (`AddressSpace::ops_queued`).
struct Held {
    stub_gen: u64,
    stub: Weak<StubThread>,
    ops_queued: Arc<AtomicBool>,
}

impl Held {
    fn fetch(td: &UThread, p: &UProc) -> Held {
        let stub_gen = td.user().stub_gen.load(Ordering::Acquire);
        let stub = td.user().stub.lock().as_ref().map_or_else(Weak::new, Arc::downgrade);
        Held { stub_gen, stub, ops_queued: p.user().vm().read().ops_queued() }
    }

    /// Fetched again if exec replaced them since (once per trap).
    fn refresh(&mut self, td: &UThread, p: &UProc) {
        if td.user().stub_gen.load(Ordering::Acquire) != self.stub_gen {
            *self = Held::fetch(td, p);
        }
    }

    /// The thread's stub thread now (None: it has none).
    fn stub(&mut self, td: &UThread) -> Option<Arc<StubThread>> {
        self.stub.upgrade().or_else(|| {
            let s = td.user().stub.lock().clone();
            self.stub = s.as_ref().map_or_else(Weak::new, Arc::downgrade);
            s
        })
    }
}

/// Run the guest thread, with registers `regs`, until it traps (`regs` then holds its
/// registers at the trap, also left in the thread for others to see); also returns how long
/// the guest ran, and the uptime when it trapped.
fn run_user(td: &UThread, p: &UProc, held: &mut Held, regs: &mut UserRegs) -> (Trap, u64, u64) {
    let u = td.user();
    held.refresh(td, p);
    let Some(stub) = held.stub(td) else { return (Trap::Dead, 0, platform::time::uptime_ns()) };
    // A new thread's stub thread reports first: only then can it carry operations out.
    // While the CPU waits for the stub (here and in `run`), the time is the guest's and the
    // host's, not the kernel's: the watchdog does not count it.
    if !stub.started() && !in_guest(|| stub.ensure_started()) {
        return (Trap::Dead, 0, platform::time::uptime_ns());
    }
    // Nothing queued (the common case): no lock of the space. Taking the queue empty would
    // change nothing, and the flag stays set while unmaps another thread took are on their
    // way into the stub (`AddressSpace::ops_queued`): what is left in flight are mappings,
    // which a fault on a page not there yet makes again (`AddressSpace::user_fault`).
    let (mut ops, deferred, vm) = if !held.ops_queued.load(Ordering::Acquire) {
        (Ops::new(), Vec::new(), None)
    } else {
        let vm = p.user().vm();
        let others = others_in_stub(p, &vm);
        let g = vm.read();
        // With other threads in the stub, the space's operations are carried out now, under
        // the map, in order with every other thread's (see vm/space.rs); alone, on the way in.
        // Never taken to be carried out later while others may run: an operation done after
        // one queued later (a map after the unmap that followed it) would leave the stub a
        // page the table no longer has — given to someone else once freed.
        let (ops, deferred) = if others {
            if !g.sync_stub(&stub) {
                log::debug!("vm: pid {}: stub cannot carry out its mappings", p.pid);
            }
            (Ops::new(), Vec::new())
        } else {
            g.take_ops()
        };
        drop(g);
        (ops, deferred, Some(vm))
    };
    ops.append(u.take_ops());
    // Only the thread itself writes its flags: plain stores, no locked instruction.
    let flags = &td.rec.flags;
    flags.store(flags.load(Ordering::Relaxed) | tflags::INUSER, Ordering::Relaxed);
    let trap = in_guest(|| stub.run(regs, &mut ops, &Ctl(platform::cpu::curcpu())));
    sched::note_call_bound(platform::cpu::curcpu(), td, trap != Trap::Dead && stub.call_bound());
    // The stub timed the run (no clock read here); a run that saw no trap did not.
    let (resumed_ns, trapped_ns) = stub.run_times_ns();
    let (ran, now) = if trap == Trap::Dead || trapped_ns == 0 {
        (0, platform::time::uptime_ns())
    } else {
        (trapped_ns.saturating_sub(resumed_ns), trapped_ns)
    };
    // The stub has carried out the operations: the pages they unmapped can go.
    if let Some(vm) = vm
        && !deferred.is_empty()
    {
        vm.read().release(deferred);
    }
    flags.store(flags.load(Ordering::Relaxed) & !tflags::INUSER, Ordering::Relaxed);
    *u.regs.lock() = *regs;
    (trap, ran, now)
}

/// Run `f`, a host wait for this CPU's stub thread, marked as guest time (`pcpu::IN_GUEST`).
fn in_guest<T>(f: impl FnOnce() -> T) -> T {
    let cpu = platform::cpu::curcpu();
    crate::kern::pcpu::set_in_guest(cpu, true);
    let r = f();
    crate::kern::pcpu::set_in_guest(cpu, false);
    r
}

/// After a change that took access away from the address space of `ctx` (munmap, mprotect,
/// mremap, MADV_DONTNEED, a mapping over another, a smaller break, fork's copy-on-write):
/// when other threads may be running in the stub (more threads, or processes sharing the
/// memory), the stub carries the change out now, through this thread, so that they lose the
/// access before the call returns — and, for fork, before the child runs. A lone thread
/// needs nothing: it runs the queued operations before its next guest instruction.
pub fn sync_stub(ctx: &Ctx<'_>) {
    let vm = ctx.p.user().vm();
    if !others_in_stub(ctx.p, &vm) {
        return;
    }
    let g = vm.read();
    let Some(stub) = ctx.td.user().stub.lock().clone() else { return };
    g.sync_stub_unmaps(&stub);
}

/// [`sync_stub`] for a caller that holds the address space `space` (fork, which must take
/// write access away from the other threads before it lets the map go).
pub fn sync_stub_held(ctx: &Ctx<'_>, space: &crate::vm::space::AddressSpace) {
    let Some(stub) = ctx.td.user().stub.lock().clone() else { return };
    space.sync_stub_unmaps(&stub);
}

/// Whether threads other than the caller may run in the stub of `p`'s address space `vm`:
/// `p` has more threads, or other processes share the memory (CLONE_VM). Two references to
/// the space are `p`'s and the caller's; more are other sharers (or their calls in flight).
fn others_in_stub(p: &UProc, vm: &Arc<VmMap>) -> bool {
    p.nthreads() > 1 || Arc::strong_count(vm) > 2
}

/// x86's page-fault exception (#PF).
const X86_TRAP_PF: u64 = 14;
/// Page-fault error code bits (arch/x86/include/asm/trap_pf.h).
const X86_PF_WRITE: u64 = 1 << 1;
const X86_PF_INSTR: u64 = 1 << 4;

/// A memory fault: resolve it, or the guest gets SIGSEGV/SIGBUS.
fn page_fault(ctx: &mut Ctx<'_>, signo: i32, addr: u64, err: u64, trapno: u64) {
    if trapno != X86_TRAP_PF || signo != SIGSEGV {
        // A general protection fault or a host SIGBUS: no page to bring in.
        return fatal(ctx, signo, addr);
    }
    let access = if err & X86_PF_WRITE != 0 {
        Access::Write
    } else if err & X86_PF_INSTR != 0 {
        Access::Exec
    } else {
        Access::Read
    };
    crate::vm::meminfo::VM_EVENTS.pgfault.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    const RLIMIT_STACK: usize = linux_raw_sys::general::RLIMIT_STACK as usize;
    let mut r = ctx.p.user().vm().read().user_fault(addr, access);
    if r == Err(FaultError::NotMapped) {
        // Just below a MAP_GROWSDOWN mapping: it grows (RLIMIT_STACK bounds it).
        let limit = ctx.p.user().rlimits.lock()[RLIMIT_STACK].0;
        let vm = ctx.p.user().vm();
        let grew = vm.write().grow_down(addr, limit);
        if grew {
            r = vm.read().user_fault(addr, access);
        }
    }
    match r {
        Ok(_) => {}
        Err(FaultError::NotMapped) => fault_signal(ctx, SIGSEGV, signal::SEGV_MAPERR, addr),
        Err(FaultError::Protection) => fault_signal(ctx, SIGSEGV, signal::SEGV_ACCERR, addr),
        Err(FaultError::Io) => fault_signal(ctx, SIGBUS, signal::BUS_ADRERR, addr),
        Err(FaultError::OutOfMemory) => {
            crate::vm::meminfo::VM_EVENTS.oom_kill.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::kprintf!(
                "pid {} ({}), uid {}: killed: out of physical memory (fault at {:#x})\n",
                ctx.p.pid,
                ctx.p.comm(),
                ctx.p.user().cred.lock().uid,
                addr
            );
            ctx.exit = Some(Exit::Group(sigstatus(SIGKILL)));
        }
    }
}

/// A signal caused by the thread itself (a fault, an exception): it is delivered now; if
/// it is blocked or ignored, the process dies of it, as Linux's force_sig does.
fn fatal(ctx: &mut Ctx<'_>, signo: i32, addr: u64) {
    fault_signal(ctx, signo, if signo == SIGSEGV { signal::SI_KERNEL } else { 0 }, addr);
}

/// printk_ratelimit's defaults: at most [`BURST`] lines in any [`INTERVAL_NS`].
fn unhandled_ratelimit() -> bool {
    const BURST: u64 = 10;
    const INTERVAL_NS: u64 = 5_000_000_000;
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    static PRINTED: AtomicU64 = AtomicU64::new(0);
    let now = platform::time::uptime_ns();
    let start = WINDOW.load(Ordering::Relaxed);
    if now.saturating_sub(start) >= INTERVAL_NS && WINDOW.compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        PRINTED.store(0, Ordering::Relaxed);
    }
    PRINTED.fetch_add(1, Ordering::Relaxed) < BURST
}

fn fault_signal(ctx: &mut Ctx<'_>, signo: i32, code: i32, addr: u64) {
    let line = format!(
        "pid {} ({}): signal {} at {:#x} ip {:#x} sp {:#x}\n",
        ctx.p.pid,
        ctx.p.comm(),
        signo,
        addr,
        ctx.regs.rip(),
        ctx.regs.rsp()
    );
    let blocked = ctx.td.user().sigstate.sig.lock().mask & signal::bit(signo) != 0;
    let handler = ctx.p.user().sig.lock().action(signo).handler;
    // A fault that kills (no handler to catch it) is told on the console, as Linux's
    // show_unhandled_signals prints "segfault at …" (rate-limited the same way); the rest
    // only reach the message buffer (dmesg).
    let kills = blocked || handler == signal::SIG_IGN || handler == signal::SIG_DFL;
    if kills && !crate::kern::ptrace::is_traced(ctx.td) && unhandled_ratelimit() {
        crate::kprintf!("{line}");
    } else {
        crate::kern::printf::msgbuf_append(line.as_bytes());
    }
    if crate::kern::ktrace::traced(ctx.p.pid, ctx.p.rec_addr()) {
        crate::kprintf!("ktrace: {line}");
    }
    if crate::kern::ptrace::is_traced(ctx.td) {
        // The tracer sees it first (Linux's force_sig: unblocked, so the stop happens).
        ctx.td.user().sigstate.sig.lock().mask &= !signal::bit(signo);
        if handler == signal::SIG_IGN {
            ctx.p.user().sig.lock().set_action(signo, signal::SigAction::default());
        }
    } else if blocked || handler == signal::SIG_IGN {
        ctx.exit = Some(signal::die_of(ctx.td, ctx.p, ctx.regs, &signal::SigInfo::fault(signo, code, addr)));
        return;
    }
    ctx.td.user().sigstate.sig.lock().pending.push(signal::SigInfo::fault(signo, code, addr));
    ctx.td.user().sigstate.flag.store(true, Ordering::SeqCst);
}

/// The guest was preempted (its slice ended, or the CPU is wanted): take pending work and
/// let others run.
fn preempted() {
    let c = platform::cpu::curcpu();
    sched::safe_point(c);
    if sched::cpu_sched(c).nrun() > 0 {
        sched::yield_cpu();
    }
}

/// The body of a guest thread's kernel thread.
pub fn user_main() {
    let td = sched::curthread().and_then(UThread::new).expect("user_main runs in a guest thread");
    let p = td.uproc().expect("a guest thread has a guest process");
    let e = user_loop(&td, &p);
    // The thread's and the process's references go to `exit`, which drops them before the
    // thread leaves its stack for good: a reference left in a frame that never returns would
    // keep the thread (its kernel stack) and the process record forever.
    exit::exit(td, p, e)
}

/// Run the guest thread until it is to exit, and how.
fn user_loop(td: &UThread, p: &UProc) -> Exit {
    // CPU time charged to the CPU-time timers so far, and user time not yet run down on them
    // (`cputime::run_cpu_timers`, in batches).
    let mut last_cpu = sched::thread_cputime_ns(td);
    let mut timers_user_ns = 0u64;
    let mut timers_at_ns = platform::time::uptime_ns();
    // Signals already pending (a traced fork child's SIGSTOP) are taken before the first
    // instruction, as Linux's return from fork does.
    if td.user().sigstate.flag.load(Ordering::Acquire) {
        let mut regs = *td.user().regs.lock();
        let exit = signal::deliver(td, p, &mut regs, None);
        *td.user().regs.lock() = regs;
        if let Some(e) = exit {
            return e;
        }
    }
    // The first return looks at everything (an exit may have begun before this thread was
    // in the process's list); later ones only when the flag says something happened.
    let mut first = true;
    // The thread's registers live here between traps; `run_user` leaves a copy in the thread
    // at each trap and the loop at each return that did more than a system call (for ptrace,
    // core dumps, an exit's ptrace event). Whatever changes them while the thread is in the kernel (a ptrace stop, signal
    // delivery, execve, sigreturn) does so through this copy.
    let mut regs = *td.user().regs.lock();
    let mut held = Held::fetch(td, p);
    // System calls made (sites are patched after a few: `callsite`).
    let mut calls = 0u64;
    let mut seen = crate::kern::callsite::Seen::default();
    loop {
        // The CPU the guest code runs on, in its rseq area, before that code runs (a new
        // thread or fork child's first time too); an area that is gone is a SIGSEGV the
        // thread cannot handle.
        if td.user().rseq.update_cpu(|| p.user().vm(), platform::cpu::curcpu()).is_err() {
            return Exit::Group(sigstatus(SIGSEGV));
        }
        let (trap, ran, now_ns) = run_user(td, p, &mut held, &mut regs);
        let trap = crate::kern::callsite::as_guest_sees(p, trap, &mut regs);
        crate::kern::cputime::charge_user(td, ran);
        timers_user_ns += ran;
        if now_ns.saturating_sub(timers_at_ns) >= crate::kern::cputime::CPU_TIMER_BATCH_NS || trap == Trap::Kick {
            let now_cpu = sched::thread_cputime_ns(td);
            crate::kern::cputime::run_cpu_timers(p, timers_user_ns, now_cpu.saturating_sub(last_cpu));
            last_cpu = now_cpu;
            timers_user_ns = 0;
            timers_at_ns = now_ns;
        }
        let mut ctx = Ctx { td, p, regs: &mut regs, exit: None };
        let mut syscall = None;
        match trap {
            Trap::Syscall { compat } => {
                let nr = ctx.regs.rax();
                calls += 1;
                if calls >= crate::kern::callsite::calls_before() && !compat && seen.first_look(ctx.regs.rip()) {
                    let stub = held.stub(td);
                    crate::kern::callsite::maybe_patch(p, stub.as_deref(), ptrace::is_traced(td), nr, ctx.regs);
                }
                ptrace::note_trap(td, nr);
                // A tracer may stop the call at entry, change its number or skip it.
                let run = ptrace::syscall_entry(td, p, ctx.regs);
                if let Some(run_nr) = run {
                    ctx.regs.set_rax(run_nr);
                    match SYSCALL_ENTRY.get() {
                        Some(entry) => entry(&mut ctx, compat),
                        None => ctx.regs.set_rax(crate::kern::errno::to_rax(Err(crate::kern::errno::Errno::ENOSYS))),
                    }
                }
                if ctx.exit.is_none() {
                    ptrace::syscall_exit(td, p, ctx.regs);
                }
                // A new program counts its calls afresh: the old one's do not make the new
                // one's start-up calls worth patching.
                if matches!(nr, NR_EXECVE | NR_EXECVEAT) && ctx.regs.rax() == 0 {
                    calls = 0;
                    seen = crate::kern::callsite::Seen::default();
                }
                // rt_sigreturn's "result" is the restored rax: never a restart.
                let ran = run.unwrap_or(u64::MAX);
                syscall = (nr != u64::from(linux_raw_sys::general::__NR_rt_sigreturn) && run.is_some()).then_some(ran);
            }
            Trap::Fault { signo, addr, err, trapno, .. } => {
                ptrace::note_trap(td, u64::MAX);
                page_fault(&mut ctx, signo, addr, err, trapno)
            }
            Trap::Exception { signo, code, addr, .. } => {
                ptrace::note_trap(td, u64::MAX);
                fault_signal(&mut ctx, signo, code, addr)
            }
            Trap::Kick => {
                ptrace::note_trap(td, u64::MAX);
                preempted()
            }
            Trap::Start => {}
            Trap::Dead => {
                if !exit::exiting(p) {
                    crate::kprintf!("pid {} ({}): its stub process died\n", p.pid, p.comm());
                }
                ctx.exit = Some(Exit::Group(sigstatus(SIGKILL)));
            }
        }
        // A thread that traps all the time is never kicked: its slice ends here — but not
        // while its own stub operations wait (a clone's new host thread: the new thread's
        // CPU waits for it to start, in the host, and would wait for this one to run).
        // A call-bound thread may move to take turns with another on its vCPU
        // (`sched_huddle`), under the same rule.
        if !matches!(trap, Trap::Kick | Trap::Start | Trap::Dead) && !td.user().ops_pending() {
            let c = platform::cpu::curcpu();
            if sched::slice_over(c, now_ns, SLICE_MS * 1_000_000) {
                preempted();
            } else if let Some(to) = sched::huddle_target(c, td) {
                sched::huddle(to);
            }
        }
        // A thread interrupted inside an rseq critical section resumes at its abort address,
        // before any signal frame records where it was: after a preemption, fault or
        // exception, and before a signal is delivered (a system call cannot be inside one).
        let signal_due = td.user().sigstate.flag.load(Ordering::Acquire);
        if ctx.exit.is_none() && (signal_due || !matches!(trap, Trap::Syscall { .. })) {
            let r = td.user().rseq.fixup(&p.user().vm().read(), ctx.regs);
            if r.is_err() {
                fatal(&mut ctx, SIGSEGV, 0);
            }
        }
        let mut exit = ctx.exit;
        let slow = exit.is_none() && (std::mem::take(&mut first) || return_work(td, syscall, &regs));
        if slow {
            exit = signal::deliver(td, p, &mut regs, syscall);
            if exit.is_none() && exit::exiting(p) {
                exit = Some(Exit::Group(0));
            }
            if exit.is_none() && td.user().exit_req.load(Ordering::Acquire) {
                exit = Some(Exit::Thread(0));
            }
        }
        // The thread's copy as it goes back (an exit's ptrace event and core dump read it),
        // unless only a system call's result changed: then the copy from the trap stands
        // until the next trap replaces it — whoever needs the registers of a thread in guest
        // code stops it first, which goes through a trap or a stop (each storing them).
        if slow || exit.is_some() || !matches!(trap, Trap::Syscall { .. }) {
            *td.user().regs.lock() = regs;
        }
        if let Some(e) = exit {
            return e;
        }
    }
}

/// Whether the way back to the guest has work beyond the registers: a signal to deliver, a
/// stop, an exit of the process or of this thread (each announced by `signal_wake`, which
/// sets the thread's signal flag: taken here, so the flag only says what happened since), an
/// interrupted system call to restart, or a tracer to report to. Without it, the return is
/// one flag test (issue 11: the null system call takes no lock here).
fn return_work(td: &UThread, syscall: Option<u64>, regs: &UserRegs) -> bool {
    // A load first: the swap, a locked instruction, only when there is something to take.
    (td.user().sigstate.flag.load(Ordering::Acquire) && td.user().sigstate.flag.swap(false, Ordering::SeqCst))
        || ptrace::is_traced(td)
        || (syscall.is_some() && crate::kern::errno::Errno::from_rax(regs.rax()).is_some_and(crate::kern::errno::Errno::is_restart))
}
