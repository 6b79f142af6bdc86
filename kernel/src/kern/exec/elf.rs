//! ELF images for exec: a program's or its interpreter's header and program headers, read
//! and checked as Linux's binfmt_elf checks them, and its PT_LOAD segments mapped into the
//! new address space at a load bias.
//!
//! Segments are file-backed private mappings: pages are read from the file on first touch;
//! the part of a segment's last page past its file size, and its bss, are zeros.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC, Header};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, ProgramHeader};

use super::{ExecError, noexec, read_full};
use crate::fs::namei::NamePath;
use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;
use crate::vm::space::{
    AddressSpace, Backing, MMAP_MIN, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, page_down, page_up,
};

/// The size of a program header (`Elf64_Phdr`): e_phentsize must be it, and AT_PHENT says it.
pub const PHENT_SIZE: usize = size_of::<linux_raw_sys::elf_uapi::Elf64_Phdr>();
/// The size of the ELF header.
const EHDR_SIZE: usize = size_of::<linux_raw_sys::elf_uapi::Elf64_Ehdr>();
/// Most program headers taken (Linux: 64 KiB of them).
const MAX_PHNUM: usize = 65536 / PHENT_SIZE;
/// The longest interpreter path (PATH_MAX, with its NUL).
const PATH_MAX: u64 = 4096;
/// The largest segment alignment honoured when placing a position-independent image.
const MAX_ALIGN: u64 = 1 << 30;

/// An ELF file opened for exec.
#[derive(Debug)]
pub struct ElfFile {
    pub vnode: VnodeRef,
    /// Its path, for /proc/PID/maps.
    pub path: NamePath,
    pub hdr: Header,
    pub phdrs: Vec<ProgramHeader>,
    /// The name in messages.
    name: String,
}

/// Where an image went.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// What was added to every virtual address of the file.
    pub bias: u64,
    /// Its entry point.
    pub entry: u64,
    /// Where its program headers are in memory (AT_PHDR).
    pub phdr: u64,
    /// The end of its highest segment (where the break starts, page aligned).
    pub end: u64,
}

fn prot_of(flags: u32) -> u32 {
    [(PF_R, PROT_READ), (PF_W, PROT_WRITE), (PF_X, PROT_EXEC)]
        .iter()
        .filter(|(pf, _)| flags & pf != 0)
        .fold(0, |p, (_, b)| p | b)
}

impl ElfFile {
    /// Read and check the header and program headers of `vnode` (ENOEXEC with a message for
    /// what is not an x86-64 executable).
    pub fn read(vnode: &VnodeRef, path: NamePath, name: &str) -> Result<ElfFile, ExecError> {
        let hdr_bytes = read_full(vnode, 0, EHDR_SIZE)?;
        if hdr_bytes.len() < EHDR_SIZE || &hdr_bytes[..4] != b"\x7fELF" {
            return Err(Errno::ENOEXEC.into());
        }
        let h =
            goblin::elf::Elf::parse_header(&hdr_bytes).map_err(|e| noexec(format!("{name}: bad ELF header: {e}")))?;
        if h.e_ident[4] != 2 || h.e_ident[5] != 1 || h.e_machine != EM_X86_64 {
            return Err(noexec(format!("{name}: not an x86-64 little-endian ELF")));
        }
        if h.e_type != ET_EXEC && h.e_type != ET_DYN {
            return Err(noexec(format!("{name}: not an executable (ELF type {})", h.e_type)));
        }
        let phnum = usize::from(h.e_phnum);
        if usize::from(h.e_phentsize) != PHENT_SIZE || phnum == 0 || phnum > MAX_PHNUM {
            return Err(noexec(format!("{name}: bad program headers")));
        }
        let ph_bytes = read_full(vnode, h.e_phoff, phnum * PHENT_SIZE)?;
        if ph_bytes.len() < phnum * PHENT_SIZE {
            return Err(noexec(format!("{name}: truncated program headers")));
        }
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let phdrs = ProgramHeader::parse(&ph_bytes, 0, phnum, ctx).map_err(|e| noexec(format!("{name}: {e}")))?;
        Ok(ElfFile { vnode: vnode.clone(), path, hdr: h, phdrs, name: name.to_string() })
    }

    /// Position independent (ET_DYN): loaded wherever the kernel likes.
    pub fn is_dyn(&self) -> bool {
        self.hdr.e_type == ET_DYN
    }

