//! File leases (fcntl(2) F_SETLEASE, F_GETLEASE) and the owner of a file's signals
//! (F_SETOWN, F_SETOWN_EX, F_SETSIG), as Linux's fs/locks.c and fs/fcntl.c keep them.
//!
//! A lease belongs to an open file description. A read lease needs the file open for
//! writing by nobody; a write lease needs it open by nobody but the lease's file. When
//! another open(2) (or truncate(2)) conflicts — any open with a write lease, an open for
//! writing with a read lease — the lease is *broken*: its holder gets the lease signal
//! (SIGIO, or F_SETSIG's with a `siginfo` naming the descriptor), F_GETLEASE shows the type
//! it must go to, and the opener waits until the holder downgrades or releases it, or
//! `lease-break-time` seconds pass and the kernel does it (an O_NONBLOCK opener gets
//! EWOULDBLOCK at once). Closing the file's last descriptor releases its lease.
//!
//! Who has a file open is found by walking the processes' descriptor tables, each once: only
//! F_SETLEASE asks (files held by mappings or in flight in sockets are not counted).
//!
//! Two spin locks, both leaves: `leases` (the table; waiters sleep on its channel, taken
//! before it: sleep-queue bucket → `leases`) and `f_owner` (each file's owner and signal,
//! keyed by the file's address). Signals are sent after both are dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use platform::sync::SpinLock;

use crate::abi::signal::{SiPoll, Siginfo};
use crate::fs::file::{File, O_ACCMODE, O_NONBLOCK, O_PATH, O_RDONLY};
use crate::fs::lock::LockType;
use crate::fs::vfs::VnodeId;
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::proc::{self, UProc};
use crate::kern::signal::{self, SI_KERNEL};

const SIGIO: i32 = crate::abi::c_int(crate::abi::linux::SIGIO);
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// /proc/sys/fs/lease-break-time: seconds a lease holder has to give way (Linux's 45).
pub static LEASE_BREAK_TIME_S: AtomicU64 = AtomicU64::new(45);

/// Whom a file's signals go to (F_SETOWN_EX's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// F_OWNER_TID: one thread.
    Tid,
    /// F_OWNER_PID: a process.
    Pid,
    /// F_OWNER_PGRP: a process group.
    Pgrp,
}

/// A file's signal owner (`struct fown_struct`): the target, the credentials of whoever set
/// it (for sigio_perm), and F_SETSIG's signal (0: SIGIO without siginfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FOwn {
    kind: OwnerKind,
    id: i32,
    uid: u32,
    euid: u32,
    sig: i32,
}

impl Default for FOwn {
    fn default() -> FOwn {
        FOwn { kind: OwnerKind::Tid, id: 0, uid: 0, euid: 0, sig: 0 }
    }
}

static OWNERS: SpinLock<Option<HashMap<usize, FOwn>>> = SpinLock::new("f_owner", None);
static NOWNERS: AtomicUsize = AtomicUsize::new(0);

fn key(f: &File) -> usize {
    std::ptr::from_ref(f).addr()
}

fn with_owner<R>(f: &File, op: impl FnOnce(&mut FOwn) -> R) -> R {
    let mut g = OWNERS.lock();
    let map = g.get_or_insert_with(HashMap::new);
    let own = map.entry(key(f)).or_default();
    let r = op(own);
    NOWNERS.store(map.len(), Ordering::Relaxed);
    r
}

fn owner_of(f: &File) -> Option<FOwn> {
    if NOWNERS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    OWNERS.lock().as_ref().and_then(|m| m.get(&key(f)).copied())
}

/// F_SETOWN / F_SETOWN_EX: signals of `f` go to `id` (0: nobody). ESRCH when no such
/// thread, process or group exists.
pub fn set_owner(f: &File, kind: OwnerKind, id: i32, cred: &Cred) -> Result<(), Errno> {
    if id != 0 && targets(kind, id).is_empty() {
        return Err(Errno::ESRCH);
    }
    with_owner(f, |o| {
        o.kind = kind;
        o.id = id;
        o.uid = cred.uid;
        o.euid = cred.euid;
    });
    Ok(())
}

