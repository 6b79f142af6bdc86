//! Linux AIO contexts as a process keeps them (the system calls are sys/aio.rs): each context
//! is a ring mapped in the process, by its address; exec and exit destroy them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use platform::sync::SpinLock;

use crate::kern::proc::UProc;
use crate::kern::sleeplock::SleepLock;

/// /proc/sys/fs/aio-max-nr's default: events all contexts may hold.
pub(crate) const AIO_MAX_NR: u64 = 65536;
/// Events of all contexts now (aio-nr).
pub(crate) static AIO_NR: AtomicU64 = AtomicU64::new(0);

/// One context.
#[derive(Debug)]
pub(crate) struct AioCtx {
    /// The ring's address (the context id) and its slots.
    pub(crate) ring: u64,
    pub(crate) ring_len: u64,
    pub(crate) slots: u32,
    /// The events io_setup asked for: completions not yet consumed at most.
    pub(crate) max_events: u32,
    /// Where the next completion goes (the ring's tail as the kernel keeps it); held across
    /// the ring's reads and writes (guest memory: a sleep lock).
    pub(crate) tail: SleepLock<u32>,
}

/// A process's AIO contexts, by ring address.
#[derive(Debug)]
pub struct AioTable {
    pub(crate) ctxs: SpinLock<BTreeMap<u64, Arc<AioCtx>>>,
}

impl Default for AioTable {
    fn default() -> Self {
        AioTable { ctxs: SpinLock::new("aio_ctxs", BTreeMap::new()) }
    }
}

/// exec and exit: every context goes (exit's address space goes with it).
pub fn destroy_all(p: &UProc) {
    let all = std::mem::take(&mut *p.user().aio.ctxs.lock());
    for c in all.values() {
        AIO_NR.fetch_sub(u64::from(c.max_events), Ordering::Relaxed);
        crate::kern::sleep::wakeup(wchan(c));
    }
}

pub(crate) fn wchan(c: &AioCtx) -> u64 {
    c as *const AioCtx as u64
}

