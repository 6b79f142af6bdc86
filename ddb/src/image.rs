//! The kernel's own ELF, as ddb reads it: symbols, unwind tables and (lazily) line tables.
//!
//! ```text
//!   runtime address = st_value + bias        (the kernel is PIE: bias = load address)
//!
//!   .symtab (else .dynsym) ──▶ SymbolTable   symbolize / lookup / raw_symbol
//!   .eh_frame, .eh_frame_hdr ──▶ UnwindSections   used by crate::unwind
//!   .debug_line (via addr2line, on first use) ──▶ source_line
//! ```
//!
//! Loading reads only the ELF's headers, its symbol tables and the two unwind sections
//! (`crate::elffile`) and builds the sorted symbol table; the DWARF line tables are only opened the first time a file:line is asked for, because
//! boot should not pay for them. The addr2line context sits behind a mutex that only ddb takes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use goblin::elf::section_header::SHF_EXECINSTR;

/// ELF `SHN_LORESERVE`: section indices from here on are special, not sections.
const SHN_LORESERVE: usize = 0xff00;
use goblin::elf::sym::{STT_FUNC, STT_NOTYPE, STT_OBJECT};
use goblin::elf::Sym;

use crate::elffile::ElfFile;

use crate::symtab::{LookupError, Symbol, SymbolKind, SymbolTable};

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not an ELF file: {why}")]
    NotElf { path: String, why: String },
}

/// A section's bytes and its unrelocated address.
#[derive(Debug, Clone, Default)]
pub struct SectionData {
    pub addr: u64,
    pub data: Vec<u8>,
}

/// What the CFI unwinder needs from the image (unrelocated addresses).
#[derive(Debug, Clone, Default)]
pub struct UnwindSections {
    pub eh_frame: Option<SectionData>,
    pub eh_frame_hdr: Option<SectionData>,
    /// Address of `.text`, the base for text-relative pointer encodings.
    pub text_addr: Option<u64>,
}

/// A source position from the line tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// The path as the line table records it.
    pub file: String,
    pub line: u32,
    /// When the address is in code inlined into the symbol's function: the innermost inlined
    /// location (`file`/`line` are then the line of the function the symbol names).
    pub inlined: Option<(String, u32)>,
}

impl SourceLine {
    /// The last path component (`sched.rs`), as `trace` shows it.
    pub fn file_name(&self) -> &str {
        last_component(&self.file)
    }

    /// `sched.rs:212`, or `sysctl.rs:8 (inlined trap.rs:203)`.
    pub fn short(&self) -> String {
        match &self.inlined {
            Some((file, line)) => format!("{}:{} (inlined {}:{line})", self.file_name(), self.line, last_component(file)),
            None => format!("{}:{}", self.file_name(), self.line),
        }
    }
}

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The kernel's own ELF: symbols (demangled), unwind tables, line tables.
pub struct KernelImage {
    path: Option<PathBuf>,
    bias: u64,
    symbols: SymbolTable,
    unwind: UnwindSections,
    lines: OnceLock<Option<Mutex<addr2line::Loader>>>,
}

impl std::fmt::Debug for KernelImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelImage")
            .field("path", &self.path)
            .field("bias", &format_args!("{:#x}", self.bias))
            .field("symbols", &self.symbols.len())
            .finish_non_exhaustive()
    }
}

impl KernelImage {
    /// Load the ELF at `path`, whose symbols are displaced by `bias` in the running image
    /// (runtime address = st_value + bias).
    pub fn load(path: &Path, bias: u64) -> Result<KernelImage, ImageError> {
        // Only the headers, the symbol tables and the unwind sections are read (`elffile`).
        let elf = ElfFile::open(path)?;
        let mut code_ranges = Vec::new();
        let mut unwind = UnwindSections::default();
        for sh in elf.sections() {
            if sh.sh_flags & u64::from(SHF_EXECINSTR) != 0 {
                code_ranges.push((sh.sh_addr, sh.sh_addr.saturating_add(sh.sh_size)));
            }
            let name = elf.name(sh);
            if name == ".text" {
                unwind.text_addr = Some(sh.sh_addr);
            }
            if !matches!(name.as_str(), ".eh_frame" | ".eh_frame_hdr") {
                continue;
            }
            let section = SectionData { addr: sh.sh_addr, data: elf.section(sh)? };
            if name == ".eh_frame" {
                unwind.eh_frame = Some(section);
            } else {
                unwind.eh_frame_hdr = Some(section);
            }
        }
        let symbols = elf.symbols(symbol)?;
        Ok(KernelImage {
            path: Some(path.to_path_buf()),
            bias,
            symbols: SymbolTable::new(symbols, code_ranges),
            unwind,
            lines: OnceLock::new(),
        })
    }

    /// An image that knows nothing: every address prints as hex, `trace` falls back to frame
    /// pointers. For when the kernel's executable cannot be read.
    pub fn empty() -> KernelImage {
        KernelImage {
            path: None,
            bias: 0,
            symbols: SymbolTable::default(),
            unwind: UnwindSections::default(),
            lines: OnceLock::new(),
        }
    }

    /// An image made of the given symbols, for tests.
    #[cfg(test)]
    pub(crate) fn from_symbols(symbols: Vec<Symbol>, code_ranges: Vec<(u64, u64)>, bias: u64) -> KernelImage {
        KernelImage { bias, symbols: SymbolTable::new(symbols, code_ranges), ..KernelImage::empty() }
    }

