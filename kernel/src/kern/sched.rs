//! The scheduler: per-CPU run queues, `mi_switch`, the idle loop.
//!
//! The kernel is not preemptible: a thread leaves its CPU only by sleeping, yielding or
//! exiting, and a guest thread also when its time slice ends in user mode. A woken thread goes
//! on its last CPU's run queue; that CPU is woken if it idles, or else an idle CPU is woken to
//! steal it — also when the queue is the waker's own, whose current thread may compute on.
//!
//! Thread states move under these rules, which keep every thread on at most one queue:
//! RUNNING → SLEEPING by the thread itself under its sleep-queue lock; SLEEPING → RUNNABLE by
//! the waker under the same lock, which also queues it; RUNNABLE → RUNNING by the CPU that
//! dequeues it; RUNNING → RUNNABLE (yield) by the thread itself, which queues itself. A thread
//! may be woken before it has switched away; `mi_switch` then finds it on the queue (possibly
//! taken by another CPU, which waits in `cpu_switch` until the context is saved).
//!
//! Safe points: the idle loop and every `mi_switch` take pending IPIs (debugger break-in,
//! shutdown, cross-CPU calls) and run expired callouts.
//!
//! CPU affinity (sched_setaffinity(2)): a thread is queued only on a CPU its mask allows,
//! is stolen only by one, and a running thread whose mask no longer allows its CPU moves
//! to an allowed CPU's queue at its next switch.
//!
//! Lock order: a sleep-queue bucket before a run queue; a run queue before `cur`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kvm_mem::abi::{cpustate, tflags};
use platform::MAXCPU;
use platform::cpu::{self, IPI_CALL, IPI_DDB, IPI_SHUTDOWN};
use platform::sync::SpinLock;

use crate::kern::pcpu::PCPU;
use crate::kern::thread::{Thread, pri, ThreadState};

/// A CPU as the scheduler sees it.
pub struct Cpu {
    runq: SpinLock<VecDeque<Arc<Thread>>>,
    cur: SpinLock<Option<Arc<Thread>>>,
    idle: OnceLock<Arc<Thread>>,
    /// When the current thread got the CPU (ns since boot), for runtime accounting.
    since_ns: AtomicU64,
}

impl Cpu {
    const fn new() -> Cpu {
        Cpu {
            runq: SpinLock::new("runq", VecDeque::new()),
            cur: SpinLock::new("curthread", None),
            idle: OnceLock::new(),
            since_ns: AtomicU64::new(0),
        }
    }

    pub fn idle_thread(&self) -> Option<&Arc<Thread>> {
        self.idle.get()
    }

    /// Threads waiting on this CPU's run queue.
    pub fn nrun(&self) -> usize {
        self.runq.lock().len()
    }
}

static CPUS: [Cpu; MAXCPU] = [const { Cpu::new() }; MAXCPU];

/// The scheduler's view of a CPU.
pub fn cpu_sched(c: u32) -> &'static Cpu {
    &CPUS[(c as usize).min(MAXCPU - 1)]
}

/// The thread running on the calling CPU (None off CPU: the main thread, io threads).
pub fn curthread() -> Option<Arc<Thread>> {
    let c = cpu::curcpu();
    if c as usize >= MAXCPU {
        return None;
    }
    CPUS[c as usize].cur.lock().clone()
}

fn publish_runq_len(c: u32, n: usize) {
    crate::kern::pcpu::pcpu(c).nrun.store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
}

/// Whether `td`'s affinity lets it run on CPU `c`.
fn allowed(td: &Thread, c: u32) -> bool {
    td.affinity() & (1u64 << c.min(63)) != 0
}

/// The CPU to queue `td` on: `preferred` when its affinity allows it, else the first CPU
/// that does.
fn pick_cpu(td: &Thread, preferred: u32) -> u32 {
    if allowed(td, preferred) {
        return preferred;
    }
    (0..cpu::ncpus()).find(|&c| allowed(td, c)).unwrap_or(preferred)
}

