//! A file's memory object: its resident pages by page index — the page cache of an ext2 file.
//!
//! read(2) copies from these pages; private mappings of the file map them read-only and
//! copy-on-write (so busybox's text is mapped, not copied, by every process that runs it);
//! shared mappings map them writable. write(2) and truncate go through the file system (to
//! ext2's block cache, which keeps the file's blocks and metadata) and then into the pages
//! here that hold that range ([`PageCache::write`], [`PageCache::truncate`],
//! [`PageCache::invalidate`]). A page a shared mapping may write is dirty
//! ([`PageCache::mark_dirty`], by the write's fault) until the file system writes it back
//! ([`PageCache::take_dirty`]); every other page equals the file and can be dropped at any
//! time.
//!
//! A missing page is read from the file with the cache unlocked (the read may sleep); a write
//! to the file meanwhile bumps the cache's generation, and a page read before it is not
//! inserted (the fault reads again), so a stale page never enters the cache.
//!
//! A file that is mapped (a program) is laid out ([`PageCache::lay_out`]): its pages go to a
//! stretch of free memory in the order of their offsets, so that a mapping of it is a few
//! long runs in the stubs however its pages were read.
//!
//! When physical memory runs out, the allocator asks [`reclaim`] to drop clean pages only a
//! cache holds (reference count 1): every live cache is registered (weakly) for that. A page a
//! mapping still holds stays; the mapping keeps its reference when the cache drops one.
//!
//! Locking: `page_cache` (one per file) and `page_caches` (the registry) are spinlock leaves,
//! never held across a sleep or an allocation; [`reclaim`], called by the allocator with any
//! lock held, only try-locks them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use platform::PAGE_SIZE;
use platform::physmem::{self, PhysMem, pgflags};
use platform::sync::SpinLock;

use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;

const PAGE: u64 = PAGE_SIZE as u64;
/// Pages read at once when read(2) misses the page cache (read-ahead), at least.
const READ_AHEAD_PAGES: u64 = 8;
/// At most.
const READ_AHEAD_MAX_PAGES: u64 = 32;
/// Pages a mapping's fault reads from the file at once (Linux reads 128 KiB around a fault).
pub const FAULT_READ_PAGES: u64 = 32;

/// Pages held by all page caches (/proc/meminfo's Cached, MemAvailable).
static CACHED: AtomicU64 = AtomicU64::new(0);

/// Every live cache, for [`reclaim`].
static CACHES: SpinLock<Vec<Weak<PageCache>>> = SpinLock::new("page_caches", Vec::new());

#[derive(Debug, Default)]
struct Pages {
    by_index: BTreeMap<u64, u64>,
    /// Pages a shared mapping may have written that the disk may not have yet.
    dirty: BTreeSet<u64>,
    /// Bumped by every change of the file's data: a page read before a change is stale.
    generation: u64,
    /// Where the file's pages go ([`PageCache::lay_out`]): page index 0's physical address
    /// and how many pages from it.
    window: Option<(u64, u64)>,
}

/// The resident pages of one file.
#[derive(Debug)]
pub struct PageCache {
    pm: Arc<PhysMem>,
    pages: SpinLock<Pages>,
    /// Whether [`PageCache::lay_out`] was asked already (checked without the lock).
    laid_out: AtomicBool,
}

impl PageCache {
    /// An empty cache in the machine's memory, or None before physical memory exists.
    pub fn new() -> Option<Arc<PageCache>> {
        Some(PageCache::with_physmem(physmem::shared()?))
    }

    /// An empty cache whose pages come from `pm` (unit tests' scratch memory).
    pub fn with_physmem(pm: Arc<PhysMem>) -> Arc<PageCache> {
        let c = Arc::new(PageCache {
            pm,
            pages: SpinLock::new("page_cache", Pages::default()),
            laid_out: AtomicBool::new(false),
        });
        let mut all = CACHES.lock();
        // Gone caches are swept out now and then (every file read makes a cache): amortized
        // constant time per cache.
        if all.len().is_power_of_two() {
            all.retain(|w| w.strong_count() > 0);
        }
        all.push(Arc::downgrade(&c));
        c
    }

