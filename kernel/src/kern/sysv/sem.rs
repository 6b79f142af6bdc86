//! System V semaphore sets (semget(2), semop(2)/semtimedop(2), semctl(2)).
//!
//! A semop applies all its operations or none (Linux's perform_atomic_semop): each is tried
//! in order on a copy of the values; the first that would make a value negative (or, for an
//! op of 0, finds it non-zero) blocks the whole call, which sleeps on one channel for every
//! set until something changes (or fails at once with EAGAIN under IPC_NOWAIT). The sleeper
//! is counted in that semaphore's semncnt or semzcnt (GETNCNT, GETZCNT). A signal ends the
//! wait with EINTR (semop is never restarted), a timeout with EAGAIN, the set's removal with
//! EIDRM.
//!
//! SEM_UNDO: each process has adjustments per set and semaphore (the negation of what its
//! SEM_UNDO operations did); [`exit`] applies them when the process ends, clamped to
//! 0..=SEMVMX as Linux does. SETVAL and SETALL clear a semaphore's adjustments everywhere.
//! Threads share their process's (as with CLONE_SYSVSEM, which glibc always passes); fork's
//! child starts with none.
//!
//! Lock order: the waiters' `sleepq` bucket → `sysv_sem` (the set table and the undo lists).

use std::collections::BTreeMap;
use std::time::Duration;

use platform::sync::SpinLock;

use crate::abi::ipc::{IPC_NOWAIT, SEM_UNDO, Sembuf, SemidDs};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::sysv::{Found, Ids, Perm, now_secs};
use crate::kern::thread::WakeReason;

/// Linux's defaults (include/uapi/linux/sem.h).
pub const SEMMNI: usize = 32000;
pub const SEMMSL: usize = 32000;
pub const SEMMNS: usize = SEMMNI * SEMMSL;
pub const SEMOPM: usize = 500;
pub const SEMVMX: i32 = 32767;
pub const SEMAEM: i32 = SEMVMX;
pub const SEMMNU: i32 = 1_024_000_000;
pub const SEMUME: i32 = 500;
pub const SEMMAP: i32 = 1_024_000_000;
const _: () = assert!(SEMMNS == 1_024_000_000 && SEMOPM == 500);
pub const SEMUSZ: i32 = 20;

/// One semaphore.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    /// The last process to operate on it (GETPID).
    pub pid: i32,
    pub ncnt: u32,
    pub zcnt: u32,
}

/// A set.
#[derive(Debug)]
pub struct SemSet {
    pub sems: Vec<Sem>,
    pub otime: i64,
    pub ctime: i64,
}

impl SemSet {
    pub fn stat(&self, perm: &Perm) -> SemidDs {
        SemidDs {
            sem_perm: perm.to_abi(),
            sem_otime: self.otime,
            sem_ctime: self.ctime,
            sem_nsems: self.sems.len() as u64,
            ..SemidDs::default()
        }
    }
}

/// The sets and every process's undo adjustments (pid → set id → adjustment per semaphore).
#[derive(Debug)]
pub struct State {
    pub ids: Ids<SemSet>,
    undo: BTreeMap<i32, BTreeMap<i32, Vec<i32>>>,
}

static SEM: SpinLock<State> = SpinLock::new("sysv_sem", State { ids: Ids::new(SEMMNI), undo: BTreeMap::new() });

fn chan() -> u64 {
    wchan_of(&SEM)
}

/// Run `f` on the table; waiters are woken afterwards when `f` says something changed.
pub fn with<R>(f: impl FnOnce(&mut State) -> (R, bool)) -> R {
    let (r, changed) = f(&mut SEM.lock());
    if changed {
        wakeup(chan());
    }
    r
}

impl State {
    /// Forget every process's adjustment of semaphore `num` of set `id` (all of them when None).
    pub fn clear_undo(&mut self, id: i32, num: Option<usize>) {
        for sets in self.undo.values_mut() {
            match num {
                None => {
                    sets.remove(&id);
                }
                Some(n) => {
                    if let Some(a) = sets.get_mut(&id).and_then(|v| v.get_mut(n)) {
                        *a = 0;
                    }
                }
            }
        }
    }
}

