//! Futexes (futex(2)): wait and wake on guest memory words.
//!
//! A futex is keyed by (address space, address) in private memory, and by (memory object,
//! offset) in shared memory — the shared anonymous object or the mapped file, as Linux's
//! (inode, offset) — so processes that map the object at different addresses meet, whatever
//! physical page holds the word now. The value check and
//! FUTEX_WAKE_OP's read-modify-write are atomics on the physical word itself, so they are
//! atomic with respect to the guest's own accesses.
//!
//! Waiters hang in [`NBUCKETS`] hashed queues, each a spinlock (`futex_bucket`), as Linux's
//! futex hash. Locking:
//!
//! * the word is resolved first (`locate`: the address space's `vmmap` shared, which may
//!   fault a page in from a file and sleep), with a reference on its page so that it stays
//!   the same page until the operation is done; only then is a bucket locked;
//! * a bucket is never held across a sleep: the waiter queues itself and checks the value
//!   under it, drops it, then sleeps on its own wait channel; wakers take waiters off the
//!   queue under it and wake them after dropping it. A private word whose page a
//!   copy-on-write store moved meanwhile is checked again once queued (see [`wait`]);
//! * two buckets (requeue, wake-op) are locked in index order; a waiter's `key` (which a
//!   requeue changes) is a leaf inside its bucket's lock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use platform::physmem::PhysMem;
use platform::sync::{SpinGuard, SpinLock};

use crate::abi::futex::{RobustList, RobustListHead};
use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;
use crate::vm::space::{Backing, PAGE};
use crate::vm::uaccess::{self, UserPtr};

/// Where a futex lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Private { space: u64, addr: u64 },
    /// `object`: the shared object's or the file's vnode's address (both live while a
    /// mapping of them does); `offset`: the word's byte offset in it.
    Shared { object: u64, offset: u64 },
}

/// Hash buckets of waiters.
pub const NBUCKETS: usize = 128;

#[derive(Debug)]
struct Waiter {
    /// The futex it waits on now (a requeue moves it), under its bucket's lock.
    key: SpinLock<Key>,
    bitset: u32,
    woken: AtomicBool,
    /// futex_waitv(2): the set this waiter is one entry of; its thread sleeps on the set's
    /// wait channel, so a wake-up of any entry wakes it.
    set: Option<Arc<WaitSet>>,
}

/// The wait channel of one futex_waitv(2) call's waiters (its address is the channel).
#[derive(Debug)]
struct WaitSet {
    _chan: u8,
}

impl Waiter {
    fn chan(&self) -> u64 {
        match &self.set {
            Some(s) => wchan_of(&**s),
            None => wchan_of(self),
        }
    }
}

type Queue = VecDeque<Arc<Waiter>>;
type Bucket = SpinLock<Queue>;
type Locked = SpinGuard<'static, Queue>;

static BUCKETS: [Bucket; NBUCKETS] = [const { SpinLock::new("futex_bucket", VecDeque::new()) }; NBUCKETS];

fn bucket_index(key: Key) -> usize {
    let (a, b) = match key {
        Key::Private { space, addr } => (space, addr),
        Key::Shared { object, offset } => (object, offset),
    };
    // Words of one page spread over the buckets; the space id perturbs the rest.
    let h = (b >> 2).wrapping_add(a.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    crate::kern::conv::bucket(h ^ (h >> 7) ^ (h >> 17), NBUCKETS)
}

fn bucket(key: Key) -> &'static Bucket {
    &BUCKETS[bucket_index(key)]
}

/// The buckets of two keys, locked in index order (one guard when they share a bucket).
fn lock_two(k1: Key, k2: Key) -> (Locked, Option<Locked>) {
    let (i1, i2) = (bucket_index(k1), bucket_index(k2));
    if i1 == i2 {
        (BUCKETS[i1].lock(), None)
    } else if i1 < i2 {
        let g1 = BUCKETS[i1].lock();
        (g1, Some(BUCKETS[i2].lock()))
    } else {
        let g2 = BUCKETS[i2].lock();
        (BUCKETS[i1].lock(), Some(g2))
    }
}

