//! Futexes (futex(2)): wait and wake on guest memory words.
//!
//! A futex is keyed by (address space, address) in private memory, and by physical address
//! in shared memory (MAP_SHARED, so processes sharing the page meet). The value check and
//! FUTEX_WAKE_OP's read-modify-write are atomics on the physical word itself, so they are
//! atomic with respect to the guest's own accesses.
//!
//! Lock order: the futex table (a sleep lock) before an address space's lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::kern::errno::Errno;
use crate::kern::proc::Proc;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::sleeplock::SleepLock;
use crate::kern::thread::WakeReason;
use crate::vm::space::PAGE;

/// Where a futex lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Private { space: u64, addr: u64 },
    Shared { pa: u64 },
}

#[derive(Debug)]
struct Waiter {
    bitset: u32,
    woken: AtomicBool,
}

static TABLE: SleepLock<Option<HashMap<Key, VecDeque<Arc<Waiter>>>>> = SleepLock::new("futex", None);

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

/// The key and the physical word of a futex at `addr` in `p`'s address space.
fn locate(p: &Proc, addr: u64, write: bool) -> Result<(Key, &'static AtomicU32), Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let vm = p.user().vm();
    let g = vm.read();
    let pa = g.resolve(addr, write).map_err(|_| Errno::EFAULT)?;
    let shared = g.find(addr).is_some_and(|e| e.shared());
    let key = if shared { Key::Shared { pa } } else { Key::Private { space: g.id, addr } };
    let word = platform::physmem::get().and_then(|pm| pm.atomic_u32(pa)).ok_or(Errno::EFAULT)?;
    debug_assert!(pa / PAGE == (pa + 3) / PAGE);
    Ok((key, word))
}

fn wake_key(t: &mut HashMap<Key, VecDeque<Arc<Waiter>>>, key: Key, n: u32, bitset: u32) -> u32 {
    let mut woken = 0;
    if let Some(q) = t.get_mut(&key) {
        let mut i = 0;
        while i < q.len() && woken < n {
            if q[i].bitset & bitset != 0 {
                if let Some(w) = q.remove(i) {
                    w.woken.store(true, Ordering::Release);
                    wakeup(wchan_of(&*w));
                    woken += 1;
                }
            } else {
                i += 1;
            }
        }
        if q.is_empty() {
            t.remove(&key);
        }
    }
    woken
}

/// FUTEX_WAIT(_BITSET): sleep while `*addr == val`, until woken, the deadline (monotonic ns
/// since boot), or a signal.
pub fn wait(p: &Proc, addr: u64, val: u32, bitset: u32, deadline: Option<u64>) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let w = Arc::new(Waiter { bitset, woken: AtomicBool::new(false) });
    let key = {
        let mut t = TABLE.lock();
        let (key, word) = locate(p, addr, false)?;
        if word.load(Ordering::SeqCst) != val {
            return Err(Errno::EAGAIN);
        }
        t.get_or_insert_with(HashMap::new).entry(key).or_default().push_back(Arc::clone(&w));
        log::debug!("futex: wait pid {} {addr:#x} key {key:?} val {val}", p.pid);
        key
    };
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
                    return unqueue(key, &w, Errno::ETIMEDOUT);
                }
                Some(Duration::from_nanos(d - now))
            }
            None => None,
        };
        if tsleep_locked(g, "futex", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
            return unqueue(key, &w, Errno::ERESTARTSYS);
        }
    }
}

/// Leave the queue after a timeout or a signal, unless a wake-up got there first.
fn unqueue(key: Key, w: &Arc<Waiter>, e: Errno) -> Result<usize, Errno> {
    let mut t = TABLE.lock();
    if w.woken.load(Ordering::Acquire) {
        return Ok(0);
    }
    if let Some(map) = t.as_mut()
        && let Some(q) = map.get_mut(&key)
    {
        q.retain(|x| !Arc::ptr_eq(x, w));
        if q.is_empty() {
            map.remove(&key);
        }
    }
    Err(e)
}

/// FUTEX_WAKE(_BITSET): wake up to `n` waiters.
pub fn wake(p: &Proc, addr: u64, n: u32, bitset: u32) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let mut t = TABLE.lock();
    let (key, _) = locate(p, addr, false)?;
    Ok(wake_key(t.get_or_insert_with(HashMap::new), key, n, bitset) as usize)
}

