//! `debug.kdb.*` actions (FreeBSD's `debug.kdb.enter`, `.panic`, `.trap`): the boot tunables
//! `-e debug.trap=1` / `-e debug.panic=1` now, and `/proc/sys/debug/kdb/*` with procfs.

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
    crate::debug::kdb::kdb_enter("sysctl debug.kdb.enter");
}