pub const FUTEX_WAIT: i32 = 0;
pub const FUTEX_WAKE: i32 = 1;
pub const FUTEX_REQUEUE: i32 = 3;
pub const FUTEX_CMP_REQUEUE: i32 = 4;
pub const FUTEX_WAKE_OP: i32 = 5;
pub const FUTEX_WAIT_BITSET: i32 = 9;
pub const FUTEX_WAKE_BITSET: i32 = 10;
pub const FUTEX_PRIVATE_FLAG: i32 = 128;
pub const FUTEX_CLOCK_REALTIME: i32 = 256;
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// A resolved futex word: its physical page held (a reference) while the operation runs.
struct Word {
    pm: Arc<PhysMem>,
    pa: u64,
}

impl Word {
    fn get(&self) -> &AtomicU32 {
        // The word was checked when resolved: 4-aligned, inside memory.
        self.pm.atomic_u32(self.pa).expect("futex word inside physical memory")
    }
}

impl Drop for Word {
    fn drop(&mut self) {
        self.pm.page_unref(self.pa);
    }
}

/// An object's address, its identity in a key.
fn addr_of<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<()>() as usize as u64
}

/// The key and the physical word of a futex at `addr` in `p`'s address space (the page is
/// faulted in, for writing if `write`). Takes and drops `vmmap`; call with no bucket locked.
fn locate(p: &UProc, addr: u64, write: bool) -> Result<(Key, Word), Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let vm = p.user().vm();
    let g = vm.read();
    let pa = g.resolve(addr, write).map_err(|_| Errno::EFAULT)?;
    let key = match g.find(addr) {
        Some(e) => {
            let offset = e.offset() + (addr - e.start);
            match &e.backing {
                Backing::Shared { object, .. } => Key::Shared { object: addr_of(Arc::as_ptr(object)), offset },
                Backing::SharedFile { vnode, .. } => Key::Shared { object: addr_of(Arc::as_ptr(vnode)), offset },
                Backing::Anon | Backing::File { .. } => Key::Private { space: g.id, addr },
            }
        }
        None => Key::Private { space: g.id, addr },
    };
    let pm = Arc::clone(g.physmem());
    pm.atomic_u32(pa).ok_or(Errno::EFAULT)?;
    debug_assert!(pa / PAGE == (pa + 3) / PAGE);
    // Hold the page: unmapped or copied by another thread now, it is still not reused.
    pm.page_ref(pa);
    Ok((key, Word { pm, pa }))
}

/// Take up to `n` waiters on `key` whose bitset matches off the queue, marked woken; the
/// caller wakes them ([`wake_all`]) once it has dropped the bucket.
fn take_waiters(q: &mut Queue, key: Key, n: u32, bitset: u32, out: &mut Vec<Arc<Waiter>>) -> u32 {
    let mut woken = 0;
    let mut i = 0;
    while i < q.len() && woken < n {
        if *q[i].key.lock() == key && q[i].bitset & bitset != 0 {
            if let Some(w) = q.remove(i) {
                w.woken.store(true, Ordering::Release);
                out.push(w);
                woken += 1;
            }
        } else {
            i += 1;
        }
    }
    woken
}

fn wake_all(ws: Vec<Arc<Waiter>>) {
    for w in ws {
        wakeup(w.chan());
    }
}

