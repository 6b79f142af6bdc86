//! Sleep locks: a mutex whose waiters sleep (BSD's lockmgr/sx, Linux's mutex), for sections
//! that may themselves sleep — an address space while a fault reads a file, say.
//!
//! Built without `unsafe`: the protected value lives in a spinlocked `Option`; the holder
//! takes it out, and putting it back wakes one waiter. A waiter checks and queues under its
//! sleep-queue lock, so no release between the check and the sleep is missed.
//!
//! Held sleep locks are listed for ddb's `show locks` in a small table ([`held`]): the lock's
//! address and its holder's thread record, in a slot found by hashing the address (one
//! uncontended compare-and-swap to take, one store to give back; each slot has a cache line
//! of its own). The wait message is the first field of the `#[repr(C)]` lock, so a reader with
//! only the address finds it ([`WMESG_OFFSET`]).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use platform::sync::SpinLock;

use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup_one, wchan_of};

/// A mutex for sections that may sleep. `repr(C)` with the wait message first, whatever `T`.
#[repr(C)]
pub struct SleepLock<T> {
    wmesg: &'static str,
    inner: SpinLock<Option<T>>,
}

/// Offset of the wait message (`&'static str`) in every `SleepLock<T>`.
pub const WMESG_OFFSET: usize = 0;

/// Slots of the held-lock table; a lock that finds no free slot in [`PROBES`] is not listed.
const SLOTS: usize = 64;
const PROBES: usize = 8;

/// One held sleep lock: its address (0: free slot) and its holder's thread record.
#[repr(align(64))]
struct Held {
    lock: AtomicU64,
    holder: AtomicU64,
}

static HELD: [Held; SLOTS] = [const { Held { lock: AtomicU64::new(0), holder: AtomicU64::new(0) } }; SLOTS];

fn slots(addr: u64) -> impl Iterator<Item = &'static Held> {
    let h = ((addr >> 4) ^ (addr >> 12)) as usize;
    (0..PROBES).map(move |i| &HELD[(h + i) % SLOTS])
}

fn note_held(addr: u64) {
    let holder = crate::kern::pcpu::pcpu(platform::cpu::curcpu()).curthread.load(Ordering::Relaxed);
    if let Some(s) = slots(addr).find(|s| s.lock.compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed).is_ok()) {
        s.holder.store(holder, Ordering::Release);
    }
}

fn note_released(addr: u64) {
    if let Some(s) = slots(addr).find(|s| s.lock.load(Ordering::Relaxed) == addr) {
        s.holder.store(0, Ordering::Relaxed);
        s.lock.store(0, Ordering::Release);
    }
}

/// The sleep locks held now: `(lock address, holder's thread record address)`.
pub fn held() -> Vec<(u64, u64)> {
    HELD.iter()
        .map(|s| (s.lock.load(Ordering::Acquire), s.holder.load(Ordering::Acquire)))
        .filter(|&(l, _)| l != 0)
        .collect()
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
        let chan = wchan_of(self);
        loop {
            let g = sleepq_lock(chan);
            if let Some(v) = self.inner.lock().take() {
                drop(g);
                note_held(chan);
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
        note_held(wchan_of(self));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_locks_are_listed_until_released() {
        let a = SleepLock::new("test_a", 1u32);
        let addr = wchan_of(&a);
        let g = a.try_lock().expect("free");
        assert!(held().iter().any(|&(l, _)| l == addr));
        assert!(a.try_lock().is_none());
        drop(g);
        assert!(!held().iter().any(|&(l, _)| l == addr));
        assert_eq!(WMESG_OFFSET, core::mem::offset_of!(SleepLock<u64>, wmesg));
    }
}
