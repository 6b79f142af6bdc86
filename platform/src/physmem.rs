//! Physical memory: one memfd (or the `-i` file) of exactly `-m` bytes, mapped once at the fixed
//! direct-map address [`DMAP_BASE`], and the `vm_page` array that describes each 4 KiB page.
//!
//! A physical address `pa` is the kernel pointer `DMAP_BASE + pa`, in the live process and in
//! a dump alike. Guest pages are mapped into stubs from the same file (later), so a page the
//! kernel writes through the direct map is the page the guest sees. Page 0 is reserved so
//! that 0 is never a valid page.
//!
//! The free list is a stack of page frame numbers under a spinlock; the `vm_page` entries are
//! atomics read without locks by the debugger and `vps`. A caller may ask for a particular
//! free page ([`PhysMem::alloc_page_near`]: the one after its neighbour's, so that pages
//! neighbouring in a mapping or a file are neighbours in memory too, and one host mapping in
//! a stub maps many): it is taken where it lies, its entry left in the stack and skipped
//! when popped (a page's `FREE` flag, changed only under the lock, says whether it is free;
//! every free page has at least one entry). The stack is rebuilt from the flags when such
//! stale entries make it a quarter longer than memory has pages.
//!
//! The machine's memory is one process-wide [`PhysMem`] ([`init`], [`get`], [`shared`]). Tests
//! make small private ones with [`PhysMem::scratch`]: a memfd mapped wherever the host puts
//! it (their `kva` is not `DMAP_BASE + pa`), unmapped when the last reference goes.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::PAGE_SIZE;
use crate::sync::SpinLock;

/// Kernel virtual address of physical address 0 (64 TiB: far above the kernel binary, its heap
/// and host library mappings, below the host's top-down mmap area).
pub const DMAP_BASE: u64 = 0x4000_0000_0000;
/// Largest `-m` accepted (the direct map must stay below the host mmap area).
pub const MAX_PHYSMEM: u64 = 1 << 40;
/// Smallest `-m` accepted.
pub const MIN_PHYSMEM: u64 = 8 << 20;

/// `VmPage::flags` bits.
pub mod pgflags {
    /// On the free list.
    pub const FREE: u32 = 1 << 0;
    /// Reserved by the kernel (page 0).
    pub const RESERVED: u32 = 1 << 1;
    /// Anonymous memory of an address space.
    pub const ANON: u32 = 1 << 2;
    /// Holds file data (page cache).
    pub const FILE: u32 = 1 << 3;
    /// Kernel data (tmpfs, buffers).
    pub const KERNEL: u32 = 1 << 4;
    /// Free and never used since the memory was made: the host's zeros (a fresh memfd), so
    /// [`super::PhysMem::alloc_zeroed`] need not write it — nor make the host back it before
    /// the guest touches it.
    pub const ZEROED: u32 = 1 << 5;
}

/// What an allocated page holds, by its allocation's flags ([`PhysMem::class_pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageClass {
    /// [`pgflags::ANON`].
    Anon = 0,
    /// [`pgflags::FILE`] (and not ANON).
    File = 1,
    /// [`pgflags::KERNEL`] (and neither of the others).
    Kernel = 2,
}

impl PageClass {
    /// The class of a page with these flags; None for a free, reserved or unclassed one.
    pub fn of(flags: u32) -> Option<PageClass> {
        if flags & (pgflags::FREE | pgflags::RESERVED) != 0 {
            None
        } else if flags & pgflags::ANON != 0 {
            Some(PageClass::Anon)
        } else if flags & pgflags::FILE != 0 {
            Some(PageClass::File)
        } else if flags & pgflags::KERNEL != 0 {
            Some(PageClass::Kernel)
        } else {
            None
        }
    }
}

/// One physical page's state.
#[repr(C)]
#[derive(Debug)]
pub struct VmPage {
    pub flags: AtomicU32,
    pub refcount: AtomicU32,
    /// Who holds it: a pid, an object id, 0 for none.
    pub owner: AtomicU64,
}

/// Offsets of [`VmPage`] fields for the exported layout: (size, flags, refcount, owner).
pub const VM_PAGE_LAYOUT: (u32, u32, u32, u32) = (
    core::mem::size_of::<VmPage>() as u32,
    core::mem::offset_of!(VmPage, flags) as u32,
    core::mem::offset_of!(VmPage, refcount) as u32,
    core::mem::offset_of!(VmPage, owner) as u32,
);