/// FUTEX_WAIT(_BITSET): sleep while `*addr == val`, until woken, the deadline (monotonic ns
/// since boot), or a signal.
pub fn wait(p: &UProc, addr: u64, val: u32, bitset: u32, deadline: Option<u64>) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let (key, word) = locate(p, addr, false)?;
    let w =
        Arc::new(Waiter { key: SpinLock::new("futex_waiter", key), bitset, woken: AtomicBool::new(false), set: None });
    {
        let mut q = bucket(key).lock();
        if word.get().load(Ordering::SeqCst) != val {
            return Err(Errno::EAGAIN);
        }
        q.push_back(Arc::clone(&w));
    }
    let old_pa = word.pa;
    drop(word);
    // A private word's page may have moved since it was resolved: a store by another thread
    // into a copy-on-write page copies it, and that thread's wake-up may have found the queue
    // before we were on it — the check above then read the old page. Now that we are queued,
    // look through the map again, as Linux reads the word after queueing itself.
    if matches!(key, Key::Private { .. })
        && let Ok((_, now)) = locate(p, addr, false)
        && now.pa != old_pa
        && now.get().load(Ordering::SeqCst) != val
    {
        return unqueue(&w, Errno::EAGAIN);
    }
    log::debug!("futex: wait pid {} {addr:#x} key {key:?} val {val}", p.pid);
    let chan = wchan_of(&*w);
    loop {
        let g = sleepq_lock(chan);
        if w.woken.load(Ordering::Acquire) {
            return Ok(0);
        }
        let timeout = match deadline {
            Some(d) => {
                let now = platform::time::uptime_ns();
                if now >= d {
                    drop(g);
                    return unqueue(&w, Errno::ETIMEDOUT);
                }
                Some(Duration::from_nanos(d - now))
            }
            None => None,
        };
        if tsleep_locked(g, "futex", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
            return unqueue(&w, Errno::ERESTARTSYS);
        }
    }
}

/// Leave the queue after a timeout or a signal, unless a wake-up got there first. The waiter
/// may have been requeued meanwhile: it is looked for in the bucket of its current key.
fn unqueue(w: &Arc<Waiter>, e: Errno) -> Result<usize, Errno> {
    loop {
        let key = *w.key.lock();
        let mut q = bucket(key).lock();
        if w.woken.load(Ordering::Acquire) {
            return Ok(0);
        }
        if *w.key.lock() != key {
            continue; // requeued between the two looks: try its new bucket
        }
        q.retain(|x| !Arc::ptr_eq(x, w));
        return Err(e);
    }
}

/// The most words one futex_waitv(2) waits on (FUTEX_WAITV_MAX).
pub const FUTEX_WAITV_MAX: usize = 128;

/// futex_waitv(2): sleep until any word `addr` of `words` (address, expected value) is woken,
/// the deadline (ns since boot) passes, or a signal comes. EAGAIN when a word no longer holds
/// its value at the start; otherwise the index of a woken word (the highest one, as Linux's
/// `futex_unqueue_multiple`, when several were).
pub fn waitv(p: &UProc, words: &[(u64, u32)], deadline: Option<u64>) -> Result<usize, Errno> {
    // Every word resolved first (EINVAL for a misaligned one, EFAULT), as Linux takes the keys.
    let mut located = Vec::with_capacity(words.len());
    for &(addr, _) in words {
        located.push(locate(p, addr, false)?);
    }
    let set = Arc::new(WaitSet { _chan: 0 });
    let mut ws: Vec<Arc<Waiter>> = Vec::with_capacity(words.len());
    for (&(_, val), (key, word)) in words.iter().zip(&located) {
        let w = Arc::new(Waiter {
            key: SpinLock::new("futex_waiter", *key),
            bitset: FUTEX_BITSET_MATCH_ANY,
            woken: AtomicBool::new(false),
            set: Some(Arc::clone(&set)),
        });
        let mut q = bucket(*key).lock();
        if word.get().load(Ordering::SeqCst) != val {
            drop(q);
            return unqueue_set(&ws).ok_or(Errno::EAGAIN);
        }
        q.push_back(Arc::clone(&w));
        drop(q);
        ws.push(w);
    }
    // A private word's page moved by a copy-on-write store is checked again, as in [`wait`].
    for (&(addr, val), (key, word)) in words.iter().zip(&located) {
        if matches!(key, Key::Private { .. })
            && let Ok((_, now)) = locate(p, addr, false)
            && now.pa != word.pa
            && now.get().load(Ordering::SeqCst) != val
        {
            drop(located);
            return unqueue_set(&ws).ok_or(Errno::EAGAIN);
        }
    }
    drop(located);
    let chan = wchan_of(&*set);
    loop {
        let g = sleepq_lock(chan);
        if ws.iter().any(|w| w.woken.load(Ordering::Acquire)) {
            drop(g);
            return unqueue_set(&ws).ok_or(Errno::EAGAIN);
        }
        let timeout = match deadline {
            Some(d) => {
                let now = platform::time::uptime_ns();
                if now >= d {
                    drop(g);
                    return unqueue_set(&ws).ok_or(Errno::ETIMEDOUT);
                }
                Some(Duration::from_nanos(d - now))
            }
            None => None,
        };
        if tsleep_locked(g, "futexv", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
            return unqueue_set(&ws).ok_or(Errno::ERESTARTSYS);
        }
    }
}

