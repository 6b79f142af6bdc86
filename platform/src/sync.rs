//! Spinlocks for short critical sections, and the reader-writer cell under the kernel's
//! reader-writer sleep locks.
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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::cpu;

/// How long a CPU spins before declaring a deadlock.
pub const SPIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Held spinlocks each CPU lists (more are counted, not listed).
pub const MAX_HELD_LOCKS: usize = 8;

/// Offset of the name (`&'static str`) in every `SpinLock<T>` and every `RwCell<T>`.
pub const LOCK_NAME_OFFSET: usize = 0;

/// A spinlock protecting a `T`. `repr(C)` with the name first, whatever `T` is, so a reader
/// that only has a held lock's address finds its name ([`LOCK_NAME_OFFSET`]).
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
        SpinLock {
            name,
            locked: AtomicBool::new(false),
            holder: AtomicU32::new(cpu::NOCPU),
            data: UnsafeCell::new(value),
        }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// The value, through an exclusive reference to the lock (no one else can hold it).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
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

/// A reader-writer cell: many readers or one writer, acquired only by *trying*; the waiting
/// is the caller's (the kernel's `RwSleepLock` sleeps on the cell's address). So that a waiter
/// never misses a release, a failed `try_*_or_flag` leaves the WAITERS bit set, and the release
/// that sees it calls the cell's `wake` hook with the cell's address (the waiter sets the bit
/// and goes to sleep under its sleep-queue lock, which the hook takes too).
///
/// Writers are preferred: while anyone waits, new readers wait as well, so a stream of
/// overlapping readers cannot starve a writer. A reader must therefore never read-lock a cell
/// it already holds.
///
/// `repr(C)` with the name first, as [`SpinLock`] ([`LOCK_NAME_OFFSET`]).
#[repr(C)]
pub struct RwCell<T: ?Sized> {
    name: &'static str,
    /// WRITER | WAITERS | number of readers.
    state: AtomicU64,
    wake: fn(u64),
    data: UnsafeCell<T>,
}

const RW_WRITER: u64 = 1 << 63;
const RW_WAITERS: u64 = 1 << 62;
const RW_READERS: u64 = RW_WAITERS - 1;

// SAFETY: the state word admits either shared readers (which only get `&T`, so T must be Sync)
// or one writer (which gets `&mut T`, so T must be Send to be handed between CPUs).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwCell<T> {}
// SAFETY: moving the cell moves the T; it is Send when T is.
unsafe impl<T: ?Sized + Send> Send for RwCell<T> {}

impl<T> RwCell<T> {
    /// A free cell; `wake(address of the cell)` is called by a release that finds waiters.
    pub const fn new(name: &'static str, value: T, wake: fn(u64)) -> RwCell<T> {
        RwCell { name, state: AtomicU64::new(0), wake, data: UnsafeCell::new(value) }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwCell<T> {
    /// The wait channel waiters sleep on and `wake` is called with: the cell's address.
    pub fn chan(&self) -> u64 {
        self as *const Self as *const u8 as u64
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Read-lock if no writer holds or waits for it (and no one else waits).
    pub fn try_read(&self) -> Option<RwReadGuard<'_, T>> {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (RW_WRITER | RW_WAITERS) == 0 {
            assert!(s & RW_READERS < RW_READERS, "rw lock {}: too many readers", self.name);
            match self.state.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(RwReadGuard { cell: self }),
                Err(cur) => s = cur,
            }
        }
        None
    }

    /// Write-lock if free.
    pub fn try_write(&self) -> Option<RwWriteGuard<'_, T>> {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & !RW_WAITERS == 0 {
            match self.state.compare_exchange_weak(s, s | RW_WRITER, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(RwWriteGuard { cell: self }),
                Err(cur) => s = cur,
            }
        }
        None
    }

    /// [`RwCell::try_read`], or else mark that someone waits (so the release that makes it
    /// possible calls `wake`). Call with the wait channel's sleep queue locked, and sleep on
    /// it when this fails.
    pub fn try_read_or_flag(&self) -> Option<RwReadGuard<'_, T>> {
        self.try_or_flag(|s| s & (RW_WRITER | RW_WAITERS) == 0, |s| s + 1).then(|| RwReadGuard { cell: self })
    }

    /// [`RwCell::try_write`], or else mark that someone waits, as [`RwCell::try_read_or_flag`].
    pub fn try_write_or_flag(&self) -> Option<RwWriteGuard<'_, T>> {
        self.try_or_flag(|s| s & !RW_WAITERS == 0, |s| s | RW_WRITER).then(|| RwWriteGuard { cell: self })
    }

    fn try_or_flag(&self, free: impl Fn(u64) -> bool, take: impl Fn(u64) -> u64) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (new, got) = if free(s) {
                (take(s), true)
            } else if s & RW_WAITERS != 0 {
                return false;
            } else {
                (s | RW_WAITERS, false)
            };
            match self.state.compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return got,
                Err(cur) => s = cur,
            }
        }
    }

    /// Whether anyone holds it (for the debugger; racy by nature).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (RW_WRITER | RW_READERS) != 0
    }

    fn release_read(&self) {
        let s = self.state.fetch_sub(1, Ordering::Release) - 1;
        // The last reader out, with waiters: clear the bit and wake them. If the CAS fails a
        // writer got in meanwhile, keeping the bit: its release wakes them.
        if s == RW_WAITERS && self.state.compare_exchange(RW_WAITERS, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            (self.wake)(self.chan());
        }
    }

    fn release_write(&self) {
        if self.state.swap(0, Ordering::Release) & RW_WAITERS != 0 {
            (self.wake)(self.chan());
        }
    }
}