/// Why physical memory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PhysMemError {
    #[error("physical memory of {0} bytes is not a multiple of the page size")]
    Unaligned(u64),
    #[error("physical memory of {0} bytes is out of range ({MIN_PHYSMEM}..={MAX_PHYSMEM})")]
    Size(u64),
    #[error("memory image {}: {source}", path.display())]
    Image { path: PathBuf, source: io::Error },
    #[error("memfd_create: {0}")]
    Memfd(io::Error),
    #[error("cannot size physical memory to {size} bytes: {source}")]
    Truncate { size: u64, source: io::Error },
    #[error("cannot map physical memory at {DMAP_BASE:#x}: {0}")]
    Map(io::Error),
    #[error("physical memory is already initialised")]
    Again,
}

/// The machine's physical memory.
#[derive(Debug)]
pub struct PhysMem {
    /// Kernel virtual address of physical address 0 ([`DMAP_BASE`] for the machine's memory).
    base: u64,
    size: u64,
    fd: OwnedFd,
    image: Option<PathBuf>,
    pages: Box<[VmPage]>,
    free: SpinLock<Vec<u32>>,
    nfree: AtomicU64,
    /// Allocated pages by class ([`PageClass`]), kept with `nfree` under the free list's
    /// lock: what /proc/meminfo and sysinfo(2) report, without a walk of every page (busybox
    /// `sort` calls sysinfo at each start; the walk cost 16k page reads on a 64 MB guest).
    nclass: [AtomicU64; 3],
    /// Pages not reserved (fixed at start).
    usable: u64,
    /// Called when the free list is empty, to free pages held only by caches (see
    /// [`PhysMem::set_reclaim`]).
    reclaim: OnceLock<Reclaim>,
    /// Where [`PhysMem::free_stretch`] looks next: below the stretch it gave last (a pfn; 0:
    /// from the top of memory).
    stretch_below: AtomicU64,
}

/// A reclaim hook: free up to this many pages of this memory; returns how many it freed. It
/// may be called with any lock held, so it must not wait for one.
pub type Reclaim = fn(&PhysMem, u64) -> u64;

/// Pages asked of the reclaim hook at once.
const RECLAIM_BATCH: u64 = 64;

/// How far below the top of the free stack [`PhysMem::alloc_page_near`] looks for the lowest
/// of a stretch of free pages.
const SLIDE_PAGES: u32 = 15;

static PHYSMEM: OnceLock<Arc<PhysMem>> = OnceLock::new();

/// The page frame number of `pa`, if it fits the free list's.
fn pfn_of(pa: u64) -> Option<u32> {
    u32::try_from(pa / PAGE_SIZE as u64).ok()
}

fn memfd() -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new fd we then own.
    let fd = unsafe { libc::memfd_create(c"vk-physmem".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check_size(size: u64) -> Result<(), PhysMemError> {
    if !size.is_multiple_of(PAGE_SIZE as u64) {
        return Err(PhysMemError::Unaligned(size));
    }
    if !(MIN_PHYSMEM..=MAX_PHYSMEM).contains(&size) {
        return Err(PhysMemError::Size(size));
    }
    Ok(())
}

/// Create physical memory of `size` bytes, in a memfd or in the file `image`, and map it.
pub fn init(size: u64, image: Option<&Path>) -> Result<&'static PhysMem, PhysMemError> {
    check_size(size)?;
    if PHYSMEM.get().is_some() {
        return Err(PhysMemError::Again);
    }
    let fd: OwnedFd = match image {
        Some(p) => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .map_err(|source| PhysMemError::Image { path: p.to_path_buf(), source })?
            .into(),
        None => memfd().map_err(PhysMemError::Memfd)?,
    };
    let pm = PhysMem::map(fd, size, Some(DMAP_BASE), image)?;
    PHYSMEM.set(Arc::new(pm)).map_err(|_| PhysMemError::Again)?;
    get().ok_or(PhysMemError::Again)
}

/// The machine's physical memory (after [`init`]).
pub fn get() -> Option<&'static PhysMem> {
    PHYSMEM.get().map(|pm| &**pm)
}

/// The machine's physical memory as a reference to keep (an address space holds one).
pub fn shared() -> Option<Arc<PhysMem>> {
    PHYSMEM.get().cloned()
}

impl PhysMem {
    /// A small private physical memory of `size` bytes (a memfd mapped anywhere), for tests of
    /// code that takes its memory explicitly.
    pub fn scratch(size: u64) -> Result<PhysMem, PhysMemError> {
        check_size(size)?;
        PhysMem::map(memfd().map_err(PhysMemError::Memfd)?, size, None, None)
    }

