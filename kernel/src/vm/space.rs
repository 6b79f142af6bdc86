//! An address space: map entries and a software page table, mirrored into the stub process by
//! queued mapping operations.
//!
//! ```text
//!  entries   BTreeMap<start, MapEntry>   what the guest mapped: range, protection, backing
//!  pages     BTreeMap<vpn, Pte>          what is resident: physical page, copy-on-write,
//!                                        and what the stub has mapped now (stub_prot)
//!  pending   platform::stub::Ops         mapping changes the stub must make before the guest
//!                                        runs again (drained by the thread that resumes)
//! ```
//!
//! Invariant: a page the stub has mapped (`stub_prot != 0`) is resident here with at least
//! that access. A fault resolves in software, then maps the page in the stub with the entry's
//! protection, minus write while the page is shared copy-on-write.
//!
//! Other threads keep running in the stub while one changes the map: a page the stub may
//! still have mapped is not released when it leaves the map (munmap, mremap, MADV_DONTNEED, a
//! copy-on-write copy) but kept in `deferred` until the stub has carried out the operations
//! queued before — by [`AddressSpace::sync_stub`] at once (a system call that took access
//! away from a process whose other threads may be running, and fork), or by the thread that
//! takes the operations to run them ([`AddressSpace::take_deferred`]) — so that no stale host
//! mapping ever reaches a page that was given to someone else. When other threads may run,
//! a thread resuming carries the queued operations out under the map's lock too, rather than
//! on its way into the guest: operations taken but not yet carried out by one thread could
//! otherwise land after a later unmap by another (a stale writable mapping of a page fork has
//! just shared with a child).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use platform::PAGE_SIZE;
use platform::physmem::{self, PhysMem, pgflags};
use platform::stub::layout::USER_END;
use platform::stub::{Ops, StubSpace, StubThread};
use platform::sync::SpinLock;

use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;

pub const PAGE: u64 = PAGE_SIZE as u64;
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// Pages mapped around a fault (an aligned window).
pub const FAULT_AROUND: u64 = 16;

/// Lowest address the guest may map (mmap_min_addr).
pub const MMAP_MIN: u64 = 0x10000;
/// Top of the guest stack region (below the stub area, with a gap).
pub const STACK_TOP: u64 = USER_END - 0x1000_0000;
/// Stack size reserved below STACK_TOP (RLIMIT_STACK).
pub const STACK_SIZE: u64 = 8 << 20;
/// Where top-down mmap placement starts.
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - 0x1000_0000;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    Some(a.checked_add(PAGE - 1)? & !(PAGE - 1))
}

/// Pages of a MAP_SHARED|MAP_ANONYMOUS mapping (and, later, System V shared memory): shared by
/// every address space that maps it, across fork.
#[derive(Debug)]
pub struct SharedObject {
    pages: SpinLock<BTreeMap<u64, u64>>,
}

impl SharedObject {
    pub fn new() -> Arc<SharedObject> {
        Arc::new(SharedObject { pages: SpinLock::new("shared_object", BTreeMap::new()) })
    }

    /// The page at page index `idx`, allocated (zeroed) on first use; a new reference.
    fn page(&self, idx: u64, owner: u64) -> Option<u64> {
        let pm = physmem::get()?;
        let mut pages = self.pages.lock();
        if let Some(&pa) = pages.get(&idx) {
            pm.page_ref(pa);
            return Some(pa);
        }
        let pa = pm.alloc_zeroed(owner, pgflags::ANON)?;
        pages.insert(idx, pa);
        pm.page_ref(pa);
        Some(pa)
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        if let Some(pm) = physmem::get() {
            for (_, pa) in std::mem::take(&mut *self.pages.lock()) {
                pm.page_unref(pa);
            }
        }
    }
}

/// What a mapping's pages come from.
#[derive(Debug, Clone)]
pub enum Backing {
    /// Zero-filled private memory.
    Anon,
    /// A file, privately: `file_len` bytes of the file from `offset`, zeros after.
    File { vnode: VnodeRef, offset: u64, file_len: u64 },
    /// Shared anonymous memory.
    Shared { object: Arc<SharedObject>, offset: u64 },
    /// A file, shared: the file's own pages ([`crate::fs::vfs::Vnode::get_page`]), so stores
    /// are the file's data at once.
    SharedFile { vnode: VnodeRef, offset: u64 },
}