impl<T: ?Sized> fmt::Debug for RwCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        write!(f, "RwCell({}, writer: {}, readers: {})", self.name, s & RW_WRITER != 0, s & RW_READERS)
    }
}

/// Holding an [`RwCell`] shared.
pub struct RwReadGuard<'a, T: ?Sized> {
    cell: &'a RwCell<T>,
}

impl<T: ?Sized> Deref for RwReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds a reader count, so no writer (the only source of `&mut T`)
        // holds the cell until it is dropped; shared `&T`s may coexist.
        unsafe { &*self.cell.data.get() }
    }
}

impl<T: ?Sized> Drop for RwReadGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.release_read();
    }
}

/// Holding an [`RwCell`] exclusively.
pub struct RwWriteGuard<'a, T: ?Sized> {
    cell: &'a RwCell<T>,
}

impl<T: ?Sized> Deref for RwWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the WRITER bit: no other guard exists until it is dropped.
        unsafe { &*self.cell.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; the guard is borrowed mutably, so this is the only reference.
        unsafe { &mut *self.cell.data.get() }
    }
}

impl<T: ?Sized> Drop for RwWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.release_write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        assert_eq!(LOCK_NAME_OFFSET, core::mem::offset_of!(SpinLock<u64>, name));
        assert_eq!(LOCK_NAME_OFFSET, core::mem::offset_of!(RwCell<u64>, name));
    }

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

    static WAKES: AtomicU64 = AtomicU64::new(0);
    fn count_wake(_: u64) {
        WAKES.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn rw_cell_readers_share_writers_exclude() {
        let c = RwCell::new("t", 5u32, count_wake);
        let r1 = c.try_read().unwrap();
        let r2 = c.try_read().unwrap();
        assert_eq!(*r1 + *r2, 10);
        assert!(c.try_write().is_none());
        drop((r1, r2));
        let mut w = c.try_write().unwrap();
        *w = 6;
        assert!(c.try_read().is_none() && c.try_write().is_none());
        drop(w);
        assert_eq!(*c.try_read().unwrap(), 6);
        assert!(!c.is_locked());
    }

    #[test]
    fn rw_cell_waiters_are_woken_and_block_new_readers() {
        let c = RwCell::new("t", (), |chan| {
            assert_ne!(chan, 0);
            count_wake(chan)
        });
        let before = WAKES.load(Ordering::SeqCst);
        let r = c.try_read().unwrap();
        // A writer waits: new readers wait behind it.
        assert!(c.try_write_or_flag().is_none());
        assert!(c.try_read().is_none());
        assert!(c.try_read_or_flag().is_none());
        drop(r);
        assert_eq!(WAKES.load(Ordering::SeqCst), before + 1, "the last reader wakes the waiters");
        let w = c.try_write_or_flag().unwrap();
        assert!(c.try_read_or_flag().is_none());
        drop(w);
        assert_eq!(WAKES.load(Ordering::SeqCst), before + 2);
        // No waiters: no wake.
        drop(c.try_write().unwrap());
        drop(c.try_read().unwrap());
        assert_eq!(WAKES.load(Ordering::SeqCst), before + 2);
    }

    #[test]
    fn rw_cell_excludes_under_contention() {
        let c = Arc::new(RwCell::new("t", (0u64, 0u64), |_| {}));
        let mut handles = Vec::new();
        for i in 0..4 {
            let c = Arc::clone(&c);
            handles.push(std::thread::spawn(move || {
                for _ in 0..5_000 {
                    if i % 2 == 0 {
                        let mut w = loop {
                            if let Some(w) = c.try_write_or_flag() {
                                break w;
                            }
                            std::hint::spin_loop();
                        };
                        w.0 += 1;
                        w.1 += 1;
                    } else {
                        let r = loop {
                            if let Some(r) = c.try_read_or_flag() {
                                break r;
                            }
                            std::hint::spin_loop();
                        };
                        assert_eq!(r.0, r.1, "a reader never sees a writer's half-done update");
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*c.try_read().unwrap(), (10_000, 10_000));
    }
}
