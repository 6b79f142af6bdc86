//! A recycled stub's residue: the mappings it keeps from the process it served, for the next.
//!
//! A busybox shell forks a child per `$(…)`, and each child's stub maps nearly the same pages
//! at the same places as the last one's — its parent's, shared copy-on-write, and the text
//! from the file's page cache. Clearing the stub when a child exits and mapping it all again
//! for the next child cost a shell's `$(expr …)` three host munmaps and fifteen mmaps,
//! whose page-table work (zapping and filling hundreds of host PTEs) was a third of the
//! stub's host time per child. So an exiting process's stub keeps the mappings of pages
//! someone else still holds, and of its own pages when they are few ([`MAX_KEPT_OWN`]; else
//! it unmaps those: freed with it, they may go to anyone) ([`split_at_exit`];
//! `platform::stub::pool::recycle` stores them in the stub). The fork that takes the stub next compares them with what its child's stub is to
//! map ([`diff_for_child`]): a kept mapping of the same page, at the same address, with the
//! same protection, is the child's as it is (no map op, and its host PTEs are still there);
//! every other kept mapping is unmapped before the child's first instruction (or replaced by
//! one of the child's own maps at that address). Any other user of the stub unmaps it all
//! (`platform::stub::pool::get`).
//!
//! Before that comparison the child takes into its table the kept mappings its own first
//! touch would make as they are (`AddressSpace::adopt_cached`): a cached page of one of its
//! private file mappings, at its place there, whole, read-only — the code of an applet its
//! parent never ran, which the last child ran (a shell's `$(expr …)`: a fault, a trap and
//! three host mmaps a child saved). The page must be the one the file's cache holds at that
//! offset now (a truncated or evicted page is not), with the protection a fault would give.
//!
//! The child's own pages can match too: fork copies a lone parent's few written pages for
//! the child (`AddressSpace::fork`), and `AddressSpace::fork_onto` takes each copy, when it
//! is free, at the page the residue maps writable at that address — the last child's copy
//! there, freed at its exit. The mapping is then alike and stays: a `$(expr …)` child's
//! copies cost no host mmap, populate or (at the last child's exit) munmap. Measured paired
//! on the development VM: fork+exit+wait 113 → 88 µs, the shell script 218 → 190 ms.
//!
//! Why this is safe: no guest code runs in a parked stub, and the residue is dealt with in
//! the first operations its next user queues, which the stub carries out before it returns
//! to the guest. A kept page that its holder frees meanwhile (and that memory hands to
//! someone else) is, at the next fork, either not where the child maps anything (unmapped) or
//! where the child maps a page of its own (replaced): it survives only when the child's table
//! names that very page there, with that protection — which is then right by definition.

use std::sync::atomic::{AtomicU64, Ordering};

use platform::stub::MappedRun;

use crate::vm::space::PAGE;

/// Most unmaps an exiting process's stub may need to keep the rest: beyond, it is cleared
/// whole as before (a few joined calls) and keeps nothing.
pub const MAX_EXIT_UNMAPS: usize = 24;

/// Most pages of its own an exiting process's stub keeps mapped (all of them, or none): a
/// shell's `$(…)` child has a few dozen — the copies fork made of what its parent had
/// written, its stack, what it wrote itself. A larger process's would mostly be unmapped
/// by the next user anyway, on its way in rather than in the pool's scrub.
pub const MAX_KEPT_OWN: usize = 96;

/// Stubs that kept mappings at an exit, pages a fork child kept of a residue, and pages it
/// unmapped (`-e sched.stats=1`).
pub static EXITS_KEEPING: AtomicU64 = AtomicU64::new(0);
pub static PAGES_KEPT: AtomicU64 = AtomicU64::new(0);
pub static PAGES_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Residue pages a fork child took into its table: cached file pages it would map as they
/// are at its first touch (`AddressSpace::adopt_cached`).
pub static PAGES_ADOPTED: AtomicU64 = AtomicU64::new(0);

/// The longest unmap a range is stretched to (the stub's filter takes lengths under 4 GiB;
/// the page table split its own at 1 GiB): a range is never stretched over a gap that would
/// make it longer — the heap and the stack lie terabytes apart.
pub const MAX_UNMAP_PAGES: u64 = (1 << 30) / PAGE;

/// An address range `(addr, len)` to unmap.
pub type Range = (u64, u64);