    /// Pages resident now.
    pub fn resident(&self) -> u64 {
        self.pages.lock().by_index.len() as u64
    }

    /// Whether the page at page index `idx` is resident (mincore(2)).
    pub fn contains(&self, idx: u64) -> bool {
        self.pages.lock().by_index.contains_key(&idx)
    }

    /// The physical memory its pages are in.
    pub fn physmem(&self) -> &Arc<PhysMem> {
        &self.pm
    }

    /// The page at page index `idx` if resident, with a new reference for the caller.
    pub fn lookup(&self, idx: u64) -> Option<u64> {
        let p = self.pages.lock();
        let pa = *p.by_index.get(&idx)?;
        self.pm.page_ref(pa);
        Some(pa)
    }

    /// The cached pages of indices `[first, first + n)`, ascending, as (index, page), each
    /// with a new reference for the caller: one look under the lock for a whole mapping
    /// (exec's `map_cached`).
    pub fn lookup_range(&self, first: u64, n: u64) -> Vec<(u64, u64)> {
        let p = self.pages.lock();
        let got: Vec<(u64, u64)> = p.by_index.range(first..first.saturating_add(n)).map(|(&i, &pa)| (i, pa)).collect();
        for &(_, pa) in &got {
            self.pm.page_ref(pa);
        }
        got
    }

