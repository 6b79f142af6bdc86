//! POSIX message queues (mq_overview(7)): the queues by name, and a queue as the file its
//! descriptors are open on.
//!
//! A queue keeps up to `maxmsg` messages of at most `msgsize` bytes, highest priority first
//! and in order of arrival within one priority. A send sleeps while the queue is full and a
//! receive while it is empty (interruptible, with an absolute CLOCK_REALTIME deadline, or
//! EAGAIN for a non-blocking descriptor). One process may register for notification: when a
//! message arrives at an empty queue and no receiver is waiting, it gets its signal (SI_MESGQ)
//! once and the registration ends. Names live in one flat namespace (Linux's mqueue file
//! system root, mode 1777): a queue goes from it at mq_unlink and lives on while descriptors
//! are open. There is no mqueue file system to mount: the names are only reachable through
//! mq_open and mq_unlink.
//!
//! Lock order: `mq_names` and a queue's `mqueue` are leaves (never held together); waiters
//! sleep on the queue's channel.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use platform::sync::SpinLock;

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLIN, POLLOUT, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// Priorities are below this (MQ_PRIO_MAX).
pub const MQ_PRIO_MAX: u32 = 32768;
/// /proc/sys/fs/mqueue's defaults: the largest queue and message a process without
/// CAP_SYS_RESOURCE may ask for, and what a queue gets when mq_open is given no attributes.
pub const MSG_MAX: u64 = 10;
pub const MSGSIZE_MAX: u64 = 8192;
/// The hard limits (HARD_MSGMAX, HARD_MSGSIZEMAX), even with CAP_SYS_RESOURCE.
pub const HARD_MSG_MAX: u64 = 65536;
pub const HARD_MSGSIZE_MAX: u64 = 16 << 20;
/// si_code of a queue's notification signal.
pub const SI_MESGQ: i32 = linux_raw_sys::general::SI_MESGQ;

/// A notification registration (mq_notify(3)).
#[derive(Debug, Clone, Copy)]
pub struct Notify {
    /// The registered process.
    pub pid: i32,
    /// The signal (None: SIGEV_NONE) and its value.
    pub signo: Option<i32>,
    pub value: u64,
}

#[derive(Debug, Default)]
struct State {
    /// By priority (highest last), each in order of arrival.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    count: u64,
    bytes: u64,
    notify: Option<Notify>,
    /// Receivers asleep in mq_timedreceive (a notification is not sent while one waits).
    receivers: u32,
    in_gen: u64,
    out_gen: u64,
}

