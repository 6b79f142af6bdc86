//! A pool of ready stubs, so that fork and exec never wait for a host process to start.
//!
//! Starting a stub (posix_spawn of its image, then its start-up to the first trap) costs a
//! host process creation and exec — most of a guest fork's time when done on the forking
//! vCPU. The `stubpool` host thread keeps [`start`]'s `target` stubs started and waiting at
//! their first trap; [`get`] takes one (checking it is still alive) and wakes the thread to
//! start the next, or, with none waiting, starts one itself as before.
//!
//! A stub whose process exits goes back to the pool when it can ([`recycle`]): the next fork
//! then costs no host process at all (no spawn, no host exit, no unmap of its slots, and its
//! first trap finds a warm stub). Only a stub that is safe to hand to another process: one
//! that never had a second thread (no host thread of the old process can be left in it: the
//! kernel's slot count, and the host's thread count checked as it is taken back), held by no
//! one else, whose guest mappings the stub has just removed — every unmap carried out and
//! checked — and whose FPU state is reset. The next [`take`] finishes it (most recent first:
//! its unmaps are long done by then), so a fork+exit loop runs on one stub, and no host
//! thread is woken for it. What a guest cannot touch stays as it was
//! started: the seccomp filter (a guest can neither remove nor add one: the filter traps
//! seccomp and prctl), the signal handlers, the stub code. A guest that jumps into the stub's
//! code can make the few calls the filter lets the stub make: a host thread it started is
//! caught (the stub must have one thread, /proc says), a changed signal mask is reset in the
//! frame; a changed alternate stack only makes the next process's first trap fail (its
//! frame is then refused and that process killed, as for a stub that dies). The fs base is
//! set by the new process's first operations, as for any new stub.
//!
//! Any other stub whose address space is gone is killed and dropped ([`retire`]).
//!
//! The thread lives as long as the kernel: a stub's parent-death signal (PR_SET_PDEATHSIG)
//! follows the host *thread* that started it, so the stubs it starts die with the kernel
//! process, as the vCPUs' do. [`drain`] (a reboot's re-exec, which keeps the pid: a stub still
//! starting would not notice its parent's new image) stops it and kills the waiting stubs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::layout::msg;
use super::{LIVENESS, MappedRun, Ops, StubError, StubSpace, StubThread};
use crate::physmem::PhysMem;
use crate::sync::SpinLock;

/// A started stub: its process and its first thread, trapped at its start.
type Ready = (Arc<StubSpace>, StubThread);

struct Pool {
    ready: SpinLock<Vec<Ready>>,
    /// Stubs [`recycle`] is clearing of their old process (the next [`take`] or the refill
    /// thread finishes them).
    scrubbing: SpinLock<Vec<Scrub>>,
    /// Stubs [`recycle`] took back that are not yet finished (handed out, put in `ready`, or
    /// killed): those in `scrubbing` and the ones being finished.
    returning: AtomicUsize,
    /// Set by [`drain`]: no more stubs are taken back.
    drained: AtomicBool,
    target: usize,
    /// How many stubs the pool holds at most, counting those coming back: room for the
    /// stubs of a pipeline's processes ([`KEEP_FACTOR`]).
    capacity: usize,
    /// Wakes the refill thread (one token is enough).
    wake: Sender<()>,
    /// Held while the refill thread starts a stub; `true` once drained (no more starts).
    starting: Mutex<bool>,
    /// Stubs taken from the pool, and taken when it was empty (started on the spot).
    hits: AtomicU64,
    misses: AtomicU64,
    /// Stubs taken back by [`recycle`].
    recycled: AtomicU64,
    /// Stubs the refill thread started.
    started: AtomicU64,
    /// Stubs that came back from an exit but were killed: no room, or not fit to serve.
    refused: AtomicU64,
}

static POOL: OnceLock<Pool> = OnceLock::new();

