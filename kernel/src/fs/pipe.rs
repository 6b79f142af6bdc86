//! Pipes (pipe(7)): a buffer (64 KiB unless F_SETPIPE_SZ changes it) with read ends and write
//! ends. Reads sleep in "piperd" while it is empty and a writer exists (EOF once none does);
//! writes sleep in "pipewr" while it is full; a write with no reader fails with EPIPE (the
//! caller sends SIGPIPE). Writes of at most PIPE_BUF bytes are atomic.
//!
//! Named pipes (FIFOs, fs/fifo.rs) open ends of a pipe one at a time ([`open_end`]), with
//! fifo(7)'s rules: a reader waits in "fifor" for a writer, a writer in "fifow" for a reader
//! (counts of opens tell a waiter that a partner came, even if it left again).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use platform::sync::SpinLock;

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, POLLHUP, POLLIN, POLLOUT, POLLERR, S_IFIFO, VType, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

pub const PIPE_SIZE: usize = 64 * 1024;
pub const PIPE_BUF: usize = 4096;

/// /proc/sys/fs/pipe-max-size: the most an unprivileged F_SETPIPE_SZ may ask for.
pub static PIPE_MAX_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1024 * 1024);

/// /proc/sys/fs/pipe-user-pages-soft and -hard: pages of pipe buffers one user's pipes may
/// hold (0: no limit). Past the soft limit an unprivileged user's new pipe gets two pages;
/// past the hard limit pipe(2) fails (ENFILE); F_SETPIPE_SZ may not grow a pipe past either
/// (EPERM). Linux's defaults.
pub static PIPE_USER_PAGES_SOFT: AtomicU64 = AtomicU64::new(16384);
pub static PIPE_USER_PAGES_HARD: AtomicU64 = AtomicU64::new(0);

/// The pages a pipe has: its capacity over the page size (PIPE_DEF_BUFFERS is 16).
const PAGE: usize = 4096;
/// What a new pipe of a user past the soft limit gets (PIPE_MIN_DEF_BUFFERS).
const MIN_DEF_PAGES: usize = 2;

/// Pages of pipe buffers each real user's pipes hold (Linux's user_struct pipe_bufs): a leaf
/// lock.
static USER_PAGES: SpinLock<Option<HashMap<u32, u64>>> = SpinLock::new("pipe_user_pages", None);

/// Move `uid`'s count from `old` to `new` pages of one pipe; the user's new total.
fn account(uid: u32, old: usize, new: usize) -> u64 {
    let mut g = USER_PAGES.lock();
    let t = g.get_or_insert_with(HashMap::new);
    let c = t.entry(uid).or_insert(0);
    *c = (*c + new as u64).saturating_sub(old as u64);
    let total = *c;
    if total == 0 {
        t.remove(&uid);
    }
    total
}

fn over(total: u64, limit: &AtomicU64) -> bool {
    let l = limit.load(Ordering::Relaxed);
    l != 0 && total > l
}

/// Whom a pipe's buffer is charged to: the creator's real user, and whether it is held to
/// the limits (no CAP_SYS_RESOURCE or CAP_SYS_ADMIN).
#[derive(Debug, Clone, Copy)]
pub struct Charge {
    pub ruid: u32,
    pub unprivileged: bool,
}

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
    /// Bytes it holds at most (F_SETPIPE_SZ).
    capacity: usize,
    /// Opens of read ends and of write ends ever (a FIFO's open waits for these to move).
    r_counter: u64,
    w_counter: u64,
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
    /// The real user its pages are charged to (pipe(2)'s; none for a FIFO's or pipefs').
    charged: Option<u32>,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(uid) = self.charged {
            account(uid, self.st.get_mut().capacity / PAGE, 0);
        }
    }
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
    ends(new_pipe(uid, gid))
}

/// pipe(2)'s pipe, its buffer charged to `c` (alloc_pipe_info): 16 pages, 2 past the user's
/// soft limit, ENFILE past the hard one.
pub fn new_charged(uid: u32, gid: u32, c: Charge) -> Result<(VnodeRef, VnodeRef), Errno> {
    let mut pages = PIPE_SIZE / PAGE;
    let mut total = account(c.ruid, 0, pages);
    if c.unprivileged && over(total, &PIPE_USER_PAGES_SOFT) {
        total = account(c.ruid, pages, MIN_DEF_PAGES);
        pages = MIN_DEF_PAGES;
    }
    if c.unprivileged && over(total, &PIPE_USER_PAGES_HARD) {
        account(c.ruid, pages, 0);
        return Err(Errno::ENFILE);
    }
    let mut pipe = new_pipe(uid, gid);
    let p = Arc::get_mut(&mut pipe).expect("a new pipe has one reference");
    p.st.get_mut().capacity = pages * PAGE;
    p.charged = Some(c.ruid);
    Ok(ends(pipe))
}

/// The two ends of a new pipe.
fn ends(pipe: Arc<Pipe>) -> (VnodeRef, VnodeRef) {
    {
        let mut st = pipe.st.lock();
        st.readers = 1;
        st.writers = 1;
    }
    (Arc::new(PipeEnd { pipe: Arc::clone(&pipe), read: true, write: false }), Arc::new(PipeEnd { pipe, read: false, write: true }))
}

/// A new pipe with no ends yet (a FIFO's, whose ends [`open_end`] opens).
pub fn new_pipe(uid: u32, gid: u32) -> Arc<Pipe> {
    Arc::new(Pipe {
        st: SpinLock::new("pipe", State { capacity: PIPE_SIZE, ..State::default() }),
        ino: NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        uid,
        gid,
        charged: None,
    })
}

