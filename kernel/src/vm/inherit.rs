//! What fork(2) does with each range of an address space, as madvise(2) set it:
//! MADV_DONTFORK (the child does not get the range at all) and MADV_WIPEONFORK (the child
//! gets it empty: private anonymous memory that reads as zeros). The default, kept outside
//! the ranges recorded here, is to copy (copy-on-write). Linux keeps these as VMA flags; vk
//! keeps them beside its mappings: unmapping (and so mapping over) a range forgets them, and
//! the child keeps MADV_WIPEONFORK for its own children.

use super::ranges::RangeMap;

/// A range's fork behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherit {
    /// MADV_DONTFORK: not in the child.
    DontFork,
    /// MADV_WIPEONFORK: in the child, zero-filled.
    WipeOnFork,
}

/// The ranges that do not copy at fork.
pub type InheritMap = RangeMap<Inherit>;

impl RangeMap<Inherit> {
    /// What a forked child keeps: its MADV_WIPEONFORK ranges.
    pub fn for_child(&self) -> InheritMap {
        self.filtered(|w| w == Inherit::WipeOnFork)
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
        m.clear_value(0x0, 0x10000, Inherit::WipeOnFork);
        assert_eq!(m.ranges_of(Inherit::WipeOnFork), vec![]);
        assert_eq!(m.ranges_of(Inherit::DontFork), vec![(0x2000, 0x3000), (0x6000, 0x8000)]);
        m.set(0x0, 0x10000, None);
        assert_eq!(m.at(0x1000), None);
    }
}
