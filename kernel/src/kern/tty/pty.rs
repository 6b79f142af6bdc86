//! Pseudo-terminals (pty(7)): a master, opened by `/dev/ptmx`, and a slave `/dev/pts/N`
//! that is an ordinary [`Tty`] — the console's line discipline, termios, window size,
//! controlling terminal and job control — whose input is what the master writes and whose
//! output (and echo) the master reads.
//!
//! * Opening /dev/ptmx makes pty N (the lowest number free) with the slave locked
//!   (TIOCSPTLCK); TIOCGPTN tells N; opening the slave while locked, or after the master
//!   closed, is EIO. The slave belongs to the opener of the master (mode 0620, group tty),
//!   as a devpts mounted `gid=5,mode=620` gives it (grantpt has nothing left to do).
//! * The master's read queue holds the slave's processed output; a slave writer waits while
//!   it holds 64 KiB. Reading the master with no slave left open (once one was) is EIO.
//! * Closing the master hangs the slave up: its readers see end of file, writers EIO, and its
//!   session's leader and foreground group get SIGHUP (and SIGCONT), as tty_vhangup does.
//!
//! The vnodes (the master, /dev/pts and its slaves) are fs/devpts.rs's.
//!
//! Lock order: `pty` (a master's queue) and `ptys` (the table) are leaves; `tty` (the slave's
//! state) is never held while `pty` is taken.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use super::termios::Termios;
use super::{State, Tty, Winsize, ctty};
use crate::fs::vfs::{POLLHUP, POLLIN, POLLOUT, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

/// The slaves' major device number (UNIX98_PTY_SLAVE_MAJOR).
pub const PTY_SLAVE_MAJOR: u64 = 136;
/// The most ptys at once (/proc/sys/kernel/pty/max is 4096 on Linux).
pub const PTY_MAX: u32 = 4096;
/// Bytes of output the master's queue holds before a slave writer waits.
const OUT_MAX: usize = 64 * 1024;
/// The tty group (Debian's gid 5), the slaves' group.
pub const TTY_GID: u32 = 5;

#[derive(Debug)]
struct MasterState {
    /// The slave's output, for the master to read.
    out: VecDeque<u8>,
    /// Slave descriptions open now; whether one ever was.
    slaves: usize,
    slave_opened: bool,
    /// The master was closed: the slave is hung up.
    closed: bool,
    /// TIOCSPTLCK: the slave cannot be opened.
    locked: bool,
    /// The slave node's permissions and owner.
    mode: u32,
    uid: u32,
    gid: u32,
    /// Wake-ups sent to the master's readers (edge-triggered epoll).
    in_gen: u64,
}

/// A pty's master side: its number and the slave's output queue.
#[derive(Debug)]
pub struct Master {
    pub index: u32,
    st: SpinLock<MasterState>,
}

/// The live ptys by number (a slave lives while anything holds its terminal).
static PTYS: SpinLock<BTreeMap<u32, Weak<Tty>>> = SpinLock::new("ptys", BTreeMap::new());

/// A slave's device number: 136, N (glibc's makedev encoding).
pub fn slave_dev(index: u32) -> u64 {
    let minor = u64::from(index);
    (minor & 0xff) | (PTY_SLAVE_MAJOR << 8) | ((minor & !0xff) << 12)
}

/// The slave terminal of device number `dev`.
pub fn by_dev(dev: u64) -> Option<Arc<Tty>> {
    if u64::from(crate::fs::vfs::dev_major(dev)) != PTY_SLAVE_MAJOR {
        return None;
    }
    let index = crate::fs::vfs::dev_minor(dev);
    PTYS.lock().get(&index).and_then(Weak::upgrade)
}

/// The slave terminal of pty `index`, while its master is open.
pub fn by_index(index: u32) -> Option<Arc<Tty>> {
    let t = PTYS.lock().get(&index).and_then(Weak::upgrade)?;
    let open = t.master().is_some_and(|m| !m.is_closed());
    open.then_some(t)
}

/// The numbers of the ptys whose masters are open (/dev/pts's entries).
pub fn indices() -> Vec<u32> {
    let live: Vec<Arc<Tty>> = PTYS.lock().values().filter_map(Weak::upgrade).collect();
    live.iter().filter_map(|t| t.master().filter(|m| !m.is_closed()).map(|m| m.index)).collect()
}

/// Open /dev/ptmx: a new pty, its slave locked and owned by `uid`. Returns the slave's
/// terminal (the master vnode holds it). ENOSPC when PTY_MAX are in use.
pub fn open_master(uid: u32) -> Result<Arc<Tty>, Errno> {
    let mut t = PTYS.lock();
    t.retain(|_, w| w.strong_count() > 0);
    let index = (0..PTY_MAX).find(|i| !t.contains_key(i)).ok_or(Errno::ENOSPC)?;
    let m = Arc::new(Master {
        index,
        st: SpinLock::new(
            "pty",
            MasterState {
                out: VecDeque::new(),
                slaves: 0,
                slave_opened: false,
                closed: false,
                locked: true,
                mode: 0o620,
                uid,
                gid: TTY_GID,
                in_gen: 0,
            },
        ),
    });
    let ws = Winsize::default();
    let tty = Arc::new(Tty { enabled: true, dev: slave_dev(index), st: SpinLock::new("tty", State::new(Termios::default(), ws)), master: Some(m) });
    t.insert(index, Arc::downgrade(&tty));
    Ok(tty)
}

impl Master {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    fn wake(&self) {
        wakeup(self.chan());
        poll_wakeup();
    }

    /// Whether the master was closed (the slave is hung up).
    pub fn is_closed(&self) -> bool {
        self.st.lock().closed
    }

    /// Slave output for the master to read.
    pub fn push_output(&self, bytes: &[u8]) {
        {
            let mut st = self.st.lock();
            if st.closed {
                return;
            }
            st.out.extend(bytes);
            st.in_gen += 1;
        }
        self.wake();
    }

    /// Before a slave write: EIO once hung up; sleep while the queue is full.
    pub fn wait_room(&self) -> Result<(), Errno> {
        loop {
            let g = sleepq_lock(self.chan());
            {
                let st = self.st.lock();
                if st.closed {
                    return Err(Errno::EIO);
                }
                if st.out.len() < OUT_MAX {
                    return Ok(());
                }
            }
            if tsleep_locked(g, "ptyout", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// read(2) of the master: the slave's output; EIO when no slave is open any more (and
    /// one was) and nothing is left.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let g = sleepq_lock(self.chan());
            {
                let mut st = self.st.lock();
                if !st.out.is_empty() {
                    let n = buf.len().min(st.out.len());
                    for (d, b) in buf.iter_mut().zip(st.out.drain(..n)) {
                        *d = b;
                    }
                    drop(st);
                    drop(g);
                    self.wake();
                    return Ok(n);
                }
                if st.slaves == 0 && st.slave_opened {
                    return Err(Errno::EIO);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if tsleep_locked(g, "ptyin", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// poll(2) of the master.
    pub fn poll(&self) -> u16 {
        let st = self.st.lock();
        let mut r = POLLOUT;
        if !st.out.is_empty() {
            r |= POLLIN;
        }
        if st.slaves == 0 && st.slave_opened {
            r |= POLLHUP;
        }
        r
    }

    /// Edge-triggered epoll's count of the master's input wake-ups.
    pub fn poll_gen(&self) -> u64 {
        self.st.lock().in_gen
    }

    /// Bytes the master can read now (FIONREAD on the master).
    pub fn queued(&self) -> usize {
        self.st.lock().out.len()
    }

    /// TIOCSPTLCK and TIOCGPTLCK.
    pub fn set_locked(&self, locked: bool) {
        self.st.lock().locked = locked;
    }

    pub fn locked(&self) -> bool {
        self.st.lock().locked
    }

    /// The slave node's (mode, uid, gid).
    pub fn owner(&self) -> (u32, u32, u32) {
        let st = self.st.lock();
        (st.mode, st.uid, st.gid)
    }

    /// chmod/chown of the slave node (login gives it to the user).
    pub fn set_owner(&self, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>) {
        let mut st = self.st.lock();
        st.mode = mode.map_or(st.mode, |m| m & 0o7777);
        st.uid = uid.unwrap_or(st.uid);
        st.gid = gid.unwrap_or(st.gid);
    }

    /// A slave open: EIO while locked or once the master closed.
    pub fn open_slave(&self) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if st.locked || st.closed {
            return Err(Errno::EIO);
        }
        st.slaves += 1;
        st.slave_opened = true;
        Ok(())
    }

    /// A slave description closed.
    pub fn close_slave(&self) {
        {
            let mut st = self.st.lock();
            st.slaves = st.slaves.saturating_sub(1);
            st.in_gen += 1;
        }
        self.wake();
    }
}

/// The master of `tty` closed: hang the slave up (end of file for readers, EIO for writers,
/// SIGHUP and SIGCONT to the session that has it as controlling terminal).
pub fn close_master(tty: &Tty) {
    let Some(m) = tty.master() else { return };
    {
        let mut st = m.st.lock();
        st.closed = true;
        st.out.clear();
    }
    m.wake();
    tty.hangup_input();
    ctty::hangup(tty);
}
