//! The user side of processes and threads: what a guest process and a guest thread carry
//! besides their kernel thread and exported records.
//!
//! Lock order (in addition to `proc.rs`): a process's `vm` sleep lock before any spinlock;
//! `children` before `parent`; `files` and `fs` are leaves.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use platform::stub::{Ops, StubThread, UserRegs};
use platform::sync::SpinLock;

use crate::fs::file::FdTable;
use crate::fs::namei::NamePath;
use crate::kern::proc::{Proc, UProc};
use crate::vm::space::{AddressSpace, VmMap};

/// Largest pid (pid_max).
pub const PID_MAX: i32 = 32768;

static NEXT_PID: AtomicI32 = AtomicI32::new(1);
/// Ids in use: pids and the tids of guest threads share one space, as in Linux.
static IDS: SpinLock<std::collections::BTreeSet<i32>> = SpinLock::new("pid_ids", std::collections::BTreeSet::new());

/// Ids handed out since boot (forks and thread creations: /proc/stat's `processes`).
static NFORKS: AtomicU64 = AtomicU64::new(0);
/// The last id handed out (/proc/loadavg's last field).
static LAST_PID: AtomicI32 = AtomicI32::new(0);

/// The next free pid or tid (1 for the first process: init). Ids wrap at PID_MAX to 300.
pub fn alloc_pid() -> Option<i32> {
    let mut ids = IDS.lock();
    for _ in 0..PID_MAX {
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        let pid = if pid >= PID_MAX {
            NEXT_PID.store(301, Ordering::Relaxed);
            300
        } else {
            pid
        };
        if ids.insert(pid) {
            NFORKS.fetch_add(1, Ordering::Relaxed);
            LAST_PID.store(pid, Ordering::Relaxed);
            return Some(pid);
        }
    }
    None
}

/// A pid (or a thread id as `alloc_pid` gives it: always positive) as the `u64` threads
/// and address spaces are keyed by.
pub fn tid_of(pid: i32) -> u64 {
    u64::from(pid.unsigned_abs())
}

/// A thread id as the pid it was allocated as (None for a number no pid can be).
pub fn pid_of(tid: u64) -> Option<i32> {
    i32::try_from(tid).ok()
}

/// Ids handed out since boot.
pub fn nforks() -> u64 {
    NFORKS.load(Ordering::Relaxed)
}

/// The most recently handed-out id.
pub fn last_pid() -> i32 {
    LAST_PID.load(Ordering::Relaxed)
}

/// Give an id back (a reaped process, an exited thread).
pub fn free_pid(id: i32) {
    IDS.lock().remove(&id);
}

/// Working directory and file-creation mask (CLONE_FS shares it).
#[derive(Debug, Clone)]
pub struct FsState {
    pub cwd: NamePath,
    /// The root directory (chroot(2)): where absolute paths start.
    pub root: NamePath,
    pub umask: u32,
}

pub use crate::kern::cred::Cred;

