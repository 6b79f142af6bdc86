//! User mode: guest code runs natively in stub processes; every system call and fault comes
//! back to the kernel as a trap (DESIGN §5, gVisor's "systrap").
//!
//! * [`StubSpace`] is one stub process = one guest address space. It is the `image` ELF,
//!   started with posix_spawn (vfork + exec: no copy of the kernel), with physical memory as
//!   fd 3 and the address space's slot memfd as fd 4. The kernel maps the same slot memfd, so
//!   each guest thread's message page and signal frame are shared memory.
//! * [`StubThread`] is one guest thread: a host thread of the stub and its slot. Its one
//!   operation is [`StubThread::run`]: write the guest registers into the trapped thread's
//!   signal frame, queue mapping operations, hand over, and wait for the next trap.
//!
//! Hand-off: the stub's handler stores TRAPPED and wakes the kernel only if it sleeps; the
//! kernel spins a while before it sleeps on the futex, and likewise in the other direction —
//! each side only when the spin can pay, and no longer than its waits take (`spin`).
//! While it waits the CPU can be interrupted (an IPI); the guest is then kicked (SIGUSR2) so
//! it comes back at a trap boundary. A time slice is the wait's timeout.
//!
//! Trust: everything in a slot can be written by the guest (it is mapped in its address
//! space). The kernel reads each field once and validates it: the ucontext pointer must lie in
//! the thread's own alternate stack; a host tid is only ever used with the stub's own tgid.

pub mod asm;
pub mod fast;
pub mod filter;
pub mod image;
pub mod layout;
pub mod pool;
mod regs;
mod spawn;
pub mod spin;
pub mod vdso;

pub use regs::{UserRegs, reg};
pub use spawn::StubError;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::futex::{self, WaitResult};
use crate::sync::SpinLock;
use layout::*;

/// How the kernel's wait for a trap is bounded.
pub trait RunControl {
    /// How long the guest may run before it is preempted.
    fn slice(&self) -> Duration;
    /// Whether the kernel needs this CPU back now (an IPI arrived): the guest is kicked.
    fn wants_cpu(&self) -> bool;
}

/// A `RunControl` with a fixed slice that never wants the CPU early (tests, tools).
#[derive(Debug, Clone, Copy)]
pub struct Slice(pub Duration);

impl RunControl for Slice {
    fn slice(&self) -> Duration {
        self.0
    }
    fn wants_cpu(&self) -> bool {
        false
    }
}

/// Why the guest stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// The thread's first trap: no guest code has run yet.
    Start,
    /// A system call (number in `rax`); `compat` when it was not a 64-bit `syscall` (int 0x80).
    Syscall { compat: bool },
    /// A memory fault (SIGSEGV, SIGBUS): `err` is the x86 page-fault error code.
    Fault { signo: i32, code: i32, addr: u64, err: u64, trapno: u64 },
    /// Another CPU exception (SIGFPE, SIGILL, SIGTRAP).
    Exception { signo: i32, code: i32, addr: u64, trapno: u64 },
    /// Kicked by the kernel (time slice, IPI).
    Kick,
    /// The stub process is gone, or its thread misbehaved (bad frame): the guest cannot run.
    Dead,
}

/// Mapping and thread operations the stub carries out before it returns to the guest (raw
/// system calls, checked by its seccomp filter).
#[derive(Debug, Default, Clone)]
pub struct Ops {
    list: Vec<[u64; 7]>,
}

