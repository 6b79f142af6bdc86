//! What fork(2) does with each range of an address space, as madvise(2) set it:
//! MADV_DONTFORK (the child does not get the range at all) and MADV_WIPEONFORK (the child
//! gets it empty: private anonymous memory that reads as zeros). The default, kept outside
//! the ranges recorded here, is to copy (copy-on-write). Linux keeps these as VMA flags; vk
//! keeps them beside its mappings: unmapping (and so mapping over) a range forgets them, and
//! the child keeps MADV_WIPEONFORK for its own children.

use std::collections::BTreeMap;

/// A range's fork behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherit {
    /// MADV_DONTFORK: not in the child.
    DontFork,
    /// MADV_WIPEONFORK: in the child, zero-filled.
    WipeOnFork,
}

/// Non-overlapping page ranges `start -> (end, what)`.
#[derive(Debug, Clone, Default)]
pub struct InheritMap {
    ranges: BTreeMap<u64, (u64, Inherit)>,
}

impl InheritMap {
    /// Cut `[start, end)` out of every range (the default again there).
    pub fn clear(&mut self, start: u64, end: u64) {
        if self.ranges.is_empty() || start >= end {
            return;
        }
        let hit: Vec<(u64, u64, Inherit)> = self
            .ranges
            .range(..end)
            .filter(|(_, (e, _))| *e > start)
            .map(|(&s, &(e, w))| (s, e, w))
            .collect();
        for (s, e, w) in hit {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, (start, w));
            }
            if e > end {
                self.ranges.insert(end, (e, w));
            }
        }
    }

    /// Cut `[start, end)` out of the ranges set to `what` only (MADV_DOFORK leaves
    /// MADV_WIPEONFORK alone, and the other way round).
    pub fn clear_kind(&mut self, start: u64, end: u64, what: Inherit) {
        let hit: Vec<(u64, u64)> = self
            .ranges
            .range(..end)
            .filter(|(_, (e, w))| *e > start && *w == what)
            .map(|(&s, &(e, _))| (s, e))
            .collect();
        for (s, e) in hit {
            self.clear(s.max(start), e.min(end));
        }
    }

    /// `[start, end)` does `what` at fork (None: copy, the default).
    pub fn set(&mut self, start: u64, end: u64, what: Option<Inherit>) {
        self.clear(start, end);
        if let Some(w) = what {
            self.ranges.insert(start, (end, w));
        }
    }

    /// What fork does with the page at `addr`.
    pub fn at(&self, addr: u64) -> Option<Inherit> {
        let (_, &(end, w)) = self.ranges.range(..=addr).next_back()?;
        (addr < end).then_some(w)
    }

    /// The ranges set to `what`.
    pub fn ranges_of(&self, what: Inherit) -> Vec<(u64, u64)> {
        self.ranges.iter().filter(|(_, (_, w))| *w == what).map(|(&s, &(e, _))| (s, e)).collect()
    }

    /// What a forked child keeps: its MADV_WIPEONFORK ranges.
    pub fn for_child(&self) -> InheritMap {
        let ranges = self.ranges.iter().filter(|(_, (_, w))| *w == Inherit::WipeOnFork).map(|(&s, &v)| (s, v)).collect();
        InheritMap { ranges }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_and_clear() {
        let mut m = InheritMap::default();
        m.set(0x1000, 0x5000, Some(Inherit::WipeOnFork));
        m.set(0x2000, 0x3000, Some(Inherit::DontFork));
        assert_eq!(m.at(0x1000), Some(Inherit::WipeOnFork));
        assert_eq!(m.at(0x2000), Some(Inherit::DontFork));
        assert_eq!(m.at(0x3000), Some(Inherit::WipeOnFork));
        assert_eq!(m.at(0x5000), None);
        m.clear(0x4000, 0x9000);
        assert_eq!(m.at(0x4000), None);
        assert_eq!(m.ranges_of(Inherit::WipeOnFork), vec![(0x1000, 0x2000), (0x3000, 0x4000)]);
        assert_eq!(m.for_child().ranges_of(Inherit::DontFork), vec![]);
        m.set(0x6000, 0x8000, Some(Inherit::DontFork));
        m.clear_kind(0x0, 0x10000, Inherit::WipeOnFork);
        assert_eq!(m.ranges_of(Inherit::WipeOnFork), vec![]);
        assert_eq!(m.ranges_of(Inherit::DontFork), vec![(0x2000, 0x3000), (0x6000, 0x8000)]);
        m.set(0x0, 0x10000, None);
        assert_eq!(m.at(0x1000), None);
    }
}
