//! Spinlocks for short critical sections.
//!
//! A spinlock is never held across a sleep or a context switch: each CPU counts the spinlocks
//! its current thread holds and the scheduler asserts the count is zero when it switches.
//! Signal handlers never take one, so a CPU parked by the debugger may hold one without
//! deadlocking the debugger (which reads kernel state without locks). A lock spun on for more
//! than [`SPIN_TIMEOUT`] panics with its name and holder, like BSD's "spin lock held too long".

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::cpu;

/// How long a CPU spins before declaring a deadlock.
pub const SPIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A spinlock protecting a `T`.
pub struct SpinLock<T: ?Sized> {
    locked: AtomicBool,
    /// CPU holding it (for the "held too long" panic and `show locks`).
    holder: AtomicU32,
    name: &'static str,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`; T must be Send to be handed between CPUs.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the T; it is Send when T is.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(name: &'static str, value: T) -> SpinLock<T> {
        SpinLock { locked: AtomicBool::new(false), holder: AtomicU32::new(cpu::NOCPU), name, data: UnsafeCell::new(value) }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Acquire, spinning.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow();
        }
        self.acquired()
    }

    /// Acquire if free.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        if self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            Some(self.acquired())
        } else {
            None
        }
    }

    #[cold]
    fn lock_slow(&self) {
        let start = crate::time::host_monotonic_ns();
        let mut spins: u64 = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                std::hint::spin_loop();
                spins += 1;
                if spins.is_multiple_of(1 << 20) {
                    let waited = crate::time::host_monotonic_ns().saturating_sub(start);
                    if waited > SPIN_TIMEOUT.as_nanos() as u64 {
                        let holder = self.holder.load(Ordering::Relaxed);
                        panic!("spin lock {} held too long (holder cpu {})", self.name, holder as i32);
                    }
                    std::thread::yield_now();
                }
            }
            if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }

    fn acquired(&self) -> SpinGuard<'_, T> {
        let me = cpu::curcpu();
        self.holder.store(me, Ordering::Relaxed);
        cpu::pcpu(me).spin_held.fetch_add(1, Ordering::Relaxed);
        SpinGuard { lock: self, cpu: me }
    }

    /// Whether someone holds it (for the debugger; racy by nature).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpinLock({}, locked: {})", self.name, self.is_locked())
    }
}

/// Holding a [`SpinLock`].
pub struct SpinGuard<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
    cpu: u32,
}

impl<T: ?Sized> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock, so no other reference to data is live.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; the guard is borrowed mutably, so this is the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        cpu::pcpu(self.cpu).spin_held.fetch_sub(1, Ordering::Relaxed);
        self.lock.holder.store(cpu::NOCPU, Ordering::Relaxed);
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// Spinlocks the calling CPU's thread holds.
pub fn spinlocks_held() -> u32 {
    cpu::this_pcpu().spin_held.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_excludes_and_counts() {
        let l = Arc::new(SpinLock::new("test", 0u64));
        let mut handles = Vec::new();
        for _ in 0..4 {
            let l = Arc::clone(&l);
            handles.push(std::thread::spawn(move || {
                for _ in 0..10_000 {
                    *l.lock() += 1;
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*l.lock(), 40_000);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let l = SpinLock::new("t", ());
        let g = l.lock();
        assert!(l.try_lock().is_none());
        assert!(l.is_locked());
        drop(g);
        assert!(l.try_lock().is_some());
    }
}