impl Ops {
    pub fn new() -> Ops {
        Ops::default()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// How many of them map memory (mmap calls).
    pub fn maps(&self) -> usize {
        self.list.iter().filter(|op| op[0] == libc::SYS_mmap as u64).count()
    }
    /// How many of them fill host page tables (madvise MADV_POPULATE_*).
    pub fn populates(&self) -> usize {
        self.list.iter().filter(|op| is_populate(op)).count()
    }
    /// Add `other`'s operations after these.
    pub fn append(&mut self, mut other: Ops) {
        self.list.append(&mut other.list);
    }
    /// Map physical memory `[pa, pa + len)` at `addr` with `prot` (PROT_* bits).
    pub fn map(&mut self, addr: u64, len: u64, prot: u32, pa: u64) {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.list.push([libc::SYS_mmap as u64, addr, len, u64::from(prot), flags, FD_PHYSMEM as u64, pa]);
    }
    /// [`Ops::map`] of pages the guest is about to touch, and fill the stub's host page table
    /// for them at once (madvise MADV_POPULATE_WRITE, or _READ when not writable): one host
    /// call instead of a host page fault per page. Measured on the development VM, natively,
    /// a memfd mapped in runs of 64 pages: 3.2–3.5 µs a page populated this way, 4.2–4.7 µs
    /// touched page by page (as MAP_POPULATE, whose read faults scan the host's fault-around
    /// window for every page), 2.8–3.4 µs an anonymous page's fault (a loaded host). Just a
    /// map where the host has no MADV_POPULATE_* (before Linux 5.14).
    pub fn map_populate(&mut self, addr: u64, len: u64, prot: u32, pa: u64) {
        self.map(addr, len, prot, pa);
        if populate_works() {
            let advice = if prot & libc::PROT_WRITE as u32 != 0 { libc::MADV_POPULATE_WRITE } else { libc::MADV_POPULATE_READ };
            self.list.push([libc::SYS_madvise as u64, addr, len, advice as u64, 0, 0, 0]);
        }
    }
    pub fn unmap(&mut self, addr: u64, len: u64) {
        self.list.push([libc::SYS_munmap as u64, addr, len, 0, 0, 0, 0]);
    }
    pub fn protect(&mut self, addr: u64, len: u64, prot: u32) {
        self.list.push([libc::SYS_mprotect as u64, addr, len, u64::from(prot), 0, 0, 0]);
    }
    /// Set the thread's fs base (TLS).
    pub fn set_fs(&mut self, base: u64) {
        self.list.push([libc::SYS_arch_prctl as u64, u64::from(filter::ARCH_SET_FS), base, 0, 0, 0, 0]);
    }
    /// Set the thread's gs base back to its slot (`slot`), where the fast path finds it: a
    /// program that moved it (wrgsbase) must not move it for the next program in the stub.
    pub fn set_gs_slot(&mut self, slot: u32) {
        self.list.push([libc::SYS_arch_prctl as u64, u64::from(filter::ARCH_SET_GS), slot_addr(slot), 0, 0, 0, 0]);
    }
    /// Start a new thread in the stub, in `slot` (which must be free); it reports with a
    /// `Trap::Start` on its own [`StubThread`].
    pub fn clone_thread(&mut self, slot: u32) {
        let sp = slot_addr(slot) + INIT_STACK_TOP;
        let ctid = slot_addr(slot) + msg::HOST_TID;
        self.list.push([libc::SYS_clone as u64, THREAD_CLONE_FLAGS, sp, 0, ctid, 0, 0]);
    }
}

/// Whether operation `op` is a populate of [`Ops::map_populate`].
fn is_populate(op: &[u64; 7]) -> bool {
    let advice = [libc::MADV_POPULATE_READ as u64, libc::MADV_POPULATE_WRITE as u64];
    op[0] == libc::SYS_madvise as u64 && advice.contains(&op[3])
}

/// Whether the host has MADV_POPULATE_WRITE (Linux 5.14): tried once on a page of our own.
pub fn populate_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let len = crate::PAGE_SIZE;
        // SAFETY: a fresh private anonymous mapping of one page, only advised and unmapped
        // here; nothing else knows its address.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return false;
            }
            let ok = libc::madvise(p, len, libc::MADV_POPULATE_WRITE) == 0;
            libc::munmap(p, len);
            ok
        }
    })
}

/// One stub process: a guest address space.
#[derive(Debug)]
pub struct StubSpace {
    pid: i32,
    pidfd: OwnedFd,
    /// Kernel mapping of the slot memfd.
    kslots: u64,
    _slots_fd: OwnedFd,
    used: SpinLock<Vec<u64>>,
    /// One more than the highest slot ever allocated: the slots whose host thread may still
    /// exist (`pool::recycle` takes back only a stub that never had a second thread).
    slots_hwm: AtomicU32,
    /// The guest mappings a recycled stub kept from its last process (`pool::recycle`): no
    /// guest code runs in it until its next user has dealt with them ([`StubSpace::take_residue`]).
    residue: SpinLock<Vec<MappedRun>>,
}

/// A run of physical pages a stub maps: `[pa, pa + len)` at `addr`, with `prot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedRun {
    pub addr: u64,
    pub len: u64,
    pub pa: u64,
    pub prot: u32,
}

// SAFETY: the raw kernel mapping is only accessed through atomics; the rest is plain data.
unsafe impl Send for StubSpace {}
// SAFETY: as above; slot allocation is under a spinlock.
unsafe impl Sync for StubSpace {}

