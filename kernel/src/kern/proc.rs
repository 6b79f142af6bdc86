//! Processes and the process table (`allproc`).
//!
//! A process owns threads. Process 0, the swapper, is the system process: every kernel-only
//! thread (the boot thread, the idle threads, the syncer) is one of its threads, as in BSD
//! where kernel threads hang off proc0. Guest processes carry a [`UserProc`].
//!
//! Kernel code that works on a guest process holds a [`UProc`]: a process known to be a guest
//! process, so asking it for user state cannot fail (and a kernel-only process can never be
//! asked). [`UProc::new`] is the one place that checks; a plain [`Proc`] only offers
//! [`Proc::as_user`], an `Option`.
//!
//! Each `Proc` embeds its exported [`ProcRecord`]; `allproc` is kept twice: as a map the kernel
//! uses, and as the linked list of records (by pid) that `vps` and ddb walk.
//!
//! Lock order: `ALLPROC` before a process's `threads`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use kvm_mem::abi::{ProcRecord, pflags, pstate, store_name};
use platform::sync::SpinLock;

use crate::kern::thread::{Thread, UThread};
use crate::kern::uproc::UserProc;

/// A process's life. The kernel works with this enum; the exported record carries kvm-mem's
/// `pstate` number for it (written together in [`Proc::set_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Being created (not on allproc yet).
    New,
    Active,
    /// Exited, not yet reaped.
    Zombie,
}

impl ProcState {
    /// The exported number (`kvm_mem::abi::pstate`).
    pub const fn abi(self) -> u32 {
        match self {
            ProcState::New => pstate::NEW,
            ProcState::Active => pstate::ACTIVE,
            ProcState::Zombie => pstate::ZOMBIE,
        }
    }
}

/// A process.
#[derive(Debug)]
pub struct Proc {
    /// The exported record (read by vps and ddb).
    pub rec: ProcRecord,
    pub pid: i32,
    /// Its threads, by tid.
    threads: SpinLock<BTreeMap<u64, Arc<Thread>>>,
    /// A guest process's state (None for the system process).
    user: Option<UserProc>,
    /// Its [`ProcState`], as `ProcState as u8` (mirrored into `rec.state`).
    state: AtomicU8,
}

/// Address of the first process record (the exported list's head, `vk_allproc`): what vps
/// and ddb walk.
pub static ALLPROC_HEAD: AtomicU64 = AtomicU64::new(0);

static ALLPROC: SpinLock<BTreeMap<i32, Arc<Proc>>> = SpinLock::new("allproc", BTreeMap::new());
static PROC0: OnceLock<Arc<Proc>> = OnceLock::new();

impl Proc {
    fn new(pid: i32, ppid: i32, comm: &str, flags: u32) -> Proc {
        let rec = ProcRecord::new();
        rec.pid.store(pid, Ordering::Relaxed);
        rec.ppid.store(ppid, Ordering::Relaxed);
        rec.pgid.store(pid, Ordering::Relaxed);
        rec.sid.store(pid, Ordering::Relaxed);
        rec.flags.store(flags, Ordering::Relaxed);
        rec.start_ns.store(platform::time::uptime_ns(), Ordering::Relaxed);
        store_name(&rec.comm, comm);
        Proc {
            rec,
            pid,
            threads: SpinLock::new("proc_threads", BTreeMap::new()),
            user: None,
            state: AtomicU8::new(ProcState::New as u8),
        }
    }

    /// A guest process (not yet on allproc).
    pub fn new_user(pid: i32, ppid: i32, comm: &str, user: UserProc) -> UProc {
        let mut p = Proc::new(pid, ppid, comm, 0);
        p.user = Some(user);
        UProc(Arc::new(p))
    }

    pub fn state(&self) -> ProcState {
        match self.state.load(Ordering::Acquire) {
            0 => ProcState::New,
            1 => ProcState::Active,
            _ => ProcState::Zombie,
        }
    }

