//! Threads: a kernel stack and context (platform's `KThread`), scheduling state, and the
//! exported [`ThreadRecord`] that ddb and vps read.
//!
//! The record is the single source of truth for the fields it has (state, CPU, wait message),
//! so what a debugger shows is what the scheduler sees. Kernel-only threads get ids from
//! 100000 up, as in FreeBSD, so they never collide with guest pids and tids.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use kvm_mem::abi::{ThreadRecord, store_name, tflags, tstate};
use platform::kthread::{HasKThread, KSTACK_SIZE, KThread};

use crate::kern::proc::{Proc, UProc};
use crate::kern::uproc::UserThread;

/// First id of kernel-only threads.
pub const KTID_BASE: u64 = 100_000;
static NEXT_KTID: AtomicU64 = AtomicU64::new(KTID_BASE);

/// Why a sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    Woken,
    TimedOut,
    Interrupted,
}

/// A thread's scheduling state. The kernel works with this enum; the exported record carries
/// the same state as kvm-mem's `tstate` number (written together in [`Thread::set_state`]),
/// so what a debugger shows is what the scheduler sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// Created, not yet run.
    New,
    /// On a run queue.
    Runnable,
    /// On a CPU now.
    Running,
    /// Asleep on a wait channel.
    Sleeping,
    /// Stopped (job control).
    Stopped,
    /// Exited.
    Dead,
}

impl ThreadState {
    const ALL: [ThreadState; 6] = [
        ThreadState::New,
        ThreadState::Runnable,
        ThreadState::Running,
        ThreadState::Sleeping,
        ThreadState::Stopped,
        ThreadState::Dead,
    ];

    /// The exported number (`kvm_mem::abi::tstate`).
    pub const fn abi(self) -> u32 {
        match self {
            ThreadState::New => tstate::NEW,
            ThreadState::Runnable => tstate::RUNNABLE,
            ThreadState::Running => tstate::RUNNING,
            ThreadState::Sleeping => tstate::SLEEPING,
            ThreadState::Stopped => tstate::STOPPED,
            ThreadState::Dead => tstate::DEAD,
        }
    }

    fn from_index(i: u8) -> ThreadState {
        Self::ALL.get(usize::from(i)).copied().unwrap_or(ThreadState::Dead)
    }

    fn index(self) -> u8 {
        self as u8
    }
}

/// Priorities as ps shows them (lower is more urgent).
pub mod pri {
    pub const SWAPPER: u32 = 0;
    pub const KTHREAD: u32 = 20;
    pub const USER: u32 = 120;
    pub const IDLE: u32 = 255;
}

/// A thread.
#[derive(Debug)]
pub struct Thread {
    /// The exported record.
    pub rec: ThreadRecord,
    kt: KThread,
    /// The thread id (changes only when a thread execs and takes the pid, see [`Thread::retid`]).
    tid: AtomicU64,
    name: String,
    proc_: Weak<Proc>,
    /// Sleep generation: bumped on every sleep so a stale timeout cannot wake a later sleep.
    pub(crate) sleep_gen: AtomicU64,
    /// Its [`ThreadState`] (mirrored into `rec.state`).
    state: AtomicU8,
    pub(crate) wake_reason: AtomicU32,
    /// The CPUs it may run on (sched_setaffinity(2)), bit N for CPU N.
    affinity: AtomicU64,
    /// Its hand-overs were call-bound at its last trap (`kern::sched_huddle`).
    call_bound: AtomicBool,
    /// A guest thread's user state (None for kernel threads).
    user: Option<UserThread>,
}

impl HasKThread for Thread {
    fn kthread(&self) -> &KThread {
        &self.kt
    }
}

impl Thread {
    /// A new kernel thread of `p` that runs `f` (and exits when `f` returns).
    pub fn new_kthread(p: &Arc<Proc>, name: &str, flags: u32, prio: u32, f: impl FnOnce() + Send + 'static) -> std::io::Result<Arc<Thread>> {
        let tid = NEXT_KTID.fetch_add(1, Ordering::Relaxed);
        Self::create(p, tid, name, flags | tflags::KTHREAD, prio, None, f)
    }

