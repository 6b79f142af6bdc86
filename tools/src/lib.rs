//! Host-side tools for vk. `vps` (ps -M for a vk kernel) lives in `vps`; the binaries in
//! `src/bin` are thin wrappers so the logic is testable.

#![deny(unsafe_code)]

pub mod vps;
