//! The scheduler: per-CPU run queues, `mi_switch`, the idle loop.
//!
//! The kernel is not preemptible: a thread leaves its CPU only by sleeping, yielding or
//! exiting, and a guest thread also when its time slice ends — kicked in user mode, or on its
//! way back there from a trap ([`slice_over`]: a thread that makes system calls in a loop is
//! never in user mode long enough to be kicked). A woken thread goes
//! on its last CPU's run queue; that CPU is woken if it idles, or else an idle CPU is woken to
//! steal it — also when the queue is the waker's own, whose current thread may compute on
//! (not when the waker is leaving the CPU: its idle thread, a thread going to sleep).
//! A sync wake-up ([`wake_sync`]: a child's exit waking its parent, pipes) and a new process's first
//! run instead queue it on the waker's CPU and wake no one, and an idle CPU polls a while
//! before it sleeps in the host: the policy, its grace period and the poll budget are
//! [`crate::kern::sched_wake`]'s.
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
//! Huddling ([`crate::kern::sched_huddle`]): on a host with too few CPUs, call-bound threads
//! move onto one vCPU's queue and take turns there; an idle CPU does not steal them back
//! while that would crowd the host again.
//!
//! CPU affinity (sched_setaffinity(2)): a thread is queued only on a CPU its mask allows,
//! is stolen only by one, and a running thread whose mask no longer allows its CPU moves
//! to an allowed CPU's queue at its next switch.
//!
//! Lock order: a sleep-queue bucket before a run queue; a run queue before `cur`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kvm_mem::abi::{cpustate, tflags};
use platform::MAXCPU;
use platform::cpu::{self, IPI_CALL, IPI_DDB, IPI_SHUTDOWN};
use platform::sync::SpinLock;

use crate::kern::pcpu::PCPU;
use crate::kern::sched_wake::{self, PollBudget};
use crate::kern::thread::{Thread, pri, ThreadState};

/// A CPU as the scheduler sees it.
pub struct Cpu {
    runq: SpinLock<VecDeque<Arc<Thread>>>,
    cur: SpinLock<Option<Arc<Thread>>>,
    idle: OnceLock<Arc<Thread>>,
    /// When the current thread got the CPU (ns since boot), for runtime accounting.
    since_ns: AtomicU64,
    /// Until when (uptime ns) the thread a sync wake-up queued here alone may not be stolen.
    sync_until_ns: AtomicU64,
    /// The next wake-up from this CPU is sync ([`wake_sync`]).
    sync_hint: AtomicBool,
    /// Until when (uptime ns) wake-ups from this CPU are not sync: one it queued missed its
    /// grace ([`sched_wake::sync_backoff_end`]).
    sync_off_until_ns: AtomicU64,
    /// How long this CPU polls when it goes idle.
    poll: PollBudget,
    /// The CPU (plus one; 0: none) its current thread is to be queued on at its next
    /// `mi_switch` ([`huddle`]).
    move_to: AtomicU32,
}

