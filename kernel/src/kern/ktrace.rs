//! ktrace: `-e debug.ktrace=1` prints every system call (pid/tid, name, arguments, result) and
//! every fault signal on the console — vk's strace, since the host cannot ptrace a guest.
//! The flag lives here, below the system call layer that prints the calls.

use std::sync::atomic::{AtomicBool, Ordering};

static KTRACE: AtomicBool = AtomicBool::new(false);

/// Whether tracing is on.
pub fn enabled() -> bool {
    KTRACE.load(Ordering::Relaxed)
}

/// Turn tracing on or off.
pub fn set_enabled(on: bool) {
    KTRACE.store(on, Ordering::Relaxed);
}