impl Pool {
    /// Stubs ready or on their way back from an exited process ([`recycle`]).
    fn stocked(&self) -> usize {
        self.ready.lock().len() + self.returning.load(Ordering::Acquire)
    }
}

/// The pool takes back up to this many times its target of stubs from exiting processes.
/// A shell's pipeline takes several stubs at once (`sed | sort | head`: three): with no more
/// room than the target, the refill thread started new ones as the pipeline began and the
/// pipeline's own stubs were killed as its processes exited — three host process starts and
/// three kills for every pipeline (measured: 40 pipelines, 127 starts and 123 kills). With
/// room, the same stubs serve every pipeline; a waiting stub costs the host a small process
/// (its page tables, the stub's few pages).
const KEEP_FACTOR: usize = 2;

/// Pause after a failed start before the thread tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Start the pool: `target` stubs kept ready, on `physmem` (duplicated; the pool's own). Once
/// per process; a second call, or `target` 0, does nothing.
pub fn start(physmem: BorrowedFd<'_>, target: usize) -> std::io::Result<()> {
    if target == 0 || POOL.get().is_some() {
        return Ok(());
    }
    let fd: OwnedFd = physmem.try_clone_to_owned()?;
    let (tx, rx) = bounded::<()>(1);
    let pool = Pool {
        ready: SpinLock::new("stub_pool", Vec::with_capacity(target)),
        scrubbing: SpinLock::new("stub_scrubbing", Vec::new()),
        returning: AtomicUsize::new(0),
        drained: AtomicBool::new(false),
        target,
        capacity: target.saturating_mul(KEEP_FACTOR),
        wake: tx,
        starting: Mutex::new(false),
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        recycled: AtomicU64::new(0),
        started: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    };
    if POOL.set(pool).is_err() {
        return Ok(());
    }
    crate::cpu::spawn_host_thread("stubpool", move || refill(fd, rx))
}

/// How long [`drain`] waits for a stub start in progress.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The refill thread: keep `target` stubs ready; sleep until one is taken.
fn refill(physmem: OwnedFd, wake: Receiver<()>) {
    let Some(pool) = POOL.get() else { return };
    loop {
        finish_scrubs(pool);
        while pool.stocked() < pool.target {
            let Ok(stopped) = pool.starting.lock() else { break };
            if *stopped {
                // Never return: the stubs this thread started live as long as it does.
                loop {
                    std::thread::park();
                }
            }
            match StubSpace::spawn(physmem.as_fd()) {
                Ok(r) => {
                    pool.ready.lock().push(r);
                    pool.started.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    log::warn!("stub pool: {e}");
                    drop(stopped);
                    std::thread::sleep(RETRY);
                }
            }
        }
        if wake.recv().is_err() {
            loop {
                std::thread::park();
            }
        }
    }
}

/// A stub whose address space is gone and that is not recycled: killed and dropped (the
/// unmap of the kernel's mapping of its slots, its descriptors) here. Measured: handing the
/// drop to the refill thread took it off the exit path but made the shell script slower —
/// the thread then unmapped (with a TLB shoot-down on every vCPU's CPU) just as the next
/// fork's child started, where the exiting vCPU did it while the parent slept in wait.
pub fn retire(space: Arc<StubSpace>) {
    space.kill();
    drop(space);
}

