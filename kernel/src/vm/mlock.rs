//! Locked memory (mlock(2), mlock2(2), mlockall(2), MAP_LOCKED): which ranges of an address
//! space are locked, kept beside its mappings as Linux keeps VM_LOCKED and VM_LOCKONFAULT.
//!
//! vk never pages guest memory out, so a lock changes no residency later; what it does, as on
//! Linux: locking a range makes its pages resident at once (MLOCK_ONFAULT: as they are
//! touched), the locked bytes count in VmLck and smaps' `Locked`, unmapping a range unlocks
//! it, a fork child starts unlocked, and mlockall(MCL_FUTURE) locks later mappings.

use crate::kern::errno::Errno;
use crate::vm::entry::Backing;
use crate::vm::space::{Access, AddressSpace, FaultError, PAGE, PROT_WRITE};

/// How a range is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Its pages made resident when it was locked (VM_LOCKED).
    Populated,
    /// Its pages made resident as they are touched (VM_LOCKONFAULT).
    OnFault,
}

impl AddressSpace {
    /// Lock the mapped parts of `[start, end)` (None: unlock them). A populated lock makes
    /// the pages resident now: EAGAIN when memory runs out (the range stays locked, as
    /// Linux leaves it).
    pub fn set_lock(&mut self, start: u64, end: u64, how: Option<Lock>) -> Result<(), Errno> {
        let spans: Vec<(u64, u64)> =
            self.entries().filter(|e| e.start < end && e.end > start).map(|e| (e.start.max(start), e.end.min(end))).collect();
        for &(s, e) in &spans {
            self.locked.set(s, e, how);
        }
        if how == Some(Lock::Populated) {
            for (s, e) in spans {
                self.make_resident(s, e)?;
            }
        }
        Ok(())
    }

    /// Make the pages of `[start, end)` resident as a touch would: written in a private
    /// writable mapping (so copy-on-write is broken now), read otherwise; inaccessible
    /// pages and pages past a file's end stay as they are.
    pub fn make_resident(&self, start: u64, end: u64) -> Result<(), Errno> {
        let spans: Vec<(u64, u64, Access)> = self
            .entries()
            .filter(|e| e.start < end && e.end > start && e.prot != 0)
            .map(|e| {
                let private = matches!(e.backing, Backing::Anon | Backing::File { .. });
                let access = if private && e.prot & PROT_WRITE != 0 { Access::Write } else { Access::Read };
                (e.start.max(start), e.end.min(end), access)
            })
            .collect();
        for (s, e, access) in spans {
            let mut a = s;
            while a < e {
                match self.fault(a, access) {
                    Ok(_) | Err(FaultError::Io | FaultError::Protection | FaultError::NotMapped) => {}
                    Err(FaultError::OutOfMemory) => return Err(Errno::EAGAIN),
                }
                a += PAGE;
            }
        }
        Ok(())
    }

    /// Bytes locked (VmLck): the mapped parts of the locked ranges.
    pub fn locked_bytes(&self) -> u64 {
        if self.locked.is_empty() {
            return 0;
        }
        self.entries().map(|e| self.locked.covered(e.start, e.end)).sum()
    }

    /// Locked bytes of `[start, end)` (RLIMIT_MEMLOCK counts a range locked again once).
    pub fn locked_in(&self, start: u64, end: u64) -> u64 {
        self.locked.covered(start, end)
    }
}
