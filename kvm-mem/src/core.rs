//! A vmcore as a memory source: the ELF core `db> dump` writes, read by address through its
//! PT_LOAD segments, and its notes — the vk note that says where the kernel was loaded, the
//! per-thread NT_PRSTATUS, NT_FILE.
//!
//! ```text
//!  vmcore.N ─ PT_NOTE: "VK" NT_VK_DUMP ─► load bias, layout address, layout bytes
//!           │          "CORE" NT_FILE   ─► the kernel executable's path (the default -N)
//!           └ PT_LOAD: vaddr → file offset ─► CoreMem::read(addr) = what /proc/PID/mem read
//! ```
//!
//! A read that falls in a segment's memory but past its file bytes reads zeros (as in any
//! core); a read outside every segment is an error, like an unmapped address in
//! `/proc/PID/mem`. Nothing is trusted: segment and note bounds are checked against the file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::Elf;
use goblin::elf::header::ET_CORE;
use goblin::elf::note::NoteDataIterator;
use goblin::elf::program_header::{PT_LOAD, PT_NOTE, ProgramHeader};

use crate::KvmError;
use crate::abi::{LAYOUT_MAGIC, NT_VK_DUMP, VK_NOTE_NAME};
use crate::source::MemSource;

/// Linux's NT_FILE note type ("FILE").
pub const NT_FILE: u32 = 0x4649_4c45;
/// Linux's NT_PRSTATUS note type.
pub const NT_PRSTATUS: u32 = 1;
/// Largest note segment read (a core of thousands of threads stays far below).
const MAX_NOTES: u64 = 64 << 20;

/// One PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
}

/// A note of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreNote {
    pub name: String,
    pub ntype: u32,
    pub desc: Vec<u8>,
}

/// What the vk note of a dump says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VkDumpNote {
    /// Runtime minus link-time address of the kernel executable.
    pub load_bias: u64,
    /// Runtime address of `vk_layout`.
    pub layout_addr: u64,
    /// The kernel's uptime when it dumped, ns (what a sleep time counts up to).
    pub uptime_ns: u64,
    /// The layout descriptor's bytes as the kernel had them.
    pub layout: Vec<u8>,
}

/// The vk note's descriptor: magic, load bias, layout address, uptime, then the layout bytes.
pub fn encode_vk_note(load_bias: u64, layout_addr: u64, uptime_ns: u64, layout: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(32 + layout.len());
    for w in [LAYOUT_MAGIC, load_bias, layout_addr, uptime_ns] {
        d.extend_from_slice(&w.to_le_bytes());
    }
    d.extend_from_slice(layout);
    d
}

/// Decode [`encode_vk_note`]'s bytes; None when they are not a vk note.
pub fn decode_vk_note(desc: &[u8]) -> Option<VkDumpNote> {
    let word = |i: usize| desc.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    if word(0)? != LAYOUT_MAGIC {
        return None;
    }
    Some(VkDumpNote {
        load_bias: word(1)?,
        layout_addr: word(2)?,
        uptime_ns: word(3)?,
        layout: desc.get(32..)?.to_vec(),
    })
}

/// An open vmcore.
#[derive(Debug)]
pub struct CoreMem {
    file: File,
    path: String,
    segments: Vec<Segment>,
    notes: Vec<CoreNote>,
}

fn bad(path: &str, msg: impl Into<String>) -> KvmError {
    KvmError::Open { path: path.to_string(), msg: msg.into() }
}

/// Whether the file at `path` is an ELF core (by its header).
pub fn is_core(path: &Path) -> bool {
    let mut head = [0u8; 64];
    File::open(path).and_then(|f| f.read_exact_at(&mut head, 0)).is_ok()
        && Elf::parse_header(&head).is_ok_and(|h| h.e_type == ET_CORE)
}

