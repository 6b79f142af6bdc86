//! Symbols of the kernel ELF and the load bias of a live kernel, like BSD's nlist(3).
//!
//! The kernel is a PIE, so a symbol's runtime address is its ELF value plus the load bias. The
//! bias is where `/proc/PID/maps` shows the executable's first page (the mapping at file offset 0
//! of the file `/proc/PID/exe` links to) minus the `p_vaddr` of the PT_LOAD segment at file offset 0
//! (0 for a PIE, the link address for a fixed executable, giving a bias of 0).
//!
//! With `-N file` the symbols come from that file, but the mapping is still found through the
//! process's own executable: the two must be the same build, which the layout magic checks.

use std::collections::HashMap;
use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::SHN_UNDEF;

use crate::KvmError;

/// The defined symbols of an ELF file, by name.
#[derive(Debug, Clone)]
pub struct Namelist {
    path: String,
    syms: HashMap<String, u64>,
    /// p_vaddr of the PT_LOAD segment at file offset 0.
    first_load_vaddr: u64,
}

impl Namelist {
    /// Read an ELF's symbol table: `.symtab`, or `.dynsym` when the file is stripped.
    pub fn load(path: &Path) -> Result<Namelist, KvmError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| KvmError::Namelist { path: p.clone(), msg: io_msg(&e) })?;
        let elf = Elf::parse(&bytes)
            .map_err(|e| KvmError::Namelist { path: p.clone(), msg: format!("not an ELF file: {e}") })?;
        let mut syms = defined(&elf.syms, &elf.strtab);
        if syms.is_empty() {
            syms = defined(&elf.dynsyms, &elf.dynstrtab);
        }
        let first_load_vaddr =
            elf.program_headers.iter().find(|ph| ph.p_type == PT_LOAD && ph.p_offset == 0).map_or(0, |ph| ph.p_vaddr);
        Ok(Namelist { path: p, syms, first_load_vaddr })
    }

    /// A symbol's link-time value (add the load bias for its runtime address).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.syms.get(name).copied()
    }

    /// A symbol's value, or an error naming the file and the symbol.
    pub fn require(&self, name: &str) -> Result<u64, KvmError> {
        self.value(name).ok_or_else(|| KvmError::NoSymbol { path: self.path.clone(), symbol: name.to_string() })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// p_vaddr of the PT_LOAD segment at file offset 0.
    pub fn first_load_vaddr(&self) -> u64 {
        self.first_load_vaddr
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Name → value of the defined, named symbols of one table (the first of duplicates wins).
fn defined(syms: &goblin::elf::Symtab<'_>, strtab: &goblin::strtab::Strtab<'_>) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for s in syms.iter().filter(|s| s.st_shndx != SHN_UNDEF as usize) {
        if let Some(name) = strtab.get_at(s.st_name).filter(|n| !n.is_empty()) {
            out.entry(name.to_string()).or_insert(s.st_value);
        }
    }
    out
}

/// The path `/proc/PID/exe` links to (what `/proc/PID/maps` calls the executable).
pub fn exe_path(pid: u32) -> Result<String, KvmError> {
    let link = format!("/proc/{pid}/exe");
    let exe = std::fs::read_link(&link)
        .map_err(|e| KvmError::Open { path: link.clone(), msg: crate::source::open_msg(&e) })?;
    Ok(exe.to_string_lossy().into_owned())
}

/// The load bias of process `pid`'s executable, given the p_vaddr of its PT_LOAD at offset 0.
pub fn load_bias(pid: u32, first_load_vaddr: u64) -> Result<u64, KvmError> {
    let exe = exe_path(pid)?;
    let maps_path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&maps_path)
        .map_err(|e| KvmError::Open { path: maps_path.clone(), msg: crate::source::open_msg(&e) })?;
    let start = parse_maps_for(&maps, &exe).ok_or(KvmError::NoMapping { exe, maps: maps_path })?;
    Ok(start.wrapping_sub(first_load_vaddr))
}

/// The start of the lowest mapping of `path` at file offset 0 in a `/proc/PID/maps` listing.
pub fn parse_maps_for(maps: &str, path: &str) -> Option<u64> {
    maps.lines()
        .filter_map(|line| {
            // start-end perms offset dev inode [spaces] pathname (proc(5)); the pathname may
            // hold spaces, so take it as the rest of the line.
            let mut f = line.splitn(6, ' ');
            let range = f.next()?;
            let _perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let _dev = f.next()?;
            let _inode = f.next()?;
            let name = f.next()?.trim_start();
            let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
            (offset == 0 && name == path).then_some(start)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lowest_offset_zero_mapping_wins() {
        let maps = "\
5600aa100000-5600aa200000 r-xp 00100000 08:01 123                        /usr/bin/k k
5600aa000000-5600aa100000 r--p 00000000 08:01 123                        /usr/bin/k k
7f0000000000-7f0000001000 r--p 00000000 08:01 9                          /lib/x.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
";
        assert_eq!(parse_maps_for(maps, "/usr/bin/k k"), Some(0x5600aa000000));
        assert_eq!(parse_maps_for(maps, "/lib/x.so"), Some(0x7f0000000000));
        assert_eq!(parse_maps_for(maps, "/nope"), None);
        assert_eq!(parse_maps_for("garbage\n\n1-2 r\n", "/nope"), None);
    }

    #[test]
    fn namelist_errors_name_the_file() {
        let e = Namelist::load(Path::new("/proc/self/status")).unwrap_err();
        assert!(e.to_string().starts_with("/proc/self/status: not an ELF file"), "{e}");
        let e = Namelist::load(Path::new("/nonexistent/kernel")).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/kernel: no such file");
    }

    #[test]
    fn own_executable_has_symbols_and_a_bias() {
        let nl = Namelist::load(Path::new("/proc/self/exe")).unwrap();
        let e = nl.require("no_such_symbol_here").unwrap_err();
        assert_eq!(e.to_string(), "/proc/self/exe: no symbol no_such_symbol_here: not a vk kernel");
        let bias = load_bias(std::process::id(), nl.first_load_vaddr()).unwrap();
        assert_eq!(bias % 4096, 0, "bias {bias:#x}");
    }
}
