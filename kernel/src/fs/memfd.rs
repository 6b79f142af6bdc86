//! memfd (memfd_create(2)): an anonymous tmpfs file. Each is a file of one hidden tmpfs
//! instance (Linux's shm_mnt), unlinked as soon as it is made, wrapped in [`MemFd`], which
//! carries its name (`/proc/PID/fd/N` → `/memfd:NAME (deleted)`) and its seals.
//!
//! Seals (fcntl(2) F_ADD_SEALS, F_GET_SEALS): F_SEAL_SEAL (no more seals), F_SEAL_SHRINK and
//! F_SEAL_GROW (truncate and writes past the end refused, EPERM), F_SEAL_WRITE and
//! F_SEAL_FUTURE_WRITE (writes and truncation refused, EPERM). Not done: F_SEAL_WRITE's EBUSY
//! while a writable shared mapping exists, and refusing new writable shared mappings of a
//! write-sealed file (mmap does not ask the file).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::abi::event::Seals;
use crate::fs::mount::{AtimePolicy, FsRef};
use crate::fs::vfs::{Attr, SetAttr, Vnode, VnodeRef};
use crate::kern::errno::Errno;

/// Longest memfd name: NAME_MAX less the `memfd:` prefix.
pub const NAME_MAX: usize = 249;

/// A memfd: the tmpfs file, its name and its seals.
#[derive(Debug)]
pub struct MemFd {
    file: VnodeRef,
    name: Vec<u8>,
    seals: AtomicU32,
}

/// The hidden tmpfs memfds live on.
fn shm_root() -> &'static VnodeRef {
    static ROOT: OnceLock<VnodeRef> = OnceLock::new();
    ROOT.get_or_init(crate::fs::tmpfs::new)
}

/// A new, empty memfd named `name` (mode 0777, or 0666 with no execute: MFD_NOEXEC_SEAL),
/// owned by `uid`/`gid`; without `sealing` it starts sealed against more seals.
pub fn new(name: &[u8], mode: u32, uid: u32, gid: u32, sealing: bool) -> Result<VnodeRef, Errno> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = format!("memfd{}", NEXT.fetch_add(1, Ordering::Relaxed)).into_bytes();
    let root = shm_root();
    let file = root.create(&n, mode, uid, gid)?;
    root.unlink(&n)?;
    let seals = if sealing { Seals::empty() } else { Seals::SEAL };
    Ok(Arc::new(MemFd { file, name: name.to_vec(), seals: AtomicU32::new(seals.bits()) }))
}

impl MemFd {
    pub fn seals(&self) -> Seals {
        Seals::from_bits_truncate(self.seals.load(Ordering::Relaxed))
    }

    /// F_ADD_SEALS: EPERM once F_SEAL_SEAL is set.
    pub fn add_seals(&self, add: Seals) -> Result<(), Errno> {
        let mut cur = self.seals.load(Ordering::Relaxed);
        loop {
            if Seals::from_bits_truncate(cur).contains(Seals::SEAL) {
                return Err(Errno::EPERM);
            }
            match self.seals.compare_exchange(cur, cur | add.bits(), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// What `/proc/PID/fd/N` shows.
    pub fn link_text(&self) -> Vec<u8> {
        let mut t = b"/memfd:".to_vec();
        t.extend_from_slice(&self.name);
        t.extend_from_slice(b" (deleted)");
        t
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(self.file.attr()?.size)
    }
}

impl Vnode for MemFd {
    fn attr(&self) -> Result<Attr, Errno> {
        // Unlinked, but counted as one link as Linux shows a memfd.
        Ok(Attr { nlink: 1, ..self.file.attr()? })
    }

    fn fs(&self) -> FsRef {
        self.file.fs()
    }

    fn ino(&self) -> u64 {
        self.file.ino()
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.file.read_at(off, buf)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let s = self.seals();
        if s.intersects(Seals::WRITE | Seals::FUTURE_WRITE) {
            return Err(Errno::EPERM);
        }
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if s.contains(Seals::GROW) && end > self.size()? {
            return Err(Errno::EPERM);
        }
        self.file.write_at(off, buf)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let s = self.seals();
        let cur = self.size()?;
        if (s.contains(Seals::SHRINK) && size < cur)
            || (s.contains(Seals::GROW) && size > cur)
            || (s.intersects(Seals::WRITE | Seals::FUTURE_WRITE) && size != cur)
        {
            return Err(Errno::EPERM);
        }
        self.file.truncate(size)
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.file.setattr(a)
    }

    fn shared_pages(&self) -> bool {
        self.file.shared_pages()
    }

    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        self.file.get_page(idx)
    }

    fn accessed(&self, policy: AtimePolicy) {
        self.file.accessed(policy);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