    /// Whether it has exited and waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        self.state() == ProcState::Zombie
    }

    /// Change the state, and the exported record's with it.
    pub fn set_state(&self, s: ProcState) {
        self.rec.state.store(s.abi(), Ordering::Release);
        self.state.store(s as u8, Ordering::Release);
    }

    /// The wait channel of the process itself (wait(2) and vfork sleep on it). Through a
    /// `UProc` this is still the process's address, never the handle's.
    pub fn wchan(&self) -> u64 {
        crate::kern::sleep::wchan_of(self)
    }

    /// The user state, if this is a guest process.
    pub fn as_user(&self) -> Option<&UserProc> {
        self.user.as_ref()
    }

    /// Whether this is a guest process (not the system process).
    pub fn is_user(&self) -> bool {
        self.user.is_some()
    }

    /// The command name.
    pub fn comm(&self) -> String {
        let raw: Vec<u8> = self.rec.comm.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        kvm_mem::abi::name_from_bytes(&raw)
    }

    pub fn set_comm(&self, comm: &str) {
        // Linux keeps 15 bytes of the name (TASK_COMM_LEN 16).
        let mut end = comm.len().min(15);
        while !comm.is_char_boundary(end) {
            end -= 1;
        }
        store_name(&self.rec.comm, &comm[..end]);
    }

    pub fn nthreads(&self) -> usize {
        self.threads.lock().len()
    }

    /// Address of the exported record.
    pub fn rec_addr(&self) -> u64 {
        &self.rec as *const ProcRecord as u64
    }

    /// Add a thread (relinking the exported list).
    pub fn add_thread(&self, td: Arc<Thread>) {
        let mut threads = self.threads.lock();
        threads.insert(td.tid(), td);
        self.relink_threads(&threads);
    }

    /// Remove a thread; returns it and how many threads are left.
    /// File thread `old` under its new id `new` (see [`Thread::retid`]).
    pub fn rekey_thread(&self, old: u64, new: u64) {
        let mut threads = self.threads.lock();
        if let Some(td) = threads.remove(&old) {
            td.retid(new);
            threads.insert(new, td);
        }
        self.relink_threads(&threads);
    }

    pub fn remove_thread(&self, tid: u64) -> (Option<Arc<Thread>>, usize) {
        let mut threads = self.threads.lock();
        let td = threads.remove(&tid);
        self.relink_threads(&threads);
        (td, threads.len())
    }

    /// The threads, by tid.
    pub fn threads(&self) -> Vec<Arc<Thread>> {
        self.threads.lock().values().cloned().collect()
    }

    /// The threads, or None when their lock is held (the debugger's view: it never spins).
    pub fn threads_nowait(&self) -> Option<Vec<Arc<Thread>>> {
        self.threads.try_lock().map(|t| t.values().cloned().collect())
    }

    fn relink_threads(&self, threads: &BTreeMap<u64, Arc<Thread>>) {
        let list: Vec<&Arc<Thread>> = threads.values().collect();
        for (i, td) in list.iter().enumerate().rev() {
            let next = list.get(i + 1).map_or(0, |n| n.rec_addr());
            td.rec.next.store(next, Ordering::Release);
        }
        self.rec.threads.store(list.first().map_or(0, |t| t.rec_addr()), Ordering::Release);
        self.rec.nthreads.store(u32::try_from(list.len()).unwrap_or(u32::MAX), Ordering::Relaxed);
    }
}

/// A guest process: a [`Proc`] that has user state. Cloning clones the reference.
#[derive(Debug, Clone)]
pub struct UProc(Arc<Proc>);

impl UProc {
    /// `p` as a guest process (None for the system process).
    pub fn new(p: Arc<Proc>) -> Option<UProc> {
        p.user.is_some().then_some(UProc(p))
    }

    /// Its user state.
    pub fn user(&self) -> &UserProc {
        match &self.0.user {
            Some(u) => u,
            None => unreachable!("a UProc is made only from a guest process"),
        }
    }

    /// The process reference.
    pub fn arc(&self) -> &Arc<Proc> {
        &self.0
    }

