//! Sleep locks, for sections that may themselves sleep: [`SleepLock`], a mutex whose waiters
//! sleep (BSD's lockmgr, Linux's mutex), and [`RwSleepLock`], a reader-writer lock (BSD's sx,
//! Linux's rw_semaphore) — an address space: shared while a fault reads a file, exclusive to
//! change the map.
//!
//! `SleepLock` is built without `unsafe`: the protected value lives in a spinlocked `Option`;
//! the holder takes it out, and putting it back wakes one waiter. `RwSleepLock` is
//! platform's [`RwCell`] (the state word and the value) with the sleeping done here. Either
//! way a waiter checks and queues under its sleep-queue lock, so no release between the check
//! and the sleep is missed. Neither is taken with a spinlock held, and neither is recursive.
//!
//! Outside a kernel thread (plain host threads: unit tests, early boot) there is no one to
//! sleep: a waiter yields the host CPU and tries again, so code under these locks can be
//! tested with host threads.
//!
//! Held `SleepLock`s and `RwSleepLock`s held exclusive are listed for ddb's `show locks` in a
//! small table ([`held`]): the lock's address and its holder's thread record, in a slot found
//! by hashing the address (one uncontended compare-and-swap to take, one store to give back;
//! each slot has a cache line of its own). Shared holders are not listed: readers of one lock
//! would all hash to the same slots, the contention a reader-writer lock exists to avoid. The
//! wait message is the first field of both `#[repr(C)]` locks, so a reader with only the
//! address finds it ([`WMESG_OFFSET`]).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use platform::sync::{RwCell, RwReadGuard, RwWriteGuard, SpinLock};

use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wakeup_one, wchan_of};

/// Whether the caller is a plain host thread (no kernel thread to put to sleep).
fn no_kernel_thread() -> bool {
    crate::kern::sched::curthread().is_none()
}

/// Try `f` until it succeeds, yielding the host CPU in between (a host thread's wait).
fn spin_until<G>(mut f: impl FnMut() -> Option<G>) -> G {
    loop {
        if let Some(g) = f() {
            return g;
        }
        std::thread::yield_now();
    }
}

/// Offset of the wait message (`&'static str`) in every `SleepLock<T>` and `RwSleepLock<T>`.
pub const WMESG_OFFSET: usize = 0;

/// What a held lock is, in [`held`]'s list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldKind {
    /// A [`SleepLock`].
    Mutex,
    /// An [`RwSleepLock`] held exclusive.
    Exclusive,
}

/// Slots of the held-lock table; a lock that finds no free slot in [`PROBES`] is not listed.
const SLOTS: usize = 64;
const PROBES: usize = 8;

/// One held sleep lock: its address (0: free slot), its holder's thread record, its kind.
#[repr(align(64))]
struct Held {
    lock: AtomicU64,
    holder: AtomicU64,
    kind: AtomicU32,
}

static HELD: [Held; SLOTS] =
    [const { Held { lock: AtomicU64::new(0), holder: AtomicU64::new(0), kind: AtomicU32::new(0) } }; SLOTS];

fn slots(addr: u64) -> impl Iterator<Item = &'static Held> {
    let h = crate::kern::conv::bucket((addr >> 4) ^ (addr >> 12), SLOTS);
    (0..PROBES).map(move |i| &HELD[(h + i) % SLOTS])
}

fn note_held(addr: u64, kind: HeldKind) {
    let holder = crate::kern::pcpu::pcpu(platform::cpu::curcpu()).curthread.load(Ordering::Relaxed);
    if let Some(s) = slots(addr).find(|s| s.lock.compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed).is_ok()) {
        s.kind.store(kind as u32, Ordering::Relaxed);
        s.holder.store(holder, Ordering::Release);
    }
}

fn note_released(addr: u64) {
    if let Some(s) = slots(addr).find(|s| s.lock.load(Ordering::Relaxed) == addr) {
        s.holder.store(0, Ordering::Relaxed);
        s.lock.store(0, Ordering::Release);
    }
}

