//! An address space: map entries and a software page table, mirrored into the stub process by
//! queued mapping operations.
//!
//! ```text
//!  entries   BTreeMap<start, MapEntry>   what the guest mapped: range, protection, backing
//!  pages     BTreeMap<vpn, Pte>          what is resident: physical page, copy-on-write,
//!                                        and what the stub has mapped now (stub_prot)
//!  pending   Vec<StubOp>                 mapping changes the stub must make before the guest
//!                                        runs again (drained by the thread that resumes)
//! ```
//!
//! Invariant: a page the stub has mapped (`stub_prot != 0`) is resident here with at least
//! that access. A fault resolves in software, then maps the page in the stub with the entry's
//! protection, minus write while the page is shared copy-on-write.
//!
//! Locking (the process's [`VmMap`] is a reader-writer sleep lock, `vmmap`):
//!
//! * `entries` and the break change only with the map held exclusive (`&mut self`: mmap,
//!   munmap, mprotect, mremap, brk, madvise, fork's copy, exec's new space, exit);
//! * faults and copyin/copyout hold it shared (`&self`) and change `pages` and `pending`
//!   under the spinlock `vm_pages` (inside `vmmap`, before `vm_page_free`). It is never
//!   held across a sleep: a page that must be read or looked up (file data, a shared
//!   object's or a tmpfs file's page) is got with it dropped and inserted after, unless
//!   another thread got there first (then its page is kept and ours freed: one page). The
//!   map cannot change meanwhile, since the reader holds `vmmap` shared throughout.
//!
//! Other threads keep running in the stub while one changes the map, so a page the stub may
//! still map is not released when it leaves the table (munmap, mremap, MADV_DONTNEED, a
//! copy-on-write copy) but kept in `deferred` until the stub has carried out the operations
//! queued before: by [`AddressSpace::sync_stub`] at once (a system call that took access away
//! from a process whose other threads may run, fork, and such a thread resuming — always
//! under `vmmap`, so operations taken by one thread never land after an unmap queued later
//! with the map exclusive, and one at a time under `stub_sync`, so that a thread that finds
//! the queue empty knows the operations taken before are done), or by the lone thread that takes them to run them
//! ([`AddressSpace::take_ops`], then [`AddressSpace::release`]). So no stale host mapping ever
//! reaches a page given to someone else (Linux's TLB shootdown before the free). While other
//! threads may run, no thread takes operations to carry them out later: they would land after
//! operations queued after them (a map after the unmap that followed it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use platform::PAGE_SIZE;
use platform::physmem::{self, PhysMem, pgflags};
use platform::stub::layout::USER_END;
use platform::stub::{MappedRun, Ops, StubSpace, StubThread};
use platform::sync::SpinLock;

use crate::kern::errno::Errno;
use crate::kern::sleeplock::{RwSleepLock, SleepLock};
pub use crate::vm::entry::{Backing, MapEntry, SharedObject};

pub const PAGE: u64 = PAGE_SIZE as u64;
/// How close a growing stack may come to the mapping below it (Linux's stack_guard_gap).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE;
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// vm.max_map_count (/proc/sys/vm/max_map_count): the most mappings a process may have
/// before mmap(2) fails with ENOMEM (Linux's DEFAULT_MAX_MAP_COUNT).
pub static MAX_MAP_COUNT: AtomicU64 = AtomicU64::new(65530);

/// Pages of a file read around a fault (an aligned window).
pub const FAULT_AROUND: u64 = 16;
/// Pages already resident whose mapping a fault carries around it (an aligned window): no
/// I/O, only stub operations, which go with the resuming round trip (below `MAX_OPS`).
pub const MAP_AROUND: u64 = 32;

/// At most this many runs of pages (neighbours in the guest and in physical memory, alike in
/// protection) fork maps into the child's stub before it first runs, and exec into the new
/// image's: two stub round trips of operations (`MAX_OPS` each) at most. Measured on the
/// shell workload: a forked busybox sh has ~430 pages in ~100 runs (physical memory is
/// fragmented); 48 runs left 11 read faults per child, 192 left 4.
pub const MIRROR_RUNS: usize = 124;
/// The stack pages around its stack pointer a lone thread's fork copies for the child at once
/// rather than sharing them copy-on-write (see [`AddressSpace::fork`]): this many, of which
/// [`FORK_COPY_BELOW`] below the page of the stack pointer (where the next calls' frames go).
pub const FORK_COPY_PAGES: u64 = 8;
pub const FORK_COPY_BELOW: u64 = 2;
/// A lone thread's fork copies every private page its stub maps writable (written since the
/// last fork: the process's hot data, heap and stack) for the child at once when there are at
/// most this many and memory is not short, as it does the stack's (see [`AddressSpace::fork`]).
pub const FORK_COPY_WRITTEN_MAX: usize = 64;

/// Lowest address the guest may map (mmap_min_addr).
pub const MMAP_MIN: u64 = 0x10000;
/// Top of the guest stack region (below the stub area, with a gap).
pub const STACK_TOP: u64 = USER_END - 0x1000_0000;
/// Stack size reserved below STACK_TOP (RLIMIT_STACK).
pub const STACK_SIZE: u64 = 8 << 20;
/// Where top-down mmap placement starts.
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - 0x1000_0000;

/// A writable shared mapping of a file whose pages are written back from its page cache
/// (ext2): the cache, and the page index the mapping starts at. Its pages are mapped
/// writable only by a write's fault, which marks the page dirty first.
fn written_back(e: &MapEntry) -> Option<(Arc<crate::vm::pagecache::PageCache>, u64)> {
    match &e.backing {
        Backing::SharedFile { vnode, offset, .. } if e.prot & PROT_WRITE != 0 => Some((vnode.page_cache()?, offset / PAGE)),
        _ => None,
    }
}

/// Where a private file mapping's pages are the file's cached pages as they are (a fault maps
/// them so, copy-on-write: [`AddressSpace::map_cached`], [`AddressSpace::adopt_cached`]): its
/// whole pages, at a page-aligned file offset, of an accessible mapping.
struct CachedSpan<'a> {
    vnode: &'a crate::fs::vfs::VnodeRef,
    cache: Arc<crate::vm::pagecache::PageCache>,
    /// The mapping's first page, and the file page index there.
    first_vpn: u64,
    first_idx: u64,
    /// How many pages from there hold file data.
    pages: u64,
}

fn cached_span(e: &MapEntry) -> Option<CachedSpan<'_>> {
    let Backing::File { vnode, offset, file_len } = &e.backing else { return None };
    if e.prot == 0 || !offset.is_multiple_of(PAGE) {
        return None;
    }
    let cache = vnode.page_cache()?;
    let pages = (file_len / PAGE).min((e.end - e.start) / PAGE);
    Some(CachedSpan { vnode, cache, first_vpn: e.start / PAGE, first_idx: offset / PAGE, pages })
}

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    Some(a.checked_add(PAGE - 1)? & !(PAGE - 1))
}

/// Bytes from `a` to the end of its page (1..=PAGE).
pub fn to_page_end(a: u64) -> usize {
    crate::kern::conv::usize_of(PAGE - a % PAGE)
}

/// A resident page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pte {
    pub pa: u64,
    /// Shared copy-on-write: a write must copy it first (unless no one else has it).
    pub cow: bool,
    /// What the stub has mapped now (PROT_* bits, 0 when not mapped).
    pub stub_prot: u32,
}

/// Why a fault could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No mapping there (SEGV_MAPERR).
    NotMapped,
    /// The mapping does not allow the access (SEGV_ACCERR).
    Protection,
    /// The backing file could not be read (SIGBUS).
    Io,
    /// Physical memory is exhausted.
    OutOfMemory,
}

/// Access kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// A mapping change the stub must make before the guest runs again (queued by the kernel,
/// carried out by the stub thread that resumes next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubOp {
    /// Map physical page(s) `[pa, pa + len)` at `addr` with `prot`; `populate`: pages the
    /// guest is about to touch (the faulting page, a fault-around run, a fork child's own
    /// copies of what its parent wrote), whose host page table
    /// the stub fills at once when they come to more than one page ([`stub_ops`]) — no host
    /// page fault per page.
    Map { addr: u64, len: u64, prot: u32, pa: u64, populate: bool },
    /// Unmap `[addr, addr + len)`.
    Unmap { addr: u64, len: u64 },
}

/// The software page table and the stub operations that mirror it: what a fault changes, so
/// under its own spinlock (`vm_pages`) inside the shared map lock. Never held across a sleep
/// (a file read happens with it dropped).
#[derive(Debug, Default)]
struct PageTable {
    pages: BTreeMap<u64, Pte>,
    pending: Vec<StubOp>,
    /// Whether `pending` takes access away that threads running in the stub may still have:
    /// an unmap, or a page the stub maps replaced by another (a copy-on-write copy).
    unmap_queued: bool,
    /// Whether a thread is carrying unmaps out in the stub now ([`AddressSpace::sync_stub`]):
    /// until it is done, the stub may still map pages whose `stub_prot` says it does not.
    unmaps_in_flight: bool,
    /// Physical pages that left the table while the stub may still map them: released once
    /// the stub has carried out `pending` (see the module doc).
    deferred: Vec<u64>,
    /// Whether first touches of private anonymous memory go up page by page (fault-around).
    seq: crate::vm::faultaround::Sequential,
    /// Set whenever `pending` or `deferred` gets something ([`PageTable::queue`]), cleared by
    /// the thread that takes them ([`PageTable::take`]; a sync taking unmaps keeps it set
    /// until they have landed): a resuming thread finds out without the map's lock that it
    /// has nothing to take or wait for ([`AddressSpace::ops_queued`]).
    queued: Arc<AtomicBool>,
}

impl PageTable {
    /// Take the pending operations and the pages to release after them, to be carried out
    /// before the taker's guest code runs again (a lone thread: nobody else runs in the
    /// stub); nothing is queued any more.
    fn take(&mut self) -> (Vec<StubOp>, Vec<u64>) {
        self.unmap_queued = false;
        self.queued.store(false, Ordering::Release);
        (std::mem::take(&mut self.pending), std::mem::take(&mut self.deferred))
    }

