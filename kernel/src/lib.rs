//! vk — a virtual kernel that runs static Linux x86-64 programs as guest processes.
//!
//! | module   | what it is                                                                  |
//! |----------|------------------------------------------------------------------------------|
//! | `kern`   | boot, command line, processes, threads, scheduler, sleep/wakeup, shutdown     |
//! | `debug`  | exported introspection roots, debugger entry (kdb), ddb target and commands  |
//!
//! All host access goes through the `platform` crate; this crate has no `unsafe` beyond the
//! `#[no_mangle]` roots in `debug::export`.

#![deny(unsafe_code)]

pub mod debug;
pub mod kern;
