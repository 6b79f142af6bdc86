//! Advisory file locks: POSIX record locks (fcntl(2) F_SETLK/F_SETLKW/F_GETLK), open file
//! description locks (F_OFD_*) and flock(2) locks, kept by one manager keyed by the file's
//! [`VnodeId`] (file system instance, inode), so every descriptor and path of a file sees the
//! same locks, in any file system.
//!
//! | kind  | owner                                        | released                          |
//! |-------|----------------------------------------------|-----------------------------------|
//! | POSIX | the descriptor table (a process; threads share it) | any close of the file by it, and its exit |
//! | OFD   | the open file description                     | its last close                    |
//! | flock | the open file description                     | its last close, LOCK_UN           |
//!
//! POSIX and OFD locks are byte ranges and conflict with each other (a write lock with any
//! other owner's overlapping lock); a new lock of an owner replaces what it held in the range
//! (splitting and merging, as Linux's posix_lock_inode does). flock locks cover the whole file
//! and only meet other flock locks. A blocked F_SETLKW between POSIX owners that would wait
//! for itself through a chain of waiters is EDEADLK (Linux's posix_locks_deadlock).
//!
//! One spin lock (`flocks`) covers the table and the waiters; waiters sleep on one channel and
//! recheck when anything is unlocked. Lock order: `flocks` is a leaf (wake-ups come after it
//! is dropped); unlocks at close run with no descriptor table locked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use platform::sync::SpinLock;

use crate::fs::vfs::VnodeId;
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// Shared (read) or exclusive (write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A descriptor table ([`crate::fs::file::FdTable::lock_owner`]).
    Posix(u64),
    /// An open file description (its address).
    Ofd(usize),
    /// flock(2) by an open file description (its address).
    Flock(usize),
}

impl Owner {
    fn is_flock(self) -> bool {
        matches!(self, Owner::Flock(_))
    }
}

/// One lock: bytes `start..=end` (`end` u64::MAX: to the end of the file and beyond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub owner: Owner,
    pub ty: LockType,
    pub start: u64,
    pub end: u64,
    /// The holder's process id for a POSIX lock (F_GETLK's l_pid), -1 for the others.
    pub pid: i32,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    /// Whether it stands in the way of `other` (another owner, overlapping, one writes).
    fn conflicts(&self, other: &Lock) -> bool {
        self.owner != other.owner
            && self.owner.is_flock() == other.owner.is_flock()
            && self.overlaps(other.start, other.end)
            && (self.ty == LockType::Write || other.ty == LockType::Write)
    }
}

#[derive(Debug, Default)]
struct Table {
    by_file: HashMap<VnodeId, Vec<Lock>>,
    /// POSIX owners asleep in F_SETLKW, and the POSIX owner whose lock they wait for.
    waiting: HashMap<u64, u64>,
}

static LOCKS: SpinLock<Option<Table>> = SpinLock::new("flocks", None);
/// Locks held in all (so closes of files never locked skip the table).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Most locks held at once, all files together: a new one past it is ENOLCK (the kernel's
/// memory is not the guest's to exhaust).
pub const MAX_LOCKS: usize = 1 << 16;

fn chan() -> u64 {
    wchan_of(&LOCKS)
}

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut g = LOCKS.lock();
    f(g.get_or_insert_with(Table::default))
}

/// The lock that would stand in the way of `want` on `file` (F_GETLK), if any.
pub fn test(file: VnodeId, want: &Lock) -> Option<Lock> {
    with_table(|t| t.by_file.get(&file).and_then(|ls| ls.iter().find(|l| l.conflicts(want)).copied()))
}

/// The type of the first lock `owner` holds on `file`, if any (flock's conversions).
pub fn held(file: VnodeId, owner: Owner) -> Option<LockType> {
    with_table(|t| t.by_file.get(&file).and_then(|ls| ls.iter().find(|l| l.owner == owner).map(|l| l.ty)))
}

