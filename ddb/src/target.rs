//! What ddb needs from the thing it debugs.
//!
//! ddb knows nothing of the kernel's Rust types. The kernel implements [`Target`] over its own
//! memory (read through `/proc/self/mem`, so a bad address is an error, never a fault) and the
//! exported introspection records; a dump reader could implement it over a vmcore. Commands that
//! need kernel knowledge beyond this trait (`ps`, `show allpcpu`, `show proc` …) are registered
//! by the kernel with [`crate::Debugger::register`].

use std::fmt;

/// A memory read that could not be satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {len} bytes at {addr:#x}")]
pub struct ReadError {
    pub addr: u64,
    pub len: usize,
}

/// Where an unwind starts: the three registers a frame walk needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
}

/// A CPU's registers as `show registers` prints them, in display order. Names are the lowercase
/// x86-64 names ("rax", …, "rip", "rflags"), usable in expressions as `$rax`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterSet {
    pub regs: Vec<(&'static str, u64)>,
}

impl RegisterSet {
    /// The value of a register by name.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.regs.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// rip/rsp/rbp, when all three are present.
    pub fn frame(&self) -> Option<Frame> {
        Some(Frame { rip: self.get("rip")?, rsp: self.get("rsp")?, rbp: self.get("rbp")? })
    }
}

/// One thread as ddb sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadSummary {
    /// Thread id (kernel-only threads count from 100000).
    pub tid: u64,
    /// Process id of its process.
    pub pid: i64,
    /// Address of the thread's exported record (what `trace <address>` names).
    pub addr: u64,
    pub name: String,
    /// Human-readable state, e.g. "running on cpu1", "sleeping on \"syncer\"".
    pub state: String,
    /// The CPU it is on now, if it is on one.
    pub oncpu: Option<u32>,
    /// For a thread off CPU: the context `cpu_switch` saved, where its trace starts.
    pub saved: Option<Frame>,
    /// Its kernel stack, `[lo, hi)`, when known (bounds the unwinder).
    pub stack: Option<(u64, u64)>,
}

impl fmt::Display for ThreadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {} ({}) pid {} at {:#x}: {}", self.tid, self.name, self.pid, self.addr, self.state)
    }
}

/// The debugged system.
pub trait Target {
    /// Read `buf.len()` bytes at `addr`.
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError>;
    /// Number of CPUs.
    fn ncpus(&self) -> u32;
    /// The CPU ddb was entered on (None when entered from a thread that is not a CPU).
    fn entry_cpu(&self) -> Option<u32>;
    /// A CPU's registers where it trapped or was stopped.
    fn cpu_registers(&self, cpu: u32) -> Option<RegisterSet>;
    /// The thread on a CPU.
    fn cpu_thread(&self, cpu: u32) -> Option<ThreadSummary>;
    /// A thread by tid, by pid (its first thread), or by record address.
    fn find_thread(&self, key: u64) -> Option<ThreadSummary>;
    /// Every thread.
    fn threads(&self) -> Vec<ThreadSummary>;
}