/// Open an end of a named pipe, as fifo(7) says: reading and writing (O_RDWR) at once;
/// reading waits for a writer unless `nonblock`; writing waits for a reader, or is ENXIO
/// with `nonblock` when there is none. A wait a signal interrupts is ERESTARTSYS.
pub fn open_end(pipe: &Arc<Pipe>, read: bool, write: bool, nonblock: bool) -> Result<PipeEnd, Errno> {
    // The other side as this open finds it (Linux's fifo_open, under the pipe's lock): open
    // now, or the count of its opens to wait past.
    let (partner_open, seen) = {
        let mut st = pipe.st.lock();
        if write && !read && nonblock && st.readers == 0 {
            return Err(Errno::ENXIO);
        }
        if read {
            st.readers += 1;
            st.r_counter += 1;
        }
        if write {
            st.writers += 1;
            st.w_counter += 1;
        }
        st.in_gen += 1;
        st.out_gen += 1;
        if read { (st.writers > 0, st.w_counter) } else { (st.readers > 0, st.r_counter) }
    };
    // The end exists from here: dropping it on failure undoes the counts.
    let end = PipeEnd { pipe: Arc::clone(pipe), read, write };
    wakeup(pipe.open_chan());
    wakeup(pipe.rchan());
    wakeup(pipe.wchan());
    poll_wakeup();
    if read && write || nonblock || partner_open {
        return Ok(end);
    }
    // Wait for the other side: an open of it since ours counts even if it closed again (the
    // count is the one taken with ours: read later, it could already include a partner that
    // opened, saw this end and closed again, and the wait would never end).
    let wmesg = if read { "fifor" } else { "fifow" };
    loop {
        let g = sleepq_lock(pipe.open_chan());
        {
            let st = pipe.st.lock();
            let (partners, counter) = if read { (st.writers, st.w_counter) } else { (st.readers, st.r_counter) };
            if partners > 0 || counter != seen {
                return Ok(end);
            }
        }
        if interrupted(tsleep_locked(g, wmesg, SleepOpts { interruptible: true, timeout: None })) {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

impl Pipe {
    fn rchan(&self) -> u64 {
        wchan_of(self)
    }
    fn wchan(&self) -> u64 {
        wchan_of(self) + 1
    }
    fn open_chan(&self) -> u64 {
        wchan_of(self) + 2
    }

    /// Its capacity in bytes (F_GETPIPE_SZ).
    pub fn capacity(&self) -> usize {
        self.st.lock().capacity
    }

    /// F_SETPIPE_SZ: at least `size` bytes, rounded up to a power-of-two number of pages
    /// (EINVAL past 2^31); more than /proc/sys/fs/pipe-max-size needs `privileged`
    /// (CAP_SYS_RESOURCE, EPERM); less than the data it holds is EBUSY. Returns the size.
    pub fn set_capacity(&self, size: u64, privileged: bool, unprivileged_user: bool) -> Result<usize, Errno> {
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let pages = usize::try_from(size.div_ceil(4096).max(1)).map_err(|_| Errno::EINVAL)?;
        let bytes = pages.next_power_of_two() * 4096;
        let mut st = self.st.lock();
        if bytes > st.capacity && bytes > PIPE_MAX_SIZE.load(std::sync::atomic::Ordering::Relaxed) && !privileged {
            return Err(Errno::EPERM);
        }
        if bytes < st.data.len() {
            return Err(Errno::EBUSY);
        }
        // The user's limits (pipe_set_size): growing past either is EPERM.
        if let Some(uid) = self.charged {
            let (old, new) = (st.capacity / PAGE, bytes / PAGE);
            let total = account(uid, old, new);
            if new > old && unprivileged_user && (over(total, &PIPE_USER_PAGES_SOFT) || over(total, &PIPE_USER_PAGES_HARD)) {
                account(uid, new, old);
                return Err(Errno::EPERM);
            }
        }
        st.capacity = bytes;
        st.out_gen += 1;
        drop(st);
        wakeup(self.wchan());
        poll_wakeup();
        Ok(bytes)
    }

    /// tee(2)'s read: a copy of up to `max` bytes at the front, left in the pipe. Waits while
    /// it is empty and has a writer (EAGAIN with `nonblock`, ERESTARTSYS for a signal); empty
    /// with no writer is the end (an empty result).
    pub fn peek(&self, max: usize, nonblock: bool) -> Result<Vec<u8>, Errno> {
        loop {
            let g = sleepq_lock(self.rchan());
            {
                let st = self.st.lock();
                if !st.data.is_empty() {
                    return Ok(st.data.iter().take(max).copied().collect());
                }
                if st.writers == 0 {
                    return Ok(Vec::new());
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
}

impl PipeEnd {
    /// The pipe it is an end of.
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
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
                    // Sync, as Linux's pipe_read: the reader mostly reads on or writes back.
                    crate::kern::sched::wake_sync(|| wakeup(p.wchan()));
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
                let room = st.capacity.saturating_sub(st.data.len());
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
                    // Sync, as Linux's pipe_write: the writer mostly reads back, writes on into a
                    // full pipe or exits (a command's output read by the shell).
                    crate::kern::sched::wake_sync(|| wakeup(p.rchan()));
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
            // Writable when a page's worth is free: Linux's pipe is a ring of page buffers and
            // polls writable while a buffer is free, so a full pipe read in part stays full.
            let room = st.capacity.saturating_sub(st.data.len());
            r |= if st.readers == 0 { POLLOUT | POLLERR } else if room >= PIPE_BUF.min(st.capacity) { POLLOUT } else { 0 };
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

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
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