    /// read(2) of a file of `size` bytes through its cache: bytes from `off` into `buf`, a
    /// page read once copied from here (no file-system lookups); a miss reads 8–32 pages
    /// ahead with `read` (as [`PageCache::page_ahead`]). The bytes copied.
    pub fn read(&self, off: u64, size: u64, buf: &mut [u8], read: impl Fn(u64, &mut [u8]) -> Result<usize, Errno>) -> Result<usize, Errno> {
        if off >= size {
            return Ok(0);
        }
        let n = buf.len().min(usize_of(size - off));
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (idx, in_page) = (pos / PAGE, pos % PAGE);
            let chunk = usize_of(PAGE - in_page).min(n - done);
            let pa = match self.lookup(idx) {
                Some(pa) => pa,
                None => {
                    let ahead = ((n - done) as u64).div_ceil(PAGE).clamp(READ_AHEAD_PAGES, READ_AHEAD_MAX_PAGES);
                    self.page_ahead(idx, ahead, &read)?
                }
            };
            self.pm.read(pa + in_page, &mut buf[done..done + chunk]);
            self.pm.page_unref(pa);
            done += chunk;
        }
        Ok(n)
    }

    /// The page at page index `idx` with a new reference for the caller, read in with
    /// `read(offset, buf)` (the file's read: bytes it does not return are zeros) when missing.
    pub fn page(&self, idx: u64, read: impl Fn(u64, &mut [u8]) -> Result<usize, Errno>) -> Result<u64, Errno> {
        self.page_ahead(idx, 1, read)
    }

    /// [`PageCache::page`], reading up to `ahead` pages from `idx` on in one read when `idx`
    /// is missing (read-ahead: the missing ones among them enter the cache too, up to the
    /// end of what the read returned).
    pub fn page_ahead(
        &self,
        idx: u64,
        ahead: u64,
        read: impl Fn(u64, &mut [u8]) -> Result<usize, Errno>,
    ) -> Result<u64, Errno> {
        let off = idx.checked_mul(PAGE).ok_or(Errno::EFBIG)?;
        let ahead = ahead.min(u64::MAX / PAGE - idx).max(1);
        loop {
            // Where the file's nearest cached page says its page `idx` lies — as far after
            // the one below as the offsets are apart, else as far before the one above —
            // when free: a file's pages neighbours in memory too map in one host mapping (a
            // program's text in a few), even when its faults read it out of order.
            // The read stops short of the next page cached already: a page read for nothing
            // would be freed at once, and top the free stack (the next allocation, whatever
            // it is, would take it, from where this file's pages are placed).
            let (generation, want, ahead) = {
                let p = self.pages.lock();
                if let Some(&pa) = p.by_index.get(&idx) {
                    self.pm.page_ref(pa);
                    return Ok(pa);
                }
                let ahead = p.by_index.range(idx + 1..idx + ahead).next().map_or(ahead, |(&i, _)| i - idx);
                (p.generation, placed(&p, idx), ahead)
            };
            let mut buf = vec![0u8; usize_of(ahead * PAGE)];
            let mut got = 0;
            while got < buf.len() {
                match read(off + got as u64, &mut buf[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            // The page asked for, and those after it the read reached into.
            let n = (got.div_ceil(PAGE_SIZE)).max(1);
            let fresh = self.pm.alloc_run(n, want, 0, pgflags::FILE);
            if fresh.is_empty() {
                return Err(Errno::ENOMEM);
            }
            for (chunk, &pa) in buf.chunks(PAGE_SIZE).zip(&fresh) {
                self.pm.write(pa, chunk);
            }
            let mut p = self.pages.lock();
            if p.generation != generation {
                // The file changed while we read it: read again.
                drop(p);
                for pa in fresh {
                    self.pm.page_unref(pa);
                }
                continue;
            }
            let mut unused = Vec::new();
            for (i, pa) in (idx..).zip(fresh) {
                if let std::collections::btree_map::Entry::Vacant(slot) = p.by_index.entry(i) {
                    slot.insert(pa);
                    CACHED.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Another reader got there first: its page.
                    unused.push(pa);
                }
            }
            let pa = p.by_index[&idx];
            self.pm.page_ref(pa);
            drop(p);
            for pa in unused {
                self.pm.page_unref(pa);
            }
            return Ok(pa);
        }
    }

    /// Lay the file's first `pages` pages out in physical memory in the order of their
    /// offsets (once per cache; a file being mapped, such as a program whose text every
    /// process that runs it maps): a stretch of free memory is chosen for them
    /// ([`PhysMem::free_stretch`]), pages read from now on go there while it is free
    /// ([`placed`]), and the pages cached already that nobody else holds move into it. A
    /// mapping of the file then maps its pages in a few long runs — one host mapping each in
    /// the stubs, and fork's mirror of a process running it a few maps rather than one per
    /// read — where pages read at different times would lie wherever memory was free then.
    /// Nothing happens for files smaller than [`LAY_OUT_MIN_PAGES`], larger than
    /// [`LAY_OUT_MAX_PAGES`] or a quarter of the free memory.
    pub fn lay_out(&self, pages: u64) {
        if self.laid_out.load(Ordering::Relaxed) || !(LAY_OUT_MIN_PAGES..=LAY_OUT_MAX_PAGES).contains(&pages) {
            return;
        }
        if self.laid_out.swap(true, Ordering::AcqRel) || pages > self.pm.free_pages() / 4 {
            return;
        }
        let Some(base) = self.pm.free_stretch(pages) else { return };
        // Whether page `idx` at `pa` may move: the cache alone holds it, and it is clean.
        let movable = |p: &Pages, idx: u64, pa: u64| {
            !p.dirty.contains(&idx) && self.pm.page(pa).is_some_and(|g| g.refcount.load(Ordering::Acquire) == 1)
        };
        let to_move: Vec<(u64, u64)> = {
            let mut p = self.pages.lock();
            p.window = Some((base, pages));
            p.by_index
                .range(..pages)
                .filter(|&(&i, &pa)| pa != base + i * PAGE && movable(&p, i, pa))
                .map(|(&i, &pa)| (i, pa))
                .collect()
        };
        // Every holder but the cache took its reference under the cache's lock, so a page
        // at reference count 1 under it is the cache's alone (as `evict` drops). Checked
        // before a target page is taken, so that one is seldom taken in vain (freed, it would
        // top the free stack: the next allocation, whatever it is, would take it and the
        // window's pages after it). The target is taken with no lock held (a leaf lock).
        let mut unused = Vec::new();
        let mut old = Vec::new();
        for (i, pa) in to_move {
            let Some(new) = self.pm.alloc_page_at(base + i * PAGE, 0, pgflags::FILE) else { continue };
            let mut p = self.pages.lock();
            if p.by_index.get(&i) == Some(&pa) && movable(&p, i, pa) {
                self.pm.copy_page(new, pa);
                p.by_index.insert(i, new);
                old.push(pa);
            } else {
                unused.push(new);
            }
        }
        for pa in old.into_iter().chain(unused) {
            self.pm.page_unref(pa);
        }
    }

    /// Whether [`PageCache::lay_out`] was asked already (whatever it did).
    pub fn is_laid_out(&self) -> bool {
        self.laid_out.load(Ordering::Relaxed)
    }

    /// A shared mapping is about to be given page `idx` writable: it is dirty from now on.
    pub fn mark_dirty(&self, idx: u64) {
        let mut p = self.pages.lock();
        if p.by_index.contains_key(&idx) {
            p.dirty.insert(idx);
        }
    }

    /// Whether any page may be newer than the disk.
    pub fn is_dirty(&self) -> bool {
        !self.pages.lock().dirty.is_empty()
    }

    /// The dirty pages (index, page with a new reference) to be written back. A page only
    /// the cache holds is clean from now on (no mapping can write it without a new fault,
    /// which marks it again); one a mapping still holds stays dirty, since the mapping may
    /// write it again at any time. Whoever fails to write a page back marks it dirty again.
    pub fn take_dirty(&self) -> Vec<(u64, u64)> {
        let mut p = self.pages.lock();
        let Pages { by_index, dirty, .. } = &mut *p;
        let mut out = Vec::with_capacity(dirty.len());
        dirty.retain(|idx| {
            let Some(&pa) = by_index.get(idx) else { return false };
            let only_cache = self.pm.page(pa).is_some_and(|pg| pg.refcount.load(Ordering::Acquire) == 1);
            self.pm.page_ref(pa);
            out.push((*idx, pa));
            !only_cache
        });
        out
    }

    /// The file's bytes at `off` are now `data`: the resident pages of that range follow.
    pub fn write(&self, off: u64, data: &[u8]) {
        let mut p = self.pages.lock();
        p.generation += 1;
        let end = off.saturating_add(data.len() as u64);
        let first = off / PAGE;
        let Some(last) = end.checked_sub(1).map(|e| e / PAGE) else { return };
        let hit: Vec<(u64, u64)> = p.by_index.range(first..=last).map(|(&i, &pa)| (i, pa)).collect();
        for (i, pa) in hit {
            let page_start = i * PAGE;
            let from = off.max(page_start);
            let to = end.min(page_start + PAGE);
            let src = usize_of(from - off)..usize_of(to - off);
            self.pm.write(pa + (from - page_start), &data[src]);
        }
    }

    /// The file is now `size` bytes long: pages wholly past it leave, the tail of the last
    /// one reads as zeros (as the file does if it grows again).
    pub fn truncate(&self, size: u64) {
        let mut p = self.pages.lock();
        p.generation += 1;
        let keep = size.div_ceil(PAGE);
        let gone = p.by_index.split_off(&keep);
        p.dirty.split_off(&keep);
        if !size.is_multiple_of(PAGE)
            && let Some(&pa) = p.by_index.get(&(size / PAGE))
        {
            let from = size % PAGE;
            self.pm.zero(pa + from, usize_of(PAGE - from));
        }
        drop(p);
        self.release(gone.into_values());
    }

    /// The file's data in `[off, off+len)` changed other than by a write (a hole punched):
    /// the pages touching it leave the cache (the next fault reads them again).
    pub fn invalidate(&self, off: u64, len: u64) {
        let mut p = self.pages.lock();
        p.generation += 1;
        let first = off / PAGE;
        let end = off.saturating_add(len).div_ceil(PAGE);
        let idx: Vec<u64> = p.by_index.range(first..end).map(|(&i, _)| i).collect();
        let gone: Vec<u64> = idx.iter().filter_map(|i| p.by_index.remove(i)).collect();
        for i in &idx {
            p.dirty.remove(i);
        }
        drop(p);
        self.release(gone);
    }

    fn release(&self, pages: impl IntoIterator<Item = u64>) {
        for pa in pages {
            CACHED.fetch_sub(1, Ordering::Relaxed);
            self.pm.page_unref(pa);
        }
    }

    /// Drop up to `want` pages only this cache holds; how many went. Never waits for the lock.
    fn evict(&self, want: u64) -> u64 {
        let Some(mut p) = self.pages.try_lock() else { return 0 };
        let idle: Vec<u64> = p
            .by_index
            .iter()
            .filter(|&(i, _)| !p.dirty.contains(i))
            .filter(|&(_, &pa)| self.pm.page(pa).is_some_and(|pg| pg.refcount.load(Ordering::Acquire) == 1))
            .map(|(&i, _)| i)
            .take(usize::try_from(want).unwrap_or(usize::MAX))
            .collect();
        let gone: Vec<u64> = idle.iter().filter_map(|i| p.by_index.remove(i)).collect();
        drop(p);
        let n = gone.len() as u64;
        self.release(gone);
        n
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let gone = std::mem::take(&mut self.pages.get_mut().by_index);
        self.release(gone.into_values());
    }
}

/// Pages all page caches hold now.
pub fn cached_pages() -> u64 {
    CACHED.load(Ordering::Relaxed)
}

/// How far from the nearest cached page a new page is still placed by offset ([`placed`]).
const PLACE_SPAN_PAGES: u64 = 512;

/// Files [`PageCache::lay_out`] lays out: at least this many pages (smaller ones lie in one
/// read's run anyway)…
const LAY_OUT_MIN_PAGES: u64 = 16;
/// …and at most this many (64 MiB).
const LAY_OUT_MAX_PAGES: u64 = 16384;

/// Where page `idx` of a file had best lie: in its laid-out window ([`PageCache::lay_out`]),
/// else by its offset from the nearest cached page below it (else above it), within
/// [`PLACE_SPAN_PAGES`]; None when there is none so near.
fn placed(p: &Pages, idx: u64) -> Option<u64> {
    if let Some((base, n)) = p.window
        && idx < n
    {
        return Some(base + idx * PAGE);
    }
    let by_index = &p.by_index;
    let below = by_index.range(..idx).next_back().filter(|(i, _)| idx - **i <= PLACE_SPAN_PAGES);
    if let Some((&i, &pa)) = below {
        return Some(pa + (idx - i) * PAGE);
    }
    let above = by_index.range(idx..).next().filter(|(i, _)| **i - idx <= PLACE_SPAN_PAGES);
    above.and_then(|(&i, &pa)| pa.checked_sub((i - idx) * PAGE))
}

/// Free up to `want` pages of `pm` that only a page cache holds; how many. The allocator's
/// reclaim hook: it may run with any lock held, so it only try-locks.
pub fn reclaim(pm: &PhysMem, want: u64) -> u64 {
    match CACHES.try_lock() {
        Some(all) => {
            let caches = caches_of(&all, pm);
            drop(all);
            evict_from(caches, want)
        }
        None => 0,
    }
}

/// The live caches of `pm`.
fn caches_of(all: &[Weak<PageCache>], pm: &PhysMem) -> Vec<Arc<PageCache>> {
    all.iter().filter_map(Weak::upgrade).filter(|c| std::ptr::eq(Arc::as_ptr(&c.pm), pm)).collect()
}

/// Evict up to `want` pages from `caches`, in turn; how many.
fn evict_from(caches: Vec<Arc<PageCache>>, want: u64) -> u64 {
    let mut freed = 0;
    for c in caches {
        if freed >= want {
            break;
        }
        freed += c.evict(want - freed);
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm() -> Arc<PhysMem> {
        Arc::new(PhysMem::scratch(physmem::MIN_PHYSMEM).expect("scratch memory"))
    }

    /// [`reclaim`] waiting for the list of caches (which other tests lock at the same time)
    /// instead of giving up as the allocator's hook does.
    fn reclaim(pm: &PhysMem, want: u64) -> u64 {
        let caches = caches_of(&CACHES.lock(), pm);
        evict_from(caches, want)
    }

    /// A file of `len` bytes, byte i = i % 251.
    fn file(len: u64) -> impl Fn(u64, &mut [u8]) -> Result<usize, Errno> {
        move |off, buf| {
            let n = usize_of(len.saturating_sub(off)).min(buf.len());
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((off + i as u64) % 251) as u8;
            }
            Ok(n)
        }
    }

    fn bytes(pm: &PhysMem, pa: u64) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_SIZE];
        pm.read(pa, &mut b);
        b
    }

    #[test]
    fn a_page_is_read_once_and_shared() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let a = c.page(1, file(PAGE + 100)).unwrap();
        let b = c.page(1, |_, _| panic!("read again")).unwrap();
        assert_eq!(a, b);
        let got = bytes(&pm, a);
        assert_eq!(got[0], (PAGE % 251) as u8);
        assert!(got[100..].iter().all(|&x| x == 0), "past the end of the file: zeros");
        assert_eq!(pm.page(a).unwrap().refcount.load(Ordering::Relaxed), 3);
        pm.page_unref(a);
        pm.page_unref(b);
        drop(c);
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
    }

    #[test]
    fn a_range_lookup_gives_the_cached_pages_with_a_reference_each() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        for idx in [0, 1, 3, 7] {
            pm.page_unref(c.page(idx, file(8 * PAGE)).unwrap());
        }
        let got = c.lookup_range(1, 5);
        assert_eq!(got.iter().map(|&(i, _)| i).collect::<Vec<_>>(), vec![1, 3], "[1, 6): the cached ones, ascending");
        for &(i, pa) in &got {
            assert_eq!(Some(pa), c.lookup(i));
            assert_eq!(pm.page(pa).unwrap().refcount.load(Ordering::Relaxed), 3, "the cache's, ours, lookup's");
            pm.page_unref(pa);
            pm.page_unref(pa);
        }
        assert!(c.lookup_range(8, u64::MAX).is_empty(), "past the end, no overflow");
        drop(c);
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
    }

    fn pages_of(by_index: &[(u64, u64)]) -> Pages {
        Pages { by_index: by_index.iter().copied().collect(), ..Pages::default() }
    }

    #[test]
    fn a_new_page_is_placed_by_its_offset_from_a_cached_neighbour() {
        let p = pages_of(&[(10, 0x40_0000), (20, 0x90_0000)]);
        assert_eq!(placed(&p, 13), Some(0x40_0000 + 3 * PAGE), "after the one below");
        assert_eq!(placed(&p, 4), Some(0x40_0000 - 6 * PAGE), "before the one above");
        assert_eq!(placed(&p, 25), Some(0x90_0000 + 5 * PAGE));
        assert_eq!(placed(&p, 20 + PLACE_SPAN_PAGES + 1), None, "too far from any");
        assert_eq!(placed(&pages_of(&[(8, PAGE)]), 0), None, "before page 0 of memory");
        assert_eq!(placed(&pages_of(&[]), 3), None);
        // A laid-out file's pages go by their index in its window, neighbours or not.
        let laid = Pages { window: Some((0x100_0000, 30)), ..pages_of(&[(10, 0x40_0000)]) };
        assert_eq!(placed(&laid, 13), Some(0x100_0000 + 13 * PAGE));
        assert_eq!(placed(&laid, 0), Some(0x100_0000));
        assert_eq!(placed(&laid, 31), Some(0x40_0000 + 21 * PAGE), "past the window: by the neighbour");
    }

    #[test]
    fn a_laid_out_file_lies_in_one_run_however_it_was_read() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let len = 64 * PAGE;
        // Pages read before the layout, with other allocations taking the pages after
        // them: scattered. One of them is mapped (held), so it stays where it is.
        let a = c.page_ahead(0, 4, file(len)).unwrap();
        let other: Vec<u64> = (0..8).filter_map(|_| pm.alloc_page(1, pgflags::ANON)).collect();
        let held = c.page_ahead(4, 4, file(len)).unwrap();
        pm.page_unref(a);
        c.lay_out(64);
        c.lay_out(64); // once only
        // Read the rest in 8-page pieces, out of order, with allocations in between.
        for idx in [40, 8, 24, 56, 16, 32, 48] {
            let pa = c.page_ahead(idx, 8, file(len)).unwrap();
            pm.page_unref(pa);
            pm.page_unref(pm.alloc_page(1, pgflags::ANON).unwrap());
        }
        let base = c.lookup(0).unwrap();
        pm.page_unref(base);
        for i in 0..64 {
            let pa = c.lookup(i).unwrap();
            if i == 4 {
                assert_eq!(pa, held, "a page someone holds does not move");
            } else {
                assert_eq!(pa, base + i * PAGE, "page {i} of the file");
            }
            assert_eq!(bytes(&pm, pa)[0], ((i * PAGE) % 251) as u8, "page {i}'s data");
            pm.page_unref(pa);
        }
        pm.page_unref(held);
        for pa in other {
            pm.page_unref(pa);
        }
        drop(c);
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
    }

    #[test]
    fn a_small_file_or_a_second_layout_takes_no_stretch() {
        let pm = pm();
        let small = PageCache::with_physmem(Arc::clone(&pm));
        small.lay_out(LAY_OUT_MIN_PAGES - 1);
        assert_eq!(small.pages.lock().window, None);
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let d = PageCache::with_physmem(Arc::clone(&pm));
        c.lay_out(32);
        d.lay_out(32);
        let (wc, wd) = (c.pages.lock().window.unwrap(), d.pages.lock().window.unwrap());
        assert!(wc.0 >= wd.0 + 32 * PAGE || wd.0 >= wc.0 + 32 * PAGE, "two files, two stretches: {wc:?} {wd:?}");
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "a layout takes no page by itself");
    }

    #[test]
    fn a_file_read_out_of_order_lies_in_one_run() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let len = 24 * PAGE;
        // Faults at the start, then past a gap, then in the gap, 8 pages at a time: the
        // pages after the gap are placed as far from the first as the file has them, and the
        // gap's fill the pages kept free between.
        let mut got = Vec::new();
        for idx in [0, 16, 8] {
            got.push((idx, c.page_ahead(idx, 8, file(len)).unwrap()));
        }
        let first = c.lookup(0).unwrap();
        for i in 0..24 {
            let pa = c.lookup(i).unwrap();
            assert_eq!(pa, first + i * PAGE, "page {i} of the file");
            assert_eq!(bytes(&pm, pa)[0], ((i * PAGE) % 251) as u8);
            pm.page_unref(pa);
        }
        pm.page_unref(first);
        for (_, pa) in got {
            pm.page_unref(pa);
        }
        drop(c);
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
    }

    #[test]
    fn writes_and_truncates_reach_resident_pages() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let a = c.page(0, file(3 * PAGE)).unwrap();
        let b = c.page(1, file(3 * PAGE)).unwrap();
        c.write(PAGE - 2, b"wxyz");
        assert_eq!(&bytes(&pm, a)[PAGE_SIZE - 2..], b"wx");
        assert_eq!(&bytes(&pm, b)[..2], b"yz");
        c.truncate(10);
        assert_eq!(c.resident(), 1);
        let got = bytes(&pm, a);
        assert_eq!(got[9], 9);
        assert!(got[10..].iter().all(|&x| x == 0));
        c.invalidate(0, 1);
        assert_eq!(c.resident(), 0);
        for pa in [a, b] {
            assert!(pm.page_unref(pa), "the mapping's reference was the last");
        }
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1);
    }

    #[test]
    fn a_page_read_across_a_write_is_not_kept() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let reads = std::cell::Cell::new(0);
        let pa = c
            .page(0, |off, buf| {
                if off > 0 {
                    return Ok(0); // a 3-byte file
                }
                reads.set(reads.get() + 1);
                if reads.get() == 1 {
                    c.write(0, b"new"); // the file changes while the page is read
                    buf[..3].copy_from_slice(b"old");
                } else {
                    buf[..3].copy_from_slice(b"new");
                }
                Ok(3)
            })
            .unwrap();
        assert_eq!(&bytes(&pm, pa)[..3], b"new");
        assert!(reads.get() >= 2);
        pm.page_unref(pa);
    }

    #[test]
    fn reclaim_frees_only_pages_nobody_maps() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let mapped = c.page(0, file(4 * PAGE)).unwrap();
        for i in 1..4 {
            let pa = c.page(i, file(4 * PAGE)).unwrap();
            pm.page_unref(pa);
        }
        let free = pm.free_pages();
        assert_eq!(reclaim(&pm, 100), 3);
        assert_eq!(pm.free_pages(), free + 3);
        assert_eq!(c.resident(), 1);
        assert_eq!(c.page(0, |_, _| panic!("read again")).unwrap(), mapped);
    }

    #[test]
    fn read_ahead_fills_the_pages_after() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let reads = std::cell::Cell::new(0);
        let f = file(3 * PAGE + 10);
        let pa = c
            .page_ahead(1, 8, |off, buf| {
                reads.set(reads.get() + 1);
                f(off, buf)
            })
            .unwrap();
        // Pages 1, 2 and 3 (the file's last, partial): one read, nothing past the end.
        assert_eq!(c.resident(), 3);
        assert_eq!(bytes(&pm, pa)[0], (PAGE % 251) as u8);
        let last = c.lookup(3).expect("read ahead");
        assert_eq!(bytes(&pm, last)[9], ((3 * PAGE + 9) % 251) as u8);
        assert!(bytes(&pm, last)[10..].iter().all(|&x| x == 0));
        assert!(c.lookup(4).is_none());
        assert!(reads.get() <= 2, "one read (and its end)");
        pm.page_unref(pa);
        pm.page_unref(last);
        drop(c);
        assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
    }

    #[test]
    fn dirty_pages_stay_until_written_and_unmapped() {
        let pm = pm();
        let c = PageCache::with_physmem(Arc::clone(&pm));
        let mapped = c.page(0, file(2 * PAGE)).unwrap(); // a mapping's reference
        let other = c.page(1, file(2 * PAGE)).unwrap();
        pm.page_unref(other);
        c.mark_dirty(0);
        c.mark_dirty(1);
        c.mark_dirty(7); // not resident: nothing to write
        assert!(c.is_dirty());
        // Dirty pages are not reclaimed, even when only the cache holds them.
        assert_eq!(reclaim(&pm, 100), 0);
        let first = c.take_dirty();
        assert_eq!(first.iter().map(|&(i, _)| i).collect::<Vec<_>>(), vec![0, 1]);
        for (_, pa) in first {
            pm.page_unref(pa);
        }
        // Page 0 is still mapped (may be written again): still dirty; page 1 is clean.
        assert!(c.is_dirty());
        assert_eq!(c.take_dirty().iter().map(|&(i, pa)| {
            pm.page_unref(pa);
            i
        }).collect::<Vec<_>>(), vec![0]);
        pm.page_unref(mapped); // unmapped
        for (_, pa) in c.take_dirty() {
            pm.page_unref(pa);
        }
        assert!(!c.is_dirty());
        assert_eq!(reclaim(&pm, 100), 2);
        // Truncate forgets dirt past the end.
        let pa = c.page(0, file(2 * PAGE)).unwrap();
        c.mark_dirty(0);
        c.truncate(0);
        assert!(!c.is_dirty());
        pm.page_unref(pa);
    }
}
