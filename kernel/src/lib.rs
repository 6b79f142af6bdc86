//! vk — a virtual kernel that runs static Linux x86-64 programs as guest processes.
//!
//! | module   | what it is                                                                  |
//! |----------|------------------------------------------------------------------------------|
//! | `abi`    | the Linux structures in guest memory, checked against linux-raw-sys          |
//! | `kern`   | boot, command line, processes, threads, scheduler, sleep/wakeup, signals, tty |
//! | `vm`     | guest address spaces: map entries, page table, faults, copyin/copyout          |
//! | `fs`     | VFS, path lookup, mounts, open files; ext2, tmpfs, hostfs, devfs, procfs       |
//! | `net`    | sockets: AF_UNIX in the kernel, AF_INET/AF_INET6 through host sockets, netlink  |
//! | `sys`    | the Linux system call layer: the table and the handlers                       |
//! | `debug`  | exported introspection roots, the ddb backend of kdb, ddb target and commands |
//!
//! Layers: `abi` at the bottom; `kern`, `vm`, `fs` and `net` use each other but never `sys` or
//! `debug`, which sit above and register themselves at start-up (`sys::install`,
//! `debug::install`, called by `main`).
//!
//! All host access goes through the `platform` crate; this crate has no `unsafe` beyond the
//! `#[no_mangle]` roots in `debug::export`.

#![deny(unsafe_code)]
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap, clippy::cast_lossless)]

pub mod abi;
pub mod debug;
pub mod fs;
pub mod kern;
pub mod net;
pub mod sys;
pub mod vm;
