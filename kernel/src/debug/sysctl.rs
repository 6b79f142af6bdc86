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
