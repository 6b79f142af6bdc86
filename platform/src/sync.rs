//! Spinlocks for short critical sections.
//!
//! A spinlock is never held across a sleep or a context switch: each CPU counts the spinlocks
//! its current thread holds and the scheduler asserts the count is zero when it switches.
//! Signal handlers never take one, so a CPU parked by the debugger may hold one without
//! deadlocking the debugger (which reads kernel state without locks). A lock spun on for more
//! than [`SPIN_TIMEOUT`] panics with its name and holder, like BSD's "spin lock held too long".
//!
//! Each CPU also lists the addresses of the spinlocks it holds (two stores on its own cache
//! line per lock and unlock), so ddb's `show locks` can name them: the name is the first
//! field of the `#[repr(C)]` lock, read through `/proc/self/mem` at the listed address.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::cpu;

/// How long a CPU spins before declaring a deadlock.
pub const SPIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Held spinlocks each CPU lists (more are counted, not listed).
pub const MAX_HELD_LOCKS: usize = 8;

/// Offset of the name (`&'static str`) in every `SpinLock<T>`.
pub const SPINLOCK_NAME_OFFSET: usize = 0;

/// A spinlock protecting a `T`. `repr(C)` with the name first, whatever `T` is, so a reader
/// that only has a held lock's address finds its name ([`SPINLOCK_NAME_OFFSET`]).
#[repr(C)]
pub struct SpinLock<T: ?Sized> {
    name: &'static str,
    locked: AtomicBool,
    /// CPU holding it (for the "held too long" panic and `show locks`).
    holder: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`; T must be Send to be handed between CPUs.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the T; it is Send when T is.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(name: &'static str, value: T) -> SpinLock<T> {
        SpinLock { name, locked: AtomicBool::new(false), holder: AtomicU32::new(cpu::NOCPU), data: UnsafeCell::new(value) }
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
        let pc = cpu::pcpu(me);
        let n = pc.spin_held.fetch_add(1, Ordering::Relaxed) as usize;
        // Threads that are not CPUs share one slot: they are counted, not listed.
        if me != cpu::NOCPU
            && let Some(slot) = pc.held_locks.get(n)
        {
            slot.store(self.addr(), Ordering::Relaxed);
        }
        SpinGuard { lock: self, cpu: me }
    }

    /// The lock's address (what the held-lock lists hold).
    fn addr(&self) -> u64 {
        self as *const Self as *const u8 as u64
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
        let pc = cpu::pcpu(self.cpu);
        if self.cpu != cpu::NOCPU {
            let listed = (pc.spin_held.load(Ordering::Relaxed) as usize).min(MAX_HELD_LOCKS);
            // Usually the last one taken; otherwise the last listed moves into its slot.
            let me = self.lock.addr();
            if let Some(i) = (0..listed).rev().find(|&i| pc.held_locks[i].load(Ordering::Relaxed) == me) {
                let last = pc.held_locks[listed - 1].load(Ordering::Relaxed);
                pc.held_locks[i].store(last, Ordering::Relaxed);
                pc.held_locks[listed - 1].store(0, Ordering::Relaxed);
            }
        }
        pc.spin_held.fetch_sub(1, Ordering::Relaxed);
        self.lock.holder.store(cpu::NOCPU, Ordering::Relaxed);
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// Spinlocks the calling CPU's thread holds.
pub fn spinlocks_held() -> u32 {
    cpu::this_pcpu().spin_held.load(Ordering::Relaxed)
}

/// The spinlocks CPU `c` holds: how many, and the addresses of those it lists (racy unless
/// the CPU is stopped; for the debugger).
pub fn held_spinlocks(c: u32) -> (u32, Vec<u64>) {
    let pc = cpu::pcpu(c);
    let n = pc.spin_held.load(Ordering::Acquire);
    let listed = pc.held_locks.iter().take(n as usize).map(|s| s.load(Ordering::Relaxed)).filter(|&a| a != 0).collect();
    (n, listed)
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
    fn held_locks_are_listed_by_address_in_any_release_order() {
        // On a thread of its own that is CPU 14 (threads that are not CPUs are not listed).
        std::thread::spawn(held_locks_on_a_cpu).join().unwrap();
    }

    fn held_locks_on_a_cpu() {
        cpu::bind_cpu(14);
        let (a, b, c) = (SpinLock::new("a", 0), SpinLock::new("b", 0), SpinLock::new("c", 0));
        let me = cpu::curcpu();
        assert_eq!(me, 14);
        let before = held_spinlocks(me);
        let ga = a.lock();
        let gb = b.lock();
        let gc = c.lock();
        let (n, listed) = held_spinlocks(me);
        assert_eq!(n, before.0 + 3);
        assert!(listed.ends_with(&[a.addr(), b.addr(), c.addr()]), "{listed:x?}");
        drop(gb);
        let (_, listed) = held_spinlocks(me);
        assert!(!listed.contains(&b.addr()) && listed.contains(&a.addr()) && listed.contains(&c.addr()));
        drop(ga);
        drop(gc);
        assert_eq!(held_spinlocks(me), before);
        assert_eq!(SPINLOCK_NAME_OFFSET, core::mem::offset_of!(SpinLock<u64>, name));
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
