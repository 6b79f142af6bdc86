//! eventfd (eventfd(2)): a 64-bit counter as a file. A write adds to it (sleeping while the
//! sum would pass 0xffff_ffff_ffff_fffe), a read takes it all and resets it to 0 — or, with
//! EFD_SEMAPHORE, takes 1 — sleeping while it is 0. Readable while the counter is not 0,
//! writable while it is below the maximum. Reads and writes move exactly 8 bytes (EINVAL for
//! a shorter buffer).

use std::sync::{Arc, OnceLock};

use platform::sync::SpinLock;

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLIN, POLLOUT, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// The largest value the counter holds.
pub const MAX: u64 = u64::MAX - 1;

#[derive(Debug, Default)]
struct State {
    count: u64,
    /// Wake-ups sent to readers and to writers (edge-triggered epoll).
    in_gen: u64,
    out_gen: u64,
}

/// An eventfd's counter.
#[derive(Debug)]
pub struct EventFd {
    st: SpinLock<State>,
    semaphore: bool,
    ino: u64,
    uid: u32,
    gid: u32,
}

/// A new eventfd holding `initval`.
pub fn new(initval: u32, semaphore: bool, uid: u32, gid: u32) -> VnodeRef {
    let st = State { count: u64::from(initval), ..State::default() };
    Arc::new(EventFd { st: SpinLock::new("eventfd", st), semaphore, ino: anon::new_ino(), uid, gid })
}

impl EventFd {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    /// Add `v` to the counter (from the kernel, as Linux's eventfd_signal: saturating, never
    /// sleeping).
    pub fn signal(&self, v: u64) {
        {
            let mut st = self.st.lock();
            st.count = st.count.saturating_add(v).min(MAX);
            st.in_gen += 1;
        }
        wakeup(self.chan());
        poll_wakeup();
    }
}

fn interrupted(r: WakeReason) -> Result<(), Errno> {
    if r == WakeReason::Interrupted { Err(Errno::ERESTARTSYS) } else { Ok(()) }
}

impl Vnode for EventFd {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, self.uid, self.gid))
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "eventfd")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_nb(off, buf, false)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let Some(out) = buf.get_mut(..8) else { return Err(Errno::EINVAL) };
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                if st.count > 0 {
                    let v = if self.semaphore { 1 } else { st.count };
                    st.count -= v;
                    st.out_gen += 1;
                    drop(st);
                    drop(g);
                    out.copy_from_slice(&v.to_ne_bytes());
                    wakeup(self.chan());
                    poll_wakeup();
                    return Ok(8);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            interrupted(tsleep_locked(g, "eventfd", SleepOpts { interruptible: true, timeout: None }))?;
        }
    }

    fn write_nb(&self, _off: u64, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let bytes: [u8; 8] = buf.get(..8).and_then(|b| b.try_into().ok()).ok_or(Errno::EINVAL)?;
        let v = u64::from_ne_bytes(bytes);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                if MAX - st.count >= v {
                    st.count += v;
                    st.in_gen += 1;
                    drop(st);
                    drop(g);
                    wakeup(self.chan());
                    poll_wakeup();
                    return Ok(8);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            interrupted(tsleep_locked(g, "eventfd", SleepOpts { interruptible: true, timeout: None }))?;
        }
    }

    fn poll(&self) -> u16 {
        let st = self.st.lock();
        let mut r = 0;
        if st.count > 0 {
            r |= POLLIN;
        }
        if st.count < MAX {
            r |= POLLOUT;
        }
        r
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_gen(&self) -> (u64, u64) {
        let st = self.st.lock();
        (st.in_gen, st.out_gen)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl EventFd {
    /// The counter now (/proc/PID/fdinfo's `eventfd-count`).
    pub fn count(&self) -> u64 {
        self.st.lock().count
    }
}