/// A ready stub from the pool, if one is waiting and alive; the pool is refilled behind it.
pub fn take() -> Option<Ready> {
    let pool = POOL.get()?;
    // A stub on its way back first: the most recent exit's, whose host thread is still
    // warm; taking a ready one instead would leave the returning ones to pile up until the
    // ready list ran dry (or wake the refill thread for each).
    let got = take_returning(pool).or_else(|| loop {
        let Some(r) = pool.ready.lock().pop() else { break None };
        if r.0.is_alive() {
            break Some(r);
        }
        // Killed while it waited (the host's OOM killer, a user): drop it, try the next.
        drop(r);
    });
    // Refilled once half the pool is gone, counting the stubs being scrubbed (they come back
    // in tens of µs): an exiting process's stub may come back first. Counting only the ready
    // ones started a host process whenever a fork came before the last exit's scrub was done
    // (a fork+exit loop: one start per 4 forks), then killed the recycled stub (no room).
    if pool.stocked() <= pool.target / 2 {
        let _ = pool.wake.try_send(());
    }
    let counter = if got.is_some() { &pool.hits } else { &pool.misses };
    counter.fetch_add(1, Ordering::Relaxed);
    got
}

/// Take back the stub of an exiting process: `t` is its only thread, trapped, `unmaps`
/// remove everything the process had mapped in it (`AddressSpace::take_stub`) and `pages`
/// are the physical pages it had. The stub starts the unmaps at once and the caller goes on;
/// the next [`take`] (or the refill thread) waits for them: every one must have succeeded
/// (and the rules in the module doc hold) for the stub to serve the next fork or exec.
/// Otherwise, or with the pool full, it is killed ([`retire`]). Either way the pages are
/// released here, before the caller wakes anyone: the host process has one thread, the
/// trapped one, which runs nothing but the unmaps from here on — no guest instruction can
/// reach a page after this (and a parent writing the pages it shared with this process
/// finds them its own again, with no copy).
///
/// `keep`: mappings `unmaps` leave in place, of pages someone else still holds (its parent
/// shares them copy-on-write, a file's cache holds them): the stub keeps them as its residue
/// ([`StubSpace::take_residue`]) for its next user, a fork that maps the same pages at the
/// same places (a shell's next child) — that user unmaps the rest before the guest runs.
/// With none, the unmaps clear everything the guest had and are joined first.
pub fn recycle(space: Arc<StubSpace>, t: StubThread, unmaps: Ops, pages: Vec<u64>, pm: Arc<PhysMem>, keep: Vec<MappedRun>) {
    let pool = POOL.get().filter(|p| !p.drained.load(Ordering::Acquire));
    let room = pool.is_some_and(|p| p.stocked() < p.capacity);
    // Joined first: a process with more mappings than one round trip holds (a dynamic program
    // and its libraries) still clears its stub in a few calls.
    let all_unmaps = unmaps.list.iter().all(|op| op[0] == libc::SYS_munmap as u64);
    let unmaps = if keep.is_empty() { coalesce(&unmaps) } else { unmaps };
    let Some(pool) = pool.filter(|_| room && all_unmaps && can_recycle(&space, &t, &unmaps) && one_thread(space.pid)) else {
        // Killed (its trapped thread runs no guest code before it dies), then the pages go.
        if let Some(p) = POOL.get() {
            p.refused.fetch_add(1, Ordering::Relaxed);
        }
        drop(t);
        retire(space);
        release(&pm, pages);
        return;
    };
    *space.residue.lock() = keep;
    drop(space);
    let uc = t.uc.load(Ordering::Acquire);
    let mut ops = unmaps;
    ops.set_gs_slot(t.slot());
    t.queue(&ops.list, true);
    resume_quietly(&t);
    release(&pm, pages);
    pool.returning.fetch_add(1, Ordering::AcqRel);
    pool.scrubbing.lock().push(Scrub { t, n: ops.list.len(), uc });
}

/// The longest munmap a stub's filter lets through: the length's high 32 bits must be 0.
const MAX_UNMAP: u64 = (1 << 32) - crate::PAGE_SIZE as u64;

/// `unmaps` (munmaps only) as few host calls as the filter allows ([`join_unmaps`]).
fn coalesce(unmaps: &Ops) -> Ops {
    let mut out = Ops::new();
    for (addr, len) in join_unmaps(unmaps.list.iter().map(|op| (op[1], op[2])).collect()) {
        out.unmap(addr, len);
    }
    out
}

