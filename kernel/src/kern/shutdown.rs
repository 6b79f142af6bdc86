//! Halting and rebooting (`kern_shutdown`): stop the other CPUs, sync, say goodbye, and
//! leave the host process (or re-exec it for a reboot).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{kprintf, kprintf_nolock};

/// Exit status of a halt or poweroff.
pub const EXIT_HALT: i32 = 0;
/// Exit status after a panic that was continued at `db>`.
pub const EXIT_PANIC: i32 = 1;
/// Exit status when the debugger's input ended (a scripted `db>` session ran out of lines).
pub const EXIT_DDB_EOF: i32 = 3;

/// The host asked the kernel to stop (SIGTERM, SIGINT, SIGHUP); a reboot is under way; the
/// main thread, which takes the host's signals, has stopped taking them. A handshake between
/// the main thread and the CPU that reboots, whose re-exec would start a kernel that never
/// heard of a signal the old one took: each sets its flag, then looks at the other's. A reboot
/// that sees the request halts instead; otherwise it waits for the main thread to stop
/// (`MAIN_PARKED`), which gives back any signal it took meanwhile, so every signal sent from
/// then on stays pending for the new kernel.
static HOST_STOP: AtomicBool = AtomicBool::new(false);
static REBOOTING: AtomicBool = AtomicBool::new(false);
static MAIN_PARKED: AtomicBool = AtomicBool::new(false);

/// Note a host request to stop; true when a reboot is already under way (the caller must leave
/// the signal to the next kernel: [`park_main`]).
pub fn host_asked_to_stop() -> bool {
    HOST_STOP.store(true, Ordering::SeqCst);
    REBOOTING.load(Ordering::SeqCst)
}

/// Whether a reboot is under way (the main thread must [`park_main`]).
pub fn rebooting() -> bool {
    REBOOTING.load(Ordering::SeqCst)
}

/// The main thread stops taking host signals for good (a reboot re-executes the process).
pub fn park_main() -> ! {
    MAIN_PARKED.store(true, Ordering::SeqCst);
    loop {
        std::thread::park();
    }
}

/// How often the main thread looks up from waiting for host signals (for a reboot).
pub const HOST_SIGNAL_POLL: Duration = Duration::from_millis(50);

/// What `kern_reboot` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Howto {
    Halt,
    Reboot,
}

fn uptime() -> String {
    let s = platform::time::uptime_ns() / 1_000_000_000;
    if s >= 3600 {
        format!("{}h{}m{}s", s / 3600, (s / 60) % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Write back and mark clean every disk file system, with I/O done on this CPU (the others
/// are stopped: nothing may sleep now).
fn unmount_disks() {
    crate::fs::bcache::set_direct_io();
    crate::fs::ext2::unmount_all();
}

/// Stop the system. From the debugger the other CPUs are already parked.
pub fn kern_reboot(howto: Howto) -> ! {
    let me = platform::cpu::curcpu();
    let others = platform::cpu::online_mask() & !(1u64.checked_shl(me).unwrap_or(0));
    platform::stop::stop_cpus(others, Duration::from_secs(2));
    unmount_disks();
    if !crate::kern::syncer::sync_pass() {
        kprintf_nolock!("syncing: skipped (the sync hooks are locked by a stopped CPU)\n");
    }
    kprintf_nolock!("Uptime: {}\n", uptime());
    if howto == Howto::Reboot {
        REBOOTING.store(true, Ordering::SeqCst);
    }
    match howto {
        Howto::Halt => {
            kprintf_nolock!("The operating system has halted.\n");
            platform::host::exit(EXIT_HALT);
        }
        Howto::Reboot if HOST_STOP.load(Ordering::SeqCst) => {
            kprintf_nolock!("reboot: host signal received, halting instead\n");
            platform::host::exit(EXIT_HALT);
        }
        Howto::Reboot => {
            // The main thread looks at REBOOTING at least every HOST_SIGNAL_POLL.
            let t0 = platform::time::uptime_ns();
            while !MAIN_PARKED.load(Ordering::SeqCst) && platform::time::uptime_ns() - t0 < 2_000_000_000 {
                std::thread::sleep(Duration::from_millis(1));
            }
            kprintf_nolock!("Rebooting...\n");
            let e = platform::host::reexec();
            kprintf_nolock!("reboot: cannot re-execute the kernel: {e}\n");
            platform::host::exit(EXIT_HALT);
        }
    }
}

/// Stop the machine with an exit status of the caller's choosing (batch mode's init exit).
pub fn halt_with(code: i32) -> ! {
    // Write the disks back while the other CPUs still run (whoever holds a file system can
    // finish), then once more with them stopped. The sync sleeps, so this thread may come
    // back on another CPU: only then is "the other CPUs" known.
    crate::fs::ext2::sync_all();
    let me = platform::cpu::curcpu();
    let others = platform::cpu::online_mask() & !(1u64.checked_shl(me).unwrap_or(0));
    platform::stop::stop_cpus(others, Duration::from_secs(2));
    unmount_disks();
    crate::kern::syncer::sync_pass();
    platform::host::exit(code)
}

/// A clean shutdown asked for from outside (host SIGTERM).
pub fn shutdown_nice() -> ! {
    kprintf!("\nshutdown: host signal received, halting\n");
    kern_reboot(Howto::Halt)
}