    /// Size `fd` to `size` bytes and map it, at `at` (never replacing a mapping) or anywhere;
    /// the `vm_page` array with page 0 reserved.
    fn map(fd: OwnedFd, size: u64, at: Option<u64>, image: Option<&Path>) -> Result<PhysMem, PhysMemError> {
        let file = std::fs::File::from(fd.try_clone().map_err(PhysMemError::Memfd)?);
        file.set_len(size).map_err(|source| PhysMemError::Truncate { size, source })?;
        let (hint, fixed) = match at {
            Some(a) => (a as *mut libc::c_void, libc::MAP_FIXED_NOREPLACE),
            None => (std::ptr::null_mut(), 0),
        };
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping: it maps the file at
        // `at` or fails; without it the host picks a free range. Either way the new mapping
        // belongs to this PhysMem, which unmaps it when dropped.
        let p = unsafe {
            libc::mmap(
                hint,
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | fixed,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(PhysMemError::Map(io::Error::last_os_error()));
        }
        if at.is_some_and(|a| p as u64 != a) {
            // An old kernel that ignores MAP_FIXED_NOREPLACE placed it elsewhere.
            // SAFETY: unmapping the mapping we just made.
            unsafe { libc::munmap(p, size as usize) };
            return Err(PhysMemError::Map(io::Error::from_raw_os_error(libc::EEXIST)));
        }
        let npages = (size / PAGE_SIZE as u64) as usize;
        // A new memfd reads as zeros; an image file may not.
        let fresh = if image.is_none() { pgflags::ZEROED } else { 0 };
        let pages: Box<[VmPage]> = (0..npages)
            .map(|_| VmPage {
                flags: AtomicU32::new(pgflags::FREE | fresh),
                refcount: AtomicU32::new(0),
                owner: AtomicU64::new(0),
            })
            .collect();
        pages[0].flags.store(pgflags::RESERVED, Ordering::Relaxed);
        // Hand out low pages first: pop from the end of a descending stack.
        let free: Vec<u32> = (1..npages as u32).rev().collect();
        let nfree = free.len() as u64;
        Ok(PhysMem {
            base: p as u64,
            size,
            fd,
            image: image.map(Path::to_path_buf),
            pages,
            free: SpinLock::new("vm_page_free", free),
            nfree: AtomicU64::new(nfree),
            nclass: Default::default(),
            usable: nfree,
            reclaim: OnceLock::new(),
            stretch_below: AtomicU64::new(0),
        })
    }

    /// Bytes of physical memory.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn npages(&self) -> usize {
        self.pages.len()
    }

    /// Pages on the free list.
    pub fn free_pages(&self) -> u64 {
        self.nfree.load(Ordering::Relaxed)
    }

    /// Allocated pages of a class, as counted at allocation and free.
    pub fn class_pages(&self, class: PageClass) -> u64 {
        self.nclass[class as usize].load(Ordering::Relaxed)
    }

    /// Pages that are not reserved: what the machine has to give (all free at start).
    pub fn usable_pages(&self) -> u64 {
        self.usable
    }

    /// The `-i` file, if physical memory lives in one.
    pub fn image(&self) -> Option<&Path> {
        self.image.as_deref()
    }

    /// The memory file (stubs map guest pages from it).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Address and entry count of the `vm_page` array, for the exported layout.
    pub fn vm_page_array(&self) -> (u64, u64) {
        (self.pages.as_ptr() as u64, self.pages.len() as u64)
    }

    /// The `vm_page` of a physical address.
    pub fn page(&self, pa: u64) -> Option<&VmPage> {
        self.pages.get((pa / PAGE_SIZE as u64) as usize)
    }

    /// Kernel virtual address of `pa`.
    pub fn kva(&self, pa: u64) -> u64 {
        self.base + pa
    }

    /// Set the hook that frees cached pages when the free list runs out (once).
    pub fn set_reclaim(&self, hook: Reclaim) {
        let _ = self.reclaim.set(hook);
    }

    /// Allocate a page (refcount 1), or None when memory is exhausted (after the reclaim
    /// hook, if any, found nothing to free).
    pub fn alloc_page(&self, owner: u64, flags: u32) -> Option<u64> {
        self.alloc(owner, flags).map(|(pa, _)| pa)
    }

    /// [`PhysMem::alloc_page`], and whether the page still holds the host's zeros.
    fn alloc(&self, owner: u64, flags: u32) -> Option<(u64, bool)> {
        if let Some(got) = self.pop(owner, flags) {
            return Some(got);
        }
        let hook = self.reclaim.get()?;
        if hook(self, RECLAIM_BATCH) == 0 {
            return None;
        }
        self.pop(owner, flags)
    }

    /// Take the free page on top of the stack (skipping stale entries: pages taken by
    /// [`PhysMem::alloc_page_near`]).
    fn pop(&self, owner: u64, flags: u32) -> Option<(u64, bool)> {
        let mut free = self.free.lock();
        self.pop_locked(&mut free, owner, flags)
    }