/// A guest thread running in a stub.
#[derive(Debug)]
pub struct StubThread {
    space: Arc<StubSpace>,
    slot: u32,
    /// Validated kernel address of the current trap's ucontext (0 when unknown).
    uc: AtomicU64,
    /// Whether its first trap has been seen (a new thread reports asynchronously).
    started: std::sync::atomic::AtomicBool,
    /// How long each side of its hand-overs spins.
    tuning: spin::Tuning,
}

impl StubSpace {
    /// Start a stub process using `physmem` for guest pages, and wait for its first thread
    /// to report (`Trap::Start` in slot 0).
    pub fn spawn(physmem: std::os::fd::BorrowedFd<'_>) -> Result<(Arc<StubSpace>, StubThread), StubError> {
        let space = Arc::new(spawn::spawn(physmem)?);
        let t = StubThread::attach(&space, 0);
        match t.wait_start(Duration::from_secs(10)) {
            Ok(()) => Ok((space, t)),
            Err(e) => Err(e),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the stub process is still alive.
    pub fn is_alive(&self) -> bool {
        let mut pfd = libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd we own, without waiting.
        let r = unsafe { libc::poll(&mut pfd, 1, 0) };
        r == 0
    }

    /// Reserve a free slot for a new thread: one not in use whose last host thread is gone
    /// (its HOST_TID word zeroed by the host), reset for a fresh start.
    pub fn alloc_slot(&self) -> Option<u32> {
        let mut used = self.used.lock();
        for slot in 0..MAX_SLOTS {
            let (w, b) = ((slot / 64) as usize, slot % 64);
            if used[w] & (1 << b) == 0 && self.word(slot, msg::HOST_TID).load(Ordering::Acquire) == 0 {
                used[w] |= 1 << b;
                self.slots_hwm.fetch_max(slot + 1, Ordering::Relaxed);
                self.word(slot, msg::STATE).store(state::USER, Ordering::SeqCst);
                self.word(slot, msg::NOPS).store(0, Ordering::SeqCst);
                self.word(slot, msg::FLAGS).store(0, Ordering::SeqCst);
                return Some(slot);
            }
        }
        None
    }

    /// Give a slot back (its thread is exiting). It is reused only once the host has
    /// zeroed its HOST_TID, that is once the host thread is really gone.
    pub fn free_slot(&self, slot: u32) {
        if slot < MAX_SLOTS {
            self.used.lock()[(slot / 64) as usize] &= !(1 << (slot % 64));
        }
    }

    /// A new thread handle for `slot` (after a `clone_thread` operation).
    pub fn thread(self: &Arc<Self>, slot: u32) -> StubThread {
        StubThread::attach(self, slot)
    }

    fn word(&self, slot: u32, off: u64) -> &AtomicU32 {
        debug_assert!(slot < MAX_SLOTS && off + 4 <= 0x1000);
        let addr = self.kslots + u64::from(slot) * SLOT_SIZE + off;
        // SAFETY: the slot memfd is mapped for SLOTS_SIZE bytes at kslots for as long as this
        // StubSpace lives; `addr` is inside it and 4-aligned; the memory is shared with the stub,
        // so it is only ever accessed atomically.
        unsafe { &*(addr as *const AtomicU32) }
    }

    fn dword(&self, slot: u32, off: u64) -> &AtomicU64 {
        debug_assert!(slot < MAX_SLOTS && off + 8 <= SLOT_SIZE && off.is_multiple_of(8));
        let addr = self.kslots + u64::from(slot) * SLOT_SIZE + off;
        // SAFETY: as in `word`, 8-aligned.
        unsafe { &*(addr as *const AtomicU64) }
    }

    /// The mappings this stub still has from the process it served before ([`pool::recycle`]
    /// kept them), taken: the caller must unmap or take over each before any guest code runs
    /// in the stub. Empty for a new stub.
    pub fn take_residue(&self) -> Vec<MappedRun> {
        std::mem::take(&mut *self.residue.lock())
    }

    /// Kill the stub process.
    pub fn kill(&self) {
        // SAFETY: pidfd_send_signal on our own pidfd; no memory is passed.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32) };
    }
}

impl Drop for StubSpace {
    fn drop(&mut self) {
        self.kill();
        // SAFETY: unmapping our own mapping of the slot memfd; no reference into it outlives
        // the StubSpace (StubThreads hold an Arc to it).
        unsafe { libc::munmap(self.kslots as *mut libc::c_void, SLOTS_SIZE as usize) };
    }
}

/// Pause iterations a new thread's stub spins after its first trap.
const SPIN: u32 = 2000;
/// How often a waiting kernel checks the stub is alive.
const LIVENESS: Duration = Duration::from_millis(100);

impl StubThread {
    fn attach(space: &Arc<StubSpace>, slot: u32) -> StubThread {
        space.word(slot, msg::SPIN).store(SPIN, Ordering::Relaxed);
        space.word(slot, msg::NAP).store(0, Ordering::Relaxed);
        StubThread {
            space: Arc::clone(space),
            slot,
            uc: AtomicU64::new(0),
            started: std::sync::atomic::AtomicBool::new(false),
            tuning: spin::Tuning::new(),
        }
    }

    pub fn space(&self) -> &Arc<StubSpace> {
        &self.space
    }

    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The host thread id of this guest thread (as the stub reported it).
    pub fn host_tid(&self) -> u32 {
        self.space.word(self.slot, msg::HOST_TID).load(Ordering::Relaxed)
    }

    /// Traps this thread has taken.
    pub fn traps(&self) -> u64 {
        self.space.dword(self.slot, msg::TRAPS).load(Ordering::Relaxed)
    }

    /// A forked child's thread starts with its parent thread's hand-over measures
    /// ([`spin::Tuning::inherit`]).
    pub fn inherit_tuning(&self, parent: &StubThread) {
        self.tuning.inherit(&parent.tuning);
    }

    /// Make the guest trap now (it must be running guest code to notice).
    pub fn kick(&self) {
        let tid = self.host_tid();
        if tid != 0 {
            // SAFETY: tgkill with the stub's tgid: it can only reach the stub's own threads.
            unsafe { libc::syscall(libc::SYS_tgkill, self.space.pid, tid as libc::pid_t, KICK_SIGNAL) };
        }
    }

    fn state(&self) -> &AtomicU32 {
        self.space.word(self.slot, msg::STATE)
    }

    /// The kernel side of this thread leaves its CPU (`blocked`: a blocking system call;
    /// else preempted): the stub, trapped and waiting to be resumed, stops spinning and
    /// sleeps. The word says which (1 blocked, 2 preempted) for the tuning.
    pub fn nap(&self, blocked: bool) {
        self.space.word(self.slot, msg::NAP).store(if blocked { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Wait for the thread's first trap (a new stub or a new thread).
    pub fn wait_start(&self, timeout: Duration) -> Result<(), StubError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.state().load(Ordering::Acquire) == state::TRAPPED {
                let mut regs = UserRegs::default();
                return match self.collect(&mut regs) {
                    Trap::Start => {
                        self.started.store(true, Ordering::Release);
                        Ok(())
                    }
                    other => Err(StubError::Start(format!("first trap was {other:?}"))),
                };
            }
            if !self.space.is_alive() {
                return Err(StubError::Start("the stub exited while starting".into()));
            }
            if Instant::now() >= deadline {
                return Err(StubError::Start("timed out waiting for the stub".into()));
            }
            self.sleep_until_trapped(Some(Duration::from_millis(10)));
        }
    }

    /// Sleep on the state word until it says TRAPPED (or the timeout, or a signal).
    fn sleep_until_trapped(&self, timeout: Option<Duration>) -> WaitResult {
        let kwait = self.space.word(self.slot, msg::KWAIT);
        kwait.store(1, Ordering::SeqCst);
        let s = self.state().load(Ordering::SeqCst);
        let r = if s == state::TRAPPED {
            WaitResult::Woken
        } else {
            spin::WAITING.fetch_add(1, Ordering::Relaxed);
            spin::count(&spin::STATS.cpu_sleeps);
            let r = futex::wait_shared(self.state(), s, timeout);
            spin::WAITING.fetch_sub(1, Ordering::Relaxed);
            r
        };
        kwait.store(0, Ordering::SeqCst);
        r
    }

    /// Wait for the trap after a resume, with the guest counted as running meanwhile.
    fn wait_trap(&self, ctl: &dyn RunControl) -> bool {
        spin::RUNNING.fetch_add(1, Ordering::Relaxed);
        let r = self.wait_trap_running(ctl);
        spin::RUNNING.fetch_sub(1, Ordering::Relaxed);
        if r {
            self.tuning.trapped();
        }
        r
    }

    /// Spin while that pays (`spin`), then sleep; kick on an IPI or when the slice runs out;
    /// give up if the stub dies.
    fn wait_trap_running(&self, ctl: &dyn RunControl) -> bool {
        match self.tuning.cpu_wait() {
            spin::Wait::Spin(budget) => {
                // Counted in pauses, as the stub's spin is: no clock read while spinning.
                let pauses = budget.as_nanos() as u64 / spin::pause_ns();
                for _ in 0..pauses {
                    if self.state().load(Ordering::Acquire) == state::TRAPPED {
                        spin::count(&spin::STATS.cpu_spin_hits);
                        return true;
                    }
                    std::hint::spin_loop();
                }
            }
            spin::Wait::Yield(budget) => {
                let start = Instant::now();
                loop {
                    if self.state().load(Ordering::Acquire) == state::TRAPPED {
                        spin::count(&spin::STATS.cpu_yield_hits);
                        return true;
                    }
                    if start.elapsed() >= budget || ctl.wants_cpu() {
                        break;
                    }
                    // SAFETY: sched_yield takes no arguments and only gives up the CPU.
                    unsafe { libc::sched_yield() };
                }
            }
            spin::Wait::Sleep => {}
        }
        let start = Instant::now();
        let slice = ctl.slice();
        let mut kicked = false;
        loop {
            if self.state().load(Ordering::Acquire) == state::TRAPPED {
                return true;
            }
            if !kicked && (ctl.wants_cpu() || start.elapsed() >= slice) {
                spin::count(&spin::STATS.kicks);
                self.kick();
                kicked = true;
            }
            let timeout = if kicked { LIVENESS } else { slice.saturating_sub(start.elapsed()).clamp(Duration::from_micros(1), LIVENESS) };
            if self.sleep_until_trapped(Some(timeout)) == WaitResult::TimedOut && !self.space.is_alive() {
                return false;
            }
        }
    }

    /// Whether the thread's first trap has been seen (it can run: [`StubThread::run`]).
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The uptime (ns) when the last [`StubThread::run`] resumed the guest and when it saw
    /// its trap (0 when it saw none): what the caller charges as guest time, without
    /// reading the clock again.
    pub fn run_times_ns(&self) -> (u64, u64) {
        self.tuning.run_times_ns()
    }

    /// Whether this thread's hand-overs are call-bound ([`spin::Tuning::call_bound`]).
    pub fn call_bound(&self) -> bool {
        self.tuning.call_bound()
    }

    /// Wait for a new thread's first trap if it has not reported yet (after `clone_thread`):
    /// until then it cannot carry operations out ([`StubThread::can_exec_ops`]). False if it
    /// never does (the stub died).
    pub fn ensure_started(&self) -> bool {
        self.started.load(Ordering::Acquire) || self.wait_start(Duration::from_secs(30)).is_ok()
    }

    /// Run the guest: registers in, operations queued, until its next trap; registers out.
    /// A thread that has not reported yet (just made by `clone_thread`) is waited for first.
    pub fn run(&self, regs: &mut UserRegs, ops: &mut Ops, ctl: &dyn RunControl) -> Trap {
        if !self.ensure_started() {
            return Trap::Dead;
        }
        if self.state().load(Ordering::Acquire) != state::TRAPPED {
            return Trap::Dead;
        }
        let uc = self.uc.load(Ordering::Acquire);
        if uc == 0 {
            return Trap::Dead;
        }
        regs.store(uc);
        // More operations than the queue holds: run them in ops-only round trips first.
        let mut pending = std::mem::take(&mut ops.list);
        while pending.len() > msg::MAX_OPS as usize {
            let rest = pending.split_off(msg::MAX_OPS as usize);
            self.queue(&pending, true);
            self.resume();
            if !self.wait_trap(&Slice(LIVENESS)) {
                return Trap::Dead;
            }
            pending = rest;
        }
        let n = pending.len();
        self.queue(&pending, false);
        self.resume();
        if !self.wait_trap(ctl) {
            return Trap::Dead;
        }
        self.check_results(&pending[..n]);
        self.collect(regs)
    }

    /// Log operations the stub could not carry out (a mapping the host refused).
    fn check_results(&self, ops: &[[u64; 7]]) {
        for (i, op) in ops.iter().enumerate() {
            let r = self.space.dword(self.slot, msg::OPS + i as u64 * msg::OP_SIZE + msg::OP_RESULT).load(Ordering::Relaxed) as i64;
            // A populate is advice: it fails harmlessly when another thread of the stub
            // unmapped the range meanwhile (the guest's page then faults as usual).
            if (-4095..0).contains(&r) && !is_populate(op) {
                log::warn!("stub {}: operation {} ({:#x}, {:#x}, {:#x}) failed: errno {}", self.space.pid, op[0], op[1], op[2], op[3], -r);
            }
        }
    }

    /// Whether [`StubThread::exec_ops`] can use this thread now: it has trapped and waits.
    pub fn can_exec_ops(&self) -> bool {
        self.state().load(Ordering::Acquire) == state::TRAPPED && self.uc.load(Ordering::Acquire) != 0
    }

    /// Carry out `ops` in this (trapped) thread's stub thread now, and come back without
    /// running the guest: its trap and registers stay as they were. False if the stub died.
    pub fn exec_ops(&self, ops: Ops) -> bool {
        if self.state().load(Ordering::Acquire) != state::TRAPPED || self.uc.load(Ordering::Acquire) == 0 {
            return false;
        }
        let uc = self.uc.load(Ordering::Acquire);
        for chunk in ops.list.chunks(msg::MAX_OPS as usize) {
            self.queue(chunk, true);
            self.resume();
            if !self.wait_trap(&Slice(LIVENESS)) {
                return false;
            }
        }
        self.uc.store(uc, Ordering::Release);
        true
    }

    /// End this thread: its host thread exits in the stub (after `ops`); nothing comes back.
    /// The slot can be freed once the stub has run it (`StubSpace::free_slot`).
    pub fn exit(self, mut ops: Ops) {
        if self.state().load(Ordering::Acquire) != state::TRAPPED {
            return;
        }
        ops.list.push([libc::SYS_exit as u64, 0, 0, 0, 0, 0, 0]);
        let mut pending = ops.list;
        pending.truncate(msg::MAX_OPS as usize);
        self.queue(&pending, false);
        self.resume();
    }

    fn queue(&self, ops: &[[u64; 7]], report_back: bool) {
        for (i, op) in ops.iter().enumerate() {
            for (j, v) in op.iter().enumerate() {
                self.space.dword(self.slot, msg::OPS + i as u64 * msg::OP_SIZE + 8 * j as u64).store(*v, Ordering::Relaxed);
            }
        }
        self.set_word(msg::NOPS, ops.len() as u32);
        self.set_word(msg::FLAGS, u32::from(report_back));
    }

    /// Store `v` in message page word `off` unless it holds it already: a store takes the
    /// cache line from the stub's CPU, which spins on it (`layout::msg`).
    fn set_word(&self, off: u64, v: u32) {
        let w = self.space.word(self.slot, off);
        if w.load(Ordering::Relaxed) != v {
            w.store(v, Ordering::Relaxed);
        }
    }

    /// Hand the thread back to its stub, with the spin it may do after its next trap (`spin`).
    fn resume(&self) {
        self.uc.store(0, Ordering::Release);
        let nap = match self.space.word(self.slot, msg::NAP).load(Ordering::Relaxed) {
            0 => spin::Nap::None,
            2 => spin::Nap::Preempted,
            _ => spin::Nap::Blocked,
        };
        self.tuning.resume_after_nap(nap);
        let spin = self.tuning.resumed(self.space.pid, self.host_tid());
        self.set_word(msg::SPIN, spin);
        self.set_word(msg::NAP, 0);
        self.state().swap(state::RESUME, Ordering::SeqCst);
        if self.space.word(self.slot, msg::SWAIT).load(Ordering::SeqCst) != 0 {
            spin::count(&spin::STATS.stub_wakes);
            futex::wake_shared(self.state(), 1);
        }
    }

    /// Read a trap out of the message page and the frame.
    fn collect(&self, regs: &mut UserRegs) -> Trap {
        let w = |off| self.space.word(self.slot, off).load(Ordering::Acquire);
        let d = |off| self.space.dword(self.slot, off).load(Ordering::Acquire);
        let signo = w(msg::SIGNO) as i32;
        let code = w(msg::SICODE) as i32;
        let addr = d(msg::SIADDR);
        let sisys = d(msg::SISYS);
        let Some(uc) = self.frame_addr(d(msg::UC)) else {
            return Trap::Dead;
        };
        self.uc.store(uc, Ordering::Release);
        regs.load(uc);
        let trapno = regs.gregs[reg::TRAPNO];
        let err = regs.gregs[reg::ERR];
        match signo {
            libc::SIGSYS => {
                if code == fast::SI_CODE {
                    spin::count(&spin::STATS.fast_calls);
                }
                Trap::Syscall { compat: (sisys >> 32) as u32 != 0xc000_003e }
            }
            libc::SIGSEGV | libc::SIGBUS => Trap::Fault { signo, code, addr, err, trapno },
            libc::SIGILL if regs.gregs[reg::RIP] == STUB_BASE + asm::first_trap_offset() => {
                self.arm_fast(uc);
                Trap::Start
            }
            libc::SIGFPE | libc::SIGILL | libc::SIGTRAP => Trap::Exception { signo, code, addr, trapno },
            s if s == KICK_SIGNAL => Trap::Kick,
            _ => Trap::Dead,
        }
    }

    /// Set up this thread's fast path frame (`fast`) from the host's signal frame of its
    /// first trap (kernel address `uc`): the parts of a ucontext that do not change — its
    /// flags, alternate stack, segments, signal mask and FPU state pointer, and the xsave
    /// image's software bytes — as the host writes them, so that `rt_sigreturn` takes the
    /// frame as its own. Not when the host's frames carry no xsave image, or a larger one
    /// than the slot has room for: the kernel then patches no site this thread runs.
    fn arm_fast(&self, uc: u64) {
        const MAGIC1: u32 = 0x4650_5853;
        let slot = slot_addr(self.slot);
        let kslot = self.space.kslots + u64::from(self.slot) * SLOT_SIZE;
        self.space.dword(self.slot, msg::FAST_XFEAT).store(0, Ordering::Relaxed);
        let Some((kfp, len)) = self.fpstate_area() else { return };
        // SAFETY: `fpstate_area` checked [kfp, kfp + len) lies in this slot, len ≥ 512.
        let rd32 = |k: u64| unsafe { std::ptr::read_volatile(k as *const u32) };
        let (magic, ext, xsize) = (rd32(kfp + 464), rd32(kfp + 468), rd32(kfp + 480));
        if magic != MAGIC1 || len < 512 + 64 || u64::from(ext) > FAST_FP_ROOM || ext != xsize + 4 {
            return;
        }
        // SAFETY: as above; xfeatures is the u64 at 472.
        let xfeat = unsafe { std::ptr::read_volatile((kfp + 472) as *const u64) };
        let fuc = kslot + FAST_UC_OFF;
        let ffp = kslot + FAST_FP_OFF;
        let copy = |from: u64, to: u64, n: u64| {
            for i in (0..n).step_by(8) {
                // SAFETY: both ranges lie in this slot's alternate stack: the host frame was
                // validated by `frame_addr`/`fpstate_area`, the fast frame is at fixed
                // offsets inside the slot (`layout`).
                unsafe { std::ptr::write_volatile((to + i) as *mut u64, std::ptr::read_volatile((from + i) as *const u64)) };
            }
        };
        // SAFETY: as in `copy`.
        let wr = |k: u64, v: u64| unsafe { std::ptr::write_volatile(k as *mut u64, v) };
        // uc_flags, uc_link, uc_stack.
        copy(uc, fuc, 40);
        let csgsfs = regs::MCONTEXT_OFF + 8 * reg::CSGSFS as u64;
        copy(uc + csgsfs, fuc + csgsfs, 8);
        for r in [reg::ERR, reg::TRAPNO, reg::OLDMASK, reg::CR2] {
            wr(fuc + regs::MCONTEXT_OFF + 8 * r as u64, 0);
        }
        wr(fuc + regs::FPSTATE_PTR_OFF, slot + FAST_FP_OFF);
        for i in 0..8 {
            wr(fuc + regs::FPSTATE_PTR_OFF + 8 + 8 * i, 0);
        }
        // uc_sigmask.
        copy(uc + regs::UCONTEXT_SIZE - 8, fuc + regs::UCONTEXT_SIZE - 8, 8);
        // The software bytes and the xsave header's start; magic2 after the image.
        copy(kfp + 464, ffp + 464, 48);
        copy(kfp + 512, ffp + 512, 64);
        // SAFETY: ext ≤ FAST_FP_ROOM and xsize + 4 = ext: inside the slot; the host's
        // image has len ≥ ext bytes (`fpstate_area` took len from ext).
        unsafe { std::ptr::write_volatile((ffp + u64::from(xsize)) as *mut u32, rd32(kfp + u64::from(xsize))) };
        self.space.dword(self.slot, msg::FAST_SELF).store(slot, Ordering::Relaxed);
        self.space.dword(self.slot, msg::FAST_SP).store(slot + FAST_UC_OFF - 64, Ordering::Relaxed);
        self.space.dword(self.slot, msg::FAST_XFEAT).store(xfeat, Ordering::Release);
    }

    /// Whether this thread can take the fast path (its sites may be patched).
    pub fn fast_ready(&self) -> bool {
        self.space.dword(self.slot, msg::FAST_XFEAT).load(Ordering::Acquire) != 0
    }

    /// The guest's FPU state as the host saved it in the current trap's frame (an xsave
    /// image, or a 512-byte fxsave image), for building a guest signal frame.
    pub fn fpstate(&self) -> Option<Vec<u8>> {
        let (k, len) = self.fpstate_area()?;
        let mut v = vec![0u8; len];
        for (i, b) in v.iter_mut().enumerate() {
            // SAFETY: `fpstate_area` checked [k, k + len) lies in this slot's alternate stack,
            // inside the slot mapping; the guest may write it concurrently, so read volatile.
            *b = unsafe { std::ptr::read_volatile((k + i as u64) as *const u8) };
        }
        Some(v)
    }

    /// Replace the guest's FPU state in the current trap's frame (a guest rt_sigreturn): as
    /// many bytes as the host's image has, at most.
    pub fn set_fpstate(&self, data: &[u8]) -> bool {
        let Some((k, len)) = self.fpstate_area() else { return false };
        for (i, b) in data.iter().take(len).enumerate() {
            // SAFETY: as in `fpstate`.
            unsafe { std::ptr::write_volatile((k + i as u64) as *mut u8, *b) };
        }
        self.fp_written();
        true
    }

    /// The frame's FPU image was written: a fast path's way back loads it (`msg::FAST_FP_DIRTY`;
    /// published with the resume).
    fn fp_written(&self) {
        self.space.word(self.slot, msg::FAST_FP_DIRTY).store(1, Ordering::Relaxed);
    }

    /// Give the guest a fresh FPU state on its way back from this trap (a signal handler
    /// starts with one, as on Linux): x87 control word 0x37f, MXCSR 0x1f80, every register
    /// zero, AVX and later state in its initial configuration.
    pub fn reset_fpstate(&self) -> bool {
        let Some((k, len)) = self.fpstate_area() else { return false };
        let mut img = [0u8; 512];
        img[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        img[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        img[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR_MASK (ignored by fxrstor)
        for (i, b) in img.iter().enumerate().take(464) {
            // SAFETY: as in `fpstate`; bytes 464.. (the software-reserved area with the
            // xsave magic) are left as the host wrote them.
            unsafe { std::ptr::write_volatile((k + i as u64) as *mut u8, *b) };
        }
        if len >= 512 + 64 {
            // XSAVE header: only x87 and SSE in use; the rest comes back in its init state.
            // SAFETY: [k, k + len) is inside the slot (checked by `fpstate_area`).
            unsafe { std::ptr::write_volatile((k + 512) as *mut u64, 0b11) };
        }
        self.fp_written();
        true
    }

    /// Where the host put the FPU state of the current trap, and its size, validated.
    fn fpstate_area(&self) -> Option<(u64, usize)> {
        let uc = self.uc.load(Ordering::Acquire);
        if uc == 0 {
            return None;
        }
        // SAFETY: `uc` was validated when the trap was collected (whole ucontext in the slot).
        let fp = unsafe { std::ptr::read_volatile((uc + regs::FPSTATE_PTR_OFF) as *const u64) };
        let lo = slot_addr(self.slot) + ALT_OFF;
        let hi = slot_addr(self.slot) + SLOT_SIZE;
        if fp < lo || fp.checked_add(512)? > hi || !fp.is_multiple_of(16) {
            return None;
        }
        let k = self.space.kslots + (fp - SLOTS_BASE);
        // struct _fpx_sw_bytes at 464: magic1, extended_size.
        // SAFETY: [k, k + 512) is inside the slot (checked above).
        let magic = unsafe { std::ptr::read_volatile((k + 464) as *const u32) };
        // SAFETY: as above.
        let ext = unsafe { std::ptr::read_volatile((k + 468) as *const u32) } as u64;
        let len = if magic == 0x4650_5853 && (512..=0x8000).contains(&ext) && fp + ext <= hi { ext } else { 512 };
        Some((k, len as usize))
    }

    /// Validate the stub's ucontext pointer: inside this thread's alternate stack, aligned,
    /// with room for the whole ucontext. Returns its kernel address.
    fn frame_addr(&self, uc: u64) -> Option<u64> {
        let lo = slot_addr(self.slot) + ALT_OFF;
        let hi = slot_addr(self.slot) + SLOT_SIZE;
        if uc < lo || uc.checked_add(regs::UCONTEXT_SIZE)? > hi || !uc.is_multiple_of(8) {
            return None;
        }
        Some(self.space.kslots + (uc - SLOTS_BASE))
    }
}