/// Queue a thread that became runnable and get a CPU to look at it.
pub fn setrunnable(td: Arc<Thread>) {
    td.set_state(ThreadState::Runnable);
    let target = pick_cpu(&td, td.last_cpu().min(cpu::ncpus().saturating_sub(1)));
    {
        let mut q = CPUS[target as usize].runq.lock();
        q.push_back(td);
        publish_runq_len(target, q.len());
    }
    notify(target);
}

/// Make sure some CPU will run what was queued on `target`: `target` itself if it idles, else
/// an idle CPU, which steals it. That includes the waker's own CPU: its current thread may run
/// on in user mode for a whole time slice (a thread that creates another and then computes),
/// and the new one should not wait for it while a CPU sleeps.
fn notify(target: u32) {
    // Pairs with the fence in `cpu::idle_prepare`: either the idle CPU sees the queue length
    // published above, or this sees its idle word set.
    std::sync::atomic::fence(Ordering::SeqCst);
    if cpu::curcpu() != target && cpu::wake_idle(target) {
        return;
    }
    wake_idle_other(target);
}

/// Wake one idle CPU other than `busy` (to steal from it). False when none idles.
fn wake_idle_other(busy: u32) -> bool {
    (0..cpu::ncpus()).any(|c| c != busy && cpu::wake_idle(c))
}

/// Give up the CPU: run the next queued thread, or idle. Returns when this thread runs again
/// (at once if nothing else wants the CPU and this thread is still runnable).
pub fn mi_switch() {
    let c = cpu::curcpu();
    assert!((c as usize) < MAXCPU, "mi_switch off CPU");
    let held = platform::sync::spinlocks_held();
    assert!(held == 0, "mi_switch with {held} spin locks held");
    safe_point(c);
    let cpu_s = &CPUS[c as usize];
    let cur = cpu_s.cur.lock().clone().expect("mi_switch without a current thread");
    // Its affinity no longer allows this CPU: onto the queue of one it allows.
    if cur.state() == ThreadState::Running && !cur.is_idle() && !allowed(&cur, c) {
        let target = pick_cpu(&cur, c);
        if target != c {
            cur.set_state(ThreadState::Runnable);
            cur.rec.cpu.store(target, Ordering::Relaxed);
            {
                let mut q = CPUS[target as usize].runq.lock();
                q.push_back(Arc::clone(&cur));
                publish_runq_len(target, q.len());
            }
            notify(target);
        }
    }
    let state = cur.state();
    let next = {
        let mut q = cpu_s.runq.lock();
        let next = match q.pop_front() {
            Some(n) => {
                if state == ThreadState::Running && !cur.is_idle() && !Arc::ptr_eq(&n, &cur) {
                    cur.set_state(ThreadState::Runnable);
                    q.push_back(Arc::clone(&cur));
                }
                n
            }
            None if state == ThreadState::Running || cur.is_idle() => {
                drop(q);
                return;
            }
            // Asleep, dead, or woken and taken by another CPU: go idle.
            None => Arc::clone(cpu_s.idle.get().expect("cpu has no idle thread")),
        };
        publish_runq_len(c, q.len());
        // More is waiting here (the thread being preempted, say): an idle CPU can take it.
        if !q.is_empty() {
            drop(q);
            wake_idle_other(c);
        }
        next
    };
    if Arc::ptr_eq(&next, &cur) {
        cur.set_state(ThreadState::Running);
        return;
    }
    switch_to(c, cur, next);
}

/// Account, publish and switch.
fn switch_to(c: u32, cur: Arc<Thread>, next: Arc<Thread>) {
    let cpu_s = &CPUS[c as usize];
    let now = platform::time::uptime_ns();
    let ran = now.saturating_sub(cpu_s.since_ns.swap(now, Ordering::Relaxed));
    cur.rec.runtime_ns.fetch_add(ran, Ordering::Relaxed);
    next.rec.cpu.store(c, Ordering::Relaxed);
    next.rec.switches.fetch_add(1, Ordering::Relaxed);
    // `next` becomes RUNNING only once it runs (below, in its own context): until then
    // another CPU may still be switching it out, and must not see it as already running
    // (it would keep it instead of giving it up).
    if cur.is_idle() {
        cur.set_state(ThreadState::Runnable);
    }
    let rec = &PCPU[c as usize];
    rec.curthread.store(next.rec_addr(), Ordering::Release);
    rec.switches.fetch_add(1, Ordering::Relaxed);
    rec.state.store(if next.is_idle() { cpustate::IDLE } else { cpustate::RUNNING }, Ordering::Relaxed);
    *cpu_s.cur.lock() = Some(Arc::clone(&next));
    // A guest thread leaving the CPU (asleep, preempted): its stub, trapped and waiting for
    // it, stops spinning — it cannot be resumed before this thread runs again.
    if let Some(u) = cur.as_user()
        && let Some(stub) = u.stub.lock().as_ref()
    {
        stub.nap();
    }
    platform::kthread::switch(cur, next);
    mark_running();
}