impl Cpu {
    const fn new() -> Cpu {
        Cpu {
            runq: SpinLock::new("runq", VecDeque::new()),
            cur: SpinLock::new("curthread", None),
            idle: OnceLock::new(),
            since_ns: AtomicU64::new(0),
            sync_until_ns: AtomicU64::new(0),
            sync_hint: AtomicBool::new(false),
            sync_off_until_ns: AtomicU64::new(0),
            poll: PollBudget::new(),
            move_to: AtomicU32::new(0),
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

/// The vCPUs whose current thread is call-bound (bit N: vCPU N; [`crate::kern::sched_huddle`]).
static CALL_BOUND_CPUS: AtomicU64 = AtomicU64::new(0);

/// Mark whether vCPU `c` runs a call-bound thread now (a write only when that changes).
/// When it stops, no idle vCPU is woken to steal what huddles: the next switch on a vCPU
/// with more queued wakes one (`mi_switch`), within a time slice — a thread that is
/// call-bound again a few cycles later (a migration of its stub stretched some) does not
/// move back and forth.
fn set_cpu_call_bound(c: u32, bound: bool) {
    let bit = 1u64 << c;
    if (CALL_BOUND_CPUS.load(Ordering::Relaxed) & bit != 0) == bound {
        return;
    }
    if bound {
        CALL_BOUND_CPUS.fetch_or(bit, Ordering::Relaxed);
    } else {
        CALL_BOUND_CPUS.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Whether queued thread `t` stays where it is rather than be stolen by an idle vCPU: it is
/// call-bound and, running beside the vCPUs that run call-bound threads now, it would make
/// more spinning pairs than the host has CPUs for.
fn huddled(t: &Thread) -> bool {
    t.call_bound()
        && crate::kern::sched_huddle::crowded(CALL_BOUND_CPUS.load(Ordering::Relaxed).count_ones() + 1, platform::stub::spin::host_cpus())
}

/// The guest thread `td` on vCPU `c` trapped, and its hand-overs are call-bound or not
/// (`bound`, its stub's measure): noted for the huddling decisions.
pub fn note_call_bound(c: u32, td: &Thread, bound: bool) {
    td.set_call_bound(bound);
    if (c as usize) < MAXCPU {
        set_cpu_call_bound(c, bound);
    }
}

/// Where the call-bound thread `td` on vCPU `c` should huddle now, if anywhere
/// ([`crate::kern::sched_huddle`]).
pub fn huddle_target(c: u32, td: &Thread) -> Option<u32> {
    if !td.call_bound() || cpu::ncpus() < 2 {
        return None;
    }
    let mask = CALL_BOUND_CPUS.load(Ordering::Relaxed);
    if !crate::kern::sched_huddle::crowded(mask.count_ones(), platform::stub::spin::host_cpus()) {
        return None;
    }
    crate::kern::sched_huddle::target(c, mask, td.affinity())
}

/// Move the calling thread onto vCPU `target`'s queue and give up this one (a huddle).
pub fn huddle(target: u32) {
    count(Stat::Huddles);
    let c = cpu::curcpu();
    if let Some(cpu_s) = CPUS.get(c as usize) {
        cpu_s.move_to.store(target.min(cpu::ncpus().saturating_sub(1)) + 1, Ordering::Relaxed);
    }
    mi_switch();
}

/// Scheduler events, counted for `-e sched.stats=1` ([`report_stats`]).
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
enum Stat {
    /// A wake-up queued on the waker's own CPU / on another CPU / by a thread not on a CPU.
    WakeHere,
    WakeThere,
    WakeOffCpu,
    /// A sync wake-up (or `sched.fork_local` start) queued on the waker's CPU.
    SyncQueued,
    /// Threads stolen by an idle CPU, and those of them that had never run.
    Steals,
    StealsNew,
    /// Idle periods that ended in a host sleep, or in a poll that found work / found none.
    IdleSleeps,
    PollFound,
    PollEmpty,
    /// Idle CPUs woken for a queue: its own, another's (to steal), one with more waiting.
    NotifyTarget,
    NotifyOther,
    SwitchWakeOther,
    /// Host idle sleeps that ended by their timeout.
    IdleTimeouts,
    /// Threads a sync wake-up queued whose waker did not sleep within the grace: stolen, or
    /// the waker preempted for them.
    SyncExpired,
    /// Call-bound threads moved onto another vCPU's queue to take turns there
    /// ([`crate::kern::sched_huddle`]), and steals not made because of it.
    Huddles,
    HuddleKept,
}

const STAT_NAMES: [&str; 16] = [
    "wake_here", "wake_there", "wake_offcpu", "sync_queued", "steals", "steals_new", "idle_sleeps", "poll_found", "poll_empty",
    "notify_target", "notify_other", "switch_wake_other", "idle_timeouts", "sync_expired", "huddles", "huddle_kept",
];
static STATS: [AtomicU64; STAT_NAMES.len()] = [const { AtomicU64::new(0) }; STAT_NAMES.len()];

fn count(s: Stat) {
    platform::stub::spin::count(&STATS[s as usize]);
}

/// The scheduler's and the hand-overs' event counts, one `name=value` list (`-e sched.stats=1`
/// prints it when the machine halts).
pub fn stats_line() -> String {
    let h = &platform::stub::spin::STATS;
    let mut v: Vec<String> = STAT_NAMES.iter().zip(STATS.iter()).map(|(n, c)| format!("{n}={}", c.load(Ordering::Relaxed))).collect();
    for (n, c) in [
        ("idle_wakes", &cpu::IDLE_WAKES),
        ("stub_wakes", &h.stub_wakes),
        ("cpu_sleeps", &h.cpu_sleeps),
        ("cpu_spin_hits", &h.cpu_spin_hits),
        ("cpu_yield_hits", &h.cpu_yield_hits),
        ("places", &h.places),
        ("kicks", &h.kicks),
        ("fast_calls", &h.fast_calls),
        ("residue_exits", &crate::vm::residue::EXITS_KEEPING),
        ("residue_kept", &crate::vm::residue::PAGES_KEPT),
        ("residue_dropped", &crate::vm::residue::PAGES_DROPPED),
        ("residue_adopted", &crate::vm::residue::PAGES_ADOPTED),
        ("sites_patched", &crate::kern::callsite::PATCHED),
        ("site_traps", &crate::kern::callsite::SITE_TRAPS),
    ] {
        v.push(format!("{n}={}", c.load(Ordering::Relaxed)));
    }
    v.extend(platform::stub::pool::stats().into_iter().map(|(n, c)| format!("{n}={c}")));
    v.join(" ")
}

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

/// Run `f`, which wakes a thread, as a sync wake-up: the caller is about to sleep or exit
/// (Linux's `WF_SYNC`), so the first thread `f` makes runnable is queued on the caller's CPU
/// and no other CPU is woken for it (see [`crate::kern::sched_wake`]). `f` must not sleep.
pub fn wake_sync<T>(f: impl FnOnce() -> T) -> T {
    let c = cpu::curcpu();
    // With one CPU a sync wake-up queues where any does: skip its grace and preemption.
    let Some(cpu_s) = CPUS.get(c as usize).filter(|_| cpu::ncpus() > 1) else { return f() };
    cpu_s.sync_hint.store(sched_wake::tunables().sync, Ordering::Relaxed);
    let r = f();
    cpu_s.sync_hint.store(false, Ordering::Relaxed);
    r
}

/// Queue a thread that became runnable and get a CPU to look at it.
pub fn setrunnable(td: Arc<Thread>) {
    td.set_state(ThreadState::Runnable);
    if queue_sync(&td) {
        return;
    }
    let target = pick_cpu(&td, td.last_cpu().min(cpu::ncpus().saturating_sub(1)));
    count(match cpu::curcpu() {
        c if c == target => Stat::WakeHere,
        c if (c as usize) < MAXCPU => Stat::WakeThere,
        _ => Stat::WakeOffCpu,
    });
    {
        let mut q = CPUS[target as usize].runq.lock();
        if q.is_empty() {
            CPUS[target as usize].sync_until_ns.store(0, Ordering::Relaxed);
        }
        q.push_back(td);
        publish_runq_len(target, q.len());
    }
    notify(target);
}

/// Queue `td` on the calling CPU without waking any other, if this is a sync wake-up (or
/// the first run of a new guest thread, with `sched.fork_local`) and the policy allows it.
fn queue_sync(td: &Arc<Thread>) -> bool {
    let c = cpu::curcpu();
    let Some(cpu_s) = CPUS.get(c as usize).filter(|_| cpu::ncpus() > 1) else { return false };
    let t = sched_wake::tunables();
    let hinted = cpu_s.sync_hint.swap(false, Ordering::Relaxed);
    let never_ran = td.rec.switches.load(Ordering::Relaxed) == 0;
    let new_guest = never_ran
        && sched_wake::starts_local(t.fork_local, td.is_user(), never_ran, td.proc_().map_or(0, |p| p.nthreads()));
    if !hinted && !new_guest {
        return false;
    }
    let now = platform::time::uptime_ns();
    if now < cpu_s.sync_off_until_ns.load(Ordering::Relaxed) {
        return false;
    }
    let mut q = cpu_s.runq.lock();
    if sched_wake::sync_target(true, Some(c), td.affinity(), q.len()) != Some(c) {
        return false;
    }
    cpu_s.sync_until_ns.store(now.saturating_add(t.grace_ns), Ordering::Relaxed);
    td.rec.cpu.store(c, Ordering::Relaxed);
    q.push_back(Arc::clone(td));
    publish_runq_len(c, q.len());
    count(Stat::SyncQueued);
    true
}

/// A thread a sync wake-up queued on `cpu_s` missed its grace (its waker ran on): that CPU's
/// wakers are not taken at their word for a while.
fn sync_expired(cpu_s: &Cpu) {
    count(Stat::SyncExpired);
    let end = sched_wake::sync_backoff_end(platform::time::uptime_ns(), sched_wake::tunables().grace_ns);
    cpu_s.sync_off_until_ns.store(end, Ordering::Relaxed);
}

/// How long the guest thread now on CPU `c` may run before the thread a sync wake-up queued
/// behind it gets the CPU (its waker did not sleep within the grace period): the time to the
/// grace's end, or None when no thread waits for it.
pub fn sync_slice(c: u32) -> Option<Duration> {
    let cpu_s = CPUS.get(c as usize)?;
    let until = cpu_s.sync_until_ns.load(Ordering::Relaxed);
    if until == 0 || PCPU[c as usize].nrun.load(Ordering::Relaxed) == 0 {
        return None;
    }
    Some(Duration::from_nanos(until.saturating_sub(platform::time::uptime_ns())))
}

/// Whether the thread on CPU `c` is to give the CPU up on its way back to the guest, as of
/// `now_ns` (its last trap): others wait in the CPU's queue and it has had the CPU for a whole
/// time slice `slice_ns` since it was switched in, or a thread a sync wake-up queued behind it
/// has waited out its grace. A guest thread is kicked when its slice ends in user mode; one
/// that traps all the time (a system call in a loop) never is, and kept the CPU for good
/// while the threads queued behind it waited (t_vmrace on `-n 2`: its child never ran). The
/// check of a thread's trap path (Linux's need_resched, set from the tick).
pub fn slice_over(c: u32, now_ns: u64, slice_ns: u64) -> bool {
    let Some(cpu_s) = CPUS.get(c as usize) else { return false };
    if PCPU[c as usize].nrun.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let until = cpu_s.sync_until_ns.load(Ordering::Relaxed);
    now_ns.saturating_sub(cpu_s.since_ns.load(Ordering::Relaxed)) >= slice_ns || (until != 0 && now_ns >= until)
}

/// Make sure some CPU will run what was queued on `target`: `target` itself if it idles, else
/// an idle CPU, which steals it. That includes the waker's own CPU when its current thread
/// stays on it: it may run on in user mode for a whole time slice (a thread that creates
/// another and then computes), and the new one should not wait for it while a CPU sleeps.
/// Not when the waker leaves the CPU (its idle thread running a cross-CPU call, a thread on
/// its way to sleep or exit passing its safe point): the woken thread runs there next.
fn notify(target: u32) {
    // Pairs with the fence in `cpu::idle_prepare`: either the idle CPU sees the queue length
    // published above, or this sees its idle word set.
    std::sync::atomic::fence(Ordering::SeqCst);
    let here = cpu::curcpu();
    if here != target && cpu::wake_idle(target) {
        count(Stat::NotifyTarget);
        return;
    }
    let stays = here == target
        && CPUS[target as usize].cur.lock().as_ref().is_some_and(|t| !t.is_idle() && t.state() == ThreadState::Running);
    if !sched_wake::needs_thief(here == target, stays) {
        return;
    }
    if wake_idle_other(target) {
        count(Stat::NotifyOther);
    }
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
    // Where [`huddle`] sends it, if anywhere.
    let to = cpu_s.move_to.swap(0, Ordering::Relaxed).checked_sub(1);
    // Its affinity no longer allows this CPU: onto the queue of one it allows. Or it moves
    // where it was sent (a huddle).
    if cur.state() == ThreadState::Running && !cur.is_idle() && (!allowed(&cur, c) || to.is_some()) {
        let target = if allowed(&cur, c) { to.map_or(c, |t| pick_cpu(&cur, t)) } else { pick_cpu(&cur, c) };
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
                // A thread a sync wake-up queued here has had its wait (or this is another).
                if cpu_s.sync_until_ns.swap(0, Ordering::Relaxed) != 0 && state == ThreadState::Running && !cur.is_idle() {
                    sync_expired(cpu_s);
                }
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
        // More is waiting here (the thread being preempted, say): an idle CPU can take it —
        // unless it is only call-bound threads taking turns here.
        if q.iter().any(|t| !huddled(t)) {
            drop(q);
            if wake_idle_other(c) {
                count(Stat::SwitchWakeOther);
            }
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
    set_cpu_call_bound(c, !next.is_idle() && next.call_bound());
    // A guest thread leaving the CPU (asleep, preempted): its stub, trapped and waiting for
    // it, stops spinning — it cannot be resumed before this thread runs again.
    if let Some(u) = cur.as_user()
        && let Some(stub) = u.stub.lock().as_ref()
    {
        stub.nap(cur.state() != ThreadState::Runnable);
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
        CPUS[c as usize].sync_until_ns.store(0, Ordering::Relaxed);
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
            if !sched_wake::stealable(q.len(), CPUS[other as usize].sync_until_ns.load(Ordering::Relaxed), platform::time::uptime_ns()) {
                continue;
            }
            if q.len() == 1 && CPUS[other as usize].sync_until_ns.load(Ordering::Relaxed) != 0 {
                sync_expired(&CPUS[other as usize]);
            }
            let td = q.iter().rposition(|t| allowed(t, c) && !huddled(t)).and_then(|i| q.remove(i));
            if td.is_none() && q.iter().any(|t| allowed(t, c)) {
                count(Stat::HuddleKept);
            }
            publish_runq_len(other, q.len());
            td
        };
        if let Some(td) = stolen {
            count(Stat::Steals);
            if td.rec.switches.load(Ordering::Relaxed) == 0 {
                count(Stat::StealsNew);
            }
            td.rec.cpu.store(c, Ordering::Relaxed);
            let mut q = CPUS[c as usize].runq.lock();
            q.push_back(td);
            publish_runq_len(c, q.len());
            return true;
        }
    }
    false
}

/// Whether another CPU's queue holds a thread CPU `c` may steal now (unlocked: a hint), and
/// the earliest end of a sync grace that protects one from it.
fn stealable_elsewhere(c: u32, now: u64) -> (bool, Option<u64>) {
    let mut protected_until: Option<u64> = None;
    for o in (0..cpu::ncpus()).filter(|&o| o != c) {
        let n = PCPU[o as usize].nrun.load(Ordering::Relaxed) as usize;
        let until = CPUS[o as usize].sync_until_ns.load(Ordering::Relaxed);
        if sched_wake::stealable(n, until, now) && (CALL_BOUND_CPUS.load(Ordering::Relaxed) == 0 || queue_has_stealable(o, c)) {
            return (true, None);
        }
        // Protected by a sync grace: stealable at its end. (A queue of huddled threads is
        // not: the next switch there wakes an idle CPU if what it holds may spread then.)
        if n > 0 && until > now {
            protected_until = Some(protected_until.map_or(until, |p| p.min(until)));
        }
    }
    (false, protected_until)
}

/// Whether CPU `o`'s queue holds a thread idle CPU `c` may steal, huddled threads aside (a
/// queue busy now may well: yes).
fn queue_has_stealable(o: u32, c: u32) -> bool {
    CPUS[o as usize].runq.try_lock().is_none_or(|q| q.iter().any(|t| allowed(t, c) && !huddled(t)))
}

/// Whether idle CPU `c` has something to do: its queue, an IPI, a callout due, a thread to
/// steal.
fn idle_work(c: u32, now: u64) -> bool {
    PCPU[c as usize].nrun.load(Ordering::Relaxed) > 0
        || cpu::ipis_pending(c)
        || platform::timer::next_deadline().is_some_and(|d| d <= now)
        || stealable_elsewhere(c, now).0
}

/// Poll for work for up to `budget_ns`, while the host has a CPU to spare for it (see
/// [`crate::kern::sched_wake`]). Returns whether work came.
fn idle_poll(c: u32, budget_ns: u64) -> bool {
    use platform::stub::spin::spin_pays;
    if budget_ns == 0 {
        return false;
    }
    cpu::idle_poll_begin(c);
    // Counted idle from here: the host threads that want a CPU, besides this one.
    let spare = || spin_pays(1) && cpu::host_cpu_spare(platform::stub::spin::host_cpus());
    if !spare() {
        cpu::idle_cancel(c);
        return false;
    }
    let mut now = platform::time::uptime_ns();
    let end = now.saturating_add(budget_ns);
    let found = loop {
        if idle_work(c, now) {
            count(Stat::PollFound);
            break true;
        }
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        now = platform::time::uptime_ns();
        if now >= end || !spare() {
            count(Stat::PollEmpty);
            break false;
        }
    };
    cpu::idle_cancel(c);
    found
}

/// The idle thread's loop: run what is queued, else poll a while, else sleep in the host until
/// an IPI, a wake-up or the next callout deadline (vkernel's `cpu_idle`).
fn idle_loop(c: u32) -> ! {
    let cpu_s = &CPUS[c as usize];
    let rec = &PCPU[c as usize];
    let poll_max_ns = sched_wake::tunables().poll_max_ns;
    loop {
        safe_point(c);
        if !cpu_s.runq.lock().is_empty() || steal(c) {
            mi_switch();
            continue;
        }
        let idle_from = platform::time::uptime_ns();
        if idle_poll(c, cpu_s.poll.get(poll_max_ns)) {
            rec.idle_ns.fetch_add(platform::time::uptime_ns().saturating_sub(idle_from), Ordering::Relaxed);
            continue;
        }
        cpu::idle_prepare(c);
        let now = platform::time::uptime_ns();
        let due = platform::timer::next_deadline().is_some_and(|d| d <= now);
        // Work queued anywhere since the look above (a waker that found this CPU still awake
        // woke no one): go round again and steal it rather than sleep. A thread a sync
        // wake-up protects is stolen once its grace ends: sleep no longer.
        let (queued_elsewhere, protected_until) = stealable_elsewhere(c, now);
        if due || cpu::ipis_pending(c) || !cpu_s.runq.lock().is_empty() || queued_elsewhere {
            cpu::idle_cancel(c);
            continue;
        }
        let wake_at = match (platform::timer::next_deadline(), protected_until) {
            (Some(d), Some(p)) => Some(d.min(p)),
            (d, p) => d.or(p),
        };
        let timeout = wake_at.map(|d| Duration::from_nanos(d.saturating_sub(now).max(1_000)));
        rec.state.store(cpustate::IDLE, Ordering::Relaxed);
        count(Stat::IdleSleeps);
        if cpu::idle_sleep(c, timeout) == platform::futex::WaitResult::TimedOut {
            count(Stat::IdleTimeouts);
        }
        rec.state.store(cpustate::RUNNING, Ordering::Relaxed);
        let end = platform::time::uptime_ns();
        rec.idle_ns.fetch_add(end.saturating_sub(idle_from), Ordering::Relaxed);
        cpu_s.poll.slept(end.saturating_sub(idle_from), poll_max_ns);
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
