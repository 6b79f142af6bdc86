//! The kernel's symbol table: address → `name+0xoff` and name → address.
//!
//! Symbols are kept sorted by their unrelocated value, so [`SymbolTable::containing`] and
//! [`SymbolTable::symbolize`] are binary searches. Names are the demangled, hash-less Rust paths
//! (`kernel::kern::sched::mi_switch`); the raw ELF name is kept beside each for
//! [`SymbolTable::raw`]. Name look-up (`print mi_switch`) is a linear scan: it runs once per typed
//! command, and a suffix index would cost more memory than it saves time.
//!
//! Like ddb's `db_search_symbol`, an address that no sized symbol contains is attributed to the
//! nearest preceding function when it lies in executable code and within [`MAX_FALLBACK_OFFSET`]
//! bytes (ddb's `db_maxoff`): assembly routines often carry no `.size`.

/// How far past the start of a size-less function an address is still reported as `func+off`.
pub const MAX_FALLBACK_OFFSET: u64 = 0x10000;

/// How many lower-addressed neighbours [`SymbolTable::containing`] inspects for a symbol whose
/// range covers the address (nested or overlapping symbols).
const CONTAINING_LOOKBACK: usize = 16;

/// What an ELF symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    Function,
    Object,
    /// `STT_NOTYPE` labels such as `_end`; found by name, never used for the code fallback.
    Other,
}

/// One symbol, at its unrelocated (link-time) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub value: u64,
    pub size: u64,
    pub kind: SymbolKind,
    /// Demangled, hash-less name.
    pub name: String,
    /// The name as the ELF string table spells it.
    pub raw_name: String,
}

impl Symbol {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.value && addr - self.value < self.size
    }
}

/// Why a name did not resolve to one address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("symbol '{0}' not found")]
    NotFound(String),
    #[error("symbol '{name}' is ambiguous: {}", candidates_text(.candidates, *.total))]
    Ambiguous { name: String, candidates: Vec<String>, total: usize },
}

fn candidates_text(candidates: &[String], total: usize) -> String {
    let mut text = candidates.join(", ");
    if total > candidates.len() {
        text.push_str(&format!(" and {} more", total - candidates.len()));
    }
    text
}

/// How many candidates an ambiguity error names.
const AMBIGUITY_SHOWN: usize = 4;

/// Symbols sorted by value, plus the executable ranges used by the code fallback.
#[derive(Debug, Default)]
pub struct SymbolTable {
    symbols: Vec<Symbol>,
    /// Unrelocated `[start, end)` of executable sections.
    code_ranges: Vec<(u64, u64)>,
}

impl SymbolTable {
    /// Build from unsorted symbols; `code_ranges` are the executable sections.
    pub fn new(mut symbols: Vec<Symbol>, code_ranges: Vec<(u64, u64)>) -> SymbolTable {
        // Sized symbols before unsized ones at the same value, so `containing` prefers them.
        symbols.sort_by(|a, b| a.value.cmp(&b.value).then_with(|| b.size.cmp(&a.size)).then_with(|| a.name.cmp(&b.name)));
        symbols.dedup_by(|a, b| a.value == b.value && a.size == b.size && a.name == b.name);
        SymbolTable { symbols, code_ranges }
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Index one past the last symbol whose value is `<= addr`.
    fn upper(&self, addr: u64) -> usize {
        self.symbols.partition_point(|s| s.value <= addr)
    }

    /// The symbol whose `[value, value + size)` holds `addr` (unrelocated).
    pub fn containing(&self, addr: u64) -> Option<&Symbol> {
        let upper = self.upper(addr);
        self.symbols[..upper].iter().rev().take(CONTAINING_LOOKBACK).find(|s| s.contains(addr))
    }

    /// The containing symbol, else the nearest preceding function when `addr` is code.
    pub fn symbolize(&self, addr: u64) -> Option<&Symbol> {
        if let Some(sym) = self.containing(addr) {
            return Some(sym);
        }
        if !self.code_ranges.iter().any(|&(lo, hi)| addr >= lo && addr < hi) {
            return None;
        }
        let upper = self.upper(addr);
        self.symbols[..upper]
            .iter()
            .rev()
            .take_while(|s| addr - s.value <= MAX_FALLBACK_OFFSET)
            .find(|s| s.kind == SymbolKind::Function)
    }

    /// Resolve a name: exact demangled name, exact raw name, else a unique suffix that starts at
    /// a `::` boundary. Symbols at one address count once.
    pub fn resolve(&self, name: &str) -> Result<&Symbol, LookupError> {
        if name.is_empty() {
            return Err(LookupError::NotFound(String::new()));
        }
        let exact: Vec<&Symbol> = self.symbols.iter().filter(|s| s.name == name).collect();
        if let Some(sym) = unique(&exact) {
            return Ok(sym);
        }
        if exact.is_empty()
            && let Some(sym) = self.symbols.iter().find(|s| s.raw_name == name)
        {
            return Ok(sym);
        }
        let matches: Vec<&Symbol> = if exact.is_empty() {
            self.symbols.iter().filter(|s| is_path_suffix(&s.name, name)).collect()
        } else {
            exact
        };
        if let Some(sym) = unique(&matches) {
            return Ok(sym);
        }
        if matches.is_empty() {
            return Err(LookupError::NotFound(name.to_string()));
        }
        let mut names: Vec<String> = matches.iter().map(|s| s.name.clone()).collect();
        names.dedup();
        let total = names.len();
        names.truncate(AMBIGUITY_SHOWN);
        Err(LookupError::Ambiguous { name: name.to_string(), candidates: names, total })
    }

    /// The first symbol with this exact raw ELF name.
    pub fn raw(&self, raw_name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.raw_name == raw_name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter()
    }
}

/// The one symbol among `matches`, when they all share a value.
fn unique<'a>(matches: &[&'a Symbol]) -> Option<&'a Symbol> {
    let first = *matches.first()?;
    matches.iter().all(|s| s.value == first.value).then_some(first)
}