    /// [`PageTable::take`] for a thread that carries the operations out in the stub now,
    /// while others may run there ([`AddressSpace::sync_stub`]); whether they take access
    /// away. If they do, the flag stays set until they have landed — it is never cleared
    /// meanwhile, not even for an instant: a thread resuming reads it without the lock, and
    /// one that saw it clear then would run on the old page of a replaced mapping (a
    /// copy-on-write copy the kernel had just written; t_stress's stale reads).
    fn take_for_sync(&mut self) -> (bool, Vec<StubOp>, Vec<u64>) {
        let unmaps = self.unmap_queued;
        self.unmaps_in_flight = unmaps;
        self.unmap_queued = false;
        if !unmaps {
            self.queued.store(false, Ordering::Release);
        }
        (unmaps, std::mem::take(&mut self.pending), std::mem::take(&mut self.deferred))
    }

    /// The ranges of the unmaps queued, when nothing else is queued and no unmaps are under
    /// way: the stub then maps what `stub_prot` says, less those (see `vm::residue`).
    fn queued_unmaps(&self) -> Option<Vec<crate::vm::residue::Range>> {
        if self.unmaps_in_flight {
            return None;
        }
        self.pending
            .iter()
            .map(|op| match *op {
                StubOp::Unmap { addr, len } => Some((addr, len)),
                StubOp::Map { .. } => None,
            })
            .collect()
    }

    /// The stub is given up with what `queued_unmaps` and `stub_prot` said it maps (taken by
    /// the caller): nothing is queued or in it any more; the pages waiting for it are handed
    /// back.
    fn forget_stub(&mut self) -> Vec<u64> {
        self.pending.clear();
        self.unmap_queued = false;
        for p in self.pages.values_mut() {
            p.stub_prot = 0;
        }
        std::mem::take(&mut self.deferred)
    }

    /// Queue `op` for the stub, and say so to the trap loop.
    fn queue(&mut self, op: StubOp) {
        self.pending.push(op);
        self.queued.store(true, Ordering::Release);
    }

    /// Queue an unmap of `[start, end)` in the stub, in pieces its filter accepts.
    fn unmap_in_stub(&mut self, start: u64, end: u64) {
        let mut a = start;
        while a < end {
            let len = (end - a).min(1 << 30);
            self.queue(StubOp::Unmap { addr: a, len });
            self.unmap_queued = true;
            a += len;
        }
    }

    /// A page leaves the table: released now, or once the stub lost it — when it maps it
    /// (`stub_mapped`), or may still until the unmaps queued or under way are carried out (a
    /// page fork or mprotect took from the stub, whose `stub_prot` says so already).
    fn drop_page(&mut self, pm: &PhysMem, pa: u64, stub_mapped: bool) {
        // A page the stub maps leaving the table takes access away like an unmap, even when
        // a map of its replacement follows (a copy-on-write copy): until that lands, a
        // thread would read the old page through the stub without faulting.
        if stub_mapped {
            self.unmap_queued = true;
        }
        if self.unmap_queued || self.unmaps_in_flight {
            self.deferred.push(pa);
            self.queued.store(true, Ordering::Release);
        } else {
            pm.page_unref(pa);
        }
    }

    /// Where a new page for `vpn` had best lie: after its lower neighbour's page, or before
    /// its upper one's, when that page is anonymous memory or this space's own (not a file's
    /// cached page shared copy-on-write: the pages after it are the file's) — so
    /// that neighbours in the guest are neighbours in memory, one host mapping in the stub
    /// (see `stub_ops` and [`mirror_runs`]). The allocator takes it only if free.
    fn near(&self, pm: &PhysMem, vpn: u64) -> Option<u64> {
        let own = |v: u64| {
            self.pages
                .get(&v)
                .filter(|p| {
                    !p.cow || pm.page(p.pa).is_some_and(|g| g.flags.load(Ordering::Relaxed) & pgflags::ANON != 0)
                })
                .map(|p| p.pa)
        };
        match vpn.checked_sub(1).and_then(own) {
            Some(pa) => Some(pa + PAGE),
            None => own(vpn + 1).and_then(|pa| pa.checked_sub(PAGE)).filter(|&pa| pa != 0),
        }
    }

    /// Map `pte`'s page at `vpn` in the stub with `prot` unless it already is; record it.
    fn map_in_stub(&mut self, vpn: u64, pte: Pte, prot: u32) -> Pte {
        self.map_in_stub_as(vpn, pte, prot, false)
    }

    /// [`PageTable::map_in_stub`] of a page the guest touches next (populated: see [`StubOp::Map`]).
    fn map_in_stub_populated(&mut self, vpn: u64, pte: Pte, prot: u32) -> Pte {
        self.map_in_stub_as(vpn, pte, prot, true)
    }

    fn map_in_stub_as(&mut self, vpn: u64, mut pte: Pte, prot: u32, populate: bool) -> Pte {
        if pte.stub_prot != prot {
            self.queue(StubOp::Map { addr: vpn * PAGE, len: PAGE, prot, pa: pte.pa, populate });
            pte.stub_prot = prot;
        }
        self.pages.insert(vpn, pte);
        pte
    }
}

/// An exiting process's stub ([`AddressSpace::take_stub_keeping`]): the stub, the unmaps to
/// run in it, the pages to release after them, and the mappings it keeps.
pub type KeptStub = (Arc<StubSpace>, Ops, Vec<u64>, Vec<MappedRun>);

static NEXT_SPACE_ID: AtomicU64 = AtomicU64::new(1);

/// The stub's operations for `pending`, in order, with maps of neighbouring pages that are
/// neighbours in physical memory too (and alike in protection and in populating) made one:
/// fewer host calls and fewer host mappings in the stub. A populated map of more than one
/// page has the stub fill its host page table too ([`Ops::map_populate`]); one page is left
/// to the guest's host fault (as cheap as the extra host call).
fn stub_ops(pending: Vec<StubOp>) -> Ops {
    /// A run of maps: (addr, len, prot, pa, populate).
    type Run = (u64, u64, u32, u64, bool);
    fn flush(ops: &mut Ops, run: Option<Run>) {
        match run {
            Some((a, l, p, q, true)) if l > PAGE => ops.map_populate(a, l, p, q),
            Some((a, l, p, q, _)) => ops.map(a, l, p, q),
            None => {}
        }
    }
    let mut ops = Ops::new();
    let mut run: Option<Run> = None;
    for op in pending {
        let (addr, len, prot, pa, populate) = match op {
            StubOp::Map { addr, len, prot, pa, populate } => (addr, len, prot, pa, populate),
            StubOp::Unmap { addr, len } => {
                flush(&mut ops, run.take());
                ops.unmap(addr, len);
                continue;
            }
        };
        if let Some((a, l, p, q, n)) = &mut run
            && *a + *l == addr
            && *q + *l == pa
            && *p == prot
            && *n == populate
            && *l + len <= 1 << 30
        {
            *l += len;
            continue;
        }
        flush(&mut ops, run.replace((addr, len, prot, pa, populate)));
    }
    flush(&mut ops, run);
    ops
}

/// The runs of `(vpn, prot, pa)` pages (ascending): pages neighbouring in the guest and in
/// physical memory with one protection, as (first vpn, pages, prot, first pa); at most
/// [`MIRROR_RUNS`] of them, the longest (fork's child, exec's [`AddressSpace::map_cached`]:
/// the pages left out come by faults, with fault-around, as before; a run is one stub mmap).
fn mirror_runs(want: &[(u64, u32, u64)]) -> Vec<(u64, u64, u32, u64)> {
    let mut runs: Vec<(u64, u64, u32, u64)> = Vec::new();
    for &(vpn, prot, pa) in want {
        if let Some(r) = runs.last_mut()
            && r.0 + r.1 == vpn
            && r.3 + r.1 * PAGE == pa
            && r.2 == prot
        {
            r.1 += 1;
            continue;
        }
        runs.push((vpn, 1, prot, pa));
    }
    if runs.len() > MIRROR_RUNS {
        runs.sort_by_key(|r| std::cmp::Reverse(r.1));
        runs.truncate(MIRROR_RUNS);
        runs.sort_by_key(|r| r.0);
    }
    runs
}

/// An address space. Shared by the threads of a process under a reader-writer sleep lock
/// ([`VmMap`], `vmmap`): the map (`entries`, `brk`) changes only under the write lock; faults
/// and copyin/copyout take the read lock and change only the page table, under its spinlock.
#[derive(Debug)]
pub struct AddressSpace {
    pub id: u64,
    /// Where its pages come from (the machine's memory; a scratch one in tests).
    pm: Arc<PhysMem>,
    entries: BTreeMap<u64, MapEntry>,
    /// The page table and pending stub operations (`vm_pages`).
    pt: SpinLock<PageTable>,
    /// Held while a thread carries the queued operations out in the stub
    /// ([`AddressSpace::sync_stub`]): one at a time, so that a thread that finds the queue
    /// empty knows the operations taken before it are done (`stub_sync`, under `vmmap`).
    stub_sync: SleepLock<()>,
    /// Resident pages (`pt.pages.len()`), readable without the spinlock (statistics, ddb).
    resident: AtomicU64,
    /// Program break: start of the heap and its current end.
    pub brk_start: u64,
    pub brk: u64,
    /// Top-down mmap placement starts below this (exec chooses it: [`MMAP_BASE`], or a
    /// randomised one).
    pub mmap_base: u64,
    /// The stub mirroring this space (None until the first thread runs).
    pub stub: Option<Arc<StubSpace>>,
    /// Owner recorded in vm_page (the pid).
    pub owner: u64,
    /// MADV_DONTFORK and MADV_WIPEONFORK ranges (see [`crate::vm::inherit`]).
    pub inherit: crate::vm::inherit::InheritMap,
    /// Locked ranges (see [`crate::vm::mlock`]); a fork child has none.
    pub locked: crate::vm::ranges::RangeMap<crate::vm::mlock::Lock>,
    /// mlockall(MCL_FUTURE): new mappings are locked so.
    pub lock_future: Option<crate::vm::mlock::Lock>,
    /// MAP_GROWSDOWN mappings: a fault just below one grows it ([`AddressSpace::grow_down`]).
    pub growsdown: crate::vm::ranges::RangeMap<()>,
    /// The largest run of pages a fault makes resident ([`crate::vm::faultaround`]; 1: off).
    pub faultaround: u64,
    /// MADV_NOHUGEPAGE ranges: faulted in page by page (no fault-around of anonymous memory).
    pub nofaultaround: crate::vm::ranges::RangeMap<()>,
    /// System call sites patched in this space (`kern::callsite`), by their first byte.
    /// Kept for the space's life: a trap on a site's faulting byte is its call even once the
    /// site was put back.
    pub callsites: BTreeMap<u64, platform::stub::fast::Site>,
    /// No more patches here (the table gave way to a mapping of the program's).
    pub callsites_off: bool,
}

