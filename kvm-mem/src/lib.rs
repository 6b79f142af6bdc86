//! kvm-mem — vk's introspection ABI and its reader, like BSD libkvm.
//!
//! | module   | what it is                                                                 |
//! |----------|-----------------------------------------------------------------------------|
//! | `abi`    | the exported records and the `Layout` descriptor (the contract)             |
//! | `source` | memory sources: `/proc/PID/mem` of a live kernel, `/proc/self/mem`          |
//! | `nlist`  | symbols of the kernel ELF and the load bias of a live (PIE) kernel          |
//! | `kvm`    | the reader: processes, threads, CPUs, message buffer, physical memory       |
//! | `ps`     | `ps axl` and ddb `ps` formatting of what the reader returns                 |
//!
//! The reader never trusts what it reads: every record's magic is checked, every list walk is
//! bounded, every field is read with a bounds check. A live kernel changes under a reader, so
//! a walk that meets a freed record is retried.

#![deny(unsafe_code)]

pub mod abi;
pub mod error;
pub mod kvm;
pub mod nlist;
pub mod ps;
pub mod source;

pub use error::KvmError;
pub use kvm::{Kvm, Pcpu, Physmem, Proc, Roots, SavedFrame, Thread};
pub use source::{MemSource, ProcMem};