/// F_GETOWN_EX: the owner's kind and id (all zero, F_OWNER_TID 0, when none was set).
pub fn owner(f: &File) -> (OwnerKind, i32) {
    owner_of(f).map_or((OwnerKind::Tid, 0), |o| (o.kind, o.id))
}

/// F_SETSIG: the signal to send (0: SIGIO); EINVAL for a number that is no signal.
pub fn set_sig(f: &File, sig: i32) -> Result<(), Errno> {
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    with_owner(f, |o| o.sig = sig);
    Ok(())
}

/// F_GETSIG.
pub fn sig(f: &File) -> i32 {
    owner_of(f).map_or(0, |o| o.sig)
}

/// The processes (with the one thread for F_OWNER_TID) an owner names.
fn targets(kind: OwnerKind, id: i32) -> Vec<(UProc, Option<crate::kern::thread::UThread>)> {
    match kind {
        OwnerKind::Pid => proc::find_user(id).map(|p| (p, None)).into_iter().collect(),
        OwnerKind::Tid => {
            let Ok(tid) = u64::try_from(id) else { return Vec::new() };
            proc::all_user()
                .into_iter()
                .find_map(|p| {
                    let t = p.threads().into_iter().find(|t| t.tid() == tid)?;
                    Some((p, Some(t)))
                })
                .into_iter()
                .collect()
        }
        OwnerKind::Pgrp => {
            proc::all_user().into_iter().filter(|p| p.rec.pgid.load(Ordering::Relaxed) == id).map(|p| (p, None)).collect()
        }
    }
}

/// POLL_MSG's band (band_table in fs/fcntl.c): POLLIN | POLLRDNORM | POLLMSG.
const BAND_MSG: i64 = 0x1 | 0x40 | 0x400;
/// si_code of a lease break (POLL_MSG).
const POLL_MSG: i32 = 3;

/// Send `f`'s owner its I/O signal for descriptor `fd` (send_sigio): F_SETSIG's signal with
/// a siginfo of `code` and `band`, or plain SIGIO; nothing without an owner.
pub fn send_io(f: &File, fd: i32, code: i32, band: i64) {
    if let Some(own) = owner_of(f) {
        send_sigio(own, fd, code, band);
    }
}

/// Send `own`'s signal for descriptor `fd`: F_SETSIG's signal with a siginfo of `code` and
/// `band`, or plain SIGIO.
fn send_sigio(own: FOwn, fd: i32, code: i32, band: i64) {
    if own.id == 0 {
        return;
    }
    let info = if own.sig != 0 {
        Siginfo::new(own.sig, code).with(&SiPoll { _band: band, _fd: fd, ..SiPoll::default() })
    } else {
        Siginfo::new(SIGIO, SI_KERNEL)
    };
    for (p, t) in targets(own.kind, own.id) {
        // sigio_perm: the setter was root, or its uid or euid is the target's uid or suid.
        let c = p.user().cred();
        let allowed =
            own.euid == 0 || own.euid == c.suid || own.euid == c.uid || own.uid == c.suid || own.uid == c.uid;
        if !allowed {
            continue;
        }
        match t {
            Some(t) => signal::send_to_thread(&t, info),
            None => signal::send_to_proc(&p, info),
        }
    }
}

/// A lease being broken: the type it must go to (None: unlocked) and by when (ns since
/// boot).
#[derive(Debug, Clone, Copy)]
struct Breaking {
    to: Option<LockType>,
    deadline_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    vnode: VnodeId,
    /// The open file description holding it (its address).
    file: usize,
    ty: LockType,
    /// The descriptor F_SETLEASE was given (the siginfo's si_fd).
    fd: i32,
    breaking: Option<Breaking>,
}

impl Lease {
    /// The type F_GETLEASE reports: where a break is taking it.
    fn target(&self) -> Option<LockType> {
        match self.breaking {
            Some(b) => b.to,
            None => Some(self.ty),
        }
    }

