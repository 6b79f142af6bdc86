//! The kernel's door to its debugger (FreeBSD's `kern/subr_kdb.c`): entering it from
//! software, asking for a break-in, knowing whether a CPU is in it, and the `debug.kdb.*`
//! actions (`-e debug.trap=1`, `/proc/sys/debug/kdb/*`) that take a real fault, panic or
//! break in on purpose.
//!
//! The debugger itself (ddb, the trap and panic hooks, stopping CPUs) lives in `debug`,
//! above `kern`; it registers itself here as the [`Backend`] at start-up (`debug::install`),
//! so kernel code reaches it without naming it. Without a backend (unit tests), an entry
//! only logs and the actions still do what they say.

use std::sync::OnceLock;

/// What the debugger provides to the kernel.
#[derive(Debug, Clone, Copy)]
pub struct Backend {
    /// Register the trap, NMI and panic hooks (boot, before any CPU starts).
    pub install_hooks: fn(),
    /// Load the kernel's symbols and build the debugger (boot, once proc0 exists).
    pub init: fn(),
    /// Enter from software with the caller's registers; returns after `continue`.
    pub enter: fn(&'static str),
    /// Break in from the host (SIGQUIT): at cpu0's next safe point, or by force.
    pub request_breakin: fn(),
    /// Whether a CPU is in the debugger now.
    pub active: fn() -> bool,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

/// Register the debugger (once).
pub fn set_backend(b: Backend) {
    let _ = BACKEND.set(b);
}

/// See [`Backend::install_hooks`].
pub fn install_hooks() {
    if let Some(b) = BACKEND.get() {
        (b.install_hooks)();
    }
}

/// See [`Backend::init`].
pub fn init() {
    if let Some(b) = BACKEND.get() {
        (b.init)();
    }
}

/// Enter the debugger (`why` is shown in its banner).
pub fn enter(why: &'static str) {
    match BACKEND.get() {
        Some(b) => (b.enter)(why),
        None => log::warn!("kdb: no debugger for `{why}`"),
    }
}

/// See [`Backend::request_breakin`].
pub fn request_breakin() {
    if let Some(b) = BACKEND.get() {
        (b.request_breakin)();
    }
}

/// Whether a CPU is in the debugger now.
pub fn active() -> bool {
    BACKEND.get().is_some_and(|b| (b.active)())
}

/// Take a real page fault in kernel code: read address 0.
#[inline(never)]
pub fn kdb_sysctl_trap() {
    let v = platform::trap::deliberate_fault(0);
    crate::kprintf!("kdb_sysctl_trap: read {v:#x} at address 0?\n");
}

/// Panic on purpose.
#[inline(never)]
pub fn kdb_sysctl_panic() {
    panic!("kdb_sysctl_panic");
}

/// Break into the debugger.
#[inline(never)]
pub fn kdb_sysctl_enter() {
    enter("sysctl debug.kdb.enter");
}

/// Overflow the kernel stack: recurse until the guard page below the stack faults.
#[inline(never)]
pub fn kdb_sysctl_stack_overflow() {
    let n = recurse(std::hint::black_box(1));
    crate::kprintf!("kdb_sysctl_stack_overflow: returned {n}?\n");
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == 0 {
        return frame[0];
    }
    recurse(depth + 1).wrapping_add(frame[63])
}

/// Hang this CPU in kernel code for ever, like a kernel stuck in a loop: it never reaches a
/// safe point, so only the forced (NMI-style) break-in can stop it.
#[inline(never)]
pub fn kdb_sysctl_spin() {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
        std::hint::spin_loop();
    }
}
