//! O_ASYNC (fcntl(2) F_SETFL, ioctl FIOASYNC): a signal to a file's owner (F_SETOWN,
//! F_SETOWN_EX; F_SETSIG's signal with a siginfo naming the descriptor and the band, or plain
//! SIGIO) when I/O on the file becomes possible — Linux's fasync lists and kill_fasync.
//!
//! Files carry no callbacks in vk: whatever changes a file's readiness wakes the one poll
//! channel ([`poll_wakeup`](crate::fs::vfs::poll_wakeup)), which calls [`kick`]. While any
//! file has O_ASYNC on, a kick marks work pending and wakes the `sigio` kernel thread (started
//! with the first such file); it polls each O_ASYNC file and signals what it finds new since
//! its last look: readable with new data or newly readable (POLL_IN), writable with new room
//! or newly writable (POLL_OUT), an error or hang-up that appeared (POLL_ERR, POLL_HUP; a
//! pipe's hang-up is POLL_IN, as pipe_release sends). The "new data" is the file's wake-up
//! count ([`Vnode::poll_gen`]), so each write to a pipe is a signal, as on Linux (queued for a
//! real-time F_SETSIG signal, merged for SIGIO). Signals are sent from the thread, with no
//! lock held: a wake-up may come from under any lock.
//!
//! Files that are not pollable (regular files, directories) keep the flag and never signal,
//! as Linux's files without a `fasync` method. Sockets of the host's network signal only when
//! the host's readiness reaches vk (a guest waiting in poll arms the watcher; O_ASYNC alone
//! does not).
//!
//! Lock order: `sigio` (the list) is a leaf; files are polled with it dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use crate::fs::file::{File, O_ASYNC};
use crate::fs::vfs::{POLLERR, POLLHUP, POLLIN, POLLOUT, VType};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};

/// si_code values of SIGPOLL (asm-generic/siginfo.h) and their bands (fs/fcntl.c's
/// band_table: POLLRDNORM 0x40, POLLWRNORM 0x100, POLLWRBAND 0x200).
const POLL_IN: (i32, i64) = (1, 0x1 | 0x40);
const POLL_OUT: (i32, i64) = (2, 0x4 | 0x100 | 0x200);
const POLL_ERR: (i32, i64) = (4, 0x8);
const POLL_HUP: (i32, i64) = (6, 0x10 | 0x8);

/// One O_ASYNC file: the descriptor O_ASYNC was set through (the siginfo's si_fd) and what
/// its last look found.
#[derive(Debug)]
struct Entry {
    file: Weak<File>,
    fd: i32,
    revents: u16,
    gens: (u64, u64),
}

static LIST: SpinLock<Vec<Entry>> = SpinLock::new("sigio", Vec::new());
/// Entries in [`LIST`] (the kick's fast path).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// A wake-up came since the thread last looked.
static PENDING: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static CHAN: u8 = 0;

fn chan() -> u64 {
    wchan_of(&CHAN)
}

/// O_ASYNC turned on or off for `f` through descriptor `fd`.
pub fn set(f: &Arc<File>, fd: i32, on: bool) {
    let now = if on && f.vnode.pollable() { Some((f.vnode.poll(), f.vnode.poll_gen())) } else { None };
    {
        let mut list = LIST.lock();
        list.retain(|e| e.file.strong_count() > 0 && !std::ptr::eq(e.file.as_ptr(), Arc::as_ptr(f)));
        if let Some((revents, gens)) = now {
            list.push(Entry { file: Arc::downgrade(f), fd, revents, gens });
        }
        ACTIVE.store(list.len(), Ordering::Release);
    }
    if now.is_some() && !STARTED.swap(true, Ordering::AcqRel) && crate::kern::sched::kthread_start("sigio", 0, main).is_err() {
        STARTED.store(false, Ordering::Release);
    }
}

/// A file's readiness may have changed (every poll wake-up): the thread looks if any file
/// has O_ASYNC on.
pub fn kick() {
    if ACTIVE.load(Ordering::Acquire) == 0 {
        return;
    }
    PENDING.store(true, Ordering::Release);
    wakeup(chan());
}