/// What an exiting process's stub keeps, and the ranges it unmaps.
pub type ExitSplit = (Vec<MappedRun>, Vec<Range>);

/// One page the stub maps: (vpn, physical page, protection in the stub, whether someone
/// else holds the page too).
pub type StubPage = (u64, u64, u32, bool);

/// An exiting process's stub pages (ascending `vpn`): the runs to keep (pages someone else
/// holds, and its own when at most [`MAX_KEPT_OWN`]) and the ranges `(addr, len)` to unmap
/// (the process's other pages), each range
/// stretched over the neighbouring gaps that hold no kept page. None when that takes more
/// than [`MAX_EXIT_UNMAPS`] unmaps or there is nothing to keep.
pub fn split_at_exit(pages: &[StubPage]) -> Option<ExitSplit> {
    // A few pages of its own (a `$(…)` child's copies of what its parent wrote, its stack)
    // are kept too: the next child's copies are taken at the same physical pages where they
    // are still free (`AddressSpace::fork_onto`), and then need no host call at all.
    split(pages, pages.iter().filter(|p| !p.3).count() <= MAX_KEPT_OWN)
}

/// [`split_at_exit`], keeping the process's own pages too or unmapping them.
fn split(pages: &[StubPage], keep_own: bool) -> Option<ExitSplit> {
    let mut keep: Vec<MappedRun> = Vec::new();
    let mut unmaps: Vec<Range> = Vec::new();
    // The range being built: [lo, hi) in pages, closed by the next kept page.
    let mut open: Option<(u64, u64)> = None;
    for &(vpn, pa, prot, shared) in pages {
        if shared || keep_own {
            if let Some((lo, hi)) = open.take() {
                unmaps.push((lo * PAGE, (hi - lo) * PAGE));
            }
            match keep.last_mut() {
                Some(r) if r.addr + r.len == vpn * PAGE && r.pa + r.len == pa && r.prot == prot => r.len += PAGE,
                _ => keep.push(MappedRun { addr: vpn * PAGE, len: PAGE, pa, prot }),
            }
        } else {
            open = Some(match open {
                Some((lo, _)) if vpn + 1 - lo <= MAX_UNMAP_PAGES => (lo, vpn + 1),
                Some((lo, hi)) => {
                    unmaps.push((lo * PAGE, (hi - lo) * PAGE));
                    (vpn, vpn + 1)
                }
                None => (vpn, vpn + 1),
            });
        }
        if unmaps.len() > MAX_EXIT_UNMAPS {
            return None;
        }
    }
    if let Some((lo, hi)) = open {
        unmaps.push((lo * PAGE, (hi - lo) * PAGE));
    }
    let keeping = !keep.is_empty() && unmaps.len() <= MAX_EXIT_UNMAPS;
    if keeping {
        EXITS_KEEPING.fetch_add(1, Ordering::Relaxed);
    }
    keeping.then_some((keep, unmaps))
}

/// A stub's `residue` against what a fork child's stub is to map (`mapped(lo, hi)`: the
/// pages of `[lo, hi)` its table says its stub maps, as (vpn, physical page, protection),
/// ascending): the pages kept as they are (ascending), and the ranges `(addr, len)` to unmap
/// first — every other residue page, each range stretched over gaps that hold no kept page
/// (a gap the child maps is mapped again after the unmap). `residue` is ascending.
pub fn diff_for_child<I>(residue: &[MappedRun], mut mapped: impl FnMut(u64, u64) -> I) -> (Vec<u64>, Vec<Range>)
where
    I: Iterator<Item = (u64, u64, u32)>,
{
    let mut kept = Vec::new();
    let mut drop: Vec<u64> = Vec::new();
    for r in residue {
        let (lo, n) = (r.addr / PAGE, r.len / PAGE);
        let mut child = mapped(lo, lo + n).peekable();
        for vpn in lo..lo + n {
            while child.next_if(|c| c.0 < vpn).is_some() {}
            if child.peek().is_some_and(|&(v, pa, prot)| v == vpn && pa == r.pa + (vpn - lo) * PAGE && prot == r.prot) {
                kept.push(vpn);
            } else {
                drop.push(vpn);
            }
        }
    }
    let mut unmaps: Vec<Range> = Vec::new();
    let mut open: Option<(u64, u64)> = None;
    for vpn in drop {
        open = Some(match open {
            Some((lo, hi)) if vpn + 1 - lo <= MAX_UNMAP_PAGES && !any_in(&kept, hi, vpn) => (lo, vpn + 1),
            Some((lo, hi)) => {
                unmaps.push((lo * PAGE, (hi - lo) * PAGE));
                (vpn, vpn + 1)
            }
            None => (vpn, vpn + 1),
        });
    }
    if let Some((lo, hi)) = open {
        unmaps.push((lo * PAGE, (hi - lo) * PAGE));
    }
    PAGES_KEPT.fetch_add(kept.len() as u64, Ordering::Relaxed);
    PAGES_DROPPED.fetch_add(residue.iter().map(|r| r.len / PAGE).sum::<u64>() - kept.len() as u64, Ordering::Relaxed);
    (kept, unmaps)
}

