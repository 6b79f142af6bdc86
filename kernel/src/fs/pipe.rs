//! Pipes (pipe(7)): a 64 KiB buffer with a read end and a write end. Reads sleep in "piperd"
//! while it is empty and a writer exists (EOF once none does); writes sleep in "pipewr" while
//! it is full; a write with no reader fails with EPIPE (the caller sends SIGPIPE). Writes of
//! at most PIPE_BUF bytes are atomic.

use std::collections::VecDeque;
use std::sync::Arc;

use platform::sync::SpinLock;

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, POLLHUP, POLLIN, POLLOUT, POLLERR, S_IFIFO, VType, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

pub const PIPE_SIZE: usize = 64 * 1024;
pub const PIPE_BUF: usize = 4096;

#[derive(Debug, Default)]
struct State {
    data: VecDeque<u8>,
    /// Open read ends and write ends.
    readers: usize,
    writers: usize,
    /// Wake-ups sent to readers (data, a writer gone) and to writers (room, a reader gone):
    /// edge-triggered epoll's counts ([`Vnode::poll_gen`]).
    in_gen: u64,
    out_gen: u64,
}

/// A pipe's buffer, shared by its two ends.
#[derive(Debug)]
pub struct Pipe {
    st: SpinLock<State>,
    ino: u64,
    /// Owner and group: the creator's fsuid and fsgid (reopening through /proc/PID/fd checks
    /// them, mode 0600, as Linux's pipe inodes).
    uid: u32,
    gid: u32,
}

/// One end of a pipe (the vnode of an open pipe descriptor).
#[derive(Debug)]
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
}

static NEXT_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A new pipe: (read end, write end).
pub fn new(uid: u32, gid: u32) -> (VnodeRef, VnodeRef) {
    let pipe = Arc::new(Pipe {
        st: SpinLock::new("pipe", State { data: VecDeque::new(), readers: 1, writers: 1, ..State::default() }),
        ino: NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        uid,
        gid,
    });
    (Arc::new(PipeEnd { pipe: Arc::clone(&pipe), read: true, write: false }), Arc::new(PipeEnd { pipe, read: false, write: true }))
}

impl Pipe {
    fn rchan(&self) -> u64 {
        wchan_of(self)
    }
    fn wchan(&self) -> u64 {
        wchan_of(self) + 1
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.st.lock();
            st.writers -= usize::from(self.write);
            st.readers -= usize::from(self.read);
            st.in_gen += 1;
            st.out_gen += 1;
        }
        wakeup(self.pipe.rchan());
        wakeup(self.pipe.wchan());
        poll_wakeup();
    }
}

fn interrupted(r: WakeReason) -> bool {
    r == WakeReason::Interrupted
}

impl Vnode for PipeEnd {
    fn attr(&self) -> Result<Attr, Errno> {
        let size = self.pipe.st.lock().data.len() as u64;
        let (uid, gid) = (self.pipe.uid, self.pipe.gid);
        Ok(Attr { dev: 8, ino: self.pipe.ino, mode: S_IFIFO | 0o600, nlink: 1, uid, gid, size, blksize: 4096, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Fifo
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_nb(off, buf, false)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.read {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let p = &self.pipe;
        loop {
            let g = sleepq_lock(p.rchan());
            {
                let mut st = p.st.lock();
                if !st.data.is_empty() {
                    let n = buf.len().min(st.data.len());
                    for (i, b) in st.data.drain(..n).enumerate() {
                        buf[i] = b;
                    }
                    st.out_gen += 1;
                    drop(st);
                    drop(g);
                    wakeup(p.wchan());
                    poll_wakeup();
                    return Ok(n);
                }
                if st.writers == 0 {
                    return Ok(0);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if interrupted(tsleep_locked(g, "piperd", SleepOpts { interruptible: true, timeout: None })) {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    fn write_nb(&self, _off: u64, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        let p = &self.pipe;
        let mut done = 0;
        while done < buf.len() {
            let g = sleepq_lock(p.wchan());
            {
                let mut st = p.st.lock();
                if st.readers == 0 {
                    return if done > 0 { Ok(done) } else { Err(Errno::EPIPE) };
                }
                let room = PIPE_SIZE - st.data.len();
                let left = buf.len() - done;
                // Small writes go in whole or not at all (PIPE_BUF atomicity).
                let fits = if left <= PIPE_BUF { room >= left } else { room > 0 };
                if fits {
                    let n = left.min(room);
                    st.data.extend(&buf[done..done + n]);
                    st.in_gen += 1;
                    done += n;
                    drop(st);
                    drop(g);
                    wakeup(p.rchan());
                    poll_wakeup();
                    continue;
                }
            }
            if nonblock {
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            if interrupted(tsleep_locked(g, "pipewr", SleepOpts { interruptible: true, timeout: None })) {
                return if done > 0 { Ok(done) } else { Err(Errno::ERESTARTSYS) };
            }
        }
        Ok(done)
    }

    fn poll(&self) -> u16 {
        let st = self.pipe.st.lock();
        let mut r = 0;
        if self.write {
            r |= if st.readers == 0 { POLLOUT | POLLERR } else if st.data.len() < PIPE_SIZE { POLLOUT } else { 0 };
        }
        if self.read {
            if !st.data.is_empty() {
                r |= POLLIN;
            }
            if st.writers == 0 {
                r |= POLLHUP;
            }
        }
        r
    }

    fn poll_gen(&self) -> (u64, u64) {
        let st = self.pipe.st.lock();
        (st.in_gen, st.out_gen)
    }

    fn open_fifo(&self, read: bool, write: bool) -> Option<VnodeRef> {
        let mut st = self.pipe.st.lock();
        st.readers += usize::from(read);
        st.writers += usize::from(write);
        Some(Arc::new(PipeEnd { pipe: Arc::clone(&self.pipe), read, write }))
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fs(&self) -> FsRef {
        pipefs()
    }

    fn ino(&self) -> u64 {
        self.pipe.ino
    }
}

/// pipefs: the file system every pipe belongs to, mounted nowhere (Linux's pipefs).
#[derive(Debug)]
pub struct PipeFs {
    id: u64,
}

impl FileSystem for PipeFs {
    fn type_name(&self) -> &'static str {
        "pipefs"
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// The pipefs instance.
pub fn pipefs() -> FsRef {
    static PIPEFS: std::sync::OnceLock<FsRef> = std::sync::OnceLock::new();
    Arc::clone(PIPEFS.get_or_init(|| Arc::new(PipeFs { id: new_fs_id() })))
}
