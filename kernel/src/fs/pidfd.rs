//! Process descriptors (pidfd_open(2)): an anonymous file that names one process — the
//! process itself, not its number, so a pid used again by another process is not it. It is
//! readable (POLLIN) once the process has exited, and hung up (POLLHUP) once it has been
//! reaped, as Linux's pidfd_poll; reads and writes are EINVAL.
//!
//! A `/proc/PID` directory names a process too (pidfd_send_signal(2) takes one): see
//! [`target`].

use std::sync::{Arc, OnceLock};

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLHUP, POLLIN, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::proc::{self, Proc, UProc};

/// A process descriptor's vnode.
#[derive(Debug)]
pub struct PidFd {
    proc: Arc<Proc>,
    ino: u64,
}

/// A new process descriptor for `p`.
pub fn new(p: Arc<Proc>) -> VnodeRef {
    Arc::new(PidFd { proc: p, ino: anon::new_ino() })
}

impl PidFd {
    /// Its process's pid.
    pub fn pid(&self) -> i32 {
        self.proc.pid
    }

    /// The process, while it has not been reaped (a zombie is still there).
    pub fn live(&self) -> Option<UProc> {
        proc::find(self.proc.pid).filter(|p| Arc::ptr_eq(p, &self.proc)).and_then(UProc::new)
    }
}

/// The process a descriptor's vnode names: a process descriptor's, while not reaped
/// (ESRCH), or a `/proc/PID` directory's (ESRCH when no such process); anything else is
/// EBADF.
pub fn target(v: &VnodeRef) -> Result<UProc, Errno> {
    if let Some(p) = v.as_any().and_then(|a| a.downcast_ref::<PidFd>()) {
        return p.live().ok_or(Errno::ESRCH);
    }
    match crate::fs::procfs::dir_pid(v) {
        Some(pid) => proc::find_user(pid).ok_or(Errno::ESRCH),
        None => Err(Errno::EBADF),
    }
}

impl Vnode for PidFd {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, 0, 0))
    }

    fn vtype(&self) -> VType {
        VType::Anon
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "[pidfd]")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn poll(&self) -> u16 {
        match self.live() {
            None => POLLIN | POLLHUP,
            Some(p) if p.is_zombie() => POLLIN,
            Some(_) => 0,
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
