//! Symbols of the kernel ELF (`-N`, default `/proc/PID/exe`) and the load bias of a live
//! kernel: the kernel is a PIE, so a symbol's runtime address is its ELF value plus the bias,
//! found from where `/proc/PID/maps` shows the executable's first page.

use std::collections::HashMap;
use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::program_header::PT_LOAD;

use crate::KvmError;
use crate::error::io_msg;

/// The symbols of an ELF file, by name.
#[derive(Debug, Clone)]
pub struct Namelist {
    path: String,
    syms: HashMap<String, u64>,
    /// p_vaddr of the PT_LOAD segment at file offset 0.
    first_load_vaddr: u64,
}

impl Namelist {
    /// Read an ELF's symbol table (`.symtab`, else `.dynsym`).
    pub fn load(path: &Path) -> Result<Namelist, KvmError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| KvmError::Namelist { path: p.clone(), msg: io_msg(&e) })?;
        let elf = Elf::parse(&bytes).map_err(|e| KvmError::Namelist { path: p.clone(), msg: format!("not an ELF file: {e}") })?;
        let mut syms = HashMap::new();
        for s in elf.syms.iter() {
            if let Some(name) = elf.strtab.get_at(s.st_name).filter(|n| !n.is_empty()) {
                syms.entry(name.to_string()).or_insert(s.st_value);
            }
        }
        if syms.is_empty() {
            for s in elf.dynsyms.iter() {
                if let Some(name) = elf.dynstrtab.get_at(s.st_name).filter(|n| !n.is_empty()) {
                    syms.entry(name.to_string()).or_insert(s.st_value);
                }
            }
        }
        let first_load_vaddr =
            elf.program_headers.iter().find(|ph| ph.p_type == PT_LOAD && ph.p_offset == 0).map_or(0, |ph| ph.p_vaddr);
        Ok(Namelist { path: p, syms, first_load_vaddr })
    }

    /// A symbol's (unrelocated) value.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.syms.get(name).copied()
    }

    /// A symbol's value, or "not a vk kernel".
    pub fn require(&self, name: &str) -> Result<u64, KvmError> {
        self.value(name).ok_or_else(|| KvmError::NotVk { path: self.path.clone(), symbol: name.to_string() })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn first_load_vaddr(&self) -> u64 {
        self.first_load_vaddr
    }
}

/// The load bias of process `pid`'s executable: the start of its lowest file-offset-0 mapping
/// minus the ELF's first PT_LOAD address.
pub fn load_bias(pid: u32, first_load_vaddr: u64) -> Result<u64, KvmError> {
    let exe_link = format!("/proc/{pid}/exe");
    let exe = std::fs::read_link(&exe_link).map_err(|e| KvmError::Open {
        path: exe_link.clone(),
        msg: if e.kind() == std::io::ErrorKind::NotFound { "no such process".to_string() } else { io_msg(&e) },
    })?;
    let maps_path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&maps_path).map_err(|e| KvmError::Open { path: maps_path.clone(), msg: io_msg(&e) })?;
    let exe_s = exe.to_string_lossy();
    let start = parse_maps_for(&maps, &exe_s).ok_or_else(|| KvmError::NoMapping { exe: exe_s.to_string(), maps: maps_path })?;
    Ok(start.wrapping_sub(first_load_vaddr))
}

/// The start of the lowest mapping of `path` at file offset 0 in a maps listing.
pub fn parse_maps_for(maps: &str, path: &str) -> Option<u64> {
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let range = f.next()?;
            let _perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let _dev = f.next()?;
            let _inode = f.next()?;
            let name = f.collect::<Vec<_>>().join(" ");
            (offset == 0 && name == path).then(|| u64::from_str_radix(range.split('-').next()?, 16).ok()).flatten()
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lowest_offset_zero_mapping_wins() {
        let maps = "\
5600aa000000-5600aa100000 r--p 00000000 08:01 123 /usr/bin/k k
5600aa100000-5600aa200000 r-xp 00100000 08:01 123 /usr/bin/k k
7f0000000000-7f0000001000 r--p 00000000 08:01 9 /lib/x.so
";
        assert_eq!(parse_maps_for(maps, "/usr/bin/k k"), Some(0x5600aa000000));
        assert_eq!(parse_maps_for(maps, "/nope"), None);
    }

    #[test]
    fn namelist_of_a_non_elf_is_an_error() {
        let e = Namelist::load(Path::new("/proc/self/status")).unwrap_err();
        assert!(e.to_string().contains("not an ELF file"), "{e}");
    }
}
