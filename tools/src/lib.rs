//! Host-side tools for vk.
//!
//! | module | program                                                          |
//! |--------|------------------------------------------------------------------|
//! | `vps`  | `vps -M /proc/PID/mem [-N kernel]`: `ps axl` of a running kernel |
//! | `vkctl` | `vkctl [-C socket] command`: a running kernel's control socket    |
//!
//! The binaries in `src/bin` are one-line wrappers, so the logic is tested here.

#![deny(unsafe_code)]

pub mod vkctl;
pub mod vps;