impl CoreMem {
    /// Open a core: its header, program headers and notes are read; memory is read on demand.
    pub fn open(path: &Path) -> Result<CoreMem, KvmError> {
        let p = path.display().to_string();
        let file = File::open(path).map_err(|e| bad(&p, crate::source::open_msg(&e)))?;
        let size = file.metadata().map_err(|e| bad(&p, e.to_string()))?.len();
        let mut head = [0u8; 64];
        file.read_exact_at(&mut head, 0).map_err(|_| bad(&p, "not an ELF file (too short)"))?;
        let h = Elf::parse_header(&head).map_err(|e| bad(&p, format!("not an ELF file: {e}")))?;
        if h.e_type != ET_CORE {
            return Err(bad(&p, "an ELF file, but not a core"));
        }
        let phsize = u64::from(h.e_phnum) * u64::from(h.e_phentsize);
        if h.e_phentsize as usize != 56 || h.e_phoff.checked_add(phsize).is_none_or(|end| end > size) {
            return Err(bad(&p, "program headers are outside the file"));
        }
        let mut table = vec![0u8; phsize as usize];
        file.read_exact_at(&mut table, h.e_phoff).map_err(|e| bad(&p, e.to_string()))?;
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let phdrs = ProgramHeader::parse(&table, 0, h.e_phnum as usize, ctx)
            .map_err(|e| bad(&p, format!("program headers: {e}")))?;
        let mut segments = Vec::new();
        let mut notes = Vec::new();
        for ph in &phdrs {
            let in_file = ph.p_offset.checked_add(ph.p_filesz).is_some_and(|end| end <= size);
            if !in_file {
                return Err(bad(
                    &p,
                    format!("segment at {:#x} extends past the end of the file (truncated?)", ph.p_vaddr),
                ));
            }
            match ph.p_type {
                PT_LOAD => segments.push(Segment {
                    vaddr: ph.p_vaddr,
                    memsz: ph.p_memsz,
                    offset: ph.p_offset,
                    filesz: ph.p_filesz.min(ph.p_memsz),
                }),
                PT_NOTE if ph.p_filesz <= MAX_NOTES => {
                    let mut data = vec![0u8; ph.p_filesz as usize];
                    file.read_exact_at(&mut data, ph.p_offset).map_err(|e| bad(&p, e.to_string()))?;
                    let it = NoteDataIterator { data: &data, size: data.len(), offset: 0, ctx: (4, ctx) };
                    for n in it {
                        let n = n.map_err(|e| bad(&p, format!("bad note: {e}")))?;
                        notes.push(CoreNote {
                            name: n.name.trim_end_matches('\0').to_string(),
                            ntype: n.n_type,
                            desc: n.desc.to_vec(),
                        });
                    }
                }
                _ => {}
            }
        }
        segments.sort_by_key(|s| s.vaddr);
        Ok(CoreMem { file, path: p, segments, notes })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn notes(&self) -> &[CoreNote] {
        &self.notes
    }

    /// The first note of this name and type.
    pub fn note(&self, name: &str, ntype: u32) -> Option<&[u8]> {
        self.notes.iter().find(|n| n.name == name && n.ntype == ntype).map(|n| n.desc.as_slice())
    }

    /// The vk note, when this is a vk dump.
    pub fn vk_note(&self) -> Option<VkDumpNote> {
        self.note(VK_NOTE_NAME, NT_VK_DUMP).and_then(decode_vk_note)
    }

    /// NT_FILE: `(start, end, file offset in bytes, path)` of every file-backed mapping.
    pub fn mapped_files(&self) -> Vec<(u64, u64, u64, String)> {
        let Some(d) = self.note("CORE", NT_FILE) else { return Vec::new() };
        let word = |i: usize| d.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let (Some(count), Some(page)) = (word(0), word(1)) else { return Vec::new() };
        let count = usize::try_from(count).unwrap_or(0).min(d.len() / 24);
        let mut names = d.get(16 + count * 24..).unwrap_or(&[]).split(|&b| b == 0);
        (0..count)
            .filter_map(|i| {
                let (start, end, pgoff) = (word(2 + 3 * i)?, word(3 + 3 * i)?, word(4 + 3 * i)?);
                let name = String::from_utf8_lossy(names.next()?).into_owned();
                Some((start, end, pgoff.saturating_mul(page), name))
            })
            .collect()
    }

    /// Host thread ids of the NT_PRSTATUS notes, in order (gdb's threads).
    pub fn thread_ids(&self) -> Vec<i32> {
        self.notes
            .iter()
            .filter(|n| n.name == "CORE" && n.ntype == NT_PRSTATUS)
            .filter_map(|n| n.desc.get(32..36).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes))
            .collect()
    }

    /// The segment holding `addr`, if any.
    fn segment(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr).checked_sub(1)?;
        let s = &self.segments[i];
        (addr - s.vaddr < s.memsz).then_some(s)
    }
}

