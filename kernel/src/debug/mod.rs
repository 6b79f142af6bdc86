//! The kernel's side of debugging: the exported introspection roots, the entry into ddb
//! (fatal traps, panics, break-ins), the ddb `Target` over the kernel's own memory, and the
//! kernel-specific ddb commands.

pub mod commands;
pub mod export;
pub mod kdb;
pub mod show;
pub mod sysctl;
pub mod target;