/// A mapping.
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub backing: Backing,
    /// What /proc/PID/maps says it is (a path — bytes, as file names are —, `[heap]`,
    /// `[stack]`, or empty).
    pub name: Vec<u8>,
}

impl MapEntry {
    /// Shared (`s` in /proc/PID/maps) rather than private.
    pub fn shared(&self) -> bool {
        matches!(self.backing, Backing::Shared { .. } | Backing::SharedFile { .. })
    }

    /// Its mode as /proc/PID/maps writes it: `r-xp`, `rw-s`.
    pub fn perms(&self) -> String {
        let bit = |b: u32, c: char| if self.prot & b != 0 { c } else { '-' };
        [bit(PROT_READ, 'r'), bit(PROT_WRITE, 'w'), bit(PROT_EXEC, 'x'), if self.shared() { 's' } else { 'p' }].iter().collect()
    }

    /// Where in its backing object it starts (0 for private anonymous memory).
    pub fn offset(&self) -> u64 {
        match &self.backing {
            Backing::Anon => 0,
            Backing::File { offset, .. } | Backing::Shared { offset, .. } | Backing::SharedFile { offset, .. } => *offset,
        }
    }

    /// The part of this entry from `at` on, with its backing offset moved along.
    fn split_off(&mut self, at: u64) -> MapEntry {
        let mut tail = self.clone();
        let delta = at - self.start;
        tail.start = at;
        match &mut tail.backing {
            Backing::Anon => {}
            Backing::File { offset, file_len, .. } => {
                *offset += delta;
                *file_len = file_len.saturating_sub(delta);
            }
            Backing::Shared { offset, .. } | Backing::SharedFile { offset, .. } => *offset += delta,
        }
        self.end = at;
        tail
    }
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

static NEXT_SPACE_ID: AtomicU64 = AtomicU64::new(1);

/// An address space.
#[derive(Debug)]
pub struct AddressSpace {
    pub id: u64,
    entries: BTreeMap<u64, MapEntry>,
    pages: BTreeMap<u64, Pte>,
    /// Program break: start of the heap and its current end.
    pub brk_start: u64,
    pub brk: u64,
    /// The stub mirroring this space (None until the first thread runs).
    pub stub: Option<Arc<StubSpace>>,
    pending: Ops,
    /// Whether `pending` takes access away (an unmap) that threads running in the stub still
    /// have.
    unmap_queued: bool,
    /// Physical pages that left the map while the stub may still map them: released once the
    /// stub has carried out `pending` (see the module doc).
    deferred: Vec<u64>,
    /// Owner recorded in vm_page (the pid).
    pub owner: u64,
}

impl AddressSpace {
    pub fn new(owner: u64) -> AddressSpace {
        AddressSpace {
            id: NEXT_SPACE_ID.fetch_add(1, Ordering::Relaxed),
            entries: BTreeMap::new(),
            pages: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
            stub: None,
            pending: Ops::new(),
            unmap_queued: false,
            deferred: Vec::new(),
            owner,
        }
    }

    fn pm() -> &'static PhysMem {
        physmem::get().expect("physical memory")
    }

    /// Mapping operations waiting for the stub (taken by the thread about to run).
    pub fn take_ops(&mut self) -> Ops {
        self.unmap_queued = false;
        std::mem::take(&mut self.pending)
    }