/// Take a futex_waitv(2) call's waiters off their queues: the highest index a wake-up took
/// first, if any.
fn unqueue_set(ws: &[Arc<Waiter>]) -> Option<usize> {
    let mut woken = None;
    for (i, w) in ws.iter().enumerate() {
        if unqueue(w, Errno::EAGAIN).is_ok() {
            woken = Some(i);
        }
    }
    woken
}

/// FUTEX_WAKE(_BITSET): wake up to `n` waiters.
pub fn wake(p: &UProc, addr: u64, n: u32, bitset: u32) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let (key, word) = locate(p, addr, false)?;
    let mut ws = Vec::new();
    let n = take_waiters(&mut bucket(key).lock(), key, n, bitset, &mut ws);
    drop(word);
    wake_all(ws);
    Ok(n as usize)
}

/// FUTEX_(CMP_)REQUEUE: wake `n_wake`, move up to `n_requeue` others to `addr2`.
pub fn requeue(
    p: &UProc,
    addr: u64,
    n_wake: u32,
    n_requeue: u32,
    addr2: u64,
    cmp: Option<u32>,
) -> Result<usize, Errno> {
    let (key, word) = locate(p, addr, false)?;
    let (key2, word2) = locate(p, addr2, false)?;
    let mut ws = Vec::new();
    let mut moved = 0;
    {
        let (mut q1, mut q2) = lock_two(key, key2);
        if let Some(v) = cmp
            && word.get().load(Ordering::SeqCst) != v
        {
            return Err(Errno::EAGAIN);
        }
        let woken = take_waiters(&mut q1, key, n_wake, FUTEX_BITSET_MATCH_ANY, &mut ws);
        if key != key2 {
            let mut i = 0;
            while i < q1.len() && moved < n_requeue {
                if *q1[i].key.lock() != key {
                    i += 1;
                    continue;
                }
                // To the back of the other futex's queue, as Linux's requeue. In the same
                // bucket it is passed again at the end, with a key that no longer matches.
                let Some(x) = q1.remove(i) else { break };
                *x.key.lock() = key2;
                moved += 1;
                match q2.as_mut() {
                    Some(q2) => q2.push_back(x),
                    None => q1.push_back(x),
                }
            }
        }
        moved += woken;
    }
    drop((word, word2));
    wake_all(ws);
    Ok(moved as usize)
}

/// FUTEX_WAKE_OP: `*addr2 = op(*addr2)` atomically; wake `n1` on `addr`, and `n2` on `addr2`
/// if the old value passes the comparison encoded in `op`.
pub fn wake_op(p: &UProc, addr: u64, n1: u32, addr2: u64, n2: u32, op: u32) -> Result<usize, Errno> {
    let kind = (op >> 28) & 7;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if op & (8 << 28) != 0 {
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    let oparg = sign_extend12(oparg);
    let cmparg = sign_extend12(cmparg);
    let (key1, word1) = locate(p, addr, false)?;
    let (key2, word2) = locate(p, addr2, true)?;
    let mut ws = Vec::new();
    let woken = {
        let (mut q1, mut q2) = lock_two(key1, key2);
        let old = word2
            .get()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(match kind {
                    0 => oparg,
                    1 => v.wrapping_add(oparg),
                    2 => v | oparg,
                    3 => v & !oparg,
                    4 => v ^ oparg,
                    _ => v,
                })
            })
            .unwrap_or(0);
        if kind > 4 {
            return Err(Errno::ENOSYS);
        }
        let (o, c) = (old.cast_signed(), cmparg.cast_signed());
        let pass = match cmp {
            0 => o == c,
            1 => o != c,
            2 => o < c,
            3 => o <= c,
            4 => o > c,
            5 => o >= c,
            _ => return Err(Errno::ENOSYS),
        };
        let mut woken = take_waiters(&mut q1, key1, n1, FUTEX_BITSET_MATCH_ANY, &mut ws);
        if pass {
            let q = q2.as_mut().unwrap_or(&mut q1);
            woken += take_waiters(q, key2, n2, FUTEX_BITSET_MATCH_ANY, &mut ws);
        }
        woken
    };
    drop((word1, word2));
    wake_all(ws);
    Ok(woken as usize)
}