/// Whether `me` waiting for `holder` closes a cycle of POSIX waiters.
fn deadlocks(t: &Table, me: u64, holder: u64) -> bool {
    let mut cur = holder;
    for _ in 0..64 {
        if cur == me {
            return true;
        }
        match t.waiting.get(&cur) {
            Some(&next) => cur = next,
            None => return false,
        }
    }
    false
}

/// Put `new` in `locks`, replacing what its owner held in its range; a POSIX or OFD owner's
/// touching locks of the same type merge into one.
fn insert(locks: &mut Vec<Lock>, new: Lock) {
    let mut merged = new;
    let mut kept = Vec::with_capacity(locks.len() + 2);
    for l in locks.drain(..) {
        if l.owner != new.owner {
            kept.push(l);
            continue;
        }
        let touches = l.start <= merged.end.saturating_add(1) && merged.start <= l.end.saturating_add(1);
        if l.ty == new.ty && touches {
            merged.start = merged.start.min(l.start);
            merged.end = merged.end.max(l.end);
            continue;
        }
        if !l.overlaps(new.start, new.end) {
            kept.push(l);
            continue;
        }
        // A lock of another type under the new one: keep the parts outside it.
        if l.start < new.start {
            kept.push(Lock { end: new.start - 1, ..l });
        }
        if l.end > new.end {
            kept.push(Lock { start: new.end + 1, ..l });
        }
    }
    kept.push(merged);
    kept.sort_by_key(|l| l.start);
    *locks = kept;
}

/// Remove `owner`'s locks in `start..=end` of one file (splitting those that reach out).
fn remove(locks: &mut Vec<Lock>, owner: Owner, start: u64, end: u64) {
    let mut kept = Vec::with_capacity(locks.len() + 1);
    for l in locks.drain(..) {
        if l.owner != owner || !l.overlaps(start, end) {
            kept.push(l);
            continue;
        }
        if l.start < start {
            kept.push(Lock { end: start - 1, ..l });
        }
        if l.end > end {
            kept.push(Lock { start: end + 1, ..l });
        }
    }
    *locks = kept;
}

fn recount(t: &Table) {
    HELD.store(t.by_file.values().map(Vec::len).sum(), Ordering::Relaxed);
}