/// The thread now on this CPU runs: called by every thread as it resumes or starts.
pub fn mark_running() {
    if let Some(t) = curthread() {
        t.set_state(ThreadState::Running);
    }
}

/// Yield the CPU to other runnable threads.
pub fn yield_cpu() {
    mi_switch();
}

/// End the calling thread: it leaves its process and never runs again; its stack is freed by
/// the next thread on this CPU once the switch is done.
pub fn thread_exit() -> ! {
    let c = cpu::curcpu();
    let cur = curthread().expect("thread_exit off CPU");
    cur.set_state(ThreadState::Dead);
    if let Some(p) = cur.proc_() {
        let _ = p.remove_thread(cur.tid());
    }
    let next = {
        let mut q = CPUS[c as usize].runq.lock();
        let n = q.pop_front();
        publish_runq_len(c, q.len());
        n
    }
    .unwrap_or_else(|| Arc::clone(CPUS[c as usize].idle.get().expect("cpu has no idle thread")));
    switch_to(c, cur, next);
    unreachable!("a dead thread ran again");
}

/// A thread's CPU time: what it has run, plus the slice it is running now.
pub fn thread_cputime_ns(td: &Thread) -> u64 {
    let base = td.rec.runtime_ns.load(Ordering::Relaxed);
    let c = td.rec.cpu.load(Ordering::Relaxed) as usize;
    if td.state() != ThreadState::Running || c >= MAXCPU {
        return base;
    }
    let cpu_s = &CPUS[c];
    let on = cpu_s.cur.lock().as_ref().is_some_and(|t| std::ptr::eq(&**t, td));
    if !on {
        return base;
    }
    base + platform::time::uptime_ns().saturating_sub(cpu_s.since_ns.load(Ordering::Relaxed))
}

/// Create a kernel thread of proc0 and make it runnable on `cpu`.
pub fn kthread_start(name: &str, on_cpu: u32, f: impl FnOnce() + Send + 'static) -> std::io::Result<Arc<Thread>> {
    let td = Thread::new_kthread(&crate::kern::proc::proc0(), name, 0, pri::KTHREAD, f)?;
    td.rec.cpu.store(on_cpu, Ordering::Relaxed);
    setrunnable(Arc::clone(&td));
    Ok(td)
}

/// Run `f` on CPU `target` at its next safe point (a cross-CPU call).
pub fn smp_call(target: u32, f: impl FnOnce() + Send + 'static) {
    cpu::post_call(target, f);
}

