//! An ELF file read in pieces: its header, its section headers and only the sections asked for,
//! each with one positioned read (pread).
//!
//! The kernel loads its own symbols at every boot; its executable is tens of megabytes, most of
//! it DWARF that only a `file:line` look-up ever needs (addr2line opens it then). Reading the
//! whole file to parse it copied all of it into fresh memory each boot — the largest CPU cost
//! of a short vk run after the guest's own work. Here only the symbol and string tables and the
//! unwind sections are read.
//!
//! Every offset and size comes from the file and is checked against its length before any
//! read or allocation: a corrupt or truncated file is an error, never a panic or a huge
//! allocation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use goblin::container::Ctx;
use goblin::elf::section_header::{SHN_XINDEX, SHT_DYNSYM, SHT_SYMTAB};
use goblin::elf::{Elf, SectionHeader, Sym, Symtab};

use crate::image::ImageError;

/// The ELF header's size for 64-bit files (a 32-bit one is shorter; reads are clamped).
const EHDR_LEN: u64 = 64;

/// An open ELF file and its section headers.
pub(crate) struct ElfFile {
    file: File,
    len: u64,
    shown: String,
    ctx: Ctx,
    sections: Vec<SectionHeader>,
    shstrtab: Vec<u8>,
}

impl ElfFile {
    /// Open `path` and read its header, section headers and section-name table.
    pub(crate) fn open(path: &Path) -> Result<ElfFile, ImageError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| ImageError::Io { path: shown.clone(), source })?;
        let len = file.metadata().map_err(|source| ImageError::Io { path: shown.clone(), source })?.len();
        let mut f = ElfFile { file, len, shown, ctx: Ctx::default(), sections: Vec::new(), shstrtab: Vec::new() };
        let head = f.read(0, EHDR_LEN.min(len))?;
        let header = Elf::parse_header(&head).map_err(|e| f.bad(e.to_string()))?;
        let container = header.container().map_err(|e| f.bad(e.to_string()))?;
        let endian = header.endianness().map_err(|e| f.bad(e.to_string()))?;
        f.ctx = Ctx::new(container, endian);
        if header.e_shoff == 0 {
            return Ok(f);
        }
        let entsize = SectionHeader::size(f.ctx) as u64;
        // More than SHN_LORESERVE sections: the count is the first header's sh_size.
        let mut count = u64::from(header.e_shnum);
        if count == 0 {
            let first = f.read(header.e_shoff, entsize)?;
            count = SectionHeader::parse_from(&first, 0, 1, f.ctx).map_err(|e| f.bad(e.to_string()))?[0].sh_size;
        }
        let table_len = count.checked_mul(entsize).ok_or_else(|| f.bad("too many section headers".into()))?;
        let table = f.read(header.e_shoff, table_len)?;
        let count = usize::try_from(count).map_err(|_| f.bad("too many section headers".into()))?;
        f.sections = SectionHeader::parse_from(&table, 0, count, f.ctx).map_err(|e| f.bad(e.to_string()))?;
        let mut names = usize::from(header.e_shstrndx);
        if names == SHN_XINDEX as usize {
            names = f.sections.first().map_or(0, |s| s.sh_link as usize);
        }
        if let Some(sh) = f.sections.get(names).cloned() {
            f.shstrtab = f.section(&sh)?;
        }
        Ok(f)
    }

    /// The section headers.
    pub(crate) fn sections(&self) -> &[SectionHeader] {
        &self.sections
    }

    /// A section's name ("" when it has none or the name table does not hold it).
    pub(crate) fn name(&self, sh: &SectionHeader) -> String {
        name_at(&self.shstrtab, sh.sh_name).to_string()
    }

    /// A section's bytes (none for a section that occupies no space in the file).
    pub(crate) fn section(&self, sh: &SectionHeader) -> Result<Vec<u8>, ImageError> {
        if sh.sh_type == goblin::elf::section_header::SHT_NOBITS {
            return Ok(Vec::new());
        }
        self.read(sh.sh_offset, sh.sh_size)
    }

    /// The symbols of the last symbol table (`.symtab`), else of the dynamic one (`.dynsym`),
    /// each with its name, in table order; `keep` turns a symbol and its name into an entry or
    /// drops it.
    pub(crate) fn symbols<T>(&self, mut keep: impl FnMut(&Sym, &str) -> Option<T>) -> Result<Vec<T>, ImageError> {
        for kind in [SHT_SYMTAB, SHT_DYNSYM] {
            let Some(sh) = self.sections.iter().rfind(|s| s.sh_type == kind) else { continue };
            let names_sh = self.sections.get(sh.sh_link as usize).ok_or_else(|| self.bad("symbol table without a string table".into()))?;
            let bytes = self.section(sh)?;
            let names = self.section(names_sh)?;
            let count = sh.sh_size.checked_div(sh.sh_entsize).and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
            let syms = Symtab::parse(&bytes, 0, count, self.ctx).map_err(|e| self.bad(e.to_string()))?;
            let out: Vec<T> = syms.iter().filter_map(|s| keep(&s, name_at(&names, s.st_name))).collect();
            if !out.is_empty() {
                return Ok(out);
            }
        }
        Ok(Vec::new())
    }

    /// `len` bytes at `off`, which must lie inside the file.
    fn read(&self, off: u64, len: u64) -> Result<Vec<u8>, ImageError> {
        let end = off.checked_add(len).filter(|&e| e <= self.len);
        let (Some(_), Ok(n)) = (end, usize::try_from(len)) else {
            return Err(self.bad(format!("{len} bytes at offset {off:#x} lie outside the file ({} bytes)", self.len)));
        };
        let mut buf = vec![0; n];
        self.file.read_exact_at(&mut buf, off).map_err(|source| ImageError::Io { path: self.shown.clone(), source })?;
        Ok(buf)
    }

    fn bad(&self, why: String) -> ImageError {
        ImageError::NotElf { path: self.shown.clone(), why }
    }
}