    /// Whether an open with `write` access must break it (leases_conflict).
    fn conflicts(&self, write: bool) -> bool {
        write || self.ty == LockType::Write
    }
}

static LEASES: SpinLock<Vec<Lease>> = SpinLock::new("leases", Vec::new());
static NLEASES: AtomicUsize = AtomicUsize::new(0);

fn chan() -> u64 {
    wchan_of(&LEASES)
}

/// Apply the breaks whose time is up (time_out_leases).
fn time_out(ls: &mut Vec<Lease>, now_ns: u64) {
    for l in ls.iter_mut() {
        if let Some(b) = l.breaking
            && now_ns >= b.deadline_ns
        {
            match b.to {
                Some(ty) => {
                    l.ty = ty;
                    l.breaking = None;
                }
                None => l.file = 0,
            }
        }
    }
    ls.retain(|l| l.file != 0);
    NLEASES.store(ls.len(), Ordering::Relaxed);
}

/// F_GETLEASE: the lease `f` holds, as the type it is going to (F_UNLCK: none).
pub fn get(f: &File) -> Option<LockType> {
    if NLEASES.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut ls = LEASES.lock();
    time_out(&mut ls, platform::time::uptime_ns());
    ls.iter().find(|l| l.file == key(f)).and_then(Lease::target)
}

/// How often `vnode` is open for reading and for writing, by open file descriptions other
/// than `me` (each counted once, however many descriptors share it).
fn open_counts(vnode: VnodeId, me: usize) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let (mut readers, mut writers) = (0, 0);
    for p in proc::all_user() {
        let files = p.user().files();
        let t = files.lock();
        for (_, e) in t.iter() {
            let f = &e.file;
            if key(f) == me || f.flags() & O_PATH != 0 || f.vnode.id() != vnode || !seen.insert(key(f)) {
                continue;
            }
            if f.flags() & O_ACCMODE == O_RDONLY {
                readers += 1;
            } else {
                writers += 1;
            }
        }
    }
    (readers, writers)
}

/// F_SETLEASE with F_RDLCK, F_WRLCK (`Some`) or F_UNLCK (`None`) on `f`, reached by
/// descriptor `fd` of a process with `cred` (pid `pid`).
pub fn set(f: &File, fd: i32, ty: Option<LockType>, cred: &Cred, pid: i32) -> Result<(), Errno> {
    let attr = f.vnode.attr()?;
    if ty.is_some() && cred.fsuid != attr.uid && !cred.capable(linux_raw_sys::general::CAP_LEASE) {
        return Err(Errno::EACCES);
    }
    if f.vnode.vtype() != crate::fs::vfs::VType::Reg {
        return Err(Errno::EINVAL);
    }
    let me = key(f);
    let vnode = f.vnode.id();
    let Some(ty) = ty else {
        let mut ls = LEASES.lock();
        ls.retain(|l| l.file != me);
        NLEASES.store(ls.len(), Ordering::Relaxed);
        drop(ls);
        wakeup(chan());
        return Ok(());
    };
    // check_conflicting_open: a read lease on a file nobody (this one included) writes;
    // a write lease on a file nobody else has open.
    let self_writes = f.flags() & O_ACCMODE != O_RDONLY;
    let (readers, writers) = open_counts(vnode, me);
    let conflict = match ty {
        LockType::Read => writers > 0 || self_writes,
        LockType::Write => readers > 0 || writers > 0,
    };
    if conflict {
        return Err(Errno::EAGAIN);
    }
    {
        let mut ls = LEASES.lock();
        time_out(&mut ls, platform::time::uptime_ns());
        for l in ls.iter().filter(|l| l.vnode == vnode && l.file != me) {
            // No write lease beside another's lease; no new lease while one is being broken
            // for a writer.
            if ty == LockType::Write || l.breaking.is_some_and(|b| b.to.is_none()) {
                return Err(Errno::EAGAIN);
            }
        }
        // A writer waits for this lease to go: it may not come back as a read lease (Linux
        // counts the waiting opener's write access already).
        if ty == LockType::Read && ls.iter().any(|l| l.file == me && l.breaking.is_some_and(|b| b.to.is_none())) {
            return Err(Errno::EAGAIN);
        }
        match ls.iter_mut().find(|l| l.file == me) {
            Some(l) => {
                // lease_modify: a downgrade to read ends a pending downgrade.
                l.ty = ty;
                if ty == LockType::Read && l.breaking.is_some_and(|b| b.to == Some(LockType::Read)) {
                    l.breaking = None;
                }
            }
            None => ls.push(Lease { vnode, file: me, ty, fd, breaking: None }),
        }
        NLEASES.store(ls.len(), Ordering::Relaxed);
    }
    // lease_setup: the lease's signals go to the process that took it.
    with_owner(f, |o| {
        o.kind = OwnerKind::Pid;
        o.id = pid;
        o.uid = cred.uid;
        o.euid = cred.euid;
    });
    wakeup(chan());
    Ok(())
}