/// Ranges `(addr, len)` that clear a stub of an address space (a recycled stub's scrub,
/// exec's teardown of the old image) as few host munmaps as the stub's filter allows: sorted,
/// and each joined with the next — the gap between them included — while the call stays
/// within [`MAX_UNMAP`]. For callers that remove everything the guest had in the stub (only
/// guest mappings lie below `USER_END`: the stub unmapped whatever the host gave it there
/// when it started). One munmap per mapping with pages (text, data, heap, stack, each
/// library) costs ~2 µs of host call on the development VM besides the pages' own teardown,
/// and a munmap over a hole next to nothing; a small process's mappings fit in two or three
/// 4 GiB windows. A range longer than the bound is left as it is.
pub fn join_unmaps(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut cur: Option<(u64, u64)> = None;
    for (lo, len) in ranges {
        let hi = lo.saturating_add(len);
        cur = match cur {
            Some((clo, chi)) if hi.max(chi) - clo <= MAX_UNMAP => Some((clo, hi.max(chi))),
            Some((clo, chi)) => {
                out.push((clo, chi - clo));
                Some((lo, hi))
            }
            None => Some((lo, hi)),
        };
    }
    if let Some((lo, hi)) = cur {
        out.push((lo, hi - lo));
    }
    out
}

/// Hand `t` its operations as `StubThread::resume` does, but with no spin after them (no one
/// waits for it on a CPU: the refill thread sleeps) and wherever the host puts it (a new
/// process's first resume places it).
fn resume_quietly(t: &StubThread) {
    t.uc.store(0, Ordering::Release);
    t.space.word(t.slot, msg::SPIN).store(0, Ordering::Relaxed);
    t.space.word(t.slot, msg::NAP).store(0, Ordering::Relaxed);
    t.state().swap(super::layout::state::RESUME, Ordering::SeqCst);
    if t.space.word(t.slot, msg::SWAIT).load(Ordering::SeqCst) != 0 {
        crate::futex::wake_shared(t.state(), 1);
    }
}

/// Wait, sleeping (never spinning: the host CPUs are the vCPUs' and the stubs'), for `t`'s
/// trap after [`resume_quietly`]; false if the stub died.
fn wait_quietly(t: &StubThread) -> bool {
    loop {
        if t.state().load(Ordering::Acquire) == super::layout::state::TRAPPED {
            return true;
        }
        if t.sleep_until_trapped(Some(LIVENESS)) == crate::futex::WaitResult::TimedOut && !t.space.is_alive() {
            return false;
        }
    }
}

/// A stub carrying out the unmaps that clear it of the process that exited.
struct Scrub {
    t: StubThread,
    /// Operations queued.
    n: usize,
    /// The trap's frame, as it was before the operations-only round trip.
    uc: u64,
}

/// Whether host process `pid` has one thread: a guest that jumped into the stub's code could
/// have started host threads of its own (the filter lets the stub's thread clone through),
/// which the kernel's slot count never saw. One stat: a process's `task` directory has two
/// links more than it has threads (Linux's proc_task_getattr).
fn one_thread(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/task")).is_ok_and(|m| m.nlink() == 3)
}

/// The signal mask the trapped thread goes back to at its sigreturn: the stub's own (a guest
/// in the stub's code could have changed it with rt_sigprocmask, and the frame keeps it).
fn reset_sigmask(uc: u64) {
    // SAFETY: `uc` is the kernel address of the thread's current frame, validated when its
    // trap was collected (the whole ucontext lies in the slot mapping, which the space keeps
    // mapped); uc_sigmask is its last 8 bytes, 8-aligned. The stub thread waits trapped, and
    // the guest is gone, so nothing else writes it.
    unsafe { std::ptr::write_volatile((uc + super::regs::UCONTEXT_SIZE - 8) as *mut u64, super::asm::BLOCK_MASK) };
}