    /// Take page `pfn` if it is free; the caller holds the free list's lock.
    fn claim(&self, pfn: u32, owner: u64, flags: u32) -> Option<(u64, bool)> {
        let pg = self.pages.get(pfn as usize)?;
        let old = pg.flags.load(Ordering::Relaxed);
        if old & pgflags::FREE == 0 {
            return None;
        }
        pg.flags.store(flags & !(pgflags::FREE | pgflags::ZEROED), Ordering::Relaxed);
        self.nfree.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = PageClass::of(flags) {
            self.nclass[c as usize].fetch_add(1, Ordering::Relaxed);
        }
        pg.owner.store(owner, Ordering::Relaxed);
        pg.refcount.store(1, Ordering::Release);
        Some((u64::from(pfn) * PAGE_SIZE as u64, old & pgflags::ZEROED != 0))
    }

    /// [`PhysMem::alloc_page`], the page at `want` when it is free (else any, as
    /// `alloc_page`): the page after a neighbour's, for contiguity (see the module doc).
    pub fn alloc_page_near(&self, want: Option<u64>, owner: u64, flags: u32) -> Option<u64> {
        self.alloc_near(want, owner, flags).map(|(pa, _)| pa)
    }

    /// [`PhysMem::alloc_zeroed`], the page at `want` when it is free.
    pub fn alloc_zeroed_near(&self, want: Option<u64>, owner: u64, flags: u32) -> Option<u64> {
        let (pa, zeroed) = self.alloc_near(want, owner, flags)?;
        if !zeroed {
            self.zero(pa, PAGE_SIZE);
        }
        Some(pa)
    }

    /// The page at `want` if free; else the lowest of the free pages just below the top of
    /// the stack (at most [`SLIDE_PAGES`] down), so that the pages after it are free for
    /// the next allocations that want them (a stack freed in ascending order hands pages out
    /// descending: each taken page's successor would be gone).
    fn alloc_near(&self, want: Option<u64>, owner: u64, flags: u32) -> Option<(u64, bool)> {
        {
            let mut free = self.free.lock();
            if let Some(got) = want.and_then(pfn_of).and_then(|pfn| self.claim(pfn, owner, flags)) {
                self.rebuild_if_stale(&mut free);
                return Some(got);
            }
            while let Some(top) = free.pop() {
                if !self.is_free(top) {
                    continue; // stale
                }
                let mut low = top;
                while top - low < SLIDE_PAGES && low > 1 && self.is_free(low - 1) {
                    low -= 1;
                }
                if low != top {
                    free.push(top); // still free: its entry stays good
                }
                let got = self.claim(low, owner, flags);
                if low != top {
                    self.rebuild_if_stale(&mut free);
                }
                return got;
            }
        }
        self.alloc(owner, flags)
    }

    /// The first page of `n` free pages in a row, taking none: the highest such stretch below
    /// the one it gave last (from the top of memory again once none is left) — room for a
    /// file's pages to lie in the order of their offsets. The free stack hands out low pages
    /// first and recently freed ones, so the top of memory stays free the longest. None when
    /// no stretch is free (or `n` is 0).
    ///
    /// Callers place pages there with [`PhysMem::alloc_run`]'s `want` or
    /// [`PhysMem::alloc_page_at`], each page only while it is still free.
    pub fn free_stretch(&self, n: u64) -> Option<u64> {
        let npages = self.pages.len() as u64;
        if n == 0 || n >= npages {
            return None;
        }
        let below = self.stretch_below.load(Ordering::Relaxed);
        let found = self.free_stretch_below(n, if below == 0 { npages } else { below }).or_else(|| {
            // None left below the last: from the top again (stretches given before may
            // have been taken, or freed since).
            if below != 0 { self.free_stretch_below(n, npages) } else { None }
        })?;
        self.stretch_below.store(found, Ordering::Relaxed);
        Some(found * PAGE_SIZE as u64)
    }

    /// The highest pfn starting `n` free pages in a row that end at or below pfn `top`.
    fn free_stretch_below(&self, n: u64, top: u64) -> Option<u64> {
        let mut run = 0;
        // Pages are read without the free list's lock: a hint, checked again as each is taken.
        for pfn in (1..top).rev() {
            if self.pages[pfn as usize].flags.load(Ordering::Relaxed) & pgflags::FREE != 0 {
                run += 1;
                if run == n {
                    return Some(pfn);
                }
            } else {
                run = 0;
            }
        }
        None
    }

