//! The machine-independent kernel: boot, processes and threads, scheduling, sleep, time.

pub mod args;
pub mod init_main;
pub mod kenv;
pub mod printf;
pub mod proc;
pub mod sched;
pub mod shutdown;
pub mod sleep;
pub mod syncer;
pub mod thread;
pub mod vfs_mountroot;