fn release(pm: &PhysMem, pages: Vec<u64>) {
    for pa in pages {
        pm.page_unref(pa);
    }
}

/// Whether `t`'s stub may serve another process once `unmaps` are carried out: the only
/// thread it ever had, trapped, and no one else holds it (this Arc and the thread's); all the
/// operations fit in one round trip and are unmaps.
fn can_recycle(space: &Arc<StubSpace>, t: &StubThread, unmaps: &Ops) -> bool {
    t.slot == 0
        && Arc::ptr_eq(space, &t.space)
        && space.slots_hwm.load(Ordering::Relaxed) <= 1
        && Arc::strong_count(space) == 2
        && unmaps.list.len() < msg::MAX_OPS as usize
        && unmaps.list.iter().all(|op| op[0] == libc::SYS_munmap as u64)
        && t.can_exec_ops()
        && space.is_alive()
}

/// Wait for a stub [`recycle`] started to finish its unmaps (and its gs base put back on its
/// slot): the stub, with its trap's frame back, the signal mask reset and a fresh FPU state,
/// when every operation succeeded; else it is killed (None).
fn finish(s: Scrub) -> Option<Ready> {
    let space = Arc::clone(&s.t.space);
    let ok = wait_quietly(&s.t)
        && (0..s.n).all(|i| space.dword(s.t.slot, msg::OPS + i as u64 * msg::OP_SIZE + msg::OP_RESULT).load(Ordering::Acquire) == 0)
        && {
            s.t.uc.store(s.uc, Ordering::Release);
            reset_sigmask(s.uc);
            s.t.reset_fpstate()
        };
    if ok {
        Some((space, s.t))
    } else {
        drop(s.t);
        retire(space);
        None
    }
}

