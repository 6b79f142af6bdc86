//! The machine-independent kernel: boot, processes and threads, scheduling, sleep, time.

pub mod args;
pub mod cputime;
pub mod errno;
pub mod exec;
pub mod execve;
pub mod exit;
pub mod fork;
pub mod futex;
pub mod init_main;
pub mod jobctl;
pub mod kenv;
pub mod printf;
pub mod proc;
pub mod sched;
pub mod shutdown;
pub mod signal;
pub mod sleeplock;
pub mod sleep;
pub mod syncer;
pub mod thread;
pub mod tty;
pub mod uproc;
pub mod usertrap;
pub mod vfs_mountroot;
pub mod wait;