/// An open(2) of `vnode` with `flags` (or truncate(2), as O_WRONLY): break the leases it
/// conflicts with and wait until they are gone (__break_lease). EWOULDBLOCK for an
/// O_NONBLOCK opener while they last (EAGAIN); ERESTARTSYS when a signal comes.
pub fn break_lease(vnode: VnodeId, flags: u32) -> Result<(), Errno> {
    if NLEASES.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    let write = flags & O_ACCMODE != O_RDONLY;
    let mut notify = Vec::new();
    {
        let mut ls = LEASES.lock();
        let now = platform::time::uptime_ns();
        time_out(&mut ls, now);
        // A break time of 0 never expires (Linux's past_time(0)).
        let secs = LEASE_BREAK_TIME_S.load(Ordering::Relaxed);
        let deadline_ns = if secs == 0 { u64::MAX } else { now.saturating_add(secs.saturating_mul(1_000_000_000)) };
        for l in ls.iter_mut().filter(|l| l.vnode == vnode && l.conflicts(write)) {
            let to = if write { None } else { Some(LockType::Read) };
            match l.breaking {
                // Already on its way to unlocked, or (for a reader) to read.
                Some(b) if b.to.is_none() || !write => continue,
                _ => {}
            }
            l.breaking = Some(Breaking { to, deadline_ns });
            notify.push((l.file, l.fd));
        }
    }
    // Signals after the table is dropped; the owners are looked up by file address.
    for (file, fd) in notify {
        let own = OWNERS.lock().as_ref().and_then(|m| m.get(&file).copied());
        if let Some(own) = own {
            send_sigio(own, fd, POLL_MSG, BAND_MSG);
        }
    }
    loop {
        let g = sleepq_lock(chan());
        let wait = {
            let mut ls = LEASES.lock();
            let now = platform::time::uptime_ns();
            time_out(&mut ls, now);
            ls.iter()
                .filter(|l| l.vnode == vnode && l.conflicts(write))
                .map(|l| l.breaking.map_or(u64::MAX, |b| b.deadline_ns).saturating_sub(now))
                .min()
        };
        let Some(left_ns) = wait else { return Ok(()) };
        if flags & O_NONBLOCK != 0 {
            return Err(Errno::EAGAIN);
        }
        let timeout = (left_ns != u64::MAX).then(|| Duration::from_nanos(left_ns.max(1)));
        if tsleep_locked(g, "lease", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// The last reference to the open file description at `addr` is gone: its lease and its
/// owner go too.
pub fn file_closed(addr: usize) {
    if NLEASES.load(Ordering::Relaxed) != 0 {
        let mut ls = LEASES.lock();
        let before = ls.len();
        ls.retain(|l| l.file != addr);
        NLEASES.store(ls.len(), Ordering::Relaxed);
        let changed = ls.len() != before;
        drop(ls);
        if changed {
            wakeup(chan());
        }
    }
    if NOWNERS.load(Ordering::Relaxed) != 0 {
        let mut g = OWNERS.lock();
        if let Some(m) = g.as_mut() {
            m.remove(&addr);
            NOWNERS.store(m.len(), Ordering::Relaxed);
        }
    }
}