/// One queue.
#[derive(Debug)]
pub struct MsgQueue {
    pub maxmsg: u64,
    pub msgsize: u64,
    st: SpinLock<State>,
    ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The names (Linux's mqueue root).
fn names() -> &'static SpinLock<BTreeMap<Vec<u8>, Arc<MsgQueue>>> {
    static N: OnceLock<SpinLock<BTreeMap<Vec<u8>, Arc<MsgQueue>>>> = OnceLock::new();
    N.get_or_init(|| SpinLock::new("mq_names", BTreeMap::new()))
}

/// The queue called `name`.
pub fn lookup(name: &[u8]) -> Option<Arc<MsgQueue>> {
    names().lock().get(name).cloned()
}

/// Make a queue called `name` (EEXIST if there is one).
pub fn create(name: &[u8], maxmsg: u64, msgsize: u64, mode: u32, uid: u32, gid: u32) -> Result<Arc<MsgQueue>, Errno> {
    let mut n = names().lock();
    if n.contains_key(name) {
        return Err(Errno::EEXIST);
    }
    let q = Arc::new(MsgQueue {
        maxmsg,
        msgsize,
        st: SpinLock::new("mqueue", State::default()),
        ino: anon::new_ino(),
        mode: mode & 0o7777,
        uid,
        gid,
    });
    n.insert(name.to_vec(), Arc::clone(&q));
    Ok(q)
}

/// Take `name` out of the namespace.
pub fn unlink(name: &[u8]) -> Result<Arc<MsgQueue>, Errno> {
    names().lock().remove(name).ok_or(Errno::ENOENT)
}

/// How long to sleep until the absolute CLOCK_REALTIME `deadline_ns` (None: no deadline);
/// Err(ETIMEDOUT) once it has passed.
fn until(deadline_ns: Option<u64>) -> Result<Option<Duration>, Errno> {
    match deadline_ns {
        None => Ok(None),
        Some(d) => {
            let now = platform::time::realtime_ns();
            if now >= d { Err(Errno::ETIMEDOUT) } else { Ok(Some(Duration::from_nanos(d - now))) }
        }
    }
}

impl MsgQueue {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    /// mq_timedsend: queue `msg` at `prio`; returns the notification to send, if this
    /// message is one (the caller sends it: no lock held).
    pub fn send(
        &self,
        msg: Vec<u8>,
        prio: u32,
        nonblock: bool,
        deadline_ns: Option<u64>,
    ) -> Result<Option<Notify>, Errno> {
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                if st.count < self.maxmsg {
                    let notify = if st.count == 0 && st.receivers == 0 { st.notify.take() } else { None };
                    st.bytes += msg.len() as u64;
                    st.count += 1;
                    st.msgs.entry(prio).or_default().push_back(msg);
                    st.in_gen += 1;
                    drop(st);
                    drop(g);
                    wakeup(self.chan());
                    poll_wakeup();
                    return Ok(notify);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeout = until(deadline_ns)?;
            if tsleep_locked(g, "mqsend", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// mq_timedreceive: the oldest message of the highest priority, and its priority.
    pub fn receive(&self, nonblock: bool, deadline_ns: Option<u64>) -> Result<(Vec<u8>, u32), Errno> {
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                let top = st.msgs.last_key_value().map(|(&p, _)| p);
                if let Some(prio) = top {
                    let q = st.msgs.get_mut(&prio).expect("the priority just found");
                    let msg = q.pop_front().unwrap_or_default();
                    if q.is_empty() {
                        st.msgs.remove(&prio);
                    }
                    st.count -= 1;
                    st.bytes -= msg.len() as u64;
                    st.out_gen += 1;
                    drop(st);
                    drop(g);
                    wakeup(self.chan());
                    poll_wakeup();
                    return Ok((msg, prio));
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeout = until(deadline_ns)?;
            self.st.lock().receivers += 1;
            let r = tsleep_locked(g, "mqrecv", SleepOpts { interruptible: true, timeout });
            self.st.lock().receivers -= 1;
            if r == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// mq_notify: register `n` (EBUSY if another registration holds), or with None remove
    /// the registration of process `pid`.
    pub fn set_notify(&self, pid: i32, n: Option<Notify>) -> Result<(), Errno> {
        let mut st = self.st.lock();
        match n {
            Some(n) => {
                if st.notify.is_some() {
                    return Err(Errno::EBUSY);
                }
                st.notify = Some(n);
            }
            None => {
                if st.notify.is_some_and(|x| x.pid == pid) {
                    st.notify = None;
                }
            }
        }
        Ok(())
    }

    /// Messages now.
    pub fn curmsgs(&self) -> u64 {
        self.st.lock().count
    }

    /// The text a read of the descriptor gives (as Linux's mqueue file).
    fn status(&self) -> String {
        let st = self.st.lock();
        let (signo, pid, how) = match st.notify {
            Some(n) => (n.signo.unwrap_or(0), n.pid, if n.signo.is_some() { 0 } else { 1 }),
            None => (0, 0, 0),
        };
        format!("QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n", st.bytes, how, signo, pid)
    }
}

impl Vnode for MsgQueue {
    fn attr(&self) -> Result<Attr, Errno> {
        let mut a = anon::attr(self.ino, self.uid, self.gid);
        a.mode = crate::fs::vfs::S_IFREG | self.mode;
        a.size = self.st.lock().bytes;
        Ok(a)
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "mqueue")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let s = self.status();
        let b = s.as_bytes();
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(b.len());
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn poll(&self) -> u16 {
        let st = self.st.lock();
        let mut r = 0;
        if st.count > 0 {
            r |= POLLIN;
        }
        if st.count < self.maxmsg {
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

/// The queue behind an open file (None: not a message queue descriptor).
pub fn of(v: &VnodeRef) -> Option<&MsgQueue> {
    v.as_any().and_then(|a| a.downcast_ref::<MsgQueue>())
}