    /// Take the page at `pa` (refcount 1) if it is free; None if not (nothing else is taken).
    pub fn alloc_page_at(&self, pa: u64, owner: u64, flags: u32) -> Option<u64> {
        let pfn = pfn_of(pa).filter(|&p| u64::from(p) * PAGE_SIZE as u64 == pa)?;
        let mut free = self.free.lock();
        let got = self.claim(pfn, owner, flags).map(|(pa, _)| pa);
        self.rebuild_if_stale(&mut free);
        got
    }

    /// Whether page `pfn` is free (under the free list's lock).
    fn is_free(&self, pfn: u32) -> bool {
        self.pages.get(pfn as usize).is_some_and(|p| p.flags.load(Ordering::Relaxed) & pgflags::FREE != 0)
    }

    /// Pages taken where they lie leave their entries in the stack: rebuild it from the
    /// flags once they make it a quarter longer than memory has pages.
    fn rebuild_if_stale(&self, free: &mut Vec<u32>) {
        if free.len() > self.pages.len() + self.pages.len() / 4 {
            free.clear();
            free.extend(
                (1..self.pages.len() as u32).rev().filter(|&p| self.pages[p as usize].flags.load(Ordering::Relaxed) & pgflags::FREE != 0),
            );
        }
    }

    /// Up to `n` pages (refcount 1 each), ascending, in as few runs of neighbours as the free
    /// pages allow: from `want` on while those are free, then around each page popped (the
    /// pages just below it, then just above, while free — a stack freed in ascending order
    /// hands pages out descending). Fewer (none) when memory runs out.
    pub fn alloc_run(&self, n: usize, want: Option<u64>, owner: u64, flags: u32) -> Vec<u64> {
        self.alloc_run_flagged(n, want, owner, flags).into_iter().map(|(pa, _)| pa).collect()
    }

    /// [`PhysMem::alloc_run`] of zero-filled pages.
    pub fn alloc_zeroed_run(&self, n: usize, want: Option<u64>, owner: u64, flags: u32) -> Vec<u64> {
        self.alloc_run_flagged(n, want, owner, flags)
            .into_iter()
            .map(|(pa, zeroed)| {
                if !zeroed {
                    self.zero(pa, PAGE_SIZE);
                }
                pa
            })
            .collect()
    }

    fn alloc_run_flagged(&self, n: usize, want: Option<u64>, owner: u64, flags: u32) -> Vec<(u64, bool)> {
        let mut got: Vec<(u64, bool)> = Vec::with_capacity(n);
        {
            let mut free = self.free.lock();
            let mut next = want.and_then(pfn_of);
            while got.len() < n {
                let p = match next.and_then(|p| self.claim(p, owner, flags)) {
                    Some(g) => g,
                    None => {
                        let Some(g) = self.pop_locked(&mut free, owner, flags) else { break };
                        // Take the free pages just below it first, to start the run lower.
                        let mut pfn = g.0 / PAGE_SIZE as u64;
                        got.push(g);
                        while got.len() < n
                            && let Some(b) = pfn.checked_sub(1).filter(|&b| b > 0).and_then(|b| self.claim(b as u32, owner, flags))
                        {
                            got.push(b);
                            pfn -= 1;
                        }
                        let top = got.iter().map(|g| g.0).max().unwrap_or(0);
                        next = pfn_of(top + PAGE_SIZE as u64);
                        continue;
                    }
                };
                next = pfn_of(p.0 + PAGE_SIZE as u64);
                got.push(p);
            }
            self.rebuild_if_stale(&mut free);
        }
        if got.len() < n {
            // Memory ran out: the reclaim hook (with no lock held), then page by page.
            while got.len() < n {
                let Some(g) = self.alloc(owner, flags) else { break };
                got.push(g);
            }
        }
        got.sort_unstable();
        got
    }

    fn pop_locked(&self, free: &mut Vec<u32>, owner: u64, flags: u32) -> Option<(u64, bool)> {
        loop {
            let pfn = free.pop()?;
            if let Some(got) = self.claim(pfn, owner, flags) {
                return Some(got);
            }
        }
    }

    /// Allocate a zero-filled page (written only if it was ever used: a page never handed
    /// out still holds the host's zeros, and is left for the guest's touch to back).
    pub fn alloc_zeroed(&self, owner: u64, flags: u32) -> Option<u64> {
        let (pa, zeroed) = self.alloc(owner, flags)?;
        if !zeroed {
            self.zero(pa, PAGE_SIZE);
        }
        Some(pa)
    }

