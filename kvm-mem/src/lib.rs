//! kvm-mem — vk's introspection ABI and its reader, like BSD libkvm.
//!
//! | module     | what it is                                                                  |
//! |------------|------------------------------------------------------------------------------|
//! | `abi`      | the exported records and the `Layout` descriptor (the contract)              |
//! | `source`   | memory sources: `/proc/PID/mem` of a live kernel, `/proc/self/mem`, buffers  |
//! | `ctl`      | the control socket's protocol (`kernel -C`, `vkctl`): requests, replies  |
//! | `core`     | a vmcore (`db> dump`) as a memory source: PT_LOAD segments, the vk note      |
//! | `nlist`    | symbols of the kernel ELF and the load bias of a live (PIE) kernel           |
//! | `validate` | checking a `Layout` read from a target before trusting its offsets           |
//! | `record`   | the decoded structs (`Proc`, `Thread`, `Pcpu` …) and bounds-checked decoding |
//! | `kvm`      | the reader: processes, threads, CPUs, message buffer, physical memory        |
//! | `ps`       | `ps axl` and ddb `ps` formatting of what the reader returns                  |
//! | `error`    | `KvmError`                                                                   |
//!
//! ```no_run
//! let kvm = kvm_mem::Kvm::open("/proc/1234/mem".as_ref(), None)?;
//! print!("{}", kvm_mem::ps::format_axl(&kvm.procs()?, 0));
//! # Ok::<(), kvm_mem::KvmError>(())
//! ```
//!
//! The reader never trusts what it reads: every record's magic is checked, every list walk is
//! bounded and checked for loops, every field is read with a bounds check. A live kernel changes
//! under a reader, so a walk that meets a freed record is retried.

#![deny(unsafe_code)]

pub mod abi;
pub mod core;
pub mod ctl;
pub mod error;
pub mod kvm;
pub mod nlist;
pub mod ps;
pub mod record;
pub mod source;
pub mod validate;

pub use error::KvmError;
pub use kvm::{Kvm, ROOT_SYMBOLS, Roots};
pub use record::{Pcpu, Physmem, Proc, SavedFrame, Thread, VmPage};
pub use core::CoreMem;
pub use source::{MemSource, ProcMem};