/// A guest process's state.
#[derive(Debug)]
pub struct UserProc {
    /// The address space (CLONE_VM shares it; exec replaces it).
    pub vm: SpinLock<Arc<VmMap>>,
    /// Descriptors (CLONE_FILES shares the table).
    pub files: SpinLock<Arc<SpinLock<FdTable>>>,
    /// The working directory, root and umask (CLONE_FS shares them).
    pub fs: Arc<SpinLock<FsState>>,
    /// Credentials: replaced as a whole when they change, so a reader's copy is one Arc.
    pub cred: SpinLock<Arc<Cred>>,
    pub parent: SpinLock<Weak<Proc>>,
    pub children: SpinLock<Vec<UProc>>,
    /// The program's path and arguments (for /proc/PID/{exe,cmdline}).
    pub exe: SpinLock<Option<NamePath>>,
    /// The program being run may not be written (ETXTBSY; `fs::writecount`): held from
    /// execve to exit, copied by fork.
    pub exe_deny: SpinLock<Option<crate::fs::writecount::DenyWrite>>,
    pub argv: SpinLock<Vec<Vec<u8>>>,
    /// The auxiliary vector exec gave the program (Linux's saved_auxv: /proc/PID/auxv).
    pub auxv: SpinLock<Vec<u8>>,
    /// The environment exec gave the program (/proc/PID/environ: a copy, so a program that
    /// rewrites its strings in place is not seen).
    pub environ: SpinLock<Vec<u8>>,
    /// wait(2) status once it has exited.
    pub exit_status: SpinLock<Option<i32>>,
    /// Resource limits (soft, hard) by RLIMIT_* number: NOFILE, CORE, CPU, NPROC (clone) and AS
    /// (mmap, brk) are enforced, the others kept and reported.
    pub rlimits: SpinLock<[(u64, u64); RLIM_NLIMITS]>,
    /// A vfork child releases its parent (exec or exit): the parent sleeps until then.
    pub vfork_released: std::sync::atomic::AtomicBool,
    /// Exit has told the parent (SIGCHLD queued): only then is the zombie reapable, so a
    /// wait(2) that returns it finds the SIGCHLD already pending, as on Linux.
    pub exit_notified: std::sync::atomic::AtomicBool,
    /// The signal to send the parent at exit (clone's low byte; SIGCHLD for fork).
    pub exit_signal: AtomicI32,
    /// Signal actions and the process's pending signals.
    pub sig: SpinLock<crate::kern::signal::ProcSig>,
    /// Stopped or not, and the stop/continue not yet reported to wait(2).
    pub jobctl: SpinLock<crate::kern::jobctl::JobCtl>,
    /// CPU time of exited threads and reaped children; interval timers.
    pub times: crate::kern::cputime::ProcTimes,
    /// POSIX timers (timer_create(2)).
    pub posix_timers: crate::kern::posix_timer::Timers,
    /// Linux AIO contexts (io_setup(2)).
    pub aio: crate::kern::aio::AioTable,
    /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are given to this process rather
    /// than init. Not inherited by fork; kept by exec.
    pub child_subreaper: std::sync::atomic::AtomicBool,
    /// personality(2)'s persona ([`crate::abi::exec::Persona`] bits): inherited by fork,
    /// kept by exec but for what exec clears.
    pub persona: std::sync::atomic::AtomicU32,
    /// Scheduling policy and parameters (sched_setscheduler(2), sched_setattr(2)): kept and
    /// inherited, not acted on by the scheduler.
    pub sched: SpinLock<crate::kern::sched_policy::SchedPolicy>,
    /// ioprio_set(2)'s I/O priority (class << 13 | level): kept and inherited; vk's disks do
    /// not order requests by it.
    pub ioprio: std::sync::atomic::AtomicU32,
    /// The process has exec'd since fork made it (Linux's PF_FORKNOEXEC cleared): its parent
    /// may no longer setpgid it (EACCES).
    pub execed: std::sync::atomic::AtomicBool,
}

/// Number of resource limits (RLIMIT_NLIMITS).
pub const RLIM_NLIMITS: usize = 16;
/// RLIM_INFINITY.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// Linux's `max_threads` for this memory size (fork_init's set_max_threads: a thread's
/// 16 KiB kernel stack may take at most an eighth of RAM), at least 20.
pub fn max_threads() -> u64 {
    const THREAD_SIZE: u64 = 16 << 10;
    let ram = platform::physmem::get().map_or(0, |pm| pm.size());
    (ram / (THREAD_SIZE * 8)).clamp(20, 0x3fff_ffff)
}

/// Linux's default limits: stack 8 MiB, 1024 files (4096 hard: INR_OPEN_CUR and
/// INR_OPEN_MAX), core 0, pending signals half of
/// max_threads, POSIX message queues 800 KiB, the rest unlimited.
pub fn default_rlimits() -> [(u64, u64); RLIM_NLIMITS] {
    let mut r = [(RLIM_INFINITY, RLIM_INFINITY); RLIM_NLIMITS];
    r[11] = (max_threads() / 2, max_threads() / 2); // RLIMIT_SIGPENDING
    r[12] = (819_200, 819_200); // RLIMIT_MSGQUEUE (MQ_BYTES_MAX)
    r[3] = (8 << 20, RLIM_INFINITY); // RLIMIT_STACK
    r[4] = (0, RLIM_INFINITY); // RLIMIT_CORE
    r[6] = (crate::kern::uproc::PID_MAX as u64, crate::kern::uproc::PID_MAX as u64); // RLIMIT_NPROC
    r[7] = (crate::fs::file::NOFILE as u64, 4096); // RLIMIT_NOFILE
    r[8] = (8 << 20, 8 << 20); // RLIMIT_MEMLOCK
    r[13] = (0, 0); // RLIMIT_NICE
    r[14] = (0, 0); // RLIMIT_RTPRIO
    r
}