/// semget(2).
pub fn get(key: i32, nsems: i32, flags: u32, cred: &Cred) -> Result<i32, Errno> {
    let n = usize::try_from(nsems).map_err(|_| Errno::EINVAL)?;
    if n > SEMMSL {
        return Err(Errno::EINVAL);
    }
    with(|st| {
        let total: usize = st.ids.iter_mut().map(|(_, _, s)| s.sems.len()).sum();
        let r = st.ids.lookup_or_make(
            key,
            cred,
            flags,
            |_, set| if set.sems.len() < n { Err(Errno::EINVAL) } else { Ok(()) },
            || {
                if n == 0 {
                    return Err(Errno::EINVAL);
                }
                if total + n > SEMMNS {
                    return Err(Errno::ENOSPC);
                }
                Ok(SemSet { sems: vec![Sem::default(); n], otime: 0, ctime: now_secs() })
            },
        );
        (
            r.map(|f| match f {
                Found::Existing(id) | Found::Made(id) => id,
            }),
            false,
        )
    })
}

/// What one try of a semop found.
enum Try {
    Done,
    /// Blocked on semaphore `num`, waiting for zero (`true`) or for an increase.
    Blocked(usize, bool),
}

/// Try `ops` on set `id` at once; on success apply them, their undo and the pids.
fn try_ops(st: &mut State, id: i32, ops: &[Sembuf], pid: i32, cred: &Cred, alter: bool) -> Result<Try, Errno> {
    let (perm, set) = st.ids.get(id)?;
    perm.check(cred, if alter { 0o200 } else { 0o400 })?;
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    let undo = st.undo.get(&pid).and_then(|u| u.get(&id));
    let mut adj: Vec<i32> = undo.cloned().unwrap_or_else(|| vec![0; vals.len()]);
    for op in ops {
        let n = usize::from(op.sem_num);
        let Some(v) = vals.get_mut(n) else { return Err(Errno::EFBIG) };
        let d = i32::from(op.sem_op);
        if d == 0 {
            if *v != 0 {
                return block(op, n, true);
            }
            continue;
        }
        let nv = *v + d;
        if nv < 0 {
            return block(op, n, false);
        }
        if nv > SEMVMX {
            return Err(Errno::ERANGE);
        }
        if op.sem_flg & SEM_UNDO != 0 {
            let a = adj[n] - d;
            if !(-SEMAEM - 1..=SEMAEM).contains(&a) {
                return Err(Errno::ERANGE);
            }
            adj[n] = a;
        }
        *v = nv;
    }
    for (s, v) in set.sems.iter_mut().zip(&vals) {
        s.val = *v;
    }
    for op in ops {
        set.sems[usize::from(op.sem_num)].pid = pid;
    }
    set.otime = now_secs();
    if ops.iter().any(|o| o.sem_flg & SEM_UNDO != 0) {
        st.undo.entry(pid).or_default().insert(id, adj);
    }
    Ok(Try::Done)
}

fn block(op: &Sembuf, n: usize, zero: bool) -> Result<Try, Errno> {
    if u32::from(op.sem_flg.cast_unsigned()) & IPC_NOWAIT != 0 { Err(Errno::EAGAIN) } else { Ok(Try::Blocked(n, zero)) }
}