    /// The same image displaced by `bias`: for a caller that finds the bias from the image's
    /// own symbols ([`KernelImage::raw_symbol`]), so the file is read once.
    pub fn with_bias(mut self, bias: u64) -> KernelImage {
        self.bias = bias;
        self
    }

    /// Runtime address = unrelocated address + bias.
    pub fn bias(&self) -> u64 {
        self.bias
    }

    /// Number of symbols loaded.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// The symbol table (unrelocated values).
    pub fn symbol_table(&self) -> &SymbolTable {
        &self.symbols
    }

    /// `name+0xoff` style look-up: the symbol containing `addr` and the offset into it.
    pub fn symbolize(&self, addr: u64) -> Option<(&str, u64)> {
        let probe = addr.checked_sub(self.bias)?;
        let sym = self.symbols.symbolize(probe)?;
        Some((sym.name.as_str(), probe - sym.value))
    }

    /// Like [`KernelImage::symbolize`], but only a symbol whose size covers `addr` (no
    /// nearest-function fallback): for values that may be data, such as registers.
    pub fn symbolize_exact(&self, addr: u64) -> Option<(&str, u64)> {
        let probe = addr.checked_sub(self.bias)?;
        let sym = self.symbols.containing(probe)?;
        Some((sym.name.as_str(), probe - sym.value))
    }

    /// Runtime address and size of the symbol [`KernelImage::symbolize`] finds for `addr`.
    pub fn symbol_bounds(&self, addr: u64) -> Option<(u64, u64)> {
        let probe = addr.checked_sub(self.bias)?;
        let sym = self.symbols.symbolize(probe)?;
        Some((sym.value.wrapping_add(self.bias), sym.size))
    }

    /// Runtime address of a symbol by (demangled, hash-less) name or unique last path component.
    pub fn lookup(&self, name: &str) -> Option<u64> {
        self.resolve(name).ok()
    }

    /// [`KernelImage::lookup`] that says why not: not found, or which names it could mean.
    pub fn resolve(&self, name: &str) -> Result<u64, LookupError> {
        self.symbols.resolve(name).map(|s| s.value.wrapping_add(self.bias))
    }

    /// Unrelocated value of an ELF symbol by its exact (mangled or `#[no_mangle]`) name.
    pub fn raw_symbol(&self, name: &str) -> Option<u64> {
        self.symbols.raw(name).map(|s| s.value)
    }

    /// The unwind sections (unrelocated addresses).
    pub fn unwind_sections(&self) -> &UnwindSections {
        &self.unwind
    }

    /// File and line of a runtime address from the line tables, opened on first use.
    pub fn source_line(&self, addr: u64) -> Option<SourceLine> {
        let probe = addr.checked_sub(self.bias)?;
        let loader = self.lines.get_or_init(|| {
            let path = self.path.as_ref()?;
            addr2line::Loader::new(path).ok().map(Mutex::new)
        });
        let loader = loader.as_ref()?.lock().ok()?;
        // Frames come innermost first; the last is the function the symbol names.
        let mut frames = loader.find_frames(probe).ok()?;
        let mut chain = Vec::new();
        while let Ok(Some(frame)) = frames.next() {
            if let Some(loc) = frame.location
                && let (Some(file), Some(line)) = (loc.file, loc.line)
            {
                chain.push((file.to_string(), line));
            }
        }
        if chain.is_empty() {
            let location = loader.find_location(probe).ok()??;
            return Some(SourceLine { file: location.file?.to_string(), line: location.line?, inlined: None });
        }
        let (file, line) = chain.pop()?;
        let inlined = chain.into_iter().next();
        Some(SourceLine { file, line, inlined })
    }
}

/// A defined function, object or label symbol, demangled; None for the others.
fn symbol(s: &Sym, raw_name: &str) -> Option<Symbol> {
    // SHN_UNDEF (imports) and the reserved indices (SHN_ABS, SHN_COMMON …) are not addresses in
    // the image.
    if s.st_shndx == 0 || s.st_shndx >= SHN_LORESERVE || s.st_value == 0 || raw_name.is_empty() {
        return None;
    }
    let kind = match s.st_type() {
        STT_FUNC => SymbolKind::Function,
        STT_OBJECT => SymbolKind::Object,
        STT_NOTYPE => SymbolKind::Other,
        _ => return None,
    };
    let name = format!("{:#}", rustc_demangle::demangle(raw_name));
    Some(Symbol { value: s.st_value, size: s.st_size, kind, name, raw_name: raw_name.to_string() })
}

#[cfg(test)]
mod line_tests {
    use super::SourceLine;

    #[test]
    fn short_form_names_the_function_line_and_the_inlined_one() {
        let plain = SourceLine { file: "/src/kernel/src/kern/sched.rs".into(), line: 212, inlined: None };
        assert_eq!(plain.short(), "sched.rs:212");
        let inl = SourceLine {
            file: "kernel/src/debug/sysctl.rs".into(),
            line: 8,
            inlined: Some(("platform/src/trap.rs".into(), 203)),
        };
        assert_eq!(inl.short(), "sysctl.rs:8 (inlined trap.rs:203)");
    }
}