/// Take `want` on `file` (or, with `ty` None, unlock the owner's range). Without `wait` a
/// conflict is EAGAIN; with it the caller sleeps until the lock is free (ERESTARTSYS when a
/// signal comes, EDEADLK when POSIX owners would wait for each other).
pub fn set(file: VnodeId, want: Lock, unlock: bool, wait: bool) -> Result<(), Errno> {
    if unlock {
        with_table(|t| {
            if let Some(ls) = t.by_file.get_mut(&file) {
                remove(ls, want.owner, want.start, want.end);
                if ls.is_empty() {
                    t.by_file.remove(&file);
                }
            }
            recount(t);
        });
        wakeup(chan());
        return Ok(());
    }
    loop {
        let g = sleepq_lock(chan());
        let blocker = with_table(|t| {
            let ls = t.by_file.entry(file).or_default();
            match ls.iter().find(|l| l.conflicts(&want)).copied() {
                None => {
                    // A new lock can split one in three: room for two more.
                    if HELD.load(Ordering::Relaxed) + 2 > MAX_LOCKS {
                        return Err(Errno::ENOLCK);
                    }
                    insert(ls, want);
                    if let Owner::Posix(me) = want.owner {
                        t.waiting.remove(&me);
                    }
                    recount(t);
                    Ok(None)
                }
                Some(b) => {
                    if let (true, Owner::Posix(me), Owner::Posix(holder)) = (wait, want.owner, b.owner) {
                        if deadlocks(t, me, holder) {
                            t.waiting.remove(&me);
                            return Err(Errno::EDEADLK);
                        }
                        t.waiting.insert(me, holder);
                    }
                    Ok(Some(b))
                }
            }
        })?;
        if blocker.is_none() {
            return Ok(());
        }
        if !wait {
            return Err(Errno::EAGAIN);
        }
        let r = tsleep_locked(g, "flock", SleepOpts { interruptible: true, timeout: None });
        if r == WakeReason::Interrupted {
            if let Owner::Posix(me) = want.owner {
                with_table(|t| t.waiting.remove(&me));
            }
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// Drop every lock of `owner` on `file` (a POSIX owner closing a descriptor of it).
pub fn release(file: VnodeId, owner: Owner) {
    if HELD.load(Ordering::Relaxed) == 0 {
        return;
    }
    let changed = with_table(|t| {
        let Some(ls) = t.by_file.get_mut(&file) else { return false };
        let before = ls.len();
        ls.retain(|l| l.owner != owner);
        let changed = ls.len() != before;
        if ls.is_empty() {
            t.by_file.remove(&file);
        }
        recount(t);
        changed
    });
    if changed {
        wakeup(chan());
    }
}

/// Drop every lock of `owner` on any file (a descriptor table or file description gone).
pub fn release_all(owner: Owner) {
    if HELD.load(Ordering::Relaxed) == 0 {
        return;
    }
    let changed = with_table(|t| {
        let mut changed = false;
        t.by_file.retain(|_, ls| {
            let before = ls.len();
            ls.retain(|l| l.owner != owner);
            changed |= ls.len() != before;
            !ls.is_empty()
        });
        if let Owner::Posix(me) = owner {
            t.waiting.remove(&me);
        }
        recount(t);
        changed
    });
    if changed {
        wakeup(chan());
    }
}

/// Whether any lock is held at all (a cheap test before looking a file up).
pub fn any_held() -> bool {
    HELD.load(Ordering::Relaxed) != 0
}

/// Every lock held, by file (/proc/locks).
pub fn all() -> Vec<(VnodeId, Lock)> {
    with_table(|t| t.by_file.iter().flat_map(|(id, ls)| ls.iter().map(move |l| (*id, *l))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lk(owner: u64, ty: LockType, start: u64, end: u64) -> Lock {
        Lock { owner: Owner::Posix(owner), ty, start, end, pid: 1 }
    }

    #[test]
    fn ranges_split_and_merge() {
        let mut v = Vec::new();
        insert(&mut v, lk(1, LockType::Read, 0, 99));
        insert(&mut v, lk(1, LockType::Write, 10, 19));
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].start, v[0].end, v[1].ty, v[2].start), (0, 9, LockType::Write, 20));
        insert(&mut v, lk(1, LockType::Read, 10, 19));
        assert_eq!(v, vec![lk(1, LockType::Read, 0, 99)], "same type merges back");
        remove(&mut v, Owner::Posix(1), 50, 59);
        assert_eq!(v, vec![lk(1, LockType::Read, 0, 49), lk(1, LockType::Read, 60, 99)]);
        insert(&mut v, lk(1, LockType::Read, 50, 59));
        assert_eq!(v, vec![lk(1, LockType::Read, 0, 99)], "adjacent ranges merge");
        insert(&mut v, lk(2, LockType::Read, 0, u64::MAX));
        assert_eq!(v.len(), 2, "another owner's lock stays apart");
    }

    #[test]
    fn conflicts_need_a_writer_and_another_owner() {
        let r1 = lk(1, LockType::Read, 0, 9);
        assert!(!r1.conflicts(&lk(2, LockType::Read, 5, 5)));
        assert!(r1.conflicts(&lk(2, LockType::Write, 9, 20)));
        assert!(!r1.conflicts(&lk(2, LockType::Write, 10, 20)));
        assert!(!r1.conflicts(&lk(1, LockType::Write, 0, 9)));
        let f = Lock { owner: Owner::Flock(7), ..lk(0, LockType::Write, 0, u64::MAX) };
        assert!(!f.conflicts(&lk(2, LockType::Write, 0, 9)), "flock and POSIX locks do not meet");
    }

    #[test]
    fn a_cycle_of_waiters_is_a_deadlock() {
        let mut t = Table::default();
        t.waiting.insert(2, 3);
        t.waiting.insert(3, 1);
        assert!(deadlocks(&t, 1, 2));
        assert!(!deadlocks(&t, 4, 2));
    }
}