    /// Take another reference to an allocated page.
    pub fn page_ref(&self, pa: u64) {
        if let Some(pg) = self.page(pa) {
            pg.refcount.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Drop a reference; the page returns to the free list at zero. Returns whether it did.
    pub fn page_unref(&self, pa: u64) -> bool {
        let Some(pg) = self.page(pa) else { return false };
        if pg.flags.load(Ordering::Relaxed) & (pgflags::FREE | pgflags::RESERVED) != 0 {
            panic!("vm_page: unref of free or reserved page {pa:#x}");
        }
        if pg.refcount.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        pg.owner.store(0, Ordering::Relaxed);
        // FREE changes under the lock only: `claim` decides by it.
        let mut free = self.free.lock();
        if let Some(c) = PageClass::of(pg.flags.swap(pgflags::FREE, Ordering::Relaxed)) {
            self.nclass[c as usize].fetch_sub(1, Ordering::Relaxed);
        }
        free.push((pa / PAGE_SIZE as u64) as u32);
        self.nfree.fetch_add(1, Ordering::Relaxed);
        drop(free);
        true
    }

    fn check(&self, pa: u64, len: usize) {
        let end = pa.checked_add(len as u64);
        assert!(end.is_some_and(|e| e <= self.size), "physical access {pa:#x}+{len:#x} beyond memory");
    }

    /// Copy out of physical memory.
    pub fn read(&self, pa: u64, buf: &mut [u8]) {
        self.check(pa, buf.len());
        // SAFETY: [pa, pa+len) lies inside the direct map (checked), which is mapped read/write
        // for the life of self; `buf` is a distinct Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.kva(pa) as *const u8, buf.as_mut_ptr(), buf.len()) };
    }

    /// Copy into physical memory.
    pub fn write(&self, pa: u64, data: &[u8]) {
        self.check(pa, data.len());
        // SAFETY: as in `read`, with the direct map as the destination.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.kva(pa) as *mut u8, data.len()) };
    }

    /// Zero physical memory.
    pub fn zero(&self, pa: u64, len: usize) {
        self.check(pa, len);
        // SAFETY: as in `write`.
        unsafe { std::ptr::write_bytes(self.kva(pa) as *mut u8, 0, len) };
    }

    /// The 32-bit word at physical address `pa` (4-aligned), for atomic access shared with the
    /// guest (futexes).
    pub fn atomic_u32(&self, pa: u64) -> Option<&std::sync::atomic::AtomicU32> {
        if !pa.is_multiple_of(4) || pa.checked_add(4)? > self.size {
            return None;
        }
        // SAFETY: the word lies inside the direct map, mapped for the life of self; it is
        // 4-aligned; guest and kernel only touch it atomically or with plain copies, as shared
        // memory.
        Some(unsafe { &*(self.kva(pa) as *const std::sync::atomic::AtomicU32) })
    }

    /// Copy one page to another.
    pub fn copy_page(&self, dst: u64, src: u64) {
        self.check(dst, PAGE_SIZE);
        self.check(src, PAGE_SIZE);
        if dst != src {
            // SAFETY: both pages lie inside the direct map (checked) and, being distinct
            // page-aligned pages, do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(self.kva(src) as *const u8, self.kva(dst) as *mut u8, PAGE_SIZE) };
        }
    }
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        // SAFETY: the mapping [base, base + size) was made by `PhysMem::map` for this PhysMem
        // alone; every reference into it (`atomic_u32`) borrows self, so none outlives this.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: physical memory is a process-wide singleton.
    #[test]
    fn allocate_write_read_free() {
        assert!(matches!(init(4096 * 3 + 1, None), Err(PhysMemError::Unaligned(_))));
        assert!(matches!(init(4096, None), Err(PhysMemError::Size(_))));
        let pm = init(MIN_PHYSMEM, None).unwrap();
        assert!(matches!(init(MIN_PHYSMEM, None), Err(PhysMemError::Again)));
        let total = pm.free_pages();
        assert_eq!(total, pm.npages() as u64 - 1);
        let a = pm.alloc_zeroed(7, pgflags::ANON).unwrap();
        assert_ne!(a, 0, "page 0 is reserved");
        assert_eq!(pm.free_pages(), total - 1);
        pm.write(a + 10, b"hello");
        let mut buf = [0u8; 5];
        pm.read(a + 10, &mut buf);
        assert_eq!(&buf, b"hello");
        let b = pm.alloc_page(7, pgflags::ANON).unwrap();
        pm.copy_page(b, a);
        pm.read(b + 10, &mut buf);
        assert_eq!(&buf, b"hello");
        assert_eq!(pm.page(a).unwrap().owner.load(Ordering::Relaxed), 7);
        pm.page_ref(a);
        assert!(!pm.page_unref(a));
        assert!(pm.page_unref(a));
        assert!(pm.page_unref(b));
        assert_eq!(pm.free_pages(), total);
        // Exhaustion returns None rather than failing.
        let mut held = Vec::new();
        while let Some(p) = pm.alloc_page(1, pgflags::KERNEL) {
            held.push(p);
        }
        assert_eq!(held.len() as u64, total);
        for p in held {
            pm.page_unref(p);
        }
        assert_eq!(pm.free_pages(), total);
    }

    /// Allocated pages by class, by a walk of every page's flags.
    fn walk(pm: &PhysMem) -> [u64; 3] {
        let mut n = [0; 3];
        for pg in pm.pages.iter() {
            if let Some(c) = PageClass::of(pg.flags.load(Ordering::Relaxed)) {
                n[c as usize] += 1;
            }
        }
        n
    }

    #[test]
    fn class_counts_agree_with_the_pages_flags() {
        let pm = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let counts = |pm: &PhysMem| [PageClass::Anon, PageClass::File, PageClass::Kernel].map(|c| pm.class_pages(c));
        assert_eq!(counts(&pm), [0, 0, 0]);
        assert_eq!(pm.usable_pages(), pm.npages() as u64 - 1, "page 0 is reserved");
        let a = pm.alloc_page(1, pgflags::ANON).unwrap();
        let f = pm.alloc_zeroed(1, pgflags::FILE).unwrap();
        let k = pm.alloc_page_near(Some(f + PAGE_SIZE as u64), 1, pgflags::KERNEL).unwrap();
        let run = pm.alloc_zeroed_run(5, None, 1, pgflags::ANON);
        let at = pm.free_stretch(1).unwrap();
        assert_eq!(pm.alloc_page_at(at, 1, pgflags::FILE), Some(at));
        assert_eq!(counts(&pm), [6, 2, 1]);
        assert_eq!(counts(&pm), walk(&pm));
        // A shared page leaves its class with its last reference.
        pm.page_ref(a);
        pm.page_unref(a);
        assert_eq!(counts(&pm), [6, 2, 1]);
        for p in [a, f, k, at].into_iter().chain(run) {
            pm.page_unref(p);
        }
        assert_eq!(counts(&pm), [0, 0, 0]);
        assert_eq!(counts(&pm), walk(&pm));
        assert_eq!(pm.free_pages(), pm.usable_pages());
    }

    #[test]
    fn free_stretches_come_from_the_top_down_and_pages_are_taken_exactly_there() {
        let pm = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let total = pm.free_pages();
        let top = pm.npages() as u64;
        let p = PAGE_SIZE as u64;
        let a = pm.free_stretch(16).unwrap();
        assert_eq!(a, (top - 16) * p, "the highest free stretch");
        assert_eq!(pm.free_pages(), total, "nothing is taken");
        // The next one lies below it; a taken page splits what is free.
        assert_eq!(pm.alloc_page_at(a - 5 * p, 1, pgflags::FILE), Some(a - 5 * p));
        assert_eq!(pm.alloc_page_at(a - 5 * p, 1, pgflags::FILE), None, "taken already");
        assert_eq!(pm.alloc_page_at(a + 1, 1, pgflags::FILE), None, "not a page's address");
        let b = pm.free_stretch(8).unwrap();
        assert_eq!(b, a - 13 * p, "below the last stretch and the taken page");
        // The free stack does not hand out the stretch's pages first.
        let low = pm.alloc_page(1, pgflags::ANON).unwrap();
        assert!(low < b);
        // No room below the last stretch, nor from the top (the taken page splits memory).
        assert_eq!(pm.free_stretch(top - 20), None);
        pm.page_unref(a - 5 * p);
        pm.page_unref(low);
        assert_eq!(pm.free_pages(), total);
        assert_eq!(pm.free_stretch(top - 20), Some(20 * p), "from the top once none is left below");
        assert_eq!(pm.free_stretch(0), None);
    }

    #[test]
    fn a_wanted_free_page_is_taken_where_it_lies_and_never_handed_out_twice() {
        let pm = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let total = pm.free_pages();
        let a = pm.alloc_page(1, pgflags::ANON).unwrap();
        // The page after `a` is free: taken, though it is not on top of the stack.
        let far = a + 100 * PAGE_SIZE as u64;
        assert_eq!(pm.alloc_page_near(Some(far), 1, pgflags::ANON), Some(far));
        assert_eq!(pm.free_pages(), total - 2);
        // A wanted page that is taken, or out of range: any other.
        let b = pm.alloc_zeroed_near(Some(far), 1, pgflags::ANON).unwrap();
        assert!(b != far && b != a);
        let c = pm.alloc_page_near(Some(!0xfff), 1, pgflags::ANON).unwrap();
        assert!(![a, b, far].contains(&c));
        // Its stale entry in the stack is skipped: every page of memory is handed out once.
        let mut held = vec![a, b, c, far];
        while let Some(p) = pm.alloc_page(1, pgflags::KERNEL) {
            held.push(p);
        }
        assert_eq!(held.len() as u64, total);
        let mut sorted = held.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), held.len(), "a page handed out twice");
        for p in held {
            pm.page_unref(p);
        }
        assert_eq!(pm.free_pages(), total);
        // Taking wanted pages over and over piles up stale entries: the stack is rebuilt, and
        // still hands every free page out once.
        for _ in 0..3 * pm.npages() {
            let p = pm.alloc_page_near(Some(far), 1, pgflags::ANON).unwrap();
            assert_eq!(p, far);
            pm.page_unref(p);
        }
        assert!(pm.free.lock().len() <= pm.npages() + pm.npages() / 4 + 1);
        let mut n = 0;
        while pm.alloc_page(1, pgflags::KERNEL).is_some() {
            n += 1;
        }
        assert_eq!(n, total);
    }