fn sign_extend12(v: u32) -> u32 {
    ((v << 20).cast_signed() >> 20).cast_unsigned()
}

/// A thread's exit with CLONE_CHILD_CLEARTID / set_tid_address: `*addr = 0`, wake one.
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most robust-list entries walked (Linux's ROBUST_LIST_LIMIT): a guest's cyclic or
/// endless list cannot keep an exiting thread busy.
const ROBUST_LIST_LIMIT: usize = 2048;

/// A thread `tid` is leaving: walk its robust futex list (set_robust_list(2) at `head`) and
/// mark each lock it still holds OWNER_DIED, waking one waiter — so a robust mutex's next
/// locker gets EOWNERDEAD instead of waiting for ever. A bad list ends the walk quietly.
pub fn exit_robust_list(p: &UProc, tid: u64, head: u64) {
    if head == 0 {
        return;
    }
    let read = |addr: u64| -> Option<RobustList> {
        let vm = p.user().vm();
        let g = vm.read();
        uaccess::read(&g, UserPtr::new(addr)).ok()
    };
    let h: Option<RobustListHead> = {
        let vm = p.user().vm();
        let g = vm.read();
        uaccess::read(&g, UserPtr::new(head)).ok()
    };
    let Some(RobustListHead { list: RobustList { next: first }, futex_offset: offset, list_op_pending: pending }) = h
    else {
        return;
    };
    let mut entry = first & !1;
    let mut walked = 0;
    while entry != head && entry != 0 && walked < ROBUST_LIST_LIMIT {
        // Read the next link before the word changes hands.
        let next = read(entry).map(|l| l.next);
        if entry != pending & !1 {
            futex_death(p, entry.wrapping_add_signed(offset), tid);
        }
        let Some(next) = next else { break };
        entry = next & !1;
        walked += 1;
    }
    if pending & !1 != 0 {
        futex_death(p, (pending & !1).wrapping_add_signed(offset), tid);
    }
}

/// The owner `tid` of the robust futex at `addr` died: OWNER_DIED, and a waiter woken.
fn futex_death(p: &UProc, addr: u64, tid: u64) {
    let Ok((_, word)) = locate(p, addr, true) else { return };
    let word_ref = word.get();
    let mut val = word_ref.load(Ordering::SeqCst);
    loop {
        if u64::from(val & FUTEX_TID_MASK) != tid {
            return;
        }
        let new = (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match word_ref.compare_exchange(val, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(cur) => val = cur,
        }
    }
    if val & FUTEX_WAITERS != 0 {
        let _ = wake(p, addr, 1, FUTEX_BITSET_MATCH_ANY);
    }
}

pub fn clear_tid(p: &UProc, addr: u64) {
    if addr == 0 {
        return;
    }
    match locate(p, addr, true) {
        Ok((key, word)) => {
            word.get().store(0, Ordering::SeqCst);
            drop(word);
            let n = wake(p, addr, 1, FUTEX_BITSET_MATCH_ANY);
            log::debug!("futex: clear_tid pid {} {addr:#x} key {key:?}: woke {n:?}", p.pid);
        }
        Err(e) => log::debug!("futex: clear_tid pid {} {addr:#x}: {e}", p.pid),
    }
}