/// An address space under its lock, as processes share it (CLONE_VM).
pub type VmMap = RwSleepLock<AddressSpace>;

impl AddressSpace {
    /// An empty space in the machine's memory, its pages owned by pid `owner`.
    pub fn new(owner: u64) -> AddressSpace {
        AddressSpace::with_physmem(owner, physmem::shared().expect("physical memory"))
    }

    /// An empty space whose pages come from `pm`.
    pub fn with_physmem(owner: u64, pm: Arc<PhysMem>) -> AddressSpace {
        AddressSpace {
            id: NEXT_SPACE_ID.fetch_add(1, Ordering::Relaxed),
            pm,
            entries: BTreeMap::new(),
            pt: SpinLock::new("vm_pages", PageTable::default()),
            stub_sync: SleepLock::new("stub_sync", ()),
            resident: AtomicU64::new(0),
            brk_start: 0,
            brk: 0,
            mmap_base: MMAP_BASE,
            stub: None,
            owner,
            inherit: crate::vm::inherit::InheritMap::default(),
            locked: crate::vm::ranges::RangeMap::default(),
            lock_future: None,
            growsdown: crate::vm::ranges::RangeMap::default(),
            faultaround: crate::vm::faultaround::max_pages(),
            nofaultaround: crate::vm::ranges::RangeMap::default(),
            callsites: BTreeMap::new(),
            callsites_off: false,
        }
    }

    /// This space under a new lock, to hang in a process.
    pub fn into_map(self) -> Arc<VmMap> {
        Arc::new(RwSleepLock::new("vmmap", self))
    }

    /// The physical memory its pages live in (copyin/copyout read and write through it).
    pub fn physmem(&self) -> &Arc<PhysMem> {
        &self.pm
    }

    /// Linux's OVERCOMMIT_GUESS for one private writable request of `len` bytes (mmap, brk,
    /// mremap's growth): no more than all of physical memory. Memory is committed on touch.
    pub fn overcommit_ok(&self, len: u64) -> bool {
        len / PAGE <= self.pm.npages() as u64
    }

    /// The page table, through exclusive access to the space (map changes).
    fn pt_mut(&mut self) -> &mut PageTable {
        self.pt.get_mut()
    }

    /// Note the page table's size after a change.
    fn count_resident(&self, pt: &PageTable) {
        self.resident.store(pt.pages.len() as u64, Ordering::Relaxed);
    }

    /// Mapping operations waiting for the stub, and the pages to release once the stub has
    /// carried them out ([`AddressSpace::release`]): taken by the thread about to run.
    pub fn take_ops(&self) -> (Ops, Vec<u64>) {
        let mut pt = self.pt.lock();
        let (pending, deferred) = pt.take();
        drop(pt);
        (stub_ops(pending), deferred)
    }