/// A stub on its way back, finished now ([`finish`]), the most recently returned first;
/// None when none is (or none passed).
fn take_returning(pool: &Pool) -> Option<Ready> {
    loop {
        let s = pool.scrubbing.lock().pop()?;
        let r = finish(s);
        pool.returning.fetch_sub(1, Ordering::AcqRel);
        if r.is_some() {
            pool.recycled.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    }
}

/// The refill thread: finish the stubs on their way back ([`finish`]); each that passes joins
/// the ready ones while there is room, the others are killed.
fn finish_scrubs(pool: &Pool) {
    let list = std::mem::take(&mut *pool.scrubbing.lock());
    for s in list {
        match finish(s) {
            Some((space, t)) => {
                let mut ready = pool.ready.lock();
                if ready.len() < pool.capacity {
                    ready.push((space, t));
                    // Under the ready list's lock: `stocked` never counts it twice.
                    pool.returning.fetch_sub(1, Ordering::AcqRel);
                    pool.recycled.fetch_add(1, Ordering::Relaxed);
                } else {
                    drop(ready);
                    pool.returning.fetch_sub(1, Ordering::AcqRel);
                    pool.refused.fetch_add(1, Ordering::Relaxed);
                    drop(t);
                    retire(space);
                }
            }
            None => {
                pool.returning.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// A stub for a new address space: a ready one from the pool, else one started now on
/// `physmem` (no pool, or none waiting).
pub fn get(physmem: BorrowedFd<'_>) -> Result<Ready, StubError> {
    let (space, t, residue) = get_with_residue(physmem)?;
    if residue.is_empty() {
        return Ok((space, t));
    }
    // Cleared of what it kept from its last process, as its scrub would have.
    let mut ops = Ops::new();
    for (addr, len) in join_unmaps(residue.iter().map(|r| (r.addr, r.len)).collect()) {
        ops.unmap(addr, len);
    }
    if t.exec_ops(ops) {
        Ok((space, t))
    } else {
        drop(t);
        retire(space);
        StubSpace::spawn(physmem)
    }
}

/// [`get`], with the stub's residue left for the caller (a fork's child, which keeps what
/// it maps alike and unmaps the rest before its first instruction).
pub fn get_with_residue(physmem: BorrowedFd<'_>) -> Result<(Arc<StubSpace>, StubThread, Vec<MappedRun>), StubError> {
    let (space, t) = match take() {
        Some(r) => r,
        None => StubSpace::spawn(physmem)?,
    };
    let residue = space.take_residue();
    Ok((space, t, residue))
}

/// The pool's counters, by name: stubs taken from it (`pool_hits`) and started on the spot
/// (`pool_misses`), taken back from exiting processes (`pool_recycled`), started by the
/// refill thread (`pool_started`) and killed on their way back (`pool_refused`).
pub fn stats() -> Vec<(&'static str, u64)> {
    POOL.get().map_or_else(Vec::new, |p| {
        [("pool_hits", &p.hits), ("pool_misses", &p.misses), ("pool_recycled", &p.recycled), ("pool_started", &p.started), ("pool_refused", &p.refused)]
            .into_iter()
            .map(|(n, c)| (n, c.load(Ordering::Relaxed)))
            .collect()
    })
}

/// Stop starting stubs and kill the waiting ones (before the kernel re-executes itself).
/// Waits (at most [`DRAIN_WAIT`]) for a start in progress to finish, so no stub is left
/// half-started (one that has set its parent-death signal dies with the refill thread at the
/// exec, if not before). Never longer: the refill thread may be blocked on something a
/// stopped CPU holds (the ready list, the allocator), and the reboot must go on.
pub fn drain() {
    let Some(pool) = POOL.get() else { return };
    pool.drained.store(true, Ordering::Release);
    let deadline = std::time::Instant::now() + DRAIN_WAIT;
    loop {
        match pool.starting.try_lock() {
            Ok(mut stopped) => {
                *stopped = true;
                break;
            }
            Err(std::sync::TryLockError::Poisoned(_)) => break,
            // (Nothing is logged: the console's lock may be held by a stopped CPU too.)
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() >= deadline => break,
            Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    // The other CPUs are stopped and one may hold the list: its stubs die with this thread
    // then (their parent-death signal), only later.
    let ready = pool.ready.try_lock().map(|mut r| std::mem::take(&mut *r));
    drop(ready);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(ops: &Ops) -> Vec<(u64, u64)> {
        ops.list.iter().map(|op| {
            assert_eq!(op[0], libc::SYS_munmap as u64);
            (op[1], op[2])
        }).collect()
    }

    #[test]
    fn a_scrub_unmaps_each_4_gib_window_once() {
        let mut o = Ops::new();
        // A small static program: stack high, heap and text low, out of order.
        o.unmap(0x7fe0_0000_0000, 0x2_1000);
        o.unmap(0x40_1000, 0x5000);
        o.unmap(0x40_0000, 0x1000);
        o.unmap(0x60_0000, 0x3000);
        o.unmap(0x7fe0_0010_0000, 0x1000);
        assert_eq!(ranges(&coalesce(&o)), vec![(0x40_0000, 0x20_3000), (0x7fe0_0000_0000, 0x10_1000)]);
    }

    #[test]
    fn a_joined_unmap_stays_within_the_filter_bound() {
        let mut o = Ops::new();
        o.unmap(0, 0x1000);
        o.unmap(MAX_UNMAP - 0x1000, 0x1000);
        o.unmap(MAX_UNMAP, 0x1000);
        o.unmap(0x1_0000_0000, 0x2000);
        o.unmap(0x1_0000_1000, 0x2000); // overlapping
        let got = ranges(&coalesce(&o));
        assert_eq!(got, vec![(0, MAX_UNMAP), (MAX_UNMAP, 0x1_0000_3000 - MAX_UNMAP)]);
        assert!(got.iter().all(|&(_, len)| len <= MAX_UNMAP));
        assert!(coalesce(&Ops::new()).is_empty());
    }
}
