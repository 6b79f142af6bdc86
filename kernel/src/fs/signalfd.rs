//! signalfd (signalfd(2)): a file that reads the caller's pending signals. A read dequeues
//! signals of the file's mask — the reading thread's own queue first, then its process's, as
//! sigtimedwait(2) does — and returns one `struct signalfd_siginfo` per signal, as many as
//! fit (EINVAL for a buffer shorter than one). It sleeps while none is pending; the file is
//! readable while one is. Readiness, like Linux's, is that of whichever thread asks.
//!
//! Signals are queued by `kern::signal`, which wakes the poll channel when it queues one, so
//! readers and pollers sleep there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use zerocopy::IntoBytes;

use crate::abi::event::SignalfdSiginfo;
use crate::abi::signal::{SiChld, SiFault, SiKill, SiRt};
use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLIN, Vnode, VnodeRef, poll_chan};
use crate::kern::errno::Errno;
use crate::kern::signal::{self, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGTRAP, SigInfo, UNBLOCKABLE};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::{UThread, WakeReason};

/// `si_code` of sigqueue(3) (SI_QUEUE) and of a POSIX timer (SI_TIMER).
const SI_QUEUE: i32 = -1;
const SI_TIMER: i32 = -2;

/// A signalfd: the signals it reads.
#[derive(Debug)]
pub struct SignalFd {
    mask: AtomicU64,
    ino: u64,
    uid: u32,
    gid: u32,
}

/// A new signalfd for `mask` (SIGKILL and SIGSTOP are dropped from it, as Linux does).
pub fn new(mask: u64, uid: u32, gid: u32) -> VnodeRef {
    Arc::new(SignalFd { mask: AtomicU64::new(mask & !UNBLOCKABLE), ino: anon::new_ino(), uid, gid })
}

impl SignalFd {
    /// signalfd4 on an existing descriptor: a new mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::Relaxed);
        crate::fs::vfs::poll_wakeup();
    }

    pub fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed)
    }
}

/// The calling guest thread.
fn current() -> Option<UThread> {
    crate::kern::sched::curthread().and_then(UThread::new)
}

/// Whether `td` (or its process) has a signal of `mask` pending.
fn has_pending(td: &UThread, mask: u64) -> bool {
    let Some(p) = td.uproc() else { return false };
    let ps = p.user().sig.lock().pending.set;
    let ts = td.user().sigstate.sig.lock().pending.set;
    (ps | ts) & mask != 0
}

/// A queued siginfo as signalfd reports it (fs/signalfd.c's signalfd_copyinfo): the fields
/// of the union member the signal and its code use.
pub fn to_signalfd(info: &SigInfo) -> SignalfdSiginfo {
    let mut s = SignalfdSiginfo {
        ssi_signo: info.si_signo.cast_unsigned(),
        ssi_errno: info.si_errno,
        ssi_code: info.si_code,
        ..SignalfdSiginfo::default()
    };
    let sig = info.si_signo;
    if sig == SIGCHLD && info.si_code > 0 {
        let c: SiChld = info.fields();
        s.ssi_pid = c._pid.cast_unsigned();
        s.ssi_uid = c._uid;
        s.ssi_status = c._status;
        s.ssi_utime = c._utime.cast_unsigned();
        s.ssi_stime = c._stime.cast_unsigned();
    } else if matches!(sig, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP) && info.si_code > 0 {
        let f: SiFault = info.fields();
        s.ssi_addr = f._addr;
    } else if info.si_code == SI_QUEUE || info.si_code == SI_TIMER || sig >= signal::SIGRTMIN {
        let r: SiRt = info.fields();
        s.ssi_pid = r._pid.cast_unsigned();
        s.ssi_uid = r._uid;
        s.ssi_ptr = r._sigval;
        // sival_int is the low half of the sigval word.
        s.ssi_int = i32::from_ne_bytes(r._sigval.to_le_bytes()[..4].try_into().unwrap_or([0; 4]));
    } else {
        let k: SiKill = info.fields();
        s.ssi_pid = k._pid.cast_unsigned();
        s.ssi_uid = k._uid;
    }
    s
}

impl Vnode for SignalFd {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, self.uid, self.gid))
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "signalfd")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        const ONE: usize = size_of::<SignalfdSiginfo>();
        if buf.len() < ONE {
            return Err(Errno::EINVAL);
        }
        let td = current().ok_or(Errno::EINVAL)?;
        let p = td.uproc().ok_or(Errno::ESRCH)?;
        loop {
            let mask = self.mask();
            let mut n = 0;
            while n + ONE <= buf.len() {
                let Some(info) = signal::dequeue(&td, &p, mask) else { break };
                buf[n..n + ONE].copy_from_slice(to_signalfd(&info).as_bytes());
                n += ONE;
            }
            if n > 0 {
                return Ok(n);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let g = sleepq_lock(poll_chan());
            if has_pending(&td, mask) {
                continue;
            }
            if tsleep_locked(g, "signalfd", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted
                && !has_pending(&td, self.mask())
                && signal::pending(td.arc())
            {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    fn poll(&self) -> u16 {
        match current() {
            Some(td) if has_pending(&td, self.mask()) => POLLIN,
            _ => 0,
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
