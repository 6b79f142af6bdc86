//! Attributes of page ranges kept beside an address space's mappings, as Linux keeps them in
//! VMA flags: fork behaviour (`vm::inherit`) and memory locks (mlock(2)). A [`RangeMap`] holds
//! non-overlapping ranges, each with a value; unmapping (and so mapping over) a range forgets
//! what was set there.

use std::collections::BTreeMap;

/// Non-overlapping page ranges `start -> (end, value)`.
#[derive(Debug, Clone)]
pub struct RangeMap<T> {
    ranges: BTreeMap<u64, (u64, T)>,
}

impl<T> Default for RangeMap<T> {
    fn default() -> Self {
        RangeMap { ranges: BTreeMap::new() }
    }
}

impl<T: Copy + PartialEq> RangeMap<T> {
    /// Cut `[start, end)` out of every range.
    pub fn clear(&mut self, start: u64, end: u64) {
        if self.ranges.is_empty() || start >= end {
            return;
        }
        let hit: Vec<(u64, u64, T)> =
            self.ranges.range(..end).filter(|(_, (e, _))| *e > start).map(|(&s, &(e, w))| (s, e, w)).collect();
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

    /// Cut `[start, end)` out of the ranges holding `what` only.
    pub fn clear_value(&mut self, start: u64, end: u64, what: T) {
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

    /// `[start, end)` holds `what` (None: nothing).
    pub fn set(&mut self, start: u64, end: u64, what: Option<T>) {
        self.clear(start, end);
        if let Some(w) = what
            && start < end
        {
            self.ranges.insert(start, (end, w));
        }
    }

    /// The value at `addr`.
    pub fn at(&self, addr: u64) -> Option<T> {
        let (_, &(end, w)) = self.ranges.range(..=addr).next_back()?;
        (addr < end).then_some(w)
    }

    /// The ranges holding `what`.
    pub fn ranges_of(&self, what: T) -> Vec<(u64, u64)> {
        self.ranges.iter().filter(|(_, (_, w))| *w == what).map(|(&s, &(e, _))| (s, e)).collect()
    }

    /// Every range with its value, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, T)> + '_ {
        self.ranges.iter().map(|(&s, &(e, w))| (s, e, w))
    }

    /// The ranges holding a value that `keep` accepts, as a new map.
    pub fn filtered(&self, keep: impl Fn(T) -> bool) -> RangeMap<T> {
        RangeMap { ranges: self.ranges.iter().filter(|(_, (_, w))| keep(*w)).map(|(&s, &v)| (s, v)).collect() }
    }

    /// Bytes of `[start, end)` that some range covers.
    pub fn covered(&self, start: u64, end: u64) -> u64 {
        self.ranges
            .range(..end)
            .filter(|(_, (e, _))| *e > start)
            .map(|(&s, &(e, _))| e.min(end).saturating_sub(s.max(start)))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_and_clear() {
        let mut m: RangeMap<u8> = RangeMap::default();
        m.set(0x1000, 0x5000, Some(1));
        m.set(0x2000, 0x3000, Some(2));
        assert_eq!(m.at(0x1000), Some(1));
        assert_eq!(m.at(0x2000), Some(2));
        assert_eq!(m.at(0x3000), Some(1));
        assert_eq!(m.at(0x5000), None);
        m.clear(0x4000, 0x9000);
        assert_eq!(m.at(0x4000), None);
        assert_eq!(m.ranges_of(1), vec![(0x1000, 0x2000), (0x3000, 0x4000)]);
        assert_eq!(m.filtered(|v| v == 2).ranges_of(1), vec![]);
        assert_eq!(m.covered(0x0, 0x10000), 0x3000);
        assert_eq!(m.covered(0x1800, 0x3800), 0x2000);
        m.set(0x6000, 0x8000, Some(2));
        m.clear_value(0x0, 0x10000, 1);
        assert_eq!(m.ranges_of(1), vec![]);
        assert_eq!(m.ranges_of(2), vec![(0x2000, 0x3000), (0x6000, 0x8000)]);
        m.set(0x0, 0x10000, None);
        assert!(m.is_empty());
    }
}