    #[test]
    fn a_run_is_neighbours_in_ascending_order_when_free_pages_allow() {
        let pm = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let total = pm.free_pages();
        // Freed in ascending order: popped one by one they come out descending.
        let held: Vec<u64> = (0..16).map(|_| pm.alloc_page(1, pgflags::ANON).unwrap()).collect();
        for &pa in &held {
            pm.page_unref(pa);
        }
        let run = pm.alloc_run(8, None, 1, pgflags::FILE);
        assert_eq!(run.len(), 8);
        assert!(run.windows(2).all(|w| w[1] == w[0] + PAGE_SIZE as u64), "{run:x?}");
        // From the page wanted on, when free; zero-filled when asked.
        let want = run[7] + 100 * PAGE_SIZE as u64;
        assert_eq!(pm.alloc_page_near(Some(want), 1, pgflags::ANON), Some(want));
        pm.write(want, b"junk");
        pm.page_unref(want);
        let z = pm.alloc_zeroed_run(4, Some(want), 1, pgflags::ANON);
        assert_eq!(z, (0..4).map(|i| want + i * PAGE_SIZE as u64).collect::<Vec<_>>());
        let mut b = [1u8; 4];
        pm.read(want, &mut b);
        assert_eq!(b, [0; 4]);
        for pa in run.into_iter().chain(z) {
            assert_eq!(pm.page(pa).unwrap().refcount.load(Ordering::Relaxed), 1);
            pm.page_unref(pa);
        }
        assert_eq!(pm.free_pages(), total);
        // More than memory holds: all of it, once.
        let all = pm.alloc_run(pm.npages() + 5, None, 1, pgflags::ANON);
        assert_eq!(all.len() as u64, total);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for pa in all {
            pm.page_unref(pa);
        }
    }