/// Whether one of the `ranges` covers part of one of the `runs`.
pub fn overlaps(ranges: &[Range], runs: &[MappedRun]) -> bool {
    ranges.iter().any(|&(a, l)| runs.iter().any(|r| r.addr < a + l && a < r.addr + r.len))
}

/// Whether the ascending `vpns` hold one in `[lo, hi)`.
pub fn any_in(vpns: &[u64], lo: u64, hi: u64) -> bool {
    vpns.get(vpns.partition_point(|&v| v < lo)).is_some_and(|&v| v < hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u32 = 1;
    const RW: u32 = 3;

    #[test]
    fn an_exiting_process_keeps_what_others_hold_and_unmaps_its_own() {
        // Text shared (vpn 10..13), its own data page (20), a shared page (21), own stack (30, 31).
        let pages = [
            (10, 0x1000, R, true),
            (11, 0x2000, R, true),
            (12, 0x3000, R, true),
            (20, 0x9000, RW, false),
            (21, 0x7000, R, true),
            (30, 0x5000, RW, false),
            (31, 0x6000, RW, false),
        ];
        let (keep, unmaps) = split(&pages, false).unwrap();
        assert_eq!(
            keep,
            vec![
                MappedRun { addr: 10 * PAGE, len: 3 * PAGE, pa: 0x1000, prot: R },
                MappedRun { addr: 21 * PAGE, len: PAGE, pa: 0x7000, prot: R },
            ]
        );
        assert_eq!(unmaps, vec![(20 * PAGE, PAGE), (30 * PAGE, 2 * PAGE)], "own pages, joined over the gap between 30 and 31");
    }

    /// A few pages of its own stay mapped too (a shell's `$(…)` child: the next child's
    /// copies go there); many are unmapped, as are all of them in `split(…, false)`.
    #[test]
    fn an_exiting_process_keeps_a_few_pages_of_its_own_too() {
        let few = [(10, 0x1000, R, true), (20, 0x9000, RW, false), (21, 0xa000, RW, false), (30, 0x5000, RW, false)];
        let (keep, unmaps) = split_at_exit(&few).unwrap();
        assert!(unmaps.is_empty());
        assert_eq!(
            keep,
            vec![
                MappedRun { addr: 10 * PAGE, len: PAGE, pa: 0x1000, prot: R },
                MappedRun { addr: 20 * PAGE, len: 2 * PAGE, pa: 0x9000, prot: RW },
                MappedRun { addr: 30 * PAGE, len: PAGE, pa: 0x5000, prot: RW },
            ]
        );
        let own = MAX_KEPT_OWN as u64 + 1;
        let many: Vec<StubPage> = std::iter::once((5, 0x1000, R, true)).chain((0..own).map(|i| (100 + i, 0x10000 + i * PAGE, RW, false))).collect();
        let (keep, unmaps) = split_at_exit(&many).unwrap();
        assert_eq!(keep, vec![MappedRun { addr: 5 * PAGE, len: PAGE, pa: 0x1000, prot: R }]);
        assert_eq!(unmaps, vec![(100 * PAGE, own * PAGE)]);
    }

    #[test]
    fn an_unmap_range_never_covers_a_kept_page() {
        let pages = [(1, 0x1000, RW, false), (5, 0x2000, R, true), (9, 0x3000, RW, false), (12, 0x4000, RW, false)];
        let (keep, unmaps) = split(&pages, false).unwrap();
        assert_eq!(keep.len(), 1);
        for (a, l) in &unmaps {
            assert!(!(a / PAGE..(a + l) / PAGE).contains(&5), "{unmaps:?}");
        }
        assert_eq!(unmaps, vec![(PAGE, PAGE), (9 * PAGE, 4 * PAGE)]);
    }

    #[test]
    fn ranges_are_never_stretched_over_a_far_gap() {
        // Heap at 0x600000, stack just under 128 TiB: two unmaps, not one of 128 TiB.
        let stack = 0x7ffd_0000_0000 / PAGE;
        let pages = [(0x600, 0x1000, RW, false), (0x601, 0x2000, RW, false), (0x800, 0x3000, R, true), (stack, 0x4000, RW, false)];
        let (_, unmaps) = split(&pages, false).unwrap();
        assert_eq!(unmaps, vec![(0x600 * PAGE, 2 * PAGE), (stack * PAGE, PAGE)]);
        let far = [(0x600, 0x1000, RW, false), (stack, 0x4000, RW, false), (stack + 1, 0x5000, R, true)];
        let (_, unmaps) = split(&far, false).unwrap();
        assert_eq!(unmaps, vec![(0x600 * PAGE, PAGE), (stack * PAGE, PAGE)]);
        let residue = [MappedRun { addr: 0x600 * PAGE, len: PAGE, pa: 0x1000, prot: R }, MappedRun { addr: stack * PAGE, len: PAGE, pa: 0x2000, prot: R }];
        let (_, unmaps) = diff_for_child(&residue, |_, _| std::iter::empty());
        assert_eq!(unmaps, vec![(0x600 * PAGE, PAGE), (stack * PAGE, PAGE)]);
    }

    #[test]
    fn overlaps_sees_a_range_touching_a_run() {
        let runs = [MappedRun { addr: 4 * PAGE, len: 2 * PAGE, pa: 0x1000, prot: R }];
        assert!(overlaps(&[(5 * PAGE, PAGE)], &runs) && overlaps(&[(0, 5 * PAGE)], &runs));
        assert!(!overlaps(&[(0, 4 * PAGE), (6 * PAGE, PAGE)], &runs), "neighbours only");
    }

    #[test]
    fn any_in_finds_a_page_in_a_range() {
        let v = [3, 7, 9];
        assert!(any_in(&v, 3, 4) && any_in(&v, 4, 8) && !any_in(&v, 4, 7) && !any_in(&v, 10, 20) && !any_in(&v, 0, 3));
    }

    #[test]
    fn nothing_is_kept_when_nothing_is_shared_or_too_many_unmaps_would_be_needed() {
        assert_eq!(split(&[(1, 0x1000, RW, false), (2, 0x2000, RW, false)], false), None);
        let alternating: Vec<StubPage> = (0..200).map(|i| (i, 0x1000 * (i + 1), R, i % 2 == 0)).collect();
        assert_eq!(split(&alternating, false), None);
    }

    #[test]
    fn a_child_keeps_only_the_same_page_with_the_same_protection() {
        let residue = [MappedRun { addr: 10 * PAGE, len: 4 * PAGE, pa: 0x10000, prot: R }, MappedRun { addr: 40 * PAGE, len: PAGE, pa: 0x50000, prot: RW }];
        // The child maps 10, 11 alike; 12 with another page; 13 not at all; 40 read-only.
        let child = [(10, 0x10000, R), (11, 0x11000, R), (12, 0x99000, R), (40, 0x50000, R)];
        let (kept, unmaps) = diff_for_child(&residue, |lo, hi| child.iter().copied().filter(move |c| (lo..hi).contains(&c.0)));
        assert_eq!(kept, vec![10, 11]);
        // 12 and 13 (12 is mapped again by the child after the unmap), and 40, joined: no
        // kept page lies between them.
        assert_eq!(unmaps, vec![(12 * PAGE, 29 * PAGE)]);
    }

    #[test]
    fn unmaps_stop_at_kept_pages() {
        let residue = [MappedRun { addr: PAGE, len: 5 * PAGE, pa: 0x1000, prot: R }];
        let (kept, unmaps) = diff_for_child(&residue, |lo, hi| [(3, 0x3000, R)].into_iter().filter(move |c| (lo..hi).contains(&c.0)));
        assert_eq!(kept, vec![3]);
        assert_eq!(unmaps, vec![(PAGE, 2 * PAGE), (4 * PAGE, 2 * PAGE)]);
    }
}
