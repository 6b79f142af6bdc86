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

use std::ops::{Deref, DerefMut};

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

/// A mutex for sections that may sleep.
pub struct SleepLock<T> {
    inner: SpinLock<Option<T>>,
    wmesg: &'static str,
}

impl<T> std::fmt::Debug for SleepLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SleepLock({}, locked: {})", self.wmesg, self.inner.lock().is_none())
    }
}

impl<T> SleepLock<T> {
    /// A lock; sleepers show `wmesg` as their wait channel.
    pub const fn new(wmesg: &'static str, v: T) -> SleepLock<T> {
        SleepLock { inner: SpinLock::new("sleeplock", Some(v)), wmesg }
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
            *self.lock.inner.lock() = Some(v);
            wakeup_one(wchan_of(self.lock));
        }
    }
}

/// A reader-writer lock for sections that may sleep. Writers are preferred (a waiting writer
/// holds back new readers), so a thread must never take it shared twice.
pub struct RwSleepLock<T> {
    cell: RwCell<T>,
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
    pub fn write(&self) -> RwWriteGuard<'_, T> {
        if let Some(g) = self.cell.try_write() {
            return g;
        }
        if no_kernel_thread() {
            return spin_until(|| self.cell.try_write_or_flag());
        }
        loop {
            let q = sleepq_lock(self.cell.chan());
            if let Some(g) = self.cell.try_write_or_flag() {
                return g;
            }
            tsleep_locked(q, self.cell.name(), SleepOpts::UNINTERRUPTIBLE);
        }
    }

    /// Acquire shared if that needs no wait.
    pub fn try_read(&self) -> Option<RwReadGuard<'_, T>> {
        self.cell.try_read()
    }

    /// Acquire exclusive if that needs no wait.
    pub fn try_write(&self) -> Option<RwWriteGuard<'_, T>> {
        self.cell.try_write()
    }

    /// Look at the value if no writer holds it, without waiting: for the debugger (see
    /// [`SleepLock::peek`]) and statistics. Never wakes anyone unless a waiter came meanwhile.
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.cell.try_read().map(|g| f(&g))
    }
}