    /// The pages to release once the operations taken with them have been carried out in
    /// the stub: the thread that takes the operations releases these after it ran them
    /// ([`AddressSpace::release`]).
    pub fn take_deferred(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.deferred)
    }

    /// Release pages taken with [`AddressSpace::take_deferred`].
    pub fn release(pages: Vec<u64>) {
        if pages.is_empty() {
            return;
        }
        let pm = Self::pm();
        for pa in pages {
            pm.page_unref(pa);
        }
    }

    /// Whether operations that take access away wait for the stub.
    pub fn unmap_queued(&self) -> bool {
        self.unmap_queued
    }

    /// Carry out the queued operations in the stub now, through `via` (a thread trapped in
    /// the kernel), then release the pages they unmapped: after this no thread running in
    /// the stub reaches what the map no longer has (Linux's TLB shootdown). False, with
    /// nothing changed, if `via` cannot carry operations out (it has not trapped yet).
    pub fn sync_stub(&mut self, via: &StubThread) -> bool {
        if !self.pending.is_empty() && !via.exec_ops(self.pending.clone()) {
            return false;
        }
        self.take_ops();
        Self::release(self.take_deferred());
        true
    }

    /// A page leaves the map: released now, or (`stub_mapped`) once the stub lost it.
    fn drop_page(&mut self, pa: u64, stub_mapped: bool) {
        if stub_mapped {
            self.deferred.push(pa);
        } else {
            Self::pm().page_unref(pa);
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &MapEntry> {
        self.entries.values()
    }

    /// Resident pages.
    pub fn rss_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Resident pages in [start, end), and how many of them are copy-on-write.
    pub fn resident_in(&self, start: u64, end: u64) -> (u64, u64) {
        self.pages.range(start / PAGE..end.div_ceil(PAGE)).fold((0, 0), |(n, cow), (_, p)| (n + 1, cow + u64::from(p.cow)))
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
        let vpns: Vec<u64> = self.pages.range(start / PAGE..end.div_ceil(PAGE)).map(|(&v, _)| v).collect();
        let mut stub_mapped = false;
        for v in vpns {
            if let Some(pte) = self.pages.remove(&v) {
                stub_mapped |= pte.stub_prot != 0;
                self.drop_page(pte.pa, pte.stub_prot != 0);
            }
        }
        if stub_mapped {
            self.unmap_in_stub(start, end);
        }
    }

    /// Queue an unmap of `[start, end)` in the stub, in pieces its filter accepts.
    fn unmap_in_stub(&mut self, start: u64, end: u64) {
        let mut a = start;
        while a < end {
            let len = (end - a).min(1 << 30);
            self.pending.unmap(a, len);
            self.unmap_queued = true;
            a += len;
        }
    }

    /// munmap(2): remove every mapping in `[start, end)`.
    pub fn unmap(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.entries.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            self.entries.remove(&k);
        }
        self.drop_pages(start, end);
    }

    /// mprotect(2): change the protection of `[start, end)`, which must be fully mapped.
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        let mut a = start;
        while a < end {
            let e = self.find(a).ok_or(Errno::ENOMEM)?;
            a = e.end;
        }
        self.split_at(start);
        self.split_at(end);
        for (_, e) in self.entries.range_mut(start..end) {
            e.prot = prot;
        }
        // Pages mapped in the stub with more access than allowed now lose it; they come back
        // by faults with the new protection.
        let mut lo = None;
        let vpns: Vec<u64> = self.pages.range(start / PAGE..end / PAGE).map(|(&v, _)| v).collect();
        for v in vpns {
            if let Some(pte) = self.pages.get_mut(&v)
                && pte.stub_prot & !prot != 0
            {
                pte.stub_prot = 0;
                lo.get_or_insert(v);
            }
        }
        if let Some(lo) = lo {
            self.unmap_in_stub(lo * PAGE, end);
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
            let vpns: Vec<u64> = self.pages.range(old / PAGE..old_end / PAGE).map(|(&v, _)| v).collect();
            let mut moved = Vec::with_capacity(vpns.len());
            let mut stub_mapped = false;
            for v in vpns {
                if let Some(mut pte) = self.pages.remove(&v) {
                    stub_mapped |= pte.stub_prot != 0;
                    pte.stub_prot = 0;
                    moved.push((v - old / PAGE, pte));
                }
            }
            if stub_mapped {
                self.unmap_in_stub(old, old_end);
            }
            for (i, pte) in moved {
                if i < new_len / PAGE {
                    self.pages.insert(new / PAGE + i, pte);
                } else {
                    self.drop_page(pte.pa, stub_mapped);
                }
            }
        }
        self.entries.insert(new, e);
    }

    /// madvise(MADV_DONTNEED): drop private pages; the next touch sees zeros or the file.
    pub fn dontneed(&mut self, start: u64, end: u64) {
        self.drop_pages(start, end);
    }

    /// Resolve a fault at `addr`: make the page resident with the access, and queue its
    /// mapping in the stub.
    pub fn fault(&mut self, addr: u64, access: Access) -> Result<u64, FaultError> {
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
        let prot = e.prot;
        let shared = e.shared();
        let page_va = vpn * PAGE;
        let pte = match self.pages.get(&vpn).copied() {
            Some(mut pte) => {
                if access == Access::Write && pte.cow {
                    pte = self.break_cow(pte)?;
                }
                pte
            }
            None => {
                let e = e.clone();
                let pa = self.populate(&e, page_va)?;
                Pte { pa, cow: false, stub_prot: 0 }
            }
        };
        let map_prot = if pte.cow && !shared { prot & !PROT_WRITE } else { prot };
        let mut pte = pte;
        // A fault on a page the stub should already have (with this access) means the stub
        // lost it: map it again rather than loop.
        let had = match access {
            Access::Read => pte.stub_prot != 0,
            Access::Write => pte.stub_prot & PROT_WRITE != 0,
            Access::Exec => pte.stub_prot & PROT_EXEC != 0,
        };
        if had {
            log::debug!("vm: refault at {addr:#x} ({access:?}) of a page the stub had; mapping it again");
            pte.stub_prot = 0;
        }
        if pte.stub_prot != map_prot {
            self.pending.map(page_va, PAGE, map_prot, pte.pa);
            pte.stub_prot = map_prot;
        }
        self.pages.insert(vpn, pte);
        self.fault_around(vpn, access);
        Ok(pte.pa)
    }

    /// Fault-around: with the faulting page, map its neighbours (the aligned window of
    /// [`FAULT_AROUND`] pages, inside the same mapping) that are resident but not in the stub —
    /// after fork, or a stub that lost them — and, for a read of a private file mapping, read
    /// the file's next pages in too (Linux's fault-around over the page cache, with the read
    /// done here since vk has no page cache yet). Saves one trap per page.
    fn fault_around(&mut self, vpn: u64, access: Access) {
        let Some(e) = self.find(vpn * PAGE).cloned() else { return };
        let lo = (vpn & !(FAULT_AROUND - 1)).max(e.start / PAGE);
        let hi = ((vpn | (FAULT_AROUND - 1)) + 1).min(e.end / PAGE);
        let read_file = access != Access::Write && matches!(e.backing, Backing::File { .. }) && e.prot != 0;
        let shared = e.shared();
        for v in lo..hi {
            if v == vpn {
                continue;
            }
            let pte = match self.pages.get(&v).copied() {
                Some(p) => p,
                None if read_file => match self.populate(&e, v * PAGE) {
                    Ok(pa) => Pte { pa, cow: false, stub_prot: 0 },
                    // Past the end of the file, or out of memory: the fault itself says so.
                    Err(_) => break,
                },
                None => continue,
            };
            if pte.stub_prot != 0 || e.prot == 0 {
                self.pages.insert(v, pte);
                continue;
            }
            let prot = if pte.cow && !shared { e.prot & !PROT_WRITE } else { e.prot };
            self.pending.map(v * PAGE, PAGE, prot, pte.pa);
            self.pages.insert(v, Pte { stub_prot: prot, ..pte });
        }
    }

    /// A copy-on-write page being written: take it if nobody else has it, else copy.
    fn break_cow(&mut self, pte: Pte) -> Result<Pte, FaultError> {
        let pm = Self::pm();
        let only_us = pm.page(pte.pa).is_some_and(|p| p.refcount.load(Ordering::Acquire) == 1);
        if only_us {
            return Ok(Pte { cow: false, stub_prot: 0, ..pte });
        }
        let new = pm.alloc_page(self.owner, pgflags::ANON).ok_or(FaultError::OutOfMemory)?;
        pm.copy_page(new, pte.pa);
        // Other threads may read the old page until the new one replaces it in the stub.
        self.drop_page(pte.pa, pte.stub_prot != 0);
        Ok(Pte { pa: new, cow: false, stub_prot: 0 })
    }

    /// The first touch of a page: zeros, file data, or the shared object's page.
    fn populate(&self, e: &MapEntry, page_va: u64) -> Result<u64, FaultError> {
        let pm = Self::pm();
        let off = page_va - e.start;
        match &e.backing {
            Backing::Anon => pm.alloc_zeroed(self.owner, pgflags::ANON).ok_or(FaultError::OutOfMemory),
            Backing::Shared { object, offset } => {
                object.page((offset + off) / PAGE, self.owner).ok_or(FaultError::OutOfMemory)
            }
            Backing::SharedFile { vnode, offset } => vnode.get_page((offset + off) / PAGE).map_err(|e| match e {
                Errno::ENOMEM => FaultError::OutOfMemory,
                _ => FaultError::Io,
            }),
            Backing::File { vnode, offset, file_len } => {
                // A page wholly past the end of the file (as it is now): SIGBUS, as on Linux.
                let size = vnode.attr().map_err(|_| FaultError::Io)?.size;
                if offset + off >= page_up(size).unwrap_or(u64::MAX) {
                    return Err(FaultError::Io);
                }
                let pa = pm.alloc_zeroed(self.owner, pgflags::FILE).ok_or(FaultError::OutOfMemory)?;
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
                Ok(pa)
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
    pub fn resolve(&mut self, addr: u64, write: bool) -> Result<u64, FaultError> {
        if let Some(pte) = self.pages.get(&(addr / PAGE)) {
            let ok = self.find(addr).is_some_and(|e| if write { e.prot & PROT_WRITE != 0 } else { e.prot != 0 });
            if ok && !(write && pte.cow) {
                return Ok(pte.pa + addr % PAGE);
            }
        }
        let pa = self.fault(addr, if write { Access::Write } else { Access::Read })?;
        Ok(pa + addr % PAGE)
    }

    /// A copy for fork: private pages become copy-on-write in both, shared ones stay shared.
    /// The parent's stub loses write access to its now-shared private pages.
    pub fn fork(&mut self, owner: u64) -> AddressSpace {
        let pm = Self::pm();
        let mut child = AddressSpace::new(owner);
        child.entries = self.entries.clone();
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        let mut downgrade = Vec::new();
        for (&vpn, pte) in self.pages.iter_mut() {
            let shared = {
                let addr = vpn * PAGE;
                let (_, e) = match self.entries.range(..=addr).next_back() {
                    Some(x) if addr < x.1.end => x,
                    _ => continue,
                };
                e.shared()
            };
            pm.page_ref(pte.pa);
            if !shared {
                pte.cow = true;
                if pte.stub_prot & PROT_WRITE != 0 {
                    downgrade.push(vpn);
                    pte.stub_prot = 0;
                }
            }
            child.pages.insert(vpn, Pte { pa: pte.pa, cow: pte.cow, stub_prot: 0 });
        }
        // Unmap the pages that were writable in the parent's stub, in runs.
        let mut i = 0;
        while i < downgrade.len() {
            let start = downgrade[i];
            let mut end = start + 1;
            while i + 1 < downgrade.len() && downgrade[i + 1] == end {
                i += 1;
                end += 1;
            }
            self.unmap_in_stub(start * PAGE, end * PAGE);
            i += 1;
        }
        child
    }

    /// Release every page (exit, exec).
    pub fn clear(&mut self) {
        let pm = Self::pm();
        for (_, pte) in std::mem::take(&mut self.pages) {
            pm.page_unref(pte.pa);
        }
        for pa in std::mem::take(&mut self.deferred) {
            pm.page_unref(pa);
        }
        self.entries.clear();
        self.pending = Ops::new();
        self.unmap_queued = false;
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        if physmem::get().is_some() {
            self.clear();
        }
        if let Some(stub) = self.stub.take() {
            stub.kill();
        }
    }
}
