//! System V IPC (svipc(7)): shared memory segments (`shm.rs`), semaphore sets (`sem.rs`) and
//! message queues (`msg.rs`), FreeBSD's sysv_shm.c/sysv_sem.c/sysv_msg.c. This file holds
//! what the three share: the permission record (`struct ipc64_perm`), the id registry that
//! maps keys and ids to objects, and the access checks (Linux's ipc/util.c).
//!
//! An id is `index + seq * 32768` (Linux's IPCMNI_SEQ_MULTIPLIER without ipcmni_extend):
//! `seq` grows with every object made, so a stale id of a removed object is EINVAL rather
//! than naming its successor (EIDRM is for a caller that was waiting on it). Each facility keeps its registry under its own
//! spin lock; nothing sleeps or touches guest memory with it held.

pub mod msg;
pub mod sem;
pub mod shm;

use crate::abi::ipc::{IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IpcPerm};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use linux_raw_sys::general::{CAP_IPC_OWNER, CAP_SYS_ADMIN};

/// Index multiplier of an id.
pub const SEQ_MULTIPLIER: i32 = 32768;

/// An object's owner, creator, mode and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The low 9 bits are the access mode; shm adds SHM_DEST and SHM_LOCKED above them.
    pub mode: u32,
    pub seq: u16,
}

impl Perm {
    /// A new object's record: owned and created by the caller's effective ids.
    pub fn new(key: i32, cred: &Cred, flags: u32) -> Perm {
        Perm { key, uid: cred.euid, gid: cred.egid, cuid: cred.euid, cgid: cred.egid, mode: flags & 0o777, seq: 0 }
    }

    /// ipcperms(): may `cred` access the object for `flag`'s 0o400 (read) and 0o200
    /// (write/alter) bits? Owner or creator take the user bits, a member of the owner's or
    /// creator's group the group bits; CAP_IPC_OWNER passes anything. EACCES if not.
    pub fn check(&self, cred: &Cred, flag: u32) -> Result<(), Errno> {
        let requested = (flag >> 6 | flag >> 3 | flag) & 7;
        let mut granted = self.mode;
        if cred.euid == self.cuid || cred.euid == self.uid {
            granted >>= 6;
        } else if cred.in_group(self.cgid) || cred.in_group(self.gid) {
            granted >>= 3;
        }
        if requested & !granted & 7 != 0 && !cred.capable(CAP_IPC_OWNER) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// IPC_SET and IPC_RMID (ipcctl_obtain_check): the owner, the creator or CAP_SYS_ADMIN;
    /// EPERM for anyone else.
    pub fn may_change(&self, cred: &Cred) -> Result<(), Errno> {
        if cred.euid == self.cuid || cred.euid == self.uid || cred.capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// IPC_SET: a new owner and access mode (the other mode bits stay).
    pub fn set(&mut self, from: &IpcPerm) {
        self.uid = from.uid;
        self.gid = from.gid;
        self.mode = (self.mode & !0o777) | (from.mode & 0o777);
    }

    /// As the guest sees it.
    pub fn to_abi(&self) -> IpcPerm {
        IpcPerm {
            key: self.key,
            uid: self.uid,
            gid: self.gid,
            cuid: self.cuid,
            cgid: self.cgid,
            mode: self.mode,
            seq: self.seq,
            ..IpcPerm::default()
        }
    }
}

/// One facility's objects by index.
#[derive(Debug)]
pub struct Ids<T> {
    slots: Vec<Option<(Perm, T)>>,
    next_seq: u16,
    /// Most objects at once (SHMMNI, SEMMNI, MSGMNI).
    max: usize,
}

/// What get() found or made for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Existing(i32),
    Made(i32),
}

impl<T> Ids<T> {
    pub const fn new(max: usize) -> Ids<T> {
        Ids { slots: Vec::new(), next_seq: 0, max }
    }

