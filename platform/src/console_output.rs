//! Console output off the CPUs: while the host terminal is the kernel's (raw mode), what the
//! kernel writes to the console is queued and a host thread writes it, so a CPU never blocks
//! on a terminal that is not being read (a stopped `less`, a scrolled-back tmux pane…).
//!
//! The debugger and the exit paths need their output in order and at once: [`flush`] waits
//! (boundedly) for the queue to drain, and [`set_queued`]`(false)` makes writes direct again.
//! Enqueueing never waits for long: a CPU that cannot take the queue's lock within 200 ms
//! (its holder was stopped by the debugger, or is the very code it interrupted) writes
//! directly instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

static QUEUE: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());
static GREW: Condvar = Condvar::new();
/// Bytes queued or being written.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Writes go through the queue.
static QUEUED: AtomicBool = AtomicBool::new(false);
static STARTED: OnceLock<()> = OnceLock::new();

/// How long a writer waits for the queue's lock before it writes directly (the lock is only
/// ever held for a moment; not getting it for this long means its holder cannot go on).
const LOCK_WAIT: Duration = Duration::from_millis(200);

fn writer() {
    loop {
        let data: Vec<u8> = {
            let Ok(mut q) = QUEUE.lock() else { return };
            while q.is_empty() {
                q = match GREW.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
            q.drain(..).collect()
        };
        crate::console::write_fd(1, &data);
        PENDING.fetch_sub(data.len(), Ordering::AcqRel);
    }
}

/// Queue console output from now on (starting the writer thread once); `false`: write
/// directly again, after [`flush`].
pub fn set_queued(on: bool) {
    if on && STARTED.get().is_none() {
        if let Err(e) = crate::cpu::spawn_host_thread("consout", writer) {
            log::error!("console: cannot start the output thread: {e}");
            return;
        }
        let _ = STARTED.set(());
    }
    QUEUED.store(on, Ordering::Release);
}

/// Write `bytes` to fd 1: queued, or directly.
pub fn write(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if QUEUED.load(Ordering::Acquire) {
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            if let Ok(mut q) = QUEUE.try_lock() {
                PENDING.fetch_add(bytes.len(), Ordering::AcqRel);
                q.extend(bytes);
                drop(q);
                GREW.notify_one();
                return;
            }
            tries += 1;
            if tries < 1000 {
                std::hint::spin_loop();
            } else if start.elapsed() < LOCK_WAIT {
                std::thread::yield_now();
            } else {
                break;
            }
        }
    }
    crate::console::write_fd(1, bytes);
}

/// Wait until the queued output is written, at most `timeout` (safe from a signal handler:
/// it only reads an atomic and sleeps).
pub fn flush(timeout: Duration) {
    let start = Instant::now();
    while PENDING.load(Ordering::Acquire) > 0 && start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(1));
    }
}
