//! The kernel's side of debugging: the exported introspection roots, the entry into ddb
//! (fatal traps, panics, break-ins), the ddb `Target` over the kernel's own memory, the
//! kernel-specific ddb commands (with `show memory`, the host memory vk holds), crash dumps (`dump`), the watchdog and the control socket
//! (`vkctl`).

pub mod commands;
pub mod ctl;
pub mod dump;
pub mod export;
pub mod kdb;
pub mod locks;
pub mod memory;
pub mod show;
pub mod target;
pub mod watchdog;

/// Register the debugger with the kernel (`kern::kdb`), before boot.
pub fn install() {
    crate::kern::kdb::set_backend(crate::kern::kdb::Backend {
        install_hooks: kdb::install_hooks,
        init: kdb::init,
        enter: kdb::kdb_enter,
        request_breakin: kdb::request_breakin,
        active: kdb::active,
    });
    crate::kern::init_main::at_startup(ctl::start);
}