/// `name` ends with `::suffix` (or is `suffix`).
fn is_path_suffix(name: &str, suffix: &str) -> bool {
    name == suffix || name.strip_suffix(suffix).is_some_and(|head| head.ends_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(value: u64, size: u64, kind: SymbolKind, name: &str) -> Symbol {
        Symbol { value, size, kind, name: name.to_string(), raw_name: format!("_R{name}") }
    }

    fn table() -> SymbolTable {
        SymbolTable::new(
            vec![
                sym(0x2000, 0x20, SymbolKind::Function, "kernel::kern::sched::mi_switch"),
                sym(0x1000, 0x100, SymbolKind::Function, "kernel::kern::proc::fork"),
                sym(0x1100, 0, SymbolKind::Function, "asm_trampoline"),
                sym(0x3000, 0x10, SymbolKind::Function, "kernel::a::run"),
                sym(0x3010, 0x10, SymbolKind::Function, "kernel::b::run"),
                sym(0x9000, 8, SymbolKind::Object, "kernel::ALLPROC"),
                sym(0x9000, 8, SymbolKind::Object, "kernel::ALLPROC_ALIAS"),
            ],
            vec![(0x1000, 0x4000)],
        )
    }

    #[test]
    fn containing_and_fallback() {
        let t = table();
        assert_eq!(t.symbolize(0x1010).map(|s| s.name.as_str()), Some("kernel::kern::proc::fork"));
        // Past fork's size: the unsized trampoline that precedes it.
        assert_eq!(t.symbolize(0x1180).map(|s| s.name.as_str()), Some("asm_trampoline"));
        // Data: containing only.
        assert!(t.symbolize(0x9000).is_some());
        assert_eq!(t.symbolize(0x9008), None);
        assert_eq!(t.symbolize(0xfff), None);
    }

    #[test]
    fn resolve_by_full_raw_and_suffix() {
        let t = table();
        assert_eq!(t.resolve("kernel::kern::sched::mi_switch").map(|s| s.value), Ok(0x2000));
        assert_eq!(t.resolve("mi_switch").map(|s| s.value), Ok(0x2000));
        assert_eq!(t.resolve("sched::mi_switch").map(|s| s.value), Ok(0x2000));
        assert_eq!(t.resolve("_Rkernel::kern::proc::fork").map(|s| s.value), Ok(0x1000));
        assert!(matches!(t.resolve("switch"), Err(LookupError::NotFound(_))));
        assert!(matches!(t.resolve("run"), Err(LookupError::Ambiguous { total: 2, .. })));
        assert_eq!(t.resolve("a::run").map(|s| s.value), Ok(0x3000));
    }
}