/// Run `f` on CPU `target` and sleep until it has run there (`smp_call_function_single` with
/// wait). Runs it directly when the caller is already on `target`.
pub fn smp_call_wait(target: u32, wmesg: &str, f: impl FnOnce() + Send + 'static) {
    use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
    use std::sync::atomic::AtomicBool;
    if cpu::curcpu() == target {
        f();
        return;
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    smp_call(target, move || {
        f();
        flag.store(true, Ordering::Release);
        wakeup(wchan_of(&*flag));
    });
    loop {
        let g = sleepq_lock(wchan_of(&*done));
        if done.load(Ordering::Acquire) {
            return;
        }
        tsleep_locked(g, wmesg, SleepOpts::UNINTERRUPTIBLE);
    }
}

/// Work that waits for a safe point: IPIs and expired callouts.
pub fn safe_point(c: u32) {
    crate::kern::pcpu::safe_point_passed(c);
    let bits = cpu::take_ipis(c);
    if bits & IPI_SHUTDOWN != 0 {
        crate::kern::shutdown::shutdown_nice();
    }
    if bits & IPI_DDB != 0 {
        crate::kern::kdb::enter("break-in");
    }
    if bits & IPI_CALL != 0 {
        for f in cpu::take_calls(c) {
            f();
        }
    }
    platform::timer::run_expired(platform::time::uptime_ns());
}

/// Take a runnable thread from another CPU's queue onto ours.
fn steal(c: u32) -> bool {
    for other in 0..cpu::ncpus() {
        if other == c {
            continue;
        }
        let stolen = {
            let Some(mut q) = CPUS[other as usize].runq.try_lock() else { continue };
            let td = q.iter().rposition(|t| allowed(t, c)).and_then(|i| q.remove(i));
            publish_runq_len(other, q.len());
            td
        };
        if let Some(td) = stolen {
            td.rec.cpu.store(c, Ordering::Relaxed);
            let mut q = CPUS[c as usize].runq.lock();
            q.push_back(td);
            publish_runq_len(c, q.len());
            return true;
        }
    }
    false
}

/// The idle thread's loop: run what is queued, else sleep in the host until an IPI, a wake-up
/// or the next callout deadline (vkernel's `cpu_idle`).
fn idle_loop(c: u32) -> ! {
    let cpu_s = &CPUS[c as usize];
    let rec = &PCPU[c as usize];
    loop {
        safe_point(c);
        if !cpu_s.runq.lock().is_empty() || steal(c) {
            mi_switch();
            continue;
        }
        cpu::idle_prepare(c);
        let now = platform::time::uptime_ns();
        let due = platform::timer::next_deadline().is_some_and(|d| d <= now);
        // Work queued anywhere since the look above (a waker that found this CPU still awake
        // woke no one): go round again and steal it rather than sleep.
        let queued_elsewhere = (0..cpu::ncpus()).any(|o| o != c && PCPU[o as usize].nrun.load(Ordering::Relaxed) > 0);
        if due || cpu::ipis_pending(c) || !cpu_s.runq.lock().is_empty() || queued_elsewhere {
            cpu::idle_cancel(c);
            continue;
        }
        let timeout = platform::timer::next_deadline().map(|d| Duration::from_nanos(d - now));
        rec.state.store(cpustate::IDLE, Ordering::Relaxed);
        cpu::idle_sleep(c, timeout);
        rec.state.store(cpustate::RUNNING, Ordering::Relaxed);
        rec.idle_ns.fetch_add(platform::time::uptime_ns().saturating_sub(now), Ordering::Relaxed);
    }
}

/// A vCPU's life: make its idle thread, announce itself, and enter the idle loop. `first`,
/// when given, is queued before idling (cpu0's boot thread).
pub fn cpu_main(c: u32, first: Option<Arc<Thread>>) -> ! {
    let idle = Thread::new_kthread(&crate::kern::proc::proc0(), &format!("idle: cpu{c}"), tflags::IDLE, pri::IDLE, move || idle_loop(c))
        .unwrap_or_else(|e| panic!("cpu{c}: cannot create the idle thread: {e}"));
    idle.rec.cpu.store(c, Ordering::Relaxed);
    let cpu_s = &CPUS[c as usize];
    let _ = cpu_s.idle.set(Arc::clone(&idle));
    let rec = &PCPU[c as usize];
    rec.host_tid.store(cpu::pcpu(c).host_tid.load(Ordering::Relaxed), Ordering::Relaxed);
    rec.idlethread.store(idle.rec_addr(), Ordering::Relaxed);
    rec.curthread.store(idle.rec_addr(), Ordering::Relaxed);
    rec.state.store(cpustate::RUNNING, Ordering::Relaxed);
    idle.set_state(ThreadState::Running);
    idle.rec.switches.fetch_add(1, Ordering::Relaxed);
    *cpu_s.cur.lock() = Some(Arc::clone(&idle));
    cpu_s.since_ns.store(platform::time::uptime_ns(), Ordering::Relaxed);
    if let Some(td) = first {
        td.rec.cpu.store(c, Ordering::Relaxed);
        setrunnable(td);
    }
    platform::kthread::enter(idle)
}
