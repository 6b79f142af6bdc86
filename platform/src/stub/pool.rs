//! A pool of ready stubs, so that fork and exec never wait for a host process to start.
//!
//! Starting a stub (posix_spawn of its image, then its start-up to the first trap) costs a
//! host process creation and exec — most of a guest fork's time when done on the forking
//! vCPU. The `stubpool` host thread keeps [`start`]'s `target` stubs started and waiting at
//! their first trap; [`get`] takes one (checking it is still alive) and wakes the thread to
//! start the next, or, with none waiting, starts one itself as before.
//!
//! The thread lives as long as the kernel: a stub's parent-death signal (PR_SET_PDEATHSIG)
//! follows the host *thread* that started it, so the stubs it starts die with the kernel
//! process, as the vCPUs' do. [`drain`] (a reboot's re-exec, which keeps the pid: a stub still
//! starting would not notice its parent's new image) stops it and kills the waiting stubs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::{StubError, StubSpace, StubThread};
use crate::sync::SpinLock;

/// A started stub: its process and its first thread, trapped at its start.
type Ready = (Arc<StubSpace>, StubThread);

struct Pool {
    ready: SpinLock<Vec<Ready>>,
    target: usize,
    /// Wakes the refill thread (one token is enough).
    wake: Sender<()>,
    /// Held while the refill thread starts a stub; `true` once drained (no more starts).
    starting: Mutex<bool>,
    /// Stubs taken from the pool, and taken when it was empty (started on the spot).
    hits: AtomicU64,
    misses: AtomicU64,
}

static POOL: OnceLock<Pool> = OnceLock::new();

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
        target,
        wake: tx,
        starting: Mutex::new(false),
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
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
        while pool.ready.lock().len() < pool.target {
            let Ok(stopped) = pool.starting.lock() else { break };
            if *stopped {
                // Never return: the stubs this thread started live as long as it does.
                loop {
                    std::thread::park();
                }
            }
            match StubSpace::spawn(physmem.as_fd()) {
                Ok(r) => pool.ready.lock().push(r),
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

/// A ready stub from the pool, if one is waiting and alive; the pool is refilled behind it.
pub fn take() -> Option<Ready> {
    let pool = POOL.get()?;
    let got = loop {
        let Some(r) = pool.ready.lock().pop() else { break None };
        if r.0.is_alive() {
            break Some(r);
        }
        // Killed while it waited (the host's OOM killer, a user): drop it, try the next.
        drop(r);
    };
    let _ = pool.wake.try_send(());
    let counter = if got.is_some() { &pool.hits } else { &pool.misses };
    counter.fetch_add(1, Ordering::Relaxed);
    got
}

/// A stub for a new address space: a ready one from the pool, else one started now on
/// `physmem` (no pool, or none waiting).
pub fn get(physmem: BorrowedFd<'_>) -> Result<Ready, StubError> {
    match take() {
        Some(r) => Ok(r),
        None => StubSpace::spawn(physmem),
    }
}

/// Stubs waiting now, and how many were taken from the pool and started on the spot.
pub fn stats() -> (usize, u64, u64) {
    POOL.get().map_or((0, 0, 0), |p| {
        (p.ready.lock().len(), p.hits.load(Ordering::Relaxed), p.misses.load(Ordering::Relaxed))
    })
}

/// Stop starting stubs and kill the waiting ones (before the kernel re-executes itself).
/// Waits (at most [`DRAIN_WAIT`]) for a start in progress to finish, so no stub is left
/// half-started (one that has set its parent-death signal dies with the refill thread at the
/// exec, if not before). Never longer: the refill thread may be blocked on something a
/// stopped CPU holds (the ready list, the allocator), and the reboot must go on.
pub fn drain() {
    let Some(pool) = POOL.get() else { return };
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