/// The NUL-terminated name at `off` in a string table; "" when `off` lies outside it or the
/// name is not UTF-8. (goblin's `Strtab` splits the whole table into strings first: a
/// megabyte for the kernel's, at every boot, for one look-up per symbol.)
fn name_at(table: &[u8], off: usize) -> &str {
    let Some(rest) = table.get(off..) else { return "" };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe() -> std::path::PathBuf {
        std::env::current_exe().expect("current_exe")
    }

    #[test]
    fn reads_what_a_whole_file_parse_finds() {
        let bytes = std::fs::read(exe()).expect("read the test binary");
        let whole = Elf::parse(&bytes).expect("parse");
        let f = ElfFile::open(&exe()).expect("open");
        assert_eq!(f.sections().len(), whole.section_headers.len());
        for (a, b) in f.sections().iter().zip(&whole.section_headers) {
            assert_eq!(f.name(a), whole.shdr_strtab.get_at(b.sh_name).unwrap_or(""));
            if f.name(a) == ".eh_frame" {
                let data = f.section(a).expect("section");
                assert_eq!(&data[..], &bytes[b.sh_offset as usize..(b.sh_offset + b.sh_size) as usize]);
            }
        }
        let ours = f.symbols(|s, n| Some((s.st_value, n.to_string()))).expect("symbols");
        let theirs: Vec<(u64, String)> =
            whole.syms.iter().map(|s| (s.st_value, whole.strtab.get_at(s.st_name).unwrap_or("").to_string())).collect();
        assert!(ours.len() > 1000);
        assert_eq!(ours, theirs);
    }

    fn copy_of_exe(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
        let mut bytes = std::fs::read(exe()).expect("read the test binary");
        edit(&mut bytes);
        let path = std::env::temp_dir().join(format!("ddb-elffile-{}-{name}", std::process::id()));
        std::fs::write(&path, &bytes).expect("write");
        path
    }

    #[test]
    fn a_truncated_or_corrupt_file_is_an_error() {
        let truncated = copy_of_exe("truncated", |b| b.truncate(b.len() / 2));
        let bad_shoff = copy_of_exe("shoff", |b| b[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes()));
        let bad_shnum = copy_of_exe("shnum", |b| b[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes()));
        let not_elf = copy_of_exe("text", |b| b[..4].copy_from_slice(b"#!/b"));
        let tiny = copy_of_exe("tiny", |b| b.truncate(10));
        for path in [&truncated, &bad_shoff, &bad_shnum, &not_elf, &tiny] {
            let r = ElfFile::open(path).and_then(|f| f.symbols(|_, n| Some(n.len())));
            assert!(matches!(r, Err(ImageError::NotElf { .. })), "{}: {:?}", path.display(), r.map(|v| v.len()));
            std::fs::remove_file(path).expect("remove");
        }
        let missing = ElfFile::open(Path::new("/nonexistent/kernel"));
        assert!(matches!(missing, Err(ImageError::Io { .. })));
    }
}
