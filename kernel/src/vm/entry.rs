//! Map entries — what a guest mapped: a range, its protection, its name — and what backs
//! them: private anonymous memory, a file (privately, or its own pages when shared), or a
//! shared anonymous object whose pages every address space mapping it shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use platform::physmem::{self, PhysMem, pgflags};
use platform::sync::SpinLock;

use crate::fs::vfs::VnodeRef;
use crate::vm::space::{PROT_EXEC, PROT_READ, PROT_WRITE};

/// Pages of a MAP_SHARED|MAP_ANONYMOUS mapping (and, later, System V shared memory): shared by
/// every address space that maps it, across fork.
#[derive(Debug)]
pub struct SharedObject {
    pm: Arc<PhysMem>,
    pages: SpinLock<BTreeMap<u64, u64>>,
}

impl SharedObject {
    /// An empty object in the machine's memory.
    pub fn new() -> Arc<SharedObject> {
        SharedObject::with_physmem(physmem::shared().expect("physical memory"))
    }

    /// An empty object whose pages come from `pm`.
    pub fn with_physmem(pm: Arc<PhysMem>) -> Arc<SharedObject> {
        Arc::new(SharedObject { pm, pages: SpinLock::new("shared_object", BTreeMap::new()) })
    }

    /// Pages allocated so far (System V shm's SHM_INFO shm_rss).
    pub fn resident_pages(&self) -> u64 {
        self.pages.lock().len() as u64
    }

    /// Whether the page at page index `idx` has been allocated (mincore(2)).
    pub fn has_page(&self, idx: u64) -> bool {
        self.pages.lock().contains_key(&idx)
    }

    /// The page at page index `idx`, allocated (zeroed) on first use; a new reference.
    pub(super) fn page(&self, idx: u64, owner: u64) -> Option<u64> {
        let pm = &self.pm;
        let mut pages = self.pages.lock();
        if let Some(&pa) = pages.get(&idx) {
            pm.page_ref(pa);
            return Some(pa);
        }
        let pa = pm.alloc_zeroed(owner, pgflags::ANON)?;
        pages.insert(idx, pa);
        pm.page_ref(pa);
        Some(pa)
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        for (_, pa) in std::mem::take(self.pages.get_mut()) {
            self.pm.page_unref(pa);
        }
    }
}

/// What a mapping's pages come from.
#[derive(Debug, Clone)]
pub enum Backing {
    /// Zero-filled private memory.
    Anon,
    /// A file, privately: `file_len` bytes of the file from `offset`, zeros after.
    File { vnode: VnodeRef, offset: u64, file_len: u64 },
    /// Shared anonymous memory.
    Shared { object: Arc<SharedObject>, offset: u64 },
    /// A file, shared: the file's own pages ([`crate::fs::vfs::Vnode::get_page`]), so stores
    /// are the file's data at once. `may_write`: the file was open for writing, so mprotect
    /// may make it writable (Linux's VM_MAYWRITE; without it, EACCES).
    SharedFile { vnode: VnodeRef, offset: u64, may_write: bool },
}

/// A mapping.
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub backing: Backing,
    /// What /proc/PID/maps says it is (a path — bytes, as file names are —, `[heap]`,
    /// `[stack]`, or empty).
    pub name: Vec<u8>,
}

impl MapEntry {
    /// Shared (`s` in /proc/PID/maps) rather than private.
    pub fn shared(&self) -> bool {
        matches!(self.backing, Backing::Shared { .. } | Backing::SharedFile { .. })
    }

    /// Its mode as /proc/PID/maps writes it: `r-xp`, `rw-s`.
    pub fn perms(&self) -> String {
        let bit = |b: u32, c: char| if self.prot & b != 0 { c } else { '-' };
        [bit(PROT_READ, 'r'), bit(PROT_WRITE, 'w'), bit(PROT_EXEC, 'x'), if self.shared() { 's' } else { 'p' }]
            .iter()
            .collect()
    }

    /// Where in its backing object it starts (0 for private anonymous memory).
    pub fn offset(&self) -> u64 {
        match &self.backing {
            Backing::Anon => 0,
            Backing::File { offset, .. } | Backing::Shared { offset, .. } | Backing::SharedFile { offset, .. } => {
                *offset
            }
        }
    }

    /// The part of this entry from `at` on, with its backing offset moved along.
    pub(super) fn split_off(&mut self, at: u64) -> MapEntry {
        let mut tail = self.clone();
        let delta = at - self.start;
        tail.start = at;
        match &mut tail.backing {
            Backing::Anon => {}
            Backing::File { offset, file_len, .. } => {
                *offset += delta;
                *file_len = file_len.saturating_sub(delta);
            }
            Backing::Shared { offset, .. } | Backing::SharedFile { offset, .. } => *offset += delta,
        }
        self.end = at;
        tail
    }
}