    /// The process reference, consuming the handle.
    pub fn into_arc(self) -> Arc<Proc> {
        self.0
    }

    /// Its threads, by tid (a guest process has only guest threads).
    pub fn threads(&self) -> Vec<UThread> {
        self.0.threads().into_iter().filter_map(UThread::new).collect()
    }

    /// Whether two handles name the same process.
    pub fn ptr_eq(a: &UProc, b: &UProc) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl std::ops::Deref for UProc {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.0
    }
}

fn relink_allproc(all: &BTreeMap<i32, Arc<Proc>>) {
    let list: Vec<&Arc<Proc>> = all.values().collect();
    for (i, p) in list.iter().enumerate().rev() {
        let next = list.get(i + 1).map_or(0, |n| n.rec_addr());
        p.rec.next.store(next, Ordering::Release);
    }
    ALLPROC_HEAD.store(list.first().map_or(0, |p| p.rec_addr()), Ordering::Release);
}

/// Put a process on allproc.
pub fn insert(p: Arc<Proc>) {
    p.set_state(ProcState::Active);
    let mut all = ALLPROC.lock();
    all.insert(p.pid, p);
    relink_allproc(&all);
}

/// Take a process off allproc.
pub fn remove(pid: i32) -> Option<Arc<Proc>> {
    let mut all = ALLPROC.lock();
    let p = all.remove(&pid);
    relink_allproc(&all);
    p
}

/// A process by pid.
pub fn find(pid: i32) -> Option<Arc<Proc>> {
    ALLPROC.lock().get(&pid).cloned()
}

/// A guest process by pid (None for no process, or the system process).
pub fn find_user(pid: i32) -> Option<UProc> {
    find(pid).and_then(UProc::new)
}

/// A process by pid without waiting: None when allproc's lock is held (by a stopped CPU, as
/// the debugger sees it), else the lookup.
pub fn find_nowait(pid: i32) -> Option<Option<Arc<Proc>>> {
    ALLPROC.try_lock().map(|all| all.get(&pid).cloned())
}

/// Create proc0, the swapper, and put it on allproc.
pub fn proc0_init() -> Arc<Proc> {
    let p = PROC0.get_or_init(|| Arc::new(Proc::new(0, 0, "swapper", pflags::SYSTEM | pflags::SESSION_LEADER)));
    insert(Arc::clone(p));
    Arc::clone(p)
}

/// Process 0.
pub fn proc0() -> Arc<Proc> {
    Arc::clone(PROC0.get().expect("proc0 not initialised"))
}

/// Every process, by pid (a snapshot).
pub fn all() -> Vec<Arc<Proc>> {
    ALLPROC.lock().values().cloned().collect()
}

/// Every process without waiting (None while allproc's lock is held: the debugger's view).
pub fn all_nowait() -> Option<Vec<Arc<Proc>>> {
    ALLPROC.try_lock().map(|all| all.values().cloned().collect())
}

/// Every guest process, by pid (a snapshot).
pub fn all_user() -> Vec<UProc> {
    ALLPROC.lock().values().filter_map(|p| UProc::new(Arc::clone(p))).collect()
}

/// Publish each guest process's VSZ and RSS in its exported record, for `vps` (which reads
/// memory and cannot ask the address space). A syncer hook: the figures are at most a second
/// old. An address space busy at that moment keeps its previous figures.
pub fn publish_vm_figures() {
    for p in all() {
        let Some(u) = p.as_user() else { continue };
        if p.is_zombie() {
            continue;
        }
        let Some(vm) = u.vm.try_lock().map(|v| Arc::clone(&v)) else { continue };
        if let Some((vsz, rss)) = vm.peek(|g| (g.vsz(), g.rss_pages())) {
            p.rec.vsz_bytes.store(vsz, Ordering::Relaxed);
            p.rec.rss_pages.store(rss, Ordering::Relaxed);
        }
    }
}

/// Number of processes.
pub fn nprocs() -> usize {
    ALLPROC.lock().len()
}
