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
//! When physical memory runs out, the allocator asks [`reclaim`] to drop clean pages only a
//! cache holds (reference count 1): every live cache is registered (weakly) for that. A page a
//! mapping still holds stays; the mapping keeps its reference when the cache drops one.
//!
//! Locking: `page_cache` (one per file) and `page_caches` (the registry) are spinlock leaves,
//! never held across a sleep or an allocation; [`reclaim`], called by the allocator with any
//! lock held, only try-locks them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use platform::PAGE_SIZE;
use platform::physmem::{self, PhysMem, pgflags};
use platform::sync::SpinLock;

use crate::kern::conv::usize_of;
use crate::kern::errno::Errno;

const PAGE: u64 = PAGE_SIZE as u64;

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
}

/// The resident pages of one file.
#[derive(Debug)]
pub struct PageCache {
    pm: Arc<PhysMem>,
    pages: SpinLock<Pages>,
}

impl PageCache {
    /// An empty cache in the machine's memory, or None before physical memory exists.
    pub fn new() -> Option<Arc<PageCache>> {
        Some(PageCache::with_physmem(physmem::shared()?))
    }

    /// An empty cache whose pages come from `pm` (unit tests' scratch memory).
    pub fn with_physmem(pm: Arc<PhysMem>) -> Arc<PageCache> {
        let c = Arc::new(PageCache { pm, pages: SpinLock::new("page_cache", Pages::default()) });
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
            let (generation, want) = {
                let p = self.pages.lock();
                if let Some(&pa) = p.by_index.get(&idx) {
                    self.pm.page_ref(pa);
                    return Ok(pa);
                }
                (p.generation, placed(&p.by_index, idx))
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

/// Where page `idx` of a file had best lie, by its offset from the nearest cached page below
/// it (else above it), within [`PLACE_SPAN_PAGES`]; None when there is none so near.
fn placed(by_index: &BTreeMap<u64, u64>, idx: u64) -> Option<u64> {
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
    fn a_new_page_is_placed_by_its_offset_from_a_cached_neighbour() {
        let by_index: BTreeMap<u64, u64> = [(10, 0x40_0000), (20, 0x90_0000)].into_iter().collect();
        assert_eq!(placed(&by_index, 13), Some(0x40_0000 + 3 * PAGE), "after the one below");
        assert_eq!(placed(&by_index, 4), Some(0x40_0000 - 6 * PAGE), "before the one above");
        assert_eq!(placed(&by_index, 25), Some(0x90_0000 + 5 * PAGE));
        assert_eq!(placed(&by_index, 20 + PLACE_SPAN_PAGES + 1), None, "too far from any");
        let low: BTreeMap<u64, u64> = [(8, PAGE)].into_iter().collect();
        assert_eq!(placed(&low, 0), None, "before page 0 of memory");
        assert_eq!(placed(&BTreeMap::new(), 3), None);
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