impl UserProc {
    pub fn new(vm: AddressSpace, files: FdTable, fs: FsState, cred: impl Into<Arc<Cred>>, parent: Weak<Proc>) -> UserProc {
        UserProc {
            vm: SpinLock::new("proc_vm", vm.into_map()),
            files: SpinLock::new("proc_files", Arc::new(SpinLock::new("fdtable", files))),
            fs: Arc::new(SpinLock::new("proc_fs", fs)),
            cred: SpinLock::new("proc_cred", cred.into()),
            parent: SpinLock::new("proc_parent", parent),
            children: SpinLock::new("proc_children", Vec::new()),
            exe: SpinLock::new("proc_exe", None),
            exe_deny: SpinLock::new("proc_exe_deny", None),
            argv: SpinLock::new("proc_argv", Vec::new()),
            auxv: SpinLock::new("proc_auxv", Vec::new()),
            environ: SpinLock::new("proc_environ", Vec::new()),
            exit_status: SpinLock::new("proc_exit", None),
            rlimits: SpinLock::new("proc_rlimits", default_rlimits()),
            vfork_released: std::sync::atomic::AtomicBool::new(false),
            exit_notified: std::sync::atomic::AtomicBool::new(false),
            exit_signal: AtomicI32::new(17),
            sig: SpinLock::new("proc_sig", crate::kern::signal::ProcSig::new()),
            jobctl: SpinLock::new("jobctl", crate::kern::jobctl::JobCtl::default()),
            times: crate::kern::cputime::ProcTimes::new(),
            posix_timers: crate::kern::posix_timer::Timers::default(),
            aio: crate::kern::aio::AioTable::default(),
            child_subreaper: std::sync::atomic::AtomicBool::new(false),
            persona: std::sync::atomic::AtomicU32::new(0),
            sched: SpinLock::new("proc_sched", crate::kern::sched_policy::SchedPolicy::default()),
            ioprio: std::sync::atomic::AtomicU32::new(0),
            execed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The current address space.
    pub fn vm(&self) -> Arc<VmMap> {
        Arc::clone(&self.vm.lock())
    }

    /// The credentials now.
    pub fn cred(&self) -> Arc<Cred> {
        Arc::clone(&self.cred.lock())
    }

    /// The parent, as a guest process (None when it is gone or is the system process: init's).
    pub fn uparent(&self) -> Option<UProc> {
        self.parent.lock().upgrade().and_then(UProc::new)
    }

    /// The descriptor table.
    pub fn files(&self) -> Arc<SpinLock<FdTable>> {
        Arc::clone(&self.files.lock())
    }
}

/// A guest thread's state.
#[derive(Debug)]
pub struct UserThread {
    /// Its thread in the stub (exec replaces it).
    pub stub: SpinLock<Option<Arc<StubThread>>>,
    /// `stub` is its vfork parent's thread, lent until this thread execs or exits
    /// (`fork::new_process`): it is handed back then, never ended or its slot freed.
    pub stub_borrowed: AtomicBool,
    /// Its registers while it is in the kernel.
    pub regs: SpinLock<UserRegs>,
    /// set_tid_address / CLONE_CHILD_CLEARTID: cleared and futex-woken at exit.
    pub clear_child_tid: AtomicU64,
    /// The fs base (TLS) it set.
    pub fs_base: AtomicU64,
    /// Operations only this thread's stub thread can carry out (its fs base, a new thread):
    /// [`UserThread::queue_ops`], [`UserThread::take_ops`].
    ops: SpinLock<Ops>,
    /// Whether `ops` may hold some: the trap loop looks at it without the lock.
    ops_queued: AtomicBool,
    /// Bumped when `stub` or the process's address space is replaced (exec): the trap loop
    /// then fetches again what it keeps of them between traps.
    pub stub_gen: AtomicU64,
    /// Mask, pending signals, alternate stack.
    pub sigstate: crate::kern::signal::ThreadSigState,
    /// set_robust_list(2)'s head: walked at thread exit and exec (`futex::exit_robust_list`).
    pub robust_list: AtomicU64,
    /// prctl(PR_SET_PDEATHSIG).
    pub pdeathsig: AtomicI32,
    /// prctl(PR_SET_TIMERSLACK): the current slack and the one 0 resets it to (its creator's
    /// current slack), in ns. Kept and inherited; vk's sleeps do not use it.
    pub timer_slack_ns: AtomicU64,
    pub default_slack_ns: AtomicU64,
    /// This thread must leave (exec in another thread of its process).
    pub exit_req: std::sync::atomic::AtomicBool,
    /// User time so far.
    pub times: crate::kern::cputime::ThreadTimes,
    /// Its rseq(2) registration.
    pub rseq: crate::kern::rseq::RseqState,
    /// Its tracer and ptrace stops.
    pub ptrace: crate::kern::ptrace::PtraceThread,
}

/// Linux's default timer slack (50 us).
const DEFAULT_SLACK_NS: u64 = 50_000;

impl UserThread {
    /// A new thread's timer slack: both values are its creator's current slack.
    pub fn inherit_slack(&self, creator: &UserThread) {
        let v = creator.timer_slack_ns.load(Ordering::Relaxed);
        self.timer_slack_ns.store(v, Ordering::Relaxed);
        self.default_slack_ns.store(v, Ordering::Relaxed);
    }

    /// Queue operations for this thread's stub thread, carried out before its guest code
    /// runs again.
    pub fn queue_ops(&self, f: impl FnOnce(&mut Ops)) {
        f(&mut self.ops.lock());
        self.ops_queued.store(true, Ordering::Release);
    }

    /// Replace the queued operations with `ops` (exec: the old image's are void).
    pub fn set_ops(&self, ops: Ops) {
        *self.ops.lock() = ops;
        self.ops_queued.store(true, Ordering::Release);
    }

    /// Whether operations wait for this thread's stub thread (a clone's new host thread, an
    /// fs base).
    pub fn ops_pending(&self) -> bool {
        self.ops_queued.load(Ordering::Acquire)
    }

    /// Take the queued operations (the trap loop, on its way to the guest): no lock when
    /// there are none.
    pub fn take_ops(&self) -> Ops {
        if !self.ops_queued.load(Ordering::Acquire) {
            return Ops::new();
        }
        // Cleared before the take: operations queued meanwhile set it again.
        self.ops_queued.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.ops.lock())
    }

    pub fn new(stub: Arc<StubThread>, regs: UserRegs) -> UserThread {
        UserThread {
            stub: SpinLock::new("uthread_stub", Some(stub)),
            stub_borrowed: AtomicBool::new(false),
            regs: SpinLock::new("uthread_regs", regs),
            clear_child_tid: AtomicU64::new(0),
            fs_base: AtomicU64::new(0),
            ops: SpinLock::new("uthread_ops", Ops::new()),
            ops_queued: AtomicBool::new(false),
            stub_gen: AtomicU64::new(0),
            sigstate: crate::kern::signal::ThreadSigState::new(0),
            robust_list: AtomicU64::new(0),
            pdeathsig: AtomicI32::new(0),
            timer_slack_ns: AtomicU64::new(DEFAULT_SLACK_NS),
            default_slack_ns: AtomicU64::new(DEFAULT_SLACK_NS),
            exit_req: std::sync::atomic::AtomicBool::new(false),
            times: crate::kern::cputime::ThreadTimes::default(),
            rseq: crate::kern::rseq::RseqState::default(),
            ptrace: crate::kern::ptrace::PtraceThread::default(),
        }
    }
}