/// FUTEX_(CMP_)REQUEUE: wake `n_wake`, move up to `n_requeue` others to `addr2`.
pub fn requeue(p: &Proc, addr: u64, n_wake: u32, n_requeue: u32, addr2: u64, cmp: Option<u32>) -> Result<usize, Errno> {
    let mut t = TABLE.lock();
    let (key, word) = locate(p, addr, false)?;
    let (key2, _) = locate(p, addr2, false)?;
    if let Some(v) = cmp
        && word.load(Ordering::SeqCst) != v
    {
        return Err(Errno::EAGAIN);
    }
    let map = t.get_or_insert_with(HashMap::new);
    let woken = wake_key(map, key, n_wake, FUTEX_BITSET_MATCH_ANY);
    let mut moved = 0;
    if key != key2 {
        let mut take = Vec::new();
        if let Some(q) = map.get_mut(&key) {
            while moved < n_requeue {
                match q.pop_front() {
                    Some(w) => {
                        take.push(w);
                        moved += 1;
                    }
                    None => break,
                }
            }
            if q.is_empty() {
                map.remove(&key);
            }
        }
        map.entry(key2).or_default().extend(take);
    }
    Ok((woken + moved) as usize)
}

/// FUTEX_WAKE_OP: `*addr2 = op(*addr2)` atomically; wake `n1` on `addr`, and `n2` on `addr2`
/// if the old value passes the comparison encoded in `op`.
pub fn wake_op(p: &Proc, addr: u64, n1: u32, addr2: u64, n2: u32, op: u32) -> Result<usize, Errno> {
    let kind = (op >> 28) & 7;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if op & (8 << 28) != 0 {
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    let oparg = sign_extend12(oparg);
    let cmparg = sign_extend12(cmparg);
    let mut t = TABLE.lock();
    let (key1, _) = locate(p, addr, false)?;
    let (key2, word2) = locate(p, addr2, true)?;
    let old = word2
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
    let (o, c) = (old as i32, cmparg as i32);
    let pass = match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return Err(Errno::ENOSYS),
    };
    let map = t.get_or_insert_with(HashMap::new);
    let mut woken = wake_key(map, key1, n1, FUTEX_BITSET_MATCH_ANY);
    if pass {
        woken += wake_key(map, key2, n2, FUTEX_BITSET_MATCH_ANY);
    }
    Ok(woken as usize)
}

fn sign_extend12(v: u32) -> u32 {
    ((v << 20) as i32 >> 20) as u32
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
pub fn exit_robust_list(p: &Proc, tid: u64, head: u64) {
    if head == 0 {
        return;
    }
    let read_u64 = |addr: u64| -> Option<u64> {
        let vm = p.user().vm();
        let g = vm.read();
        crate::vm::uaccess::copyin_u64(&g, addr).ok()
    };
    // struct robust_list_head { next, futex_offset, list_op_pending }
    let (Some(first), Some(offset), Some(pending)) = (read_u64(head), read_u64(head + 8), read_u64(head + 16)) else {
        return;
    };
    let offset = offset as i64;
    let mut entry = first & !1;
    let mut walked = 0;
    while entry != head && entry != 0 && walked < ROBUST_LIST_LIMIT {
        // Read the next link before the word changes hands.
        let next = read_u64(entry);
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
fn futex_death(p: &Proc, addr: u64, tid: u64) {
    let Ok((_, word)) = locate(p, addr, true) else { return };
    let mut val = word.load(Ordering::SeqCst);
    loop {
        if u64::from(val & FUTEX_TID_MASK) != tid {
            return;
        }
        let new = (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match word.compare_exchange(val, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(cur) => val = cur,
        }
    }
    if val & FUTEX_WAITERS != 0 {
        let _ = wake(p, addr, 1, FUTEX_BITSET_MATCH_ANY);
    }
}

pub fn clear_tid(p: &Proc, addr: u64) {
    if addr == 0 {
        return;
    }
    match locate(p, addr, true) {
        Ok((key, word)) => {
            word.store(0, Ordering::SeqCst);
            let n = wake(p, addr, 1, FUTEX_BITSET_MATCH_ANY);
            log::debug!("futex: clear_tid pid {} {addr:#x} key {key:?}: woke {n:?}", p.pid);
        }
        Err(e) => log::debug!("futex: clear_tid pid {} {addr:#x}: {e}", p.pid),
    }
}