    /// A new guest thread `tid` of `p`: its kernel thread runs `f` (the user loop).
    pub fn new_user(
        p: &UProc,
        tid: u64,
        name: &str,
        user: UserThread,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<UThread> {
        Self::create(p.arc(), tid, name, 0, pri::USER, Some(user), f).map(UThread)
    }

    fn create(
        p: &Arc<Proc>,
        tid: u64,
        name: &str,
        flags: u32,
        prio: u32,
        user: Option<UserThread>,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<Thread>> {
        let kt = KThread::new(KSTACK_SIZE, move || {
            crate::kern::sched::mark_running();
            f();
            crate::kern::sched::thread_exit();
        })?;
        let td = Arc::new(Thread {
            rec: ThreadRecord::new(),
            kt,
            tid: AtomicU64::new(tid),
            name: name.to_string(),
            proc_: Arc::downgrade(p),
            sleep_gen: AtomicU64::new(0),
            state: AtomicU8::new(ThreadState::New.index()),
            wake_reason: AtomicU32::new(0),
            affinity: AtomicU64::new(u64::MAX),
            call_bound: AtomicBool::new(false),
            user,
        });
        let r = &td.rec;
        r.tid.store(tid, Ordering::Relaxed);
        r.flags.store(flags, Ordering::Relaxed);
        r.pri.store(prio, Ordering::Relaxed);
        r.proc_.store(p.rec_addr(), Ordering::Relaxed);
        r.pcb.store(td.kt.pcb_addr(), Ordering::Relaxed);
        if let Some((lo, hi)) = td.kt.stack_bounds() {
            r.stack_base.store(lo, Ordering::Relaxed);
            r.stack_size.store(hi - lo, Ordering::Relaxed);
        }
        store_name(&r.name, name);
        r.state.store(ThreadState::New.abi(), Ordering::Release);
        p.add_thread(Arc::clone(&td));
        Ok(td)
    }

    /// Address of the exported record.
    pub fn rec_addr(&self) -> u64 {
        &self.rec as *const ThreadRecord as u64
    }

    pub fn tid(&self) -> u64 {
        self.tid.load(Ordering::Relaxed)
    }

    /// Give the thread a new id (a non-leader thread that execs takes over the pid).
    pub fn retid(&self, tid: u64) {
        self.tid.store(tid, Ordering::Relaxed);
        self.rec.tid.store(tid, Ordering::Relaxed);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user state, if this is a guest thread.
    pub fn as_user(&self) -> Option<&UserThread> {
        self.user.as_ref()
    }

    /// Whether this is a guest thread (not a kernel-only thread).
    pub fn is_user(&self) -> bool {
        self.user.is_some()
    }

    pub fn proc_(&self) -> Option<Arc<Proc>> {
        self.proc_.upgrade()
    }

    pub fn state(&self) -> ThreadState {
        ThreadState::from_index(self.state.load(Ordering::Acquire))
    }

    /// Change the state, and the exported record's with it.
    pub(crate) fn set_state(&self, s: ThreadState) {
        self.rec.state.store(s.abi(), Ordering::Release);
        self.state.store(s.index(), Ordering::Release);
    }

    pub fn is_idle(&self) -> bool {
        self.rec.flags.load(Ordering::Relaxed) & tflags::IDLE != 0
    }

    /// The CPUs it may run on (bit N: CPU N).
    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Restrict it to the CPUs of `mask`; the scheduler moves it off any other at its next
    /// switch.
    pub fn set_affinity(&self, mask: u64) {
        self.affinity.store(mask, Ordering::Relaxed);
    }

    /// Whether its hand-overs were call-bound at its last trap (`kern::sched_huddle`).
    pub fn call_bound(&self) -> bool {
        self.call_bound.load(Ordering::Relaxed)
    }

    /// Note whether its hand-overs are call-bound now (only a change is written).
    pub fn set_call_bound(&self, bound: bool) {
        if self.call_bound.load(Ordering::Relaxed) != bound {
            self.call_bound.store(bound, Ordering::Relaxed);
        }
    }

    pub fn last_cpu(&self) -> u32 {
        self.rec.cpu.load(Ordering::Relaxed)
    }

    /// The guard page below its stack.
    pub fn guard_bounds(&self) -> Option<(u64, u64)> {
        self.kt.guard_bounds()
    }

    pub fn stack_bounds(&self) -> Option<(u64, u64)> {
        self.kt.stack_bounds()
    }

    pub(crate) fn set_wmesg(&self, wchan: u64, wmesg: &str) {
        store_name(&self.rec.wmesg, wmesg);
        self.rec.wchan.store(wchan, Ordering::Relaxed);
    }
}

/// A guest thread: a [`Thread`] that has user state, so asking it for that state cannot fail
/// (see [`crate::kern::proc::UProc`]). Cloning clones the reference.
#[derive(Debug, Clone)]
pub struct UThread(Arc<Thread>);

impl UThread {
    /// `td` as a guest thread (None for a kernel-only thread).
    pub fn new(td: Arc<Thread>) -> Option<UThread> {
        td.user.is_some().then_some(UThread(td))
    }

    /// Its user state.
    pub fn user(&self) -> &UserThread {
        match &self.0.user {
            Some(u) => u,
            None => unreachable!("a UThread is made only from a guest thread"),
        }
    }

    /// The thread reference.
    pub fn arc(&self) -> &Arc<Thread> {
        &self.0
    }

    /// The thread reference, consuming the handle.
    pub fn into_arc(self) -> Arc<Thread> {
        self.0
    }

    /// Its process, as a guest process (None once the process is gone).
    pub fn uproc(&self) -> Option<UProc> {
        self.0.proc_().and_then(UProc::new)
    }
}

impl std::ops::Deref for UThread {
    type Target = Thread;
    fn deref(&self) -> &Thread {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_states_round_trip_and_export_kvm_mem_numbers() {
        for s in ThreadState::ALL {
            assert_eq!(ThreadState::from_index(s.index()), s);
        }
        assert_eq!(ThreadState::Sleeping.abi(), tstate::SLEEPING);
        assert_eq!(ThreadState::Dead.abi(), tstate::DEAD);
    }
}
