//! System V shared memory segments (shmget(2), shmat(2), shmdt(2), shmctl(2)).
//!
//! A segment's pages are a [`SharedObject`], the object MAP_SHARED|MAP_ANONYMOUS mappings
//! use: shmat maps it (`Backing::Shared` at offset 0), fork shares it, and its pages live as
//! long as a mapping or the registry holds it. The attach count is the mappings that hold
//! the object (its `Arc` count less the registry's own), which is what Linux counts too
//! (one per VMA, so a split attachment counts twice, and fork adds the child's). IPC_RMID
//! of an attached segment marks it SHM_DEST with key IPC_PRIVATE; it leaves the registry
//! when a later look finds it detached (every call sweeps first).

use std::sync::Arc;

use platform::sync::SpinLock;

use crate::abi::ipc::{SHM_DEST, ShmidDs};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::sysv::{Found, Ids, Perm, now_secs};
use crate::vm::entry::SharedObject;

/// SHMMNI: most segments.
pub const SHMMNI: usize = 4096;
/// SHMMAX and SHMALL (Linux's defaults: ULONG_MAX - 2^24 bytes / pages).
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
pub const SHMALL: u64 = u64::MAX - (1 << 24);
/// SHMMIN: the smallest segment.
pub const SHMMIN: u64 = 1;

/// One segment.
#[derive(Debug)]
pub struct Segment {
    pub object: Arc<SharedObject>,
    pub size: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
}

impl Segment {
    /// Mappings holding the segment.
    pub fn nattch(&self) -> u64 {
        (Arc::strong_count(&self.object) as u64).saturating_sub(1)
    }

    pub fn stat(&self, perm: &Perm) -> ShmidDs {
        ShmidDs {
            shm_perm: perm.to_abi(),
            shm_segsz: self.size,
            shm_atime: self.atime,
            shm_dtime: self.dtime,
            shm_ctime: self.ctime,
            shm_cpid: self.cpid,
            shm_lpid: self.lpid,
            shm_nattch: self.nattch(),
            ..ShmidDs::default()
        }
    }
}

static SHM: SpinLock<Ids<Segment>> = SpinLock::new("sysv_shm", Ids::new(SHMMNI));

/// Run `f` on the registry, after letting detached segments marked for removal go.
pub fn with<R>(f: impl FnOnce(&mut Ids<Segment>) -> R) -> R {
    let mut g = SHM.lock();
    g.retain(|p, s| p.mode & SHM_DEST == 0 || s.nattch() > 0);
    f(&mut g)
}

/// shmget(2).
pub fn get(key: i32, size: u64, flags: u32, cred: &Cred, pid: i32) -> Result<i32, Errno> {
    with(|ids| {
        let made = ids.lookup_or_make(
            key,
            cred,
            flags,
            |_, seg| if seg.size < size { Err(Errno::EINVAL) } else { Ok(()) },
            || {
                if !(SHMMIN..=SHMMAX).contains(&size) {
                    return Err(Errno::EINVAL);
                }
                Ok(Segment {
                    object: SharedObject::new(),
                    size,
                    atime: 0,
                    dtime: 0,
                    ctime: now_secs(),
                    cpid: pid,
                    lpid: 0,
                })
            },
        )?;
        Ok(match made {
            Found::Existing(id) | Found::Made(id) => id,
        })
    })
}

/// Total pages of all segments (SHM_INFO's shm_tot).
pub fn total_pages(ids: &mut Ids<Segment>) -> u64 {
    ids.iter_mut().map(|(_, _, s)| s.size.div_ceil(4096)).sum()
}