/// The sleep locks held now: `(lock address, holder's thread record address, kind)`.
pub fn held() -> Vec<(u64, u64, HeldKind)> {
    HELD.iter()
        .map(|s| {
            let kind = if s.kind.load(Ordering::Relaxed) == HeldKind::Exclusive as u32 {
                HeldKind::Exclusive
            } else {
                HeldKind::Mutex
            };
            (s.lock.load(Ordering::Acquire), s.holder.load(Ordering::Acquire), kind)
        })
        .filter(|&(l, _, _)| l != 0)
        .collect()
}

/// A mutex for sections that may sleep. `repr(C)` with the wait message first, whatever `T`.
#[repr(C)]
pub struct SleepLock<T> {
    wmesg: &'static str,
    inner: SpinLock<Option<T>>,
}

impl<T> std::fmt::Debug for SleepLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SleepLock({}, locked: {})", self.wmesg, self.inner.lock().is_none())
    }
}

impl<T> SleepLock<T> {
    /// A lock; sleepers show `wmesg` as their wait channel.
    pub const fn new(wmesg: &'static str, v: T) -> SleepLock<T> {
        SleepLock { wmesg, inner: SpinLock::new("sleeplock", Some(v)) }
    }

    /// Acquire, sleeping while someone else holds it.
    pub fn lock(&self) -> SleepGuard<'_, T> {
        // Free: no sleep queue needed.
        if let Some(g) = self.try_lock() {
            return g;
        }
        let chan = wchan_of(self);
        if no_kernel_thread() {
            loop {
                if let Some(g) = self.try_lock() {
                    return g;
                }
                std::thread::yield_now();
            }
        }
        loop {
            let g = sleepq_lock(chan);
            if let Some(v) = self.inner.lock().take() {
                drop(g);
                note_held(chan, HeldKind::Mutex);
                return SleepGuard { lock: self, value: Some(v) };
            }
            tsleep_locked(g, self.wmesg, SleepOpts::UNINTERRUPTIBLE);
        }
    }

    /// Look at the value if no one holds the lock, without taking it and without spinning: for
    /// the debugger, which runs with every other CPU stopped and must never sleep, spin on a
    /// lock a stopped CPU holds, or wake anyone.
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let g = self.inner.try_lock()?;
        g.as_ref().map(f)
    }

    /// Acquire if free.
    pub fn try_lock(&self) -> Option<SleepGuard<'_, T>> {
        let v = self.inner.lock().take()?;
        note_held(wchan_of(self), HeldKind::Mutex);
        Some(SleepGuard { lock: self, value: Some(v) })
    }
}

/// Holding a [`SleepLock`].
pub struct SleepGuard<'a, T> {
    lock: &'a SleepLock<T>,
    value: Option<T>,
}

impl<T> Deref for SleepGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("sleep lock value present while held")
    }
}

impl<T> DerefMut for SleepGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("sleep lock value present while held")
    }
}

impl<T> Drop for SleepGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take() {
            note_released(wchan_of(self.lock));
            *self.lock.inner.lock() = Some(v);
            wakeup_one(wchan_of(self.lock));
        }
    }
}

/// A reader-writer lock for sections that may sleep. Writers are preferred (a waiting writer
/// holds back new readers), so a thread must never take it shared twice. `repr(C)`: the cell,
/// whose name comes first, is at offset 0 ([`WMESG_OFFSET`]).
#[repr(C)]
pub struct RwSleepLock<T> {
    cell: RwCell<T>,
}

/// Holding an [`RwSleepLock`] exclusive (listed for `show locks` while held).
pub struct RwSleepWriteGuard<'a, T> {
    guard: RwWriteGuard<'a, T>,
    lock: u64,
}

impl<'a, T> RwSleepWriteGuard<'a, T> {
    fn new(guard: RwWriteGuard<'a, T>, lock: &RwSleepLock<T>) -> RwSleepWriteGuard<'a, T> {
        let lock = wchan_of(lock);
        note_held(lock, HeldKind::Exclusive);
        RwSleepWriteGuard { guard, lock }
    }
}

impl<T> Deref for RwSleepWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for RwSleepWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for RwSleepWriteGuard<'_, T> {
    fn drop(&mut self) {
        // Before the cell is released (the field is dropped after this).
        note_released(self.lock);
    }
}