    #[test]
    fn a_page_used_before_is_zeroed_again_a_fresh_one_is_left_alone() {
        let pm = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let a = pm.alloc_page(1, pgflags::ANON).unwrap();
        assert_eq!(pm.page(a).unwrap().flags.load(Ordering::Relaxed), pgflags::ANON, "ZEROED goes on allocation");
        pm.write(a, &[0xff; 64]);
        pm.page_unref(a);
        assert_eq!(pm.page(a).unwrap().flags.load(Ordering::Relaxed), pgflags::FREE, "a freed page is not zeros");
        // The same page again (the free list is a stack), through alloc_zeroed: zeros.
        let b = pm.alloc_zeroed(1, pgflags::ANON).unwrap();
        assert_eq!(a, b);
        let mut buf = [0xaau8; 64];
        pm.read(b, &mut buf);
        assert_eq!(buf, [0; 64]);
        // A page never used reads as zeros without being written.
        let c = pm.alloc_zeroed(1, pgflags::ANON).unwrap();
        pm.read(c, &mut buf);
        assert_eq!(buf, [0; 64]);
        pm.page_unref(b);
        pm.page_unref(c);
    }

    #[test]
    fn scratch_memory_is_private() {
        let a = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        let b = PhysMem::scratch(MIN_PHYSMEM).unwrap();
        assert_ne!(a.kva(0), DMAP_BASE);
        let (pa, pb) = (a.alloc_zeroed(1, pgflags::ANON).unwrap(), b.alloc_zeroed(1, pgflags::ANON).unwrap());
        assert_eq!(pa, pb, "each has its own page numbers");
        a.write(pa, b"a");
        b.write(pb, b"b");
        let mut x = [0u8; 1];
        a.read(pa, &mut x);
        assert_eq!(&x, b"a");
        a.atomic_u32(pa).unwrap().store(7, Ordering::SeqCst);
        b.read(pb, &mut x);
        assert_eq!(&x, b"b");
        assert_eq!(a.free_pages(), a.npages() as u64 - 2);
    }
}
