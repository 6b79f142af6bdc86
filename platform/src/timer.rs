//! The kernel timer queue (callouts): functions to run at a monotonic deadline.
//!
//! CPUs service it at safe points: the idle loop sleeps until [`next_deadline`] and calls
//! [`run_expired`], and so does the scheduler. A callout runs on whichever CPU finds it
//! expired, with no locks held, and must not sleep (it typically wakes a thread). Adding a
//! callout nearer than every other wakes the idle CPUs so one of them re-arms its sleep.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::SpinLock;

type Func = Box<dyn FnOnce() + Send + 'static>;

/// A handle to cancel a callout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CalloutId(u64);

struct Queue {
    by_deadline: BTreeMap<(u64, u64), Func>,
    deadline_of: BTreeMap<u64, u64>,
    next_id: u64,
}

static QUEUE: SpinLock<Queue> = SpinLock::new(
    "callout",
    Queue { by_deadline: BTreeMap::new(), deadline_of: BTreeMap::new(), next_id: 1 },
);

/// The nearest deadline, u64::MAX when the queue is empty (read without the lock).
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Run `f` once the monotonic clock (ns since boot) reaches `deadline_ns`.
pub fn callout_at(deadline_ns: u64, f: impl FnOnce() + Send + 'static) -> CalloutId {
    let mut q = QUEUE.lock();
    let id = q.next_id;
    q.next_id += 1;
    q.by_deadline.insert((deadline_ns, id), Box::new(f));
    q.deadline_of.insert(id, deadline_ns);
    let earlier = deadline_ns < NEXT.load(Ordering::Relaxed);
    if earlier {
        NEXT.store(deadline_ns, Ordering::Release);
    }
    drop(q);
    if earlier {
        crate::cpu::wake_idle_cpus();
    }
    CalloutId(id)
}

/// Cancel a callout; false if it already ran (or is running).
pub fn callout_stop(id: CalloutId) -> bool {
    let mut q = QUEUE.lock();
    let Some(deadline) = q.deadline_of.remove(&id.0) else {
        return false;
    };
    let removed = q.by_deadline.remove(&(deadline, id.0)).is_some();
    let next = q.by_deadline.keys().next().map_or(u64::MAX, |k| k.0);
    NEXT.store(next, Ordering::Release);
    removed
}

/// The nearest deadline, if any.
pub fn next_deadline() -> Option<u64> {
    let n = NEXT.load(Ordering::Acquire);
    (n != u64::MAX).then_some(n)
}

/// Run every callout due at `now_ns`; returns how many ran.
pub fn run_expired(now_ns: u64) -> usize {
    if NEXT.load(Ordering::Acquire) > now_ns {
        return 0;
    }
    let mut due = Vec::new();
    {
        let mut q = QUEUE.lock();
        while let Some(entry) = q.by_deadline.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let ((_, id), f) = entry.remove_entry();
            q.deadline_of.remove(&id);
            due.push(f);
        }
        let next = q.by_deadline.keys().next().map_or(u64::MAX, |k| k.0);
        NEXT.store(next, Ordering::Release);
    }
    let n = due.len();
    for f in due {
        f();
    }
    n
}

/// Callouts pending (for the debugger).
pub fn pending() -> usize {
    QUEUE.lock().deadline_of.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    // One test: the queue is global.
    #[test]
    fn callouts_run_in_deadline_order_and_can_be_cancelled() {
        let log = Arc::new(SpinLock::new("log", Vec::new()));
        let (l1, l2, l3) = (Arc::clone(&log), Arc::clone(&log), Arc::clone(&log));
        let base = 1_000_000_000_000u64;
        callout_at(base + 30, move || l3.lock().push(3));
        callout_at(base + 10, move || l1.lock().push(1));
        let c2 = callout_at(base + 20, move || l2.lock().push(2));
        assert_eq!(next_deadline(), Some(base + 10));
        assert!(callout_stop(c2));
        assert!(!callout_stop(c2));
        assert_eq!(run_expired(base), 0);
        assert_eq!(run_expired(base + 15), 1);
        assert_eq!(next_deadline(), Some(base + 30));
        assert_eq!(run_expired(base + 100), 1);
        assert_eq!(*log.lock(), vec![1, 3]);
        assert_eq!(next_deadline(), None);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        callout_at(0, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(run_expired(1), 1);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