/// The signals a file's change from (`last`, `last_gens`) to (`now`, `gens`) calls for:
/// (si_code, band) each.
fn reasons(vtype: VType, last: u16, last_gens: (u64, u64), now: u16, gens: (u64, u64)) -> Vec<(i32, i64)> {
    let rose = |bit: u16| now & bit != 0 && last & bit == 0;
    let mut out = Vec::new();
    if now & POLLIN != 0 && (rose(POLLIN) || gens.0 != last_gens.0) {
        out.push(POLL_IN);
    }
    if now & POLLOUT != 0 && (rose(POLLOUT) || gens.1 != last_gens.1) {
        out.push(POLL_OUT);
    }
    if rose(POLLERR) {
        out.push(POLL_ERR);
    }
    if rose(POLLHUP) {
        let pipe = matches!(vtype, VType::Fifo);
        out.push(if pipe { POLL_IN } else { POLL_HUP });
    }
    out.dedup();
    out
}

/// What an entry knew before a look: its descriptor and last readiness.
struct Look {
    fd: i32,
    revents: u16,
    gens: (u64, u64),
}

/// Look at every O_ASYNC file once and signal what changed.
fn scan() {
    let files: Vec<(Arc<File>, Look)> = {
        let mut list = LIST.lock();
        list.retain(|e| e.file.upgrade().is_some_and(|f| f.flags() & O_ASYNC != 0));
        ACTIVE.store(list.len(), Ordering::Release);
        list.iter().filter_map(|e| Some((e.file.upgrade()?, Look { fd: e.fd, revents: e.revents, gens: e.gens }))).collect()
    };
    for (f, Look { fd, revents: last, gens: last_gens }) in files {
        let (now, gens) = (f.vnode.poll(), f.vnode.poll_gen());
        if let Some(e) = LIST.lock().iter_mut().find(|e| std::ptr::eq(e.file.as_ptr(), Arc::as_ptr(&f))) {
            e.revents = now;
            e.gens = gens;
        }
        for (code, band) in reasons(f.vnode.vtype(), last, last_gens, now, gens) {
            crate::fs::lease::send_io(&f, fd, code, band);
        }
    }
}

/// The `sigio` kernel thread: asleep until a kick, then a scan.
fn main() {
    let chan = chan();
    loop {
        let g = sleepq_lock(chan);
        if !PENDING.swap(false, Ordering::AcqRel) {
            tsleep_locked(g, "sigio", SleepOpts { interruptible: true, timeout: None });
            continue;
        }
        drop(g);
        scan();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_data_and_rising_edges_signal() {
        let reg = VType::Sock;
        // Nothing new: nothing.
        assert!(reasons(reg, POLLOUT, (0, 0), POLLOUT, (0, 0)).is_empty());
        // Newly readable; more data while readable (the count moved).
        assert_eq!(reasons(reg, POLLOUT, (0, 0), POLLIN | POLLOUT, (1, 0)), [POLL_IN]);
        assert_eq!(reasons(reg, POLLIN, (1, 0), POLLIN, (2, 0)), [POLL_IN]);
        assert!(reasons(reg, POLLIN, (2, 0), POLLIN, (2, 0)).is_empty());
        // Room again for a writer.
        assert_eq!(reasons(reg, 0, (0, 0), POLLOUT, (0, 0)), [POLL_OUT]);
        assert_eq!(reasons(reg, POLLOUT, (0, 3), POLLOUT, (0, 4)), [POLL_OUT]);
        // Errors and hang-ups when they appear; a pipe's hang-up is POLL_IN.
        assert_eq!(reasons(reg, POLLOUT, (0, 0), POLLOUT | POLLERR, (0, 0)), [POLL_ERR]);
        assert_eq!(reasons(reg, 0, (0, 0), POLLHUP, (0, 0)), [POLL_HUP]);
        assert_eq!(reasons(VType::Fifo, 0, (0, 0), POLLHUP, (0, 0)), [POLL_IN]);
        assert_eq!(reasons(VType::Fifo, 0, (0, 0), POLLIN | POLLHUP, (1, 0)), [POLL_IN], "one signal for both");
    }
}