    /// Objects in use.
    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The highest index in use (0 when there is none), as the *_INFO commands answer.
    pub fn max_index(&self) -> usize {
        self.slots.iter().rposition(Option::is_some).unwrap_or(0)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (i32, &mut Perm, &mut T)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let (p, t) = s.as_mut()?;
            let id = id_of(i, p.seq);
            Some((id, p, t))
        })
    }

    /// The object of `id`: EINVAL for a negative id, a free index or a stale id (the index
    /// reused by a newer object: Linux's ipc_obtain_object_check).
    pub fn get(&mut self, id: i32) -> Result<(&mut Perm, &mut T), Errno> {
        let (idx, seq) = split(id)?;
        match self.slots.get_mut(idx).and_then(Option::as_mut) {
            Some((p, t)) if p.seq == seq => Ok((p, t)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The object at the index `arg` names (the *_STAT commands) and its id: as Linux's
    /// ipcid_to_idx, only the index bits count, so an object's own id finds it too.
    pub fn at_index(&mut self, arg: i32) -> Result<(i32, &mut Perm, &mut T), Errno> {
        let idx = usize::try_from(arg & (SEQ_MULTIPLIER - 1)).map_err(|_| Errno::EINVAL)?;
        match self.slots.get_mut(idx).and_then(Option::as_mut) {
            Some((p, t)) => Ok((id_of(idx, p.seq), p, t)),
            None => Err(Errno::EINVAL),
        }
    }

    /// The *get(2) lookup: the object with `key`, or a new one from `make` (IPC_CREAT, or
    /// always for IPC_PRIVATE). ENOENT without IPC_CREAT, EEXIST with IPC_CREAT|IPC_EXCL,
    /// ENOSPC when the table is full; `check` vets an existing object (its size, before the
    /// permissions, as Linux's more_checks).
    pub fn lookup_or_make(
        &mut self,
        key: i32,
        cred: &Cred,
        flags: u32,
        check: impl FnOnce(&Perm, &T) -> Result<(), Errno>,
        make: impl FnOnce() -> Result<T, Errno>,
    ) -> Result<Found, Errno> {
        if key != IPC_PRIVATE {
            let found = self
                .slots
                .iter()
                .enumerate()
                .find_map(|(i, s)| s.as_ref().filter(|(p, _)| p.key == key).map(|(p, t)| (i, p, t)));
            if let Some((i, p, t)) = found {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                check(p, t)?;
                p.check(cred, flags)?;
                return Ok(Found::Existing(id_of(i, p.seq)));
            }
            if flags & IPC_CREAT == 0 {
                return Err(Errno::ENOENT);
            }
        }
        let free = self.slots.iter().position(Option::is_none);
        if free.is_none() && self.slots.len() >= self.max {
            return Err(Errno::ENOSPC);
        }
        let obj = make()?;
        let mut perm = Perm::new(key, cred, flags);
        perm.seq = self.next_seq;
        self.next_seq = (self.next_seq + 1) % u16::try_from(i32::MAX / SEQ_MULTIPLIER).unwrap_or(u16::MAX);
        let idx = match free {
            Some(i) => {
                self.slots[i] = Some((perm, obj));
                i
            }
            None => {
                self.slots.push(Some((perm, obj)));
                self.slots.len() - 1
            }
        };
        Ok(Found::Made(id_of(idx, perm.seq)))
    }

    /// Take `id`'s object out (IPC_RMID).
    pub fn remove(&mut self, id: i32) -> Option<(Perm, T)> {
        let (idx, seq) = split(id).ok()?;
        let slot = self.slots.get_mut(idx)?;
        if slot.as_ref().is_some_and(|(p, _)| p.seq == seq) {
            let r = slot.take();
            while self.slots.last().is_some_and(Option::is_none) {
                self.slots.pop();
            }
            return r;
        }
        None
    }

    /// Remove every object `dead` picks (shm's segments marked for removal once detached).
    pub fn retain(&mut self, mut keep: impl FnMut(&Perm, &T) -> bool) {
        for s in &mut self.slots {
            if s.as_ref().is_some_and(|(p, t)| !keep(p, t)) {
                *s = None;
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }
}

fn id_of(idx: usize, seq: u16) -> i32 {
    i32::try_from(idx).unwrap_or(0) + i32::from(seq) * SEQ_MULTIPLIER
}

fn split(id: i32) -> Result<(usize, u16), Errno> {
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let idx = usize::try_from(id % SEQ_MULTIPLIER).map_err(|_| Errno::EINVAL)?;
    let seq = u16::try_from(id / SEQ_MULTIPLIER).map_err(|_| Errno::EINVAL)?;
    Ok((idx, seq))
}

/// The realtime clock in seconds (the *_time fields).
pub fn now_secs() -> i64 {
    i64::try_from(platform::time::realtime_ns() / 1_000_000_000).unwrap_or(i64::MAX)
}

/// A ctl command without glibc's IPC_64 bit.
pub fn ctl_cmd(cmd: i32) -> i32 {
    cmd & !crate::abi::ipc::IPC_64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_find_make_and_go_stale() {
        let cred = Cred::root();
        let mut ids: Ids<u32> = Ids::new(4);
        let a = ids.lookup_or_make(7, &cred, IPC_CREAT | 0o600, |_, _| Ok(()), || Ok(1)).unwrap();
        let Found::Made(a) = a else { panic!("not made") };
        assert_eq!(ids.lookup_or_make(7, &cred, 0, |_, _| Ok(()), || Ok(2)), Ok(Found::Existing(a)));
        assert_eq!(ids.lookup_or_make(7, &cred, IPC_CREAT | IPC_EXCL, |_, _| Ok(()), || Ok(2)), Err(Errno::EEXIST));
        assert_eq!(ids.lookup_or_make(8, &cred, 0, |_, _| Ok(()), || Ok(2)), Err(Errno::ENOENT));
        assert!(ids.remove(a).is_some());
        assert_eq!(ids.get(a).err(), Some(Errno::EINVAL));
        let Ok(Found::Made(b)) = ids.lookup_or_make(IPC_PRIVATE, &cred, 0, |_, _| Ok(()), || Ok(3)) else { panic!() };
        assert_ne!(a, b);
        assert_eq!(a % SEQ_MULTIPLIER, b % SEQ_MULTIPLIER);
        assert_eq!(ids.get(a).err(), Some(Errno::EINVAL));
        assert!(ids.get(b).is_ok());
        for _ in 0..3 {
            ids.lookup_or_make(IPC_PRIVATE, &cred, 0, |_, _| Ok(()), || Ok(0)).unwrap();
        }
        assert_eq!(ids.lookup_or_make(IPC_PRIVATE, &cred, 0, |_, _| Ok(()), || Ok(0)), Err(Errno::ENOSPC));
    }

    #[test]
    fn permission_classes() {
        let mut user = Cred::root();
        user.euid = 1000;
        user.fsgid = 1000;
        user.cap_effective = 0;
        let p = Perm { key: 1, uid: 1000, gid: 5, cuid: 0, cgid: 0, mode: 0o640, seq: 0 };
        assert_eq!(p.check(&user, 0o600), Ok(()));
        let mut other = user.clone();
        other.euid = 1001;
        assert_eq!(p.check(&other, 0o400), Err(Errno::EACCES));
        other.groups = vec![5];
        assert_eq!(p.check(&other, 0o400), Ok(()));
        assert_eq!(p.check(&other, 0o200), Err(Errno::EACCES));
        assert_eq!(p.may_change(&other), Err(Errno::EPERM));
        assert_eq!(p.may_change(&user), Ok(()));
    }
}
