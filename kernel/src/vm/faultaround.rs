//! Fault-around for first touches: when the faults of a private anonymous mapping go up page
//! by page (read-ahead's heuristic), a fault makes a run of the next pages resident too, and
//! the stub maps the run with one host call and fills its host page table with a second (its
//! pages are taken physically contiguous where the free list has them so). A fault costs a
//! host signal and two hand-overs — ~40 µs measured on the development VM, where the vCPU has
//! gone to sleep while the guest ran the last run and is woken across host CPUs — a page
//! ~2.3 µs (mostly the host allocating it in the memory file, as a native fault does): so the
//! largest run is large. Linux gets the same effect from transparent huge pages (512 pages).
//!
//! ```text
//!  fault at v, previous run ended at v   window doubles (2, 4, 8, … up to vm.faultaround)
//!  any other first touch                 window 1: only the page itself
//! ```
//!
//! The memory it costs is bounded: at most `vm.faultaround - 1` pages beyond the last page
//! a program touched, per sequential stream, only inside the mapping, and never while free
//! memory is low ([`room`]). `-e vm.faultaround=N` sets the largest run (0 or 1: off); the
//! pages mapped ahead are counted in /proc/vmstat (`pgfault_around_anon`, and
//! `pgfault_around_file` for a shared file mapping's cached neighbours, which a read fault
//! maps read-only without I/O, as Linux's filemap_map_pages).

use std::sync::atomic::{AtomicU64, Ordering};

use platform::physmem::PhysMem;

/// The largest run by default (512 KiB). `make bench`'s page fault (16 MiB written a byte a
/// page), per page with `chrt -f 1` on the development VM, native 1.6 µs: largest run 16 →
/// 5.5 µs, 32 → 3.6, 64 → 2.9, 128 → 2.5 (fault cost / run + page cost).
pub const DEFAULT_PAGES: u64 = 128;
/// The largest run `-e vm.faultaround` may ask for (the stub's operation queue takes a run in
/// one operation when contiguous, one per page at worst, in more round trips when longer).
pub const MAX_PAGES: u64 = 512;

/// The tunable, read from the kernel environment once (`u64::MAX`: not yet).
static PAGES: AtomicU64 = AtomicU64::new(u64::MAX);

/// `vm.faultaround`: the largest run of pages one fault makes resident (1: the page alone).
pub fn max_pages() -> u64 {
    let n = PAGES.load(Ordering::Relaxed);
    if n != u64::MAX {
        return n;
    }
    let n = crate::kern::kenv::get("vm.faultaround")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_PAGES)
        .clamp(1, MAX_PAGES);
    PAGES.store(n, Ordering::Relaxed);
    n
}

/// Pages mapped by fault-around beyond the faulting one (/proc/vmstat).
pub static AROUND_ANON: AtomicU64 = AtomicU64::new(0);
pub static AROUND_FILE: AtomicU64 = AtomicU64::new(0);

/// How many pages of `want` may be taken ahead of need without pressing on memory: none
/// once free memory is below 1/32 of the total (plus the run itself), so that fault-around
/// never takes what a real fault or the page cache would need.
pub fn room(pm: &PhysMem, want: u64) -> u64 {
    let low = pm.npages() as u64 / 32 + want;
    if pm.free_pages() < low { 0 } else { want }
}

/// The sequential-touch detector of one address space (kept under its page-table lock).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sequential {
    /// The page a sequential stream touches next: just past the last run.
    next: u64,
    /// The last run's length.
    window: u64,
}

impl Sequential {
    /// A first touch of private anonymous memory at page `vpn`: how many pages from `vpn` on
    /// to make resident (1: only it), at most `max`. Call [`Sequential::mapped`] after.
    pub fn touch(&mut self, vpn: u64, max: u64) -> u64 {
        let w = if max > 1 && vpn != 0 && vpn == self.next { (self.window * 2).clamp(2, max) } else { 1 };
        self.window = w;
        self.next = vpn.saturating_add(w);
        w
    }

    /// The run from `vpn` on came out `pages` long (the mapping's end, a resident page, or
    /// memory cut it short): a sequential stream touches the page after it next.
    pub fn mapped(&mut self, vpn: u64, pages: u64) {
        self.next = vpn.saturating_add(pages.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_doubles_on_sequential_touches_and_resets_otherwise() {
        let mut s = Sequential::default();
        assert_eq!(s.touch(100, 16), 1);
        assert_eq!(s.touch(101, 16), 2);
        assert_eq!(s.touch(103, 16), 4);
        assert_eq!(s.touch(107, 16), 8);
        assert_eq!(s.touch(115, 16), 16);
        assert_eq!(s.touch(131, 16), 16);
        // A jump: back to one page, then ramps up again.
        assert_eq!(s.touch(500, 16), 1);
        assert_eq!(s.touch(502, 16), 1, "a stride of two is not sequential");
        assert_eq!(s.touch(503, 16), 2);
        // A run cut short: the stream continues after what was mapped.
        s.mapped(503, 1);
        assert_eq!(s.touch(504, 16), 4);
    }

    #[test]
    fn off_maps_single_pages() {
        let mut s = Sequential::default();
        for v in 10..20 {
            assert_eq!(s.touch(v, 1), 1);
        }
    }
}