impl MemSource for CoreMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        let len = buf.len();
        let err = |msg: &str| KvmError::Read { addr, len, msg: msg.to_string() };
        if addr.checked_add(buf.len() as u64).is_none() {
            return Err(err("address out of range"));
        }
        // A read may cross from one segment into the next adjacent one.
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr + done as u64;
            let s = self.segment(at).ok_or_else(|| err("not in the dump"))?;
            let off = at - s.vaddr;
            let n = ((s.memsz - off) as usize).min(buf.len() - done);
            let part = &mut buf[done..done + n];
            let from_file = (s.filesz.saturating_sub(off) as usize).min(n);
            if from_file > 0 {
                self.file.read_exact_at(&mut part[..from_file], s.offset + off).map_err(|e| err(&e.to_string()))?;
            }
            part[from_file..].fill(0);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-segment core built by hand (ELF header, 3 program headers, a note, data).
    fn tiny_core(dir: &Path) -> std::path::PathBuf {
        let mut f = vec![0u8; 0x2000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1;
        f[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&3u16.to_le_bytes());
        let note = {
            let desc = encode_vk_note(0x5555_0000_0000, 0x5555_0000_1000, 42, b"LAYOUTBYTES!");
            let mut n = Vec::new();
            n.extend_from_slice(&3u32.to_le_bytes());
            n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            n.extend_from_slice(&NT_VK_DUMP.to_le_bytes());
            n.extend_from_slice(b"VK\0\0");
            n.extend_from_slice(&desc);
            n
        };
        let phdr = |f: &mut Vec<u8>, i: usize, ty: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
            let b = 64 + 56 * i;
            f[b..b + 4].copy_from_slice(&ty.to_le_bytes());
            f[b + 8..b + 16].copy_from_slice(&off.to_le_bytes());
            f[b + 16..b + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[b + 32..b + 40].copy_from_slice(&filesz.to_le_bytes());
            f[b + 40..b + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        phdr(&mut f, 0, PT_NOTE, 0x200, 0, note.len() as u64, 0);
        f[0x200..0x200 + note.len()].copy_from_slice(&note);
        // Two adjacent segments; the second has memory past its file bytes.
        phdr(&mut f, 1, PT_LOAD, 0x1000, 0x10_0000, 0x800, 0x800);
        phdr(&mut f, 2, PT_LOAD, 0x1800, 0x10_0800, 0x10, 0x1000);
        for (i, b) in f[0x1000..0x1810].iter_mut().enumerate() {
            *b = i as u8;
        }
        let path = dir.join("tiny.core");
        std::fs::write(&path, &f).unwrap();
        path
    }

    #[test]
    fn reads_by_address_across_segments_and_zero_fills() {
        let dir = std::env::temp_dir().join(format!("kvm-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = tiny_core(&dir);
        assert!(is_core(&path));
        let core = CoreMem::open(&path).unwrap();
        let mut b = [0u8; 4];
        core.read(0x10_0004, &mut b).unwrap();
        assert_eq!(b, [4, 5, 6, 7]);
        let mut b = [0u8; 8];
        core.read(0x10_07fc, &mut b).unwrap();
        assert_eq!(b, [0xfc, 0xfd, 0xfe, 0xff, 0, 1, 2, 3], "across the segment boundary");
        core.read(0x10_0810, &mut b).unwrap();
        assert_eq!(b, [0; 8], "memory past the file bytes reads as zeros");
        let e = core.read(0x10_1800, &mut b).unwrap_err();
        assert!(e.to_string().contains("not in the dump"), "{e}");
        assert!(core.read(0xf_fffc, &mut b).is_err());
        let note = core.vk_note().unwrap();
        assert_eq!(note.load_bias, 0x5555_0000_0000);
        assert_eq!(note.layout_addr, 0x5555_0000_1000);
        assert_eq!(note.uptime_ns, 42);
        assert_eq!(note.layout, b"LAYOUTBYTES!");
        assert!(!is_core(Path::new("/proc/self/status")));
        let e = CoreMem::open(Path::new("/proc/self/exe")).unwrap_err();
        assert!(e.to_string().contains("not a core"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_core_is_refused() {
        let dir = std::env::temp_dir().join(format!("kvm-core-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = tiny_core(&dir);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..0x1400]).unwrap();
        let e = CoreMem::open(&path).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