    /// The flag that says operations may be waiting for the stub: set when one is queued,
    /// and kept set while unmaps another thread took are on their way into the stub
    /// ([`AddressSpace::sync_stub`]); cleared by the thread that takes the operations. The
    /// trap loop keeps it, and a thread that finds it clear resumes without this space's
    /// locks: nothing it could reach has been taken away from the map but not yet from the
    /// stub (an address range freed there could be a new mapping already).
    pub fn ops_queued(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.pt.lock().queued)
    }

    /// Release pages taken with [`AddressSpace::take_ops`], once the stub has carried out
    /// the operations taken with them.
    pub fn release(&self, pages: Vec<u64>) {
        for pa in pages {
            self.pm.page_unref(pa);
        }
    }

    /// Whether operations that take access away wait for the stub.
    pub fn unmap_queued(&self) -> bool {
        self.pt.lock().unmap_queued
    }

    /// Carry out the queued operations in the stub now, through `via` (a thread trapped in
    /// the kernel; the map held, shared at least, and no spinlock), then release the pages
    /// they unmapped: after this no thread running in the stub reaches what the map no longer
    /// has (Linux's TLB shootdown). False, with nothing taken, when `via` cannot carry
    /// operations out (it has not trapped yet).
    pub fn sync_stub(&self, via: &StubThread) -> bool {
        self.sync(via, false)
    }

    /// [`AddressSpace::sync_stub`] when operations that take access away are queued, or are
    /// on their way into the stub through another thread (waited for, under `stub_sync`): after
    /// this no thread running in the stub has access the map took away before.
    pub fn sync_stub_unmaps(&self, via: &StubThread) -> bool {
        self.sync(via, true)
    }

    fn sync(&self, via: &StubThread, only_unmaps: bool) -> bool {
        if !via.can_exec_ops() {
            return false;
        }
        // Wait for another thread's operations still on their way into the stub.
        let _one = self.stub_sync.lock();
        let (unmaps, ops, deferred) = {
            let mut pt = self.pt.lock();
            if only_unmaps && !pt.unmap_queued {
                return true;
            }
            // Until the unmaps have landed, threads resuming must come this way and wait
            // under `stub_sync`: the ranges they freed may already hold new mappings, which
            // a thread would otherwise reach through the stale host ones (t_vmrace).
            pt.take_for_sync()
        };
        let ops = stub_ops(ops);
        // A stub that died meanwhile maps nothing any more: its pages can go all the same.
        if !ops.is_empty() && !via.exec_ops(ops) {
            log::debug!("vm: space {}: stub gone while syncing its mappings", self.id);
        }
        if unmaps {
            self.pt.lock().unmaps_in_flight = false;
        }
        self.release(deferred);
        true
    }

    /// The queued stub operations themselves (taken): what a test checks.
    #[cfg(test)]
    pub fn take_stub_ops(&self) -> Vec<StubOp> {
        // Taken as a stub would carry them out: the pages they unmapped can go.
        let mut pt = self.pt.lock();
        pt.unmap_queued = false;
        let (ops, deferred) = (std::mem::take(&mut pt.pending), std::mem::take(&mut pt.deferred));
        drop(pt);
        self.release(deferred);
        ops
    }

    pub fn entries(&self) -> impl Iterator<Item = &MapEntry> {
        self.entries.values()
    }

    /// Resident pages.
    pub fn rss_pages(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Resident pages in [start, end), and how many of them are copy-on-write; None when a
    /// fault holds the page table (the debugger does not wait).
    pub fn resident_in(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let pt = self.pt.try_lock()?;
        Some(
            pt.pages
                .range(start / PAGE..end.div_ceil(PAGE))
                .fold((0, 0), |(n, cow), (_, p)| (n + 1, cow + u64::from(p.cow))),
        )
    }

    /// The addresses of the resident pages of `[start, end)`, in order (nothing is brought in).
    pub fn resident_addrs(&self, start: u64, end: u64) -> Vec<u64> {
        self.pt.lock().pages.range(start / PAGE..end.div_ceil(PAGE)).map(|(vpn, _)| vpn * PAGE).collect()
    }

    /// The resident pages of `[start, end)` as (address, physical page, shared copy-on-write),
    /// in order; nothing is brought in (/proc/PID/pagemap).
    pub fn resident_ptes(&self, start: u64, end: u64) -> Vec<(u64, u64, bool)> {
        self.pt.lock().pages.range(start / PAGE..end.div_ceil(PAGE)).map(|(vpn, p)| (vpn * PAGE, p.pa, p.cow)).collect()
    }

    /// The physical page behind `addr` if it is resident now; nothing is brought in (a core
    /// dump reads memory this way, leaving what was never touched a hole).
    pub fn resident_page(&self, addr: u64) -> Option<u64> {
        self.pt.lock().pages.get(&(addr / PAGE)).map(|pte| pte.pa)
    }

    /// Mappings (vm.max_map_count counts them; vk does not merge neighbours as Linux does).
    pub fn map_count(&self) -> usize {
        self.entries.len()
    }

    /// Bytes mapped.
    pub fn vsz(&self) -> u64 {
        self.entries.values().map(|e| e.end - e.start).sum()
    }

    /// What /proc/PID/maps calls entry `e`: its name, or `[heap]` for the unnamed start of
    /// the break.
    pub fn entry_name<'a>(&self, e: &'a MapEntry) -> &'a [u8] {
        if e.name.is_empty() && e.start == self.brk_start && e.start != 0 { b"[heap]" } else { &e.name }
    }

    /// The entry containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&MapEntry> {
        let (_, e) = self.entries.range(..=addr).next_back()?;
        (addr < e.end).then_some(e)
    }

    /// Whether `[start, end)` overlaps no mapping.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.entries.range(..end).next_back().is_none_or(|(_, e)| e.end <= start)
    }

    /// A free range of `len` bytes, as high as possible below `below` (top-down placement).
    pub fn find_free(&self, len: u64, below: u64) -> Option<u64> {
        let mut top = below;
        for (_, e) in self.entries.range(..below).rev() {
            if e.end <= top && top - e.end >= len {
                return Some(top - len);
            }
            top = top.min(e.start);
        }
        (top >= MMAP_MIN + len).then(|| top - len)
    }

    /// Add a mapping over `[start, end)`, replacing whatever was there (MAP_FIXED semantics).
    pub fn map(&mut self, e: MapEntry) {
        debug_assert!(e.start.is_multiple_of(PAGE) && e.end.is_multiple_of(PAGE) && e.start < e.end);
        self.unmap(e.start, e.end);
        self.entries.insert(e.start, e);
    }

    /// A fault at `addr`, which no mapping holds: if the next mapping above it grows down
    /// (MAP_GROWSDOWN), extend it down to `addr`'s page — unless that comes within
    /// [`STACK_GUARD_GAP`] of the mapping below, or makes it longer than `limit` bytes
    /// (RLIMIT_STACK), as Linux's expand_stack refuses. Whether it grew.
    pub fn grow_down(&mut self, addr: u64, limit: u64) -> bool {
        let new_start = page_down(addr);
        let Some((&start, e)) = self.entries.range(addr..).next() else { return false };
        if self.growsdown.at(start).is_none() || !matches!(e.backing, Backing::Anon) {
            return false;
        }
        let end = e.end;
        if end - new_start > limit {
            return false;
        }
        let below = self.entries.range(..addr).next_back().map_or(0, |(_, p)| p.end);
        if below > addr || new_start.saturating_sub(STACK_GUARD_GAP) < below {
            return false;
        }
        let Some(mut e) = self.entries.remove(&start) else { return false };
        e.start = new_start;
        self.entries.insert(new_start, e);
        self.growsdown.set(new_start, end, Some(()));
        true
    }

    /// Split entries so that `at` is a boundary.
    fn split_at(&mut self, at: u64) {
        let Some((&s, _)) = self.entries.range(..at).next_back() else { return };
        let Some(e) = self.entries.get_mut(&s) else { return };
        if e.end > at {
            let tail = e.split_off(at);
            self.entries.insert(at, tail);
        }
    }

    /// Drop the pages of `[start, end)` (resident and in the stub).
    fn drop_pages(&mut self, start: u64, end: u64) {
        let pm = &self.pm;
        let pt = self.pt.get_mut();
        let vpns: Vec<u64> = pt.pages.range(start / PAGE..end.div_ceil(PAGE)).map(|(&v, _)| v).collect();
        let mut stub_mapped = false;
        for v in vpns {
            if let Some(pte) = pt.pages.remove(&v) {
                stub_mapped |= pte.stub_prot != 0;
                pt.drop_page(pm, pte.pa, pte.stub_prot != 0);
            }
        }
        if stub_mapped {
            pt.unmap_in_stub(start, end);
        }
        self.resident.store(pt.pages.len() as u64, Ordering::Relaxed);
    }

    /// munmap(2): remove every mapping in `[start, end)`.
    pub fn unmap(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.entries.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            self.entries.remove(&k);
        }
        self.inherit.clear(start, end);
        self.locked.clear(start, end);
        self.growsdown.clear(start, end);
        self.nofaultaround.clear(start, end);
        self.drop_pages(start, end);
    }

    /// mprotect(2): change the protection of `[start, end)`, which must be fully mapped.
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        if !self.fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        self.split_at(start);
        self.split_at(end);
        for (_, e) in self.entries.range_mut(start..end) {
            e.prot = prot;
        }
        // Pages mapped in the stub with more access than allowed now lose it; they come back
        // by faults with the new protection.
        let pt = self.pt_mut();
        let mut lo = None;
        for (&v, pte) in pt.pages.range_mut(start / PAGE..end / PAGE) {
            if pte.stub_prot & !prot != 0 {
                pte.stub_prot = 0;
                lo.get_or_insert(v);
            }
        }
        if let Some(lo) = lo {
            pt.unmap_in_stub(lo * PAGE, end);
        }
        Ok(())
    }

    /// Whether `[start, end)` lies inside one mapping.
    pub fn within_one(&self, start: u64, end: u64) -> bool {
        self.find(start).is_some_and(|e| end <= e.end)
    }

    /// Whether `[start, end)` is mapped throughout (by any number of entries).
    pub fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut a = start;
        while a < end {
            match self.find(a) {
                Some(e) => a = e.end,
                None => return false,
            }
        }
        true
    }

    /// mremap(2)'s move and resize of `[old, old + old_len)`, which lies inside one mapping:
    /// grow or shrink it in place when `new == old`, else move it (and its resident pages) to
    /// `[new, new + new_len)`, which the caller has checked is free. The grown part has the
    /// mapping's backing and protection.
    pub fn remap(&mut self, old: u64, old_len: u64, new: u64, new_len: u64) {
        let old_end = old + old_len;
        if new == old && new_len <= old_len {
            self.unmap(old + new_len, old_end);
            return;
        }
        self.split_at(old);
        self.split_at(old_end);
        let Some(mut e) = self.entries.remove(&old) else { return };
        e.start = new;
        e.end = new + new_len;
        if new != old {
            // The resident pages move; the stub loses them at the old place and faults them
            // in at the new one.
            let pm = &self.pm;
            let pt = self.pt.get_mut();
            let vpns: Vec<u64> = pt.pages.range(old / PAGE..old_end / PAGE).map(|(&v, _)| v).collect();
            let mut moved = Vec::with_capacity(vpns.len());
            let mut stub_mapped = false;
            for v in vpns {
                if let Some(mut pte) = pt.pages.remove(&v) {
                    stub_mapped |= pte.stub_prot != 0;
                    pte.stub_prot = 0;
                    moved.push((v - old / PAGE, pte));
                }
            }
            if stub_mapped {
                pt.unmap_in_stub(old, old_end);
            }
            for (i, pte) in moved {
                if i < new_len / PAGE {
                    pt.pages.insert(new / PAGE + i, pte);
                } else {
                    pt.drop_page(pm, pte.pa, stub_mapped);
                }
            }
            self.resident.store(pt.pages.len() as u64, Ordering::Relaxed);
        }
        self.entries.insert(new, e);
    }

    /// madvise(MADV_DONTNEED): drop private pages; the next touch sees zeros or the file.
    pub fn dontneed(&mut self, start: u64, end: u64) {
        self.drop_pages(start, end);
    }

    /// Resolve a fault at `addr`: make the page resident with the access, and queue its
    /// mapping in the stub. Needs only shared access to the space: a page that must be read
    /// (file data, a shared object's page) is read with the page-table lock dropped, and if
    /// another thread made the same page resident meanwhile, its page wins and ours is freed.
    pub fn fault(&self, addr: u64, access: Access) -> Result<u64, FaultError> {
        self.fault_in(addr, access, false)
    }

    /// [`AddressSpace::fault`] for a fault the guest took (a trap): a first touch of private
    /// anonymous memory that continues a sequential stream makes a run of pages resident
    /// ([`crate::vm::faultaround`]), so the stream's next pages do not trap. (A kernel access
    /// pays no trap per page: it brings in only what it touches.)
    pub fn user_fault(&self, addr: u64, access: Access) -> Result<u64, FaultError> {
        self.fault_in(addr, access, true)
    }

    fn fault_in(&self, addr: u64, access: Access, user: bool) -> Result<u64, FaultError> {
        let vpn = addr / PAGE;
        let e = self.find(addr).ok_or(FaultError::NotMapped)?;
        // On x86 any access right implies read; PROT_NONE allows nothing.
        let allowed = match access {
            Access::Read => e.prot != 0,
            Access::Write => e.prot & PROT_WRITE != 0,
            Access::Exec => e.prot & PROT_EXEC != 0,
        };
        if !allowed {
            return Err(FaultError::Protection);
        }
        let page_va = vpn * PAGE;
        let wb = written_back(e);
        let mut fresh: Option<Pte> = None;
        // Zeroed pages for the private anonymous pages after this one (fault-around).
        let mut ahead: Vec<u64> = Vec::new();
        let pa = loop {
            let mut pt = self.pt.lock();
            let cow = |pt: &mut PageTable, pte: Pte| {
                if access == Access::Write && pte.cow { self.break_cow(pt, vpn, pte) } else { Ok(pte) }
            };
            let got = match (pt.pages.get(&vpn).copied(), fresh.take()) {
                (Some(pte), lost) => {
                    if let Some(lost) = lost {
                        // Another thread brought the page in while we read it: one page.
                        self.pm.page_unref(lost.pa);
                    }
                    cow(&mut pt, pte)
                }
                (None, Some(pte)) => cow(&mut pt, pte),
                (None, None) => {
                    let run = if user { self.anon_run(&mut pt, e, vpn) } else { 1 };
                    let near = pt.near(&self.pm, vpn);
                    drop(pt);
                    if run > 1 {
                        ahead = self.alloc_run(run, near);
                        // The stream's next run will want the pages after this one's in
                        // physical memory (`pt.near`): have the host back them meanwhile.
                        if let Some(&top) = ahead.last() {
                            platform::prefill::hint(top + PAGE, run.saturating_mul(2).min(self.faultaround) * PAGE);
                        }
                        if !ahead.is_empty() {
                            // The lowest page for the faulting one: a run contiguous in
                            // physical memory is one mapping in the stub.
                            fresh = Some(Pte { pa: ahead.remove(0), cow: false, stub_prot: 0 });
                            continue;
                        }
                    }
                    fresh = Some(self.populate(e, page_va, near)?);
                    continue;
                }
            };
            let mut pte = match got {
                Ok(pte) => pte,
                Err(err) => {
                    for pa in ahead {
                        self.pm.page_unref(pa);
                    }
                    return Err(err);
                }
            };
            // A fault on a page the stub should already have (with this access) means the
            // stub lost it (or another thread's stub operations are not done yet): map it
            // again rather than loop.
            let had = match access {
                Access::Read => pte.stub_prot != 0,
                Access::Write => pte.stub_prot & PROT_WRITE != 0,
                Access::Exec => pte.stub_prot & PROT_EXEC != 0,
            };
            if had {
                log::debug!("vm: refault at {addr:#x} ({access:?}) of a page the stub had; mapping it again");
                pte.stub_prot = 0;
            }
            let map_prot = if pte.cow && !e.shared() {
                e.prot & !PROT_WRITE
            } else if access != Access::Write && wb.is_some() {
                // Writable only once written: the write's fault marks the page dirty.
                e.prot & !PROT_WRITE
            } else {
                e.prot
            };
            // The guest touches the page as soon as it runs again (and a run's pages after it):
            // the stub fills its host page table as it maps them, one host call for all. The
            // faulting page's map goes first, so that it and a run after it that is
            // contiguous in physical memory are one mmap.
            let pte = pt.map_in_stub_populated(vpn, pte, map_prot);
            if !ahead.is_empty() {
                self.map_ahead(&mut pt, e, vpn, std::mem::take(&mut ahead));
            }
            self.count_resident(&pt);
            break pte.pa;
        };
        if access == Access::Write
            && let Some((cache, first)) = wb
        {
            // Before the stub maps it writable (when the fault's operations run).
            cache.mark_dirty(first + (vpn - e.start / PAGE));
        }
        self.fault_around(e, vpn, access);
        Ok(pa)
    }

    /// A first touch of page `vpn` of `e`: how many pages from it on to make resident (1:
    /// only it) — more when `e` is private anonymous memory touched sequentially, none of the
    /// run is resident yet, and memory is not low (see [`crate::vm::faultaround`]).
    fn anon_run(&self, pt: &mut PageTable, e: &MapEntry, vpn: u64) -> u64 {
        if !matches!(e.backing, Backing::Anon) {
            return 1;
        }
        // The stream must have touched the page below in this mapping (a mapping's first
        // page starts none), and not in memory asked to be faulted page by page: a
        // MADV_NOHUGEPAGE or locked range (locked on fault, its pages count when touched).
        let max = if vpn == e.start / PAGE || !self.run_allowed(vpn) { 1 } else { self.faultaround };
        let want = pt.seq.touch(vpn, max).min(e.end / PAGE - vpn);
        // Up to the first page already resident (the run fills a hole, never replaces), or
        // asked to be faulted in page by page.
        let mut run = match pt.pages.range(vpn + 1..vpn + want).next() {
            Some((&v, _)) => v - vpn,
            None => want,
        };
        if (!self.nofaultaround.is_empty() || !self.locked.is_empty())
            && let Some(v) = (vpn + 1..vpn + run).find(|&v| !self.run_allowed(v))
        {
            run = v - vpn;
        }
        let run = if run > 1 { 1 + crate::vm::faultaround::room(&self.pm, run - 1) } else { 1 };
        pt.seq.mapped(vpn, run);
        run
    }

    /// Whether page `vpn` may be made resident by a fault on another page.
    fn run_allowed(&self, vpn: u64) -> bool {
        self.nofaultaround.at(vpn * PAGE).is_none() && self.locked.at(vpn * PAGE).is_none()
    }

    /// Up to `n` zeroed anonymous pages, in ascending physical order and as few runs as free
    /// memory allows, from `near` when free (fewer when memory runs out; none at all then is
    /// the caller's out-of-memory).
    fn alloc_run(&self, n: u64, near: Option<u64>) -> Vec<u64> {
        self.pm.alloc_zeroed_run(crate::kern::conv::usize_of(n), near, self.owner, pgflags::ANON)
    }

    /// Make the zeroed pages `pas` resident after page `vpn` of the private anonymous mapping
    /// `e`, one a page, where no page is yet (another thread may have faulted one in
    /// meanwhile: its page stays, ours is freed), and queue their mapping in the stub.
    fn map_ahead(&self, pt: &mut PageTable, e: &MapEntry, vpn: u64, pas: Vec<u64>) {
        let mut mapped = 0;
        for (v, pa) in (vpn + 1..).zip(pas) {
            if v >= e.end / PAGE || pt.pages.contains_key(&v) {
                self.pm.page_unref(pa);
            } else {
                pt.map_in_stub_populated(v, Pte { pa, cow: false, stub_prot: 0 }, e.prot);
                mapped += 1;
            }
        }
        crate::vm::faultaround::AROUND_ANON.fetch_add(mapped, Ordering::Relaxed);
    }

    /// Fault-around: with the faulting page, map its neighbours (the aligned window of
    /// [`MAP_AROUND`] pages, inside the same mapping) that are resident but not in the stub —
    /// after fork, or a stub that lost them; for a write of private memory, also the
    /// copy-on-write neighbours no one else holds any more, now writable; and, for a read of a
    /// private file mapping, read the file's next pages in too ([`FAULT_AROUND`]; Linux's fault-around over the
    /// page cache, with the read done here since vk has no page cache yet). Saves one trap per
    /// page.
    fn fault_around(&self, e: &MapEntry, vpn: u64, access: Access) {
        let lo = (vpn & !(FAULT_AROUND - 1)).max(e.start / PAGE);
        let hi = ((vpn | (FAULT_AROUND - 1)) + 1).min(e.end / PAGE);
        if e.prot == 0 {
            return;
        }
        // Read the file's missing pages first, with the page table unlocked: up to the first
        // that cannot be read (past the end of the file, out of memory: the fault says so).
        let mut fresh: Vec<(u64, Pte)> = Vec::new();
        if access != Access::Write && matches!(e.backing, Backing::File { .. }) {
            let missing: Vec<u64> = {
                let pt = self.pt.lock();
                (lo..hi).filter(|v| *v != vpn && !pt.pages.contains_key(v)).collect()
            };
            for v in missing {
                match self.populate(e, v * PAGE, None) {
                    Ok(pte) => fresh.push((v, pte)),
                    Err(_) => break,
                }
            }
        }
        // A read of a shared file mapping: the neighbours the file's page cache holds now,
        // without I/O (Linux's filemap_map_pages); read-only when the mapping is written back,
        // as below.
        if access != Access::Write
            && self.faultaround > 1
            && let Backing::SharedFile { vnode, offset, .. } = &e.backing
            && let Some(cache) = vnode.page_cache()
        {
            let missing: Vec<u64> = {
                let pt = self.pt.lock();
                (lo..hi).filter(|v| *v != vpn && !pt.pages.contains_key(v)).collect()
            };
            let first = offset / PAGE;
            fresh.extend(missing.into_iter().filter_map(|v| {
                let pa = cache.lookup(first + (v - e.start / PAGE))?;
                Some((v, Pte { pa, cow: false, stub_prot: 0 }))
            }));
        }
        let pm = &self.pm;
        // A write into private memory takes the neighbours this space alone holds back from
        // copy-on-write too (after fork, once the child exited or exec'd): one trap for the
        // window rather than one per page.
        let take_cow = access == Access::Write && !e.shared() && e.prot & PROT_WRITE != 0;
        // A shared file mapping written back from the page cache: its neighbours go in
        // read-only, so that a write to one faults and marks it dirty.
        let tracked = written_back(e).is_some();
        let mut pt = self.pt.lock();
        let mut ahead = 0;
        for (v, pte) in fresh {
            match pt.pages.entry(v) {
                std::collections::btree_map::Entry::Occupied(_) => {
                    pm.page_unref(pte.pa);
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(pte);
                    ahead += 1;
                }
            }
        }
        crate::vm::faultaround::AROUND_FILE.fetch_add(ahead, Ordering::Relaxed);
        let mlo = (vpn & !(MAP_AROUND - 1)).max(e.start / PAGE);
        let mhi = ((vpn | (MAP_AROUND - 1)) + 1).min(e.end / PAGE);
        let resident: Vec<(u64, Pte)> = pt.pages.range(mlo..mhi).map(|(&v, &p)| (v, p)).collect();
        for (v, mut pte) in resident {
            if v == vpn {
                continue;
            }
            if take_cow && pte.cow && pm.page(pte.pa).is_some_and(|p| p.refcount.load(Ordering::Acquire) == 1) {
                pte.cow = false;
            } else if pte.stub_prot != 0 {
                continue;
            }
            let prot = if (pte.cow && !e.shared()) || tracked { e.prot & !PROT_WRITE } else { e.prot };
            pt.map_in_stub(v, pte, prot);
        }
        self.count_resident(&pt);
    }

    /// A copy-on-write page being written: take it if nobody else has it, else copy. Called
    /// with the page table locked (no sleep: an allocation and a copy).
    fn break_cow(&self, pt: &mut PageTable, vpn: u64, pte: Pte) -> Result<Pte, FaultError> {
        let pm = &self.pm;
        let only_us = pm.page(pte.pa).is_some_and(|p| p.refcount.load(Ordering::Acquire) == 1);
        if only_us {
            return Ok(Pte { cow: false, stub_prot: 0, ..pte });
        }
        let new =
            pm.alloc_page_near(pt.near(&self.pm, vpn), self.owner, pgflags::ANON).ok_or(FaultError::OutOfMemory)?;
        pm.copy_page(new, pte.pa);
        // Other threads may read the old page until the new one replaces it in the stub.
        pt.drop_page(pm, pte.pa, pte.stub_prot != 0);
        Ok(Pte { pa: new, cow: false, stub_prot: 0 })
    }

    /// The first touch of a page: zeros, file data, or the shared object's page; a new
    /// reference (copy-on-write when it is a file's cached page a private mapping must not
    /// change). May sleep (file I/O): called without the page-table lock. A new page is the
    /// one at `near` when that is free ([`PageTable::near`]).
    fn populate(&self, e: &MapEntry, page_va: u64, near: Option<u64>) -> Result<Pte, FaultError> {
        let pm = &self.pm;
        let off = page_va - e.start;
        let own = |pa| Pte { pa, cow: false, stub_prot: 0 };
        let io = |e| match e {
            Errno::ENOMEM => FaultError::OutOfMemory,
            _ => FaultError::Io,
        };
        match &e.backing {
            Backing::Anon => pm.alloc_zeroed_near(near, self.owner, pgflags::ANON).map(own).ok_or(FaultError::OutOfMemory),
            Backing::Shared { object, offset } => {
                object.page((offset + off) / PAGE, self.owner).map(own).ok_or(FaultError::OutOfMemory)
            }
            Backing::SharedFile { vnode, offset, .. } => vnode.get_page((offset + off) / PAGE).map(own).map_err(io),
            Backing::File { vnode, offset, file_len } => {
                // A page wholly past the end of the file (as it is now): SIGBUS, as on Linux.
                let size = vnode.attr().map_err(|_| FaultError::Io)?.size;
                if offset + off >= page_up(size).unwrap_or(u64::MAX) {
                    return Err(FaultError::Io);
                }
                // A mapped file's pages in the order of their offsets (a program's text):
                // few runs in the stubs, and in fork's mirror.
                let cache = vnode.page_cache();
                if let Some(cache) = &cache {
                    cache.lay_out(size.div_ceil(PAGE));
                }
                // A whole page of the file, in the file's page cache: mapped, not copied,
                // until written. (A page the mapping ends inside, as an ELF segment's last,
                // is read into a page of its own, zeros after the segment.)
                // A tmpfs or memfd file's own page likewise.
                if (offset + off).is_multiple_of(PAGE)
                    && off + PAGE <= *file_len
                    && (vnode.shared_pages() || cache.is_some())
                {
                    let pa = vnode.get_page((offset + off) / PAGE).map_err(io)?;
                    return Ok(Pte { pa, cow: true, stub_prot: 0 });
                }
                let pa = pm.alloc_zeroed_near(near, self.owner, pgflags::FILE).ok_or(FaultError::OutOfMemory)?;
                crate::vm::meminfo::VM_EVENTS.pgmajfault.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let want = file_len.saturating_sub(off).min(PAGE) as usize;
                if want > 0 {
                    let mut buf = vec![0u8; want];
                    let mut got = 0;
                    while got < want {
                        match vnode.read_at(offset + off + got as u64, &mut buf[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(_) => {
                                pm.page_unref(pa);
                                return Err(FaultError::Io);
                            }
                        }
                    }
                    pm.write(pa, &buf[..got]);
                }
                Ok(own(pa))
            }
        }
    }

    /// Whether every page of `[addr, addr+len)` is mapped with `prot` (no page is brought in):
    /// for checking a buffer before data is consumed into it.
    pub fn accessible(&self, addr: u64, len: u64, prot: u32) -> bool {
        let Some(end) = addr.checked_add(len) else { return false };
        let mut a = addr;
        while a < end {
            match self.find(a) {
                Some(e) if e.prot & prot == prot && e.prot != 0 => a = e.end,
                _ => return false,
            }
        }
        true
    }

    /// How many bytes from `addr` on (at most `len`) are mapped without a gap with `prot`
    /// (PROT_WRITE: writable; 0: readable, which on x86 any access allows): where a copy that
    /// goes as far as it can stops. No page is brought in.
    pub fn accessible_prefix(&self, addr: u64, len: u64, prot: u32) -> u64 {
        let end = addr.saturating_add(len);
        let mut a = addr;
        while a < end {
            match self.find(a) {
                Some(e) if e.prot & prot == prot && e.prot != 0 => a = e.end,
                _ => break,
            }
        }
        a.min(end) - addr
    }

    /// The physical page behind `addr` for a kernel access (copyin/copyout), faulting it in.
    /// Shared access to the space is enough (see [`AddressSpace::fault`]).
    pub fn resolve(&self, addr: u64, write: bool) -> Result<u64, FaultError> {
        let e = self.find(addr);
        let ok = e.is_some_and(|e| if write { e.prot & PROT_WRITE != 0 } else { e.prot != 0 });
        let resident = if ok { self.pt.lock().pages.get(&(addr / PAGE)).copied() } else { None };
        if let Some(pte) = resident
            && !(write && pte.cow)
        {
            // The kernel writes a shared file's cached page: dirty, as a write fault makes it.
            if write
                && let Some(e) = e
                && let Some((cache, first)) = written_back(e)
            {
                cache.mark_dirty(first + (addr / PAGE - e.start / PAGE));
            }
            return Ok(pte.pa + addr % PAGE);
        }
        let pa = self.fault(addr, if write { Access::Write } else { Access::Read })?;
        Ok(pa + addr % PAGE)
    }

    /// The physical page behind `addr` for a debugger's write (ptrace's POKETEXT, a tracer's
    /// /proc/PID/mem: Linux's FOLL_FORCE). A writable mapping is written as copyout does; a
    /// private mapping the program may not write (its text) gets a page of its own, which the
    /// stub maps with the mapping's protection still; a shared one is refused.
    pub fn resolve_force_write(&self, addr: u64) -> Result<u64, FaultError> {
        let e = self.find(addr).ok_or(FaultError::NotMapped)?;
        if e.prot & PROT_WRITE != 0 {
            return self.resolve(addr, true);
        }
        if e.shared() || e.prot == 0 {
            return Err(FaultError::Protection);
        }
        let prot = e.prot;
        self.fault(addr, Access::Read)?;
        let vpn = addr / PAGE;
        let mut pt = self.pt.lock();
        let pte = pt.pages.get(&vpn).copied().ok_or(FaultError::NotMapped)?;
        let pte = if pte.cow { self.break_cow(&mut pt, vpn, pte)? } else { pte };
        let pte = pt.map_in_stub(vpn, pte, prot);
        self.count_resident(&pt);
        Ok(pte.pa + addr % PAGE)
    }

    /// Write `data` at `addr` as a debugger does ([`AddressSpace::resolve_force_write`], page
    /// by page): ptrace's POKETEXT, /proc/PID/mem, a patched system call site.
    pub fn write_forced(&self, addr: u64, data: &[u8]) -> Result<(), FaultError> {
        let mut done = 0;
        while done < data.len() {
            let a = addr.checked_add(done as u64).filter(|&a| a < USER_END).ok_or(FaultError::NotMapped)?;
            let n = to_page_end(a).min(data.len() - done);
            let pa = self.resolve_force_write(a)?;
            self.pm.write(pa, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// A copy for fork: private pages become copy-on-write in both, shared ones stay shared.
    /// The parent's stub loses write access to its now-shared private pages. The pages the
    /// parent's stub maps (its working set) are queued to be mapped in the child's stub, read-only
    /// where copy-on-write, in at most [`MIRROR_RUNS`] runs ([`mirror_runs`]): the
    /// child does not fault on each page it reads.
    ///
    /// `stack_pointer`: the forking thread's, when no other thread can run in the parent's
    /// stub now (it is the process's only thread and no process shares the memory). Then the
    /// stack pages around it that the parent's stub maps writable — both sides write them as
    /// soon as fork returns — are copied for the child at once ([`FORK_COPY_PAGES`]), and the
    /// parent keeps them writable: a page copy (well under a microsecond) instead of a trap
    /// in each of parent and child (tens of microseconds each). So are all the private pages
    /// it maps writable when there are at most [`FORK_COPY_WRITTEN_MAX`] (written since the
    /// last fork: a shell's variables, heap and stack, which it and its child write again at
    /// once). With other threads running the copy could tear under their writes, so it is not
    /// done then (`None`).
    pub fn fork(&mut self, owner: u64, stack_pointer: Option<u64>) -> AddressSpace {
        self.fork_onto(owner, stack_pointer, &[])
    }

    /// [`AddressSpace::fork`] for a child whose stub comes with a `residue` (ascending; see
    /// [`crate::vm::residue`]): a page copied for the child is taken, when it is free, at the
    /// physical page the residue maps at the same address with the protection the child's
    /// stub is to map it with — the last child's own copy there, at a shell's next `$(…)` —
    /// so that [`AddressSpace::adopt_residue`] finds the mapping alike and keeps it: no host
    /// mmap, no populate (its host PTEs are still there), no unmap at the last child's exit.
    pub fn fork_onto(&mut self, owner: u64, stack_pointer: Option<u64>, residue: &[MappedRun]) -> AddressSpace {
        let pm = &self.pm;
        let mut child = AddressSpace::with_physmem(owner, Arc::clone(&self.pm));
        child.entries = self.entries.clone();
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.mmap_base = self.mmap_base;
        child.inherit = self.inherit.for_child();
        child.growsdown = self.growsdown.clone();
        child.nofaultaround = self.nofaultaround.clone();
        child.callsites = self.callsites.clone();
        child.callsites_off = self.callsites_off;
        // The stack pages to copy: [lo, hi) around the stack pointer, inside its mapping.
        let (copy_lo, copy_hi) = match stack_pointer.and_then(|sp| self.find(sp).map(|e| (sp, e))) {
            Some((sp, e)) if !e.shared() => {
                let lo = (sp / PAGE).saturating_sub(FORK_COPY_BELOW).max(e.start / PAGE);
                (lo, (lo + FORK_COPY_PAGES).min(e.end / PAGE))
            }
            _ => (0, 0),
        };
        // Every private page the parent's stub maps writable, when few: both sides are
        // likely to write them again soon (a shell's variables, its heap, its stack).
        // Not when memory runs short (an eighth or less free): the child then shares until it
        // writes, as on Linux.
        let copy_written = stack_pointer.is_some() && pm.free_pages() > pm.npages() as u64 / 8 && {
            let (entries, inherit) = (&self.entries, &self.inherit);
            let private = |addr: u64| match entries.range(..=addr).next_back() {
                Some((_, e)) => addr < e.end && !e.shared() && inherit.at(addr).is_none(),
                None => false,
            };
            let written = self.pt.get_mut().pages.iter().filter(|(vpn, pte)| {
                pte.stub_prot & PROT_WRITE != 0 && !pte.cow && private(**vpn * PAGE)
            });
            written.take(FORK_COPY_WRITTEN_MAX + 1).count() <= FORK_COPY_WRITTEN_MAX
        };
        // Whether the child gets a copy of the page at `vpn` now (in a mapping `shared` or not).
        let copied = |vpn: u64, pte: &Pte, shared: bool| {
            (copy_written && !shared || (copy_lo..copy_hi).contains(&vpn)) && pte.stub_prot & PROT_WRITE != 0 && !pte.cow
        };
        // The residue's pages at the places of pages the child gets copies of, taken first
        // (so that a copy put elsewhere cannot take one another copy wants); those not used
        // go back at the end.
        let mut claimed: BTreeMap<u64, u64> = BTreeMap::new();
        if copy_written || copy_lo < copy_hi {
            let (entries, table) = (&self.entries, &self.pt.get_mut().pages);
            for r in residue.iter().filter(|r| r.prot & PROT_WRITE != 0) {
                for vpn in r.addr / PAGE..(r.addr + r.len) / PAGE {
                    // Copied, into a mapping the child's stub maps with the residue's protection.
                    let entry = entries.range(..=vpn * PAGE).next_back().map(|(_, e)| e).filter(|e| vpn * PAGE < e.end);
                    let wanted = entry.is_some_and(|e| e.prot == r.prot && table.get(&vpn).is_some_and(|p| copied(vpn, p, e.shared())));
                    if wanted && let Some(pa) = pm.alloc_page_at(r.pa + (vpn * PAGE - r.addr), owner, pgflags::ANON) {
                        claimed.insert(vpn, pa);
                    }
                }
            }
        }
        let mut downgrade = Vec::new();
        let mut near = None;
        // The child's pages, ascending (the table is built from them at the end, in one
        // pass), and those the parent's stub maps, with the protection the child's stub gets
        // them with: (index in `pages`, prot).
        let mut pages: Vec<(u64, Pte)> = Vec::new();
        let mut working_set: Vec<(usize, u32)> = Vec::new();
        let pt = self.pt.get_mut();
        for (&vpn, pte) in pt.pages.iter_mut() {
            let (shared, prot) = {
                let addr = vpn * PAGE;
                let (_, e) = match self.entries.range(..=addr).next_back() {
                    Some(x) if addr < x.1.end => x,
                    _ => continue,
                };
                // MADV_DONTFORK, MADV_WIPEONFORK: the child gets no page here (none at all,
                // or zeros on first touch); the parent's stays its own.
                if self.inherit.at(addr).is_some() {
                    continue;
                }
                (e.shared(), e.prot)
            };
            if copied(vpn, pte, shared)
                && let Some(new) = claimed.remove(&vpn).or_else(|| pm.alloc_page_near(near, owner, pgflags::ANON))
            {
                near = Some(new + PAGE);
                pm.copy_page(new, pte.pa);
                working_set.push((pages.len(), prot));
                pages.push((vpn, Pte { pa: new, cow: false, stub_prot: 0 }));
                continue;
            }
            if pte.stub_prot != 0 && prot != 0 {
                // As a fault would map it in the child (copy-on-write: read-only).
                working_set.push((pages.len(), if shared { prot } else { prot & !PROT_WRITE }));
            }
            pm.page_ref(pte.pa);
            if !shared {
                pte.cow = true;
                if pte.stub_prot & PROT_WRITE != 0 {
                    downgrade.push((vpn, pte.stub_prot & !PROT_WRITE));
                }
            }
            pages.push((vpn, Pte { pa: pte.pa, cow: pte.cow, stub_prot: 0 }));
        }
        for pa in claimed.into_values() {
            pm.page_unref(pa);
        }
        // The working set goes to the child's stub before it first runs.
        let want: Vec<(u64, u32, u64)> = working_set.iter().map(|&(i, prot)| (pages[i].0, prot, pages[i].1.pa)).collect();
        let child_pt = child.pt.get_mut();
        for (vpn, n, prot, pa) in mirror_runs(&want) {
            // The copies (the child's alone, writable): written as soon as the child runs.
            let populate =
                prot & PROT_WRITE != 0 && pm.page(pa).is_some_and(|g| g.refcount.load(Ordering::Relaxed) == 1);
            child_pt.queue(StubOp::Map { addr: vpn * PAGE, len: n * PAGE, prot, pa, populate });
            let first = pages.partition_point(|p| p.0 < vpn);
            for (_, pte) in &mut pages[first..first + crate::kern::conv::usize_of(n)] {
                pte.stub_prot = prot;
            }
        }
        child.resident.store(pages.len() as u64, Ordering::Relaxed);
        child_pt.pages = pages.into_iter().collect();
        // The pages that were writable in the parent's stub are mapped there again read-only
        // (neighbours in memory in one host call): this takes write access away as an unmap
        // would, but a read after the fork does not fault (a busybox shell's parent took ~4
        // read faults per fork on pages an unmap had taken, ~10-20 us each).
        if !downgrade.is_empty() {
            pt.unmap_queued = true;
        }
        for (vpn, prot) in downgrade {
            if let Some(&pte) = pt.pages.get(&vpn) {
                pt.map_in_stub(vpn, pte, prot);
            }
        }
        for (s, e) in self.inherit.ranges_of(crate::vm::inherit::Inherit::DontFork) {
            child.unmap(s, e);
        }
        child
    }

    /// A new image's file pages that are in the file's page cache now, made resident
    /// (copy-on-write) and queued to be mapped in the stub, in at most [`MIRROR_RUNS`] runs
    /// (exec: a program run before starts without a fault per page of its text). Nothing is
    /// read; a page not cached comes by a fault as before. The same pages as a fault would
    /// map: whole pages of a private file mapping, at page-aligned file offsets.
    pub fn map_cached(&mut self) {
        // (vpn, prot, pa) of the pages to map, ascending (the entries do not overlap).
        let mut want: Vec<(u64, u32, u64)> = Vec::new();
        let mut add: Vec<(u64, Pte)> = Vec::new();
        let pt = self.pt.get_mut();
        for e in self.entries.values() {
            let Some(CachedSpan { vnode, cache, first_vpn, first_idx, pages }) = cached_span(e) else { continue };
            // Before any of its pages is mapped (so that those cached already may move).
            if !cache.is_laid_out()
                && let Ok(attr) = vnode.attr()
            {
                cache.lay_out(attr.size.div_ceil(PAGE));
            }
            // A new image's table is empty there: no page-by-page check then.
            let empty = pt.pages.range(first_vpn..first_vpn + pages).next().is_none();
            for (idx, pa) in cache.lookup_range(first_idx, pages) {
                let vpn = first_vpn + (idx - first_idx);
                if !empty && pt.pages.contains_key(&vpn) {
                    self.pm.page_unref(pa);
                    continue;
                }
                add.push((vpn, Pte { pa, cow: true, stub_prot: 0 }));
                want.push((vpn, e.prot & !PROT_WRITE, pa));
            }
        }
        // Built from ascending keys in one pass, then merged.
        let mut added: BTreeMap<u64, Pte> = add.into_iter().collect();
        pt.pages.append(&mut added);
        self.resident.store(pt.pages.len() as u64, Ordering::Relaxed);
        // Queued in at most MIRROR_RUNS runs: one map each.
        for (vpn, n, prot, pa) in mirror_runs(&want) {
            pt.queue(StubOp::Map { addr: vpn * PAGE, len: n * PAGE, prot, pa, populate: false });
            for (_, pte) in pt.pages.range_mut(vpn..vpn + n) {
                pte.stub_prot = prot;
            }
        }
    }

    /// Residue pages this space would map as they are at its first touch — cached pages of a
    /// private file mapping at their place in it, whole pages, read-only (as a fault or
    /// [`AddressSpace::map_cached`] maps them) — that its table does not hold yet: taken into
    /// the table, already mapped in the stub, so they are kept rather than unmapped and
    /// faulted in again. A shell's `$(expr …)` children each run code their parent never ran
    /// (the applet's): without this every child unmapped the last child's mapping of it and
    /// took a fault (a trap and three host mmaps) to map it again.
    fn adopt_cached(&mut self, residue: &[MappedRun]) {
        let pt = self.pt.get_mut();
        let mut add: Vec<(u64, Pte)> = Vec::new();
        for r in residue {
            let (lo, hi) = (r.addr / PAGE, (r.addr + r.len) / PAGE);
            // The entries overlapping the run (they do not overlap each other).
            for e in self.entries.range(..hi * PAGE).rev().map(|(_, e)| e).take_while(|e| e.end > lo * PAGE) {
                if e.prot & !PROT_WRITE != r.prot {
                    continue;
                }
                let Some(CachedSpan { cache, first_vpn: e_lo, first_idx, pages, .. }) = cached_span(e) else { continue };
                let (a, b) = (lo.max(e_lo), hi.min(e_lo + pages));
                if a >= b {
                    continue;
                }
                for (idx, pa) in cache.lookup_range(first_idx + (a - e_lo), b - a) {
                    let vpn = e_lo + (idx - first_idx);
                    if pa == r.pa + (vpn - lo) * PAGE && !pt.pages.contains_key(&vpn) {
                        add.push((vpn, Pte { pa, cow: true, stub_prot: r.prot }));
                    } else {
                        self.pm.page_unref(pa);
                    }
                }
            }
        }
        if add.is_empty() {
            return;
        }
        crate::vm::residue::PAGES_ADOPTED.fetch_add(add.len() as u64, Ordering::Relaxed);
        pt.pages.extend(add);
        self.resident.store(pt.pages.len() as u64, Ordering::Relaxed);
    }

    /// Give the stub up to another space (exec reusing it): the stub, the operations that
    /// unmap from it everything this space may have mapped there, and the pages to release
    /// once the stub has carried them out ([`AddressSpace::stub_teardown`]).
    pub fn take_stub(&mut self) -> Option<(Arc<StubSpace>, Ops, Vec<u64>)> {
        let stub = self.stub.take()?;
        let (unmaps, deferred) = self.stub_teardown();
        let mut ops = Ops::new();
        for op in unmaps {
            if let StubOp::Unmap { addr, len } = op {
                ops.unmap(addr, len);
            }
        }
        Some((stub, ops, deferred))
    }

    /// [`AddressSpace::take_stub`] of an exiting process's stub that may keep mappings for the
    /// next process ([`crate::vm::residue`]): the unmaps then remove only this space's own
    /// pages (and what was queued), and the runs of pages someone else holds come back to
    /// be kept. As `take_stub` (nothing kept) when operations other than unmaps are queued
    /// (the stub's mappings are not what the table says yet), or keeping would take too
    /// many unmaps.
    pub fn take_stub_keeping(&mut self) -> Option<KeptStub> {
        if self.stub.is_some()
            && let Some((unmaps, keep)) = self.split_stub_at_exit()
        {
            let stub = self.stub.take()?;
            let deferred = self.pt.get_mut().forget_stub();
            // Each range is at most 1 GiB (vm::residue, `unmap_in_stub`): one call.
            let mut ops = Ops::new();
            for (addr, len) in unmaps {
                ops.unmap(addr, len);
            }
            return Some((stub, ops, deferred, keep));
        }
        let (stub, ops, deferred) = self.take_stub()?;
        Some((stub, ops, deferred, Vec::new()))
    }

    /// The unmaps (those queued first) and the runs to keep of [`AddressSpace::take_stub_keeping`].
    fn split_stub_at_exit(&mut self) -> Option<(Vec<crate::vm::residue::Range>, Vec<MappedRun>)> {
        let pm = Arc::clone(&self.pm);
        let pt = self.pt.get_mut();
        let mut queued = pt.queued_unmaps()?;
        let shared = |pa: u64| pm.page(pa).is_some_and(|g| g.refcount.load(Ordering::Relaxed) > 1);
        let pages: Vec<crate::vm::residue::StubPage> =
            pt.pages.iter().filter(|(_, p)| p.stub_prot != 0).map(|(&vpn, p)| (vpn, p.pa, p.stub_prot, shared(p.pa))).collect();
        let (keep, own) = crate::vm::residue::split_at_exit(&pages)?;
        // A queued unmap over a kept page would take it after all: keep nothing then.
        if crate::vm::residue::overlaps(&queued, &keep) || queued.len() + own.len() > crate::vm::residue::MAX_EXIT_UNMAPS + 8 {
            return None;
        }
        queued.extend(own);
        Some((queued, keep))
    }

    /// Every page the stub maps of this space as runs (a residue for the space the stub goes
    /// to next: exec), and the unmaps queued before them; None when maps are queued, unmaps
    /// are under way, or a queued unmap covers a mapped page.
    fn stub_as_residue(&mut self) -> Option<(Vec<crate::vm::residue::Range>, Vec<MappedRun>)> {
        let pt = self.pt.get_mut();
        let queued = pt.queued_unmaps()?;
        let mut runs: Vec<MappedRun> = Vec::new();
        for (&vpn, p) in pt.pages.iter().filter(|(_, p)| p.stub_prot != 0) {
            match runs.last_mut() {
                Some(r) if r.addr + r.len == vpn * PAGE && r.pa + r.len == p.pa && r.prot == p.stub_prot => r.len += PAGE,
                _ => runs.push(MappedRun { addr: vpn * PAGE, len: PAGE, pa: p.pa, prot: p.stub_prot }),
            }
        }
        if runs.is_empty() || crate::vm::residue::overlaps(&queued, &runs) {
            return None;
        }
        Some((queued, runs))
    }

    /// A fork child's stub came with a `residue` (mappings its last process left,
    /// [`crate::vm::residue`]; or exec's old image, `hand_to`): keep those that are what this space's stub is to map (their
    /// maps are dropped from the queue) and unmap the others first, before anything the
    /// queue maps.
    pub fn adopt_residue(&mut self, residue: &[MappedRun]) {
        if residue.is_empty() {
            return;
        }
        self.adopt_cached(residue);
        let pt = self.pt.get_mut();
        let (kept, unmaps) = crate::vm::residue::diff_for_child(residue, |lo, hi| {
            pt.pages.range(lo..hi).filter(|(_, p)| p.stub_prot != 0).map(|(&v, p)| (v, p.pa, p.stub_prot))
        });
        // Each at most 1 GiB (vm::residue): one call.
        let mut out: Vec<StubOp> = Vec::with_capacity(pt.pending.len() + unmaps.len());
        out.extend(unmaps.into_iter().map(|(addr, len)| StubOp::Unmap { addr, len }));
        for op in std::mem::take(&mut pt.pending) {
            match op {
                StubOp::Map { addr, len, prot, pa, populate } if crate::vm::residue::any_in(&kept, addr / PAGE, (addr + len) / PAGE) => {
                    // The pages of the run not kept, as runs of their own.
                    let mut run: Option<(u64, u64)> = None;
                    for i in 0..len / PAGE {
                        let vpn = addr / PAGE + i;
                        if kept.binary_search(&vpn).is_ok() {
                            if let Some((a, l)) = run.take() {
                                out.push(StubOp::Map { addr: a, len: l, prot, pa: pa + (a - addr), populate });
                            }
                        } else {
                            run = Some(run.map_or((vpn * PAGE, PAGE), |(a, l)| (a, l + PAGE)));
                        }
                    }
                    if let Some((a, l)) = run {
                        out.push(StubOp::Map { addr: a, len: l, prot, pa: pa + (a - addr), populate });
                    }
                }
                other => out.push(other),
            }
        }
        pt.pending = out;
        pt.queued.store(true, Ordering::Release);
    }

    /// Hand the stub to `new` (exec reusing it, its only thread trapped in the kernel and no
    /// other running in it): the unmaps that clear it of this space go first in `new`'s queue,
    /// ahead of the new image's maps, and this space's pages wait in `new`'s deferred list —
    /// so the thread's first resume carries it all out, with no round trip of its own, and the
    /// pages are released only once the stub no longer maps them. False without a stub.
    pub fn give_stub(&mut self, new: &mut AddressSpace) -> bool {
        let Some(stub) = self.stub.take() else { return false };
        self.hand_to(new);
        new.stub = Some(stub);
        true
    }

    /// [`AddressSpace::give_stub`]'s queue and pages: this space's teardown first in `new`'s
    /// queue, every page of this one in `new`'s deferred list.
    fn hand_to(&mut self, new: &mut AddressSpace) {
        // What the stub maps of this space, kept where the new image maps the same (a
        // program's text and read-only data from the same file's cache, at the same place:
        // a shell's child running another busybox applet), unmapped elsewhere (vm::residue);
        // else everything goes, its unmaps joined into as few host calls as can be.
        let (mut unmaps, mut deferred): (Vec<StubOp>, Vec<u64>) = match self.stub_as_residue() {
            Some((queued, residue)) => {
                let deferred = self.pt.get_mut().forget_stub();
                new.adopt_residue(&residue);
                (queued.into_iter().map(|(addr, len)| StubOp::Unmap { addr, len }).collect(), deferred)
            }
            None => {
                let (unmaps, deferred) = self.stub_teardown();
                let ranges = unmaps.into_iter().filter_map(|op| if let StubOp::Unmap { addr, len } = op { Some((addr, len)) } else { None });
                let joined = platform::stub::pool::join_unmaps(ranges.collect()).into_iter().map(|(addr, len)| StubOp::Unmap { addr, len });
                (joined.collect(), deferred)
            }
        };
        deferred.extend(self.take_pages());
        let pt = new.pt.get_mut();
        unmaps.append(&mut pt.pending);
        pt.pending = unmaps;
        pt.unmap_queued = true;
        pt.deferred.append(&mut deferred);
        // The trap loop drains the queue only when told (`ops_queued`).
        pt.queued.store(true, Ordering::Release);
    }

    /// The unmaps that leave the stub with nothing of this space: the unmaps already queued
    /// (the maps queued are dropped), and for each entry the span of its pages the stub maps
    /// — a few operations, whatever the size of the mappings. Every page is then marked as
    /// not in the stub; the pages waiting for the stub to drop them are handed back.
    fn stub_teardown(&mut self) -> (Vec<StubOp>, Vec<u64>) {
        let pt = self.pt.get_mut();
        let mut out = PageTable::default();
        out.pending.extend(std::mem::take(&mut pt.pending).into_iter().filter(|op| matches!(op, StubOp::Unmap { .. })));
        pt.unmap_queued = false;
        let deferred = std::mem::take(&mut pt.deferred);
        for e in self.entries.values() {
            let mut mapped = pt.pages.range_mut(e.start / PAGE..e.end / PAGE).filter(|(_, p)| p.stub_prot != 0);
            let Some((&lo, first)) = mapped.next() else { continue };
            first.stub_prot = 0;
            let mut hi = lo;
            for (&v, p) in mapped {
                p.stub_prot = 0;
                hi = v;
            }
            out.unmap_in_stub(lo * PAGE, (hi + 1) * PAGE);
        }
        (out.pending, deferred)
    }

    /// Take every page out of the table without releasing it (an exiting process's, released
    /// once its stub has unmapped them: `platform::stub::pool::recycle`), highest first as in
    /// [`AddressSpace::clear`], with the pages waiting for the stub.
    pub fn take_pages(&mut self) -> Vec<u64> {
        let pt = std::mem::take(self.pt.get_mut());
        self.pt.get_mut().queued = Arc::clone(&pt.queued);
        self.resident.store(0, Ordering::Relaxed);
        pt.pages.into_values().rev().map(|pte| pte.pa).chain(pt.deferred).collect()
    }

    /// Release every page (exit, exec).
    pub fn clear(&mut self) {
        let pt = std::mem::take(self.pt.get_mut());
        self.pt.get_mut().queued = Arc::clone(&pt.queued);
        // Highest first: the free list hands the next allocations out in ascending order, so
        // a new process's neighbouring pages are neighbours in memory too (see `stub_ops`).
        for pa in pt.pages.into_values().rev().map(|pte| pte.pa).chain(pt.deferred) {
            self.pm.page_unref(pa);
        }
        self.entries.clear();
        self.resident.store(0, Ordering::Relaxed);
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        self.clear();
        if let Some(stub) = self.stub.take() {
            platform::stub::pool::retire(stub);
        }
    }
}

#[cfg(test)]
#[path = "space_tests.rs"]
mod tests;