/// semop(2)/semtimedop(2) for process `pid`: `deadline` in monotonic ns since boot.
pub fn semop(id: i32, ops: &[Sembuf], pid: i32, cred: &Cred, deadline: Option<u64>) -> Result<usize, Errno> {
    if ops.is_empty() {
        return Err(Errno::EINVAL);
    }
    if ops.len() > SEMOPM {
        return Err(Errno::E2BIG);
    }
    let alter = ops.iter().any(|o| o.sem_op != 0);
    loop {
        let g = sleepq_lock(chan());
        let (num, zero) = match with(|st| {
            let r = try_ops(st, id, ops, pid, cred, alter);
            if let Ok(Try::Blocked(n, zero)) = r
                && let Ok((_, set)) = st.ids.get(id)
            {
                let s = &mut set.sems[n];
                if zero { s.zcnt += 1 } else { s.ncnt += 1 }
            }
            // No wake-up from inside: the channel's queue is held (below, once it is not).
            (r, false)
        }) {
            Ok(Try::Done) => {
                drop(g);
                if alter {
                    wakeup(chan());
                }
                return Ok(0);
            }
            Ok(Try::Blocked(n, z)) => (n, z),
            Err(e) => return Err(e),
        };
        let timeout = match deadline {
            Some(d) => {
                let now = platform::time::uptime_ns();
                Some(Duration::from_nanos(d.saturating_sub(now).max(1)))
            }
            None => None,
        };
        let why = if deadline.is_some_and(|d| platform::time::uptime_ns() >= d) {
            drop(g);
            WakeReason::TimedOut
        } else {
            tsleep_locked(g, "semop", SleepOpts { interruptible: true, timeout })
        };
        let gone = with(|st| {
            let gone = match st.ids.get(id) {
                Ok((_, set)) => {
                    let s = &mut set.sems[num];
                    if zero {
                        s.zcnt = s.zcnt.saturating_sub(1)
                    } else {
                        s.ncnt = s.ncnt.saturating_sub(1)
                    }
                    false
                }
                Err(_) => true,
            };
            (gone, false)
        });
        if gone {
            return Err(Errno::EIDRM);
        }
        match why {
            WakeReason::Interrupted => return Err(Errno::EINTR),
            WakeReason::TimedOut => return Err(Errno::EAGAIN),
            WakeReason::Woken => {}
        }
    }
}

/// Wake every semop sleeper (after a change made with [`with`] that did not say so).
pub fn wake_all() {
    wakeup(chan());
}

/// A process ends: apply its SEM_UNDO adjustments.
pub fn exit(pid: i32) {
    with(|st| {
        let Some(sets) = st.undo.remove(&pid) else { return ((), false) };
        for (id, adj) in sets {
            if let Ok((_, set)) = st.ids.get(id) {
                for (s, a) in set.sems.iter_mut().zip(adj) {
                    if a != 0 {
                        s.val = (s.val + a).clamp(0, SEMVMX);
                        s.pid = pid;
                    }
                }
                set.otime = now_secs();
            }
        }
        ((), true)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: u16, d: i16, flg: i16) -> Sembuf {
        Sembuf { sem_num: n, sem_op: d, sem_flg: flg }
    }

    #[test]
    fn all_or_nothing_and_undo() {
        let cred = Cred::root();
        let mut st = State { ids: Ids::new(4), undo: BTreeMap::new() };
        let Ok(Found::Made(id)) = st.ids.lookup_or_make(
            0,
            &cred,
            0o600,
            |_, _| Ok(()),
            || Ok(SemSet { sems: vec![Sem::default(); 2], otime: 0, ctime: 0 }),
        ) else {
            panic!()
        };
        // +1 on 0, then -1 on 1 (which is 0): nothing happens.
        assert!(matches!(
            try_ops(&mut st, id, &[op(0, 1, 0), op(1, -1, 0)], 5, &cred, true),
            Ok(Try::Blocked(1, false))
        ));
        assert_eq!(st.ids.get(id).unwrap().1.sems[0].val, 0);
        let nowait = i16::try_from(IPC_NOWAIT).unwrap();
        assert_eq!(try_ops(&mut st, id, &[op(1, -1, nowait)], 5, &cred, true).err(), Some(Errno::EAGAIN));
        assert_eq!(try_ops(&mut st, id, &[op(2, 1, 0)], 5, &cred, true).err(), Some(Errno::EFBIG));
        assert!(matches!(try_ops(&mut st, id, &[op(0, 3, SEM_UNDO)], 5, &cred, true), Ok(Try::Done)));
        assert!(matches!(try_ops(&mut st, id, &[op(0, 0, 0)], 5, &cred, false), Ok(Try::Blocked(0, true))));
        assert_eq!(try_ops(&mut st, id, &[op(0, i16::MAX, 0)], 5, &cred, true).err(), Some(Errno::ERANGE));
        assert_eq!(st.undo[&5][&id], vec![-3, 0]);
    }
}