impl<T> std::fmt::Debug for RwSleepLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RwSleepLock({:?})", self.cell)
    }
}

fn wake_rw_waiters(chan: u64) {
    wakeup(chan);
}

impl<T> RwSleepLock<T> {
    /// A lock; sleepers show `wmesg` as their wait channel.
    pub const fn new(wmesg: &'static str, v: T) -> RwSleepLock<T> {
        RwSleepLock { cell: RwCell::new(wmesg, v, wake_rw_waiters) }
    }

    /// Acquire shared, sleeping while a writer holds it or anyone waits for it.
    pub fn read(&self) -> RwReadGuard<'_, T> {
        if let Some(g) = self.cell.try_read() {
            return g;
        }
        if no_kernel_thread() {
            return spin_until(|| self.cell.try_read_or_flag());
        }
        loop {
            let q = sleepq_lock(self.cell.chan());
            if let Some(g) = self.cell.try_read_or_flag() {
                return g;
            }
            tsleep_locked(q, self.cell.name(), SleepOpts::UNINTERRUPTIBLE);
        }
    }

    /// Acquire exclusive, sleeping while anyone holds it.
    pub fn write(&self) -> RwSleepWriteGuard<'_, T> {
        if let Some(g) = self.cell.try_write() {
            return RwSleepWriteGuard::new(g, self);
        }
        if no_kernel_thread() {
            return RwSleepWriteGuard::new(spin_until(|| self.cell.try_write_or_flag()), self);
        }
        loop {
            let q = sleepq_lock(self.cell.chan());
            if let Some(g) = self.cell.try_write_or_flag() {
                drop(q);
                return RwSleepWriteGuard::new(g, self);
            }
            tsleep_locked(q, self.cell.name(), SleepOpts::UNINTERRUPTIBLE);
        }
    }

    /// Acquire shared if that needs no wait.
    pub fn try_read(&self) -> Option<RwReadGuard<'_, T>> {
        self.cell.try_read()
    }

    /// Acquire exclusive if that needs no wait.
    pub fn try_write(&self) -> Option<RwSleepWriteGuard<'_, T>> {
        self.cell.try_write().map(|g| RwSleepWriteGuard::new(g, self))
    }

    /// Look at the value if no writer holds it, without waiting: for the debugger (see
    /// [`SleepLock::peek`]) and statistics. Never wakes anyone unless a waiter came meanwhile.
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.cell.try_read().map(|g| f(&g))
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    #[test]
    fn held_locks_are_listed_until_released() {
        let a = SleepLock::new("test_a", 1u32);
        let addr = wchan_of(&a);
        let g = a.try_lock().expect("free");
        assert!(held().iter().any(|&(l, _, k)| l == addr && k == HeldKind::Mutex));
        assert!(a.try_lock().is_none());
        drop(g);
        assert!(!held().iter().any(|&(l, _, _)| l == addr));
        let rw = RwSleepLock::new("test_rw", 2u32);
        let raddr = wchan_of(&rw);
        {
            let r = rw.read();
            assert_eq!(*r, 2);
            assert!(!held().iter().any(|&(l, _, _)| l == raddr), "readers are not listed");
        }
        let mut w = rw.write();
        *w = 3;
        assert!(held().iter().any(|&(l, _, k)| l == raddr && k == HeldKind::Exclusive));
        drop(w);
        assert!(!held().iter().any(|&(l, _, _)| l == raddr));
        assert_eq!(*rw.read(), 3);
        assert_eq!(WMESG_OFFSET, core::mem::offset_of!(SleepLock<u64>, wmesg));
        assert_eq!(WMESG_OFFSET, core::mem::offset_of!(RwSleepLock<u64>, cell) + platform::sync::LOCK_NAME_OFFSET);
    }
}
