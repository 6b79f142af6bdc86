//! vk — a virtual kernel that runs static Linux x86-64 programs as guest processes.
//!
//! | module   | what it is                                                                  |
//! |----------|------------------------------------------------------------------------------|
//! | `kern`   | boot, command line, processes, threads, scheduler, sleep/wakeup, shutdown     |
//! | `debug`  | exported introspection roots, debugger entry (kdb), ddb target and commands  |
//! | `vm`     | guest address spaces: map entries, page table, faults, copyin/copyout          |
//! | `fs`     | VFS, path lookup, mounts, open files; hostfs, devfs                            |
//!
//! All host access goes through the `platform` crate; this crate has no `unsafe` beyond the
//! `#[no_mangle]` roots in `debug::export`.

#![deny(unsafe_code)]

pub mod abi;
pub mod debug;
pub mod fs;
pub mod kern;
pub mod sys;
pub mod vm;