    /// The program interpreter PT_INTERP names, if any (the first PT_INTERP, as Linux): a
    /// NUL-terminated path of 2 to PATH_MAX bytes.
    pub fn interp(&self) -> Result<Option<Vec<u8>>, ExecError> {
        let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_INTERP) else { return Ok(None) };
        if p.p_filesz < 2 || p.p_filesz > PATH_MAX {
            return Err(noexec(format!("{}: bad PT_INTERP", self.name)));
        }
        let len = usize::try_from(p.p_filesz).map_err(|_| Errno::ENOEXEC)?;
        let mut path = read_full(&self.vnode, p.p_offset, len)?;
        if path.len() != len || path.pop() != Some(0) {
            return Err(noexec(format!("{}: PT_INTERP is not a NUL-terminated path", self.name)));
        }
        // Linux takes the path up to its first NUL.
        if let Some(nul) = path.iter().position(|&b| b == 0) {
            path.truncate(nul);
        }
        Ok(Some(path))
    }

    /// Whether PT_GNU_STACK asks for an executable stack (no PT_GNU_STACK: not on x86-64).
    pub fn exec_stack(&self) -> bool {
        self.phdrs.iter().find(|p| p.p_type == PT_GNU_STACK).is_some_and(|p| p.p_flags & PF_X != 0)
    }

    fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
    }

    /// The page-aligned range of virtual addresses the PT_LOAD segments span (before any
    /// bias): what `total_mapping_size` measures.
    pub fn span(&self) -> Result<(u64, u64), ExecError> {
        let lo = self
            .loads()
            .map(|p| p.p_vaddr)
            .min()
            .ok_or_else(|| noexec(format!("{}: no loadable segments", self.name)))?;
        let hi = self.loads().map(|p| p.p_vaddr.checked_add(p.p_memsz)).try_fold(0u64, |m, e| e.map(|e| m.max(e)));
        let hi =
            hi.and_then(page_up).ok_or_else(|| noexec(format!("{}: segment past the end of memory", self.name)))?;
        Ok((page_down(lo), hi))
    }

    /// The largest power-of-two p_align of the PT_LOAD segments, at least a page.
    pub fn alignment(&self) -> u64 {
        self.loads().map(|p| p.p_align).filter(|a| a.is_power_of_two()).fold(PAGE, u64::max).min(MAX_ALIGN)
    }

    /// The bias that puts a position-independent image at the highest free place below
    /// `below` in `vm` (the mmap area, top-down), honouring its alignment.
    pub fn bias_in_mmap_area(&self, vm: &AddressSpace, below: u64) -> Result<u64, ExecError> {
        let (lo, hi) = self.span()?;
        let align = self.alignment();
        let len = (hi - lo).checked_add(align - PAGE).ok_or(Errno::ENOMEM)?;
        let room = vm.find_free(len, below).ok_or(Errno::ENOMEM)?;
        let start = room.checked_add(align - 1).ok_or(Errno::ENOMEM)? & !(align - 1);
        // A bias is an offset modulo 2^64, as Linux's load_bias: an image linked high moves
        // down by "adding" a wrapped one.
        Ok(start.wrapping_sub(lo))
    }

    /// The bias that puts a position-independent program at `base` (Linux's load_bias for
    /// ET_DYN with an interpreter), aligned as its segments ask.
    pub fn bias_at(&self, base: u64) -> Result<u64, ExecError> {
        let (lo, _) = self.span()?;
        let base = base & !(self.alignment() - 1);
        Ok(page_down(base.wrapping_sub(lo)))
    }

    /// Map the PT_LOAD segments at `bias` (added modulo 2^64) into `vm`; every segment must
    /// lie in `[MMAP_MIN, limit)`.
    pub fn map(&self, vm: &mut AddressSpace, bias: u64, limit: u64) -> Result<Loaded, ExecError> {
        let name = &self.name;
        let mut max_end = 0u64;
        for p in self.loads() {
            if p.p_filesz > p.p_memsz || p.p_vaddr % PAGE != p.p_offset % PAGE {
                return Err(noexec(format!("{name}: bad PT_LOAD segment")));
            }
            let vaddr = bias.wrapping_add(p.p_vaddr);
            let mem_end = vaddr.checked_add(p.p_memsz).ok_or(Errno::ENOEXEC)?;
            if vaddr < MMAP_MIN || mem_end > limit {
                return Err(noexec(format!("{name}: segment at {vaddr:#x} outside the user address space")));
            }
            let start = page_down(vaddr);
            let file_end = vaddr + p.p_filesz;
            let prot = prot_of(p.p_flags);
            let file_map_end = page_up(file_end).ok_or(Errno::ENOEXEC)?;
            if p.p_filesz > 0 {
                vm.map(MapEntry {
                    start,
                    end: file_map_end,
                    prot,
                    backing: Backing::File {
                        vnode: self.vnode.clone(),
                        offset: p.p_offset - (vaddr - start),
                        file_len: file_end - start,
                    },
                    name: self.path.to_path_bytes(),
                });
            }
            let anon_start = if p.p_filesz > 0 { file_map_end } else { start };
            let anon_end = page_up(mem_end).ok_or(Errno::ENOEXEC)?;
            if anon_end > anon_start {
                vm.map(MapEntry { start: anon_start, end: anon_end, prot, backing: Backing::Anon, name: Vec::new() });
            }
            max_end = max_end.max(mem_end);
        }
        if max_end == 0 {
            return Err(noexec(format!("{name}: no loadable segments")));
        }
        let entry = bias.wrapping_add(self.hdr.e_entry);
        Ok(Loaded {
            bias,
            entry,
            phdr: self.phdr_vaddr().map_or(0, |a| a.wrapping_add(bias)),
            end: page_up(max_end).ok_or(Errno::ENOEXEC)?,
        })
    }

    /// The virtual address of the program headers: the PT_LOAD segment whose file bytes hold
    /// them (as Linux finds it), else PT_PHDR's address.
    fn phdr_vaddr(&self) -> Option<u64> {
        let off = self.hdr.e_phoff;
        let size = u64::try_from(self.phdrs.len() * PHENT_SIZE).ok()?;
        self.loads()
            .find(|p| {
                p.p_offset <= off
                    && off.checked_add(size).is_some_and(|e| p.p_offset.checked_add(p.p_filesz).is_some_and(|f| e <= f))
            })
            .and_then(|p| p.p_vaddr.checked_add(off - p.p_offset))
            .or_else(|| self.phdrs.iter().find(|p| p.p_type == goblin::elf::program_header::PT_PHDR).map(|p| p.p_vaddr))
    }
}
