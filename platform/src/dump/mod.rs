//! Crash dumps: an ELF core of the kernel process, written by the process itself (ddb `dump`,
//! a panic with `-e dumpdir=DIR`), which `gdb kernel vmcore.N` and `vps -M vmcore.N` read.
//!
//! ```text
//!  Ehdr │ Phdr: PT_NOTE, PT_LOAD … │ notes: NT_PRSTATUS (first thread), NT_PRPSINFO, NT_AUXV,
//!       │                          │ NT_FILE, NT_PRSTATUS (the other threads), the caller's
//!       │                          │ notes (vk's layout note) │ page-aligned segment data …
//! ```
//!
//! What is dumped is chosen from `/proc/self/maps` ([`wanted`]): every readable anonymous or
//! writable mapping (heap, kernel stacks, signal stacks, statics), every mapping of the kernel
//! executable (its read-only data holds the layout descriptor and the root pointers), the vDSO,
//! and physical memory at its direct-map address. Read-only mappings of other files (shared
//! libraries) are left out, as Linux's default coredump_filter leaves them: gdb reads them from
//! the files NT_FILE names. So are the stubs' shared slot areas (memfds of 64 MiB each, nearly
//! all holes, which reading would fill in).
//!
//! The writer runs in the debugger with the other CPUs stopped, on the alternate signal stack:
//! it reads memory only through `/proc/self/mem` (an unreadable page is written as zeros,
//! never a fault) and physical memory through its file with pread (so holes are not filled
//! in), takes no lock, and allocates only its headers and one copy buffer. All-zero chunks
//! are not written, so the core is a sparse file. There is no `unsafe` here.

pub mod elf;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use zerocopy::IntoBytes;

use crate::trap::{TrapFrame, reg};
use elf::{Ehdr, Phdr, Prpsinfo, Prstatus, UserRegs};

/// Bytes copied at a time (and the granularity of sparse zero runs).
const CHUNK: usize = 1 << 20;
const PAGE: u64 = crate::PAGE_SIZE as u64;

/// One line of `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxp` / `r--s` …
    pub perms: String,
    pub offset: u64,
    /// The path or `[heap]`-style name; empty for anonymous memory.
    pub name: String,
}

impl Mapping {
    fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }
    fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    fn is_file(&self) -> bool {
        self.name.starts_with('/')
    }
}

/// Parse a `/proc/PID/maps` listing (proc(5)); lines that do not parse are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(6, ' ');
            let (start, end) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let _dev = f.next()?;
            let _inode = f.next()?;
            let name = f.next().unwrap_or("").trim_start().to_string();
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                perms,
                offset,
                name,
            })
        })
        .collect()
}

/// Where a dumped segment's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The process's own memory, through `/proc/self/mem`.
    SelfMem,
    /// Physical memory's file at this offset (the direct map).
    Physmem { offset: u64 },
}

/// Whether a mapping goes into the dump, and from where it is read. `exe` is the path
/// `/proc/self/exe` links to; `dmap` the direct map `[start, end)`.
pub fn wanted(m: &Mapping, exe: &str, dmap: Option<(u64, u64)>) -> Option<Source> {
    if let Some((lo, hi)) = dmap
        && m.start >= lo
        && m.end <= hi
    {
        return Some(Source::Physmem { offset: m.start - lo });
    }
    if !m.readable() || matches!(m.name.as_str(), "[vvar]" | "[vvar_vclock]" | "[vsyscall]") {
        return None;
    }
    // Other shared memfds (the stubs' slot areas) are left out: reading them through
    // /proc/self/mem would fill in every hole of a mostly empty 64 MiB area.
    if m.name.starts_with("/memfd:") && m.perms.as_bytes().get(3) == Some(&b's') {
        return None;
    }
    let keep = !m.is_file() || m.writable() || m.name == exe;
    keep.then_some(Source::SelfMem)
}

/// A thread of the core: its id (gdb's LWP) and registers.
#[derive(Debug, Clone, Copy)]
pub struct CoreThread {
    pub tid: i32,
    pub regs: TrapFrame,
    /// The signal it stopped with (0: none).
    pub signo: i32,
}

/// A note the caller adds (vk's layout note).
#[derive(Debug, Clone)]
pub struct CoreNote {
    pub name: &'static str,
    pub ntype: u32,
    pub desc: Vec<u8>,
}

/// What goes into a core besides memory.
#[derive(Debug, Clone)]
pub struct CoreSpec {
    /// The threads, the one that dumped first (gdb selects it).
    pub threads: Vec<CoreThread>,
    pub notes: Vec<CoreNote>,
}

/// What a dump wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpStats {
    /// Bytes of memory in the dump's segments.
    pub bytes: u64,
    pub segments: usize,
    /// Pages that could not be read and were written as zeros.
    pub unreadable_pages: u64,
}

/// The memory the dump would hold: `(segment, source)` in address order.
pub fn plan() -> io::Result<Vec<(Mapping, Source)>> {
    let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps")?);
    let exe = std::fs::read_link("/proc/self/exe")?.to_string_lossy().into_owned();
    let dmap = crate::physmem::get().map(|p| (crate::physmem::DMAP_BASE, crate::physmem::DMAP_BASE + p.size()));
    Ok(maps.into_iter().filter_map(|m| wanted(&m, &exe, dmap).map(|s| (m, s))).collect())
}

/// `user_regs_struct` from a trap frame (segment selectors are the host's user ones).
fn user_regs(tf: &TrapFrame) -> UserRegs {
    let r = &tf.regs;
    UserRegs {
        r15: r[reg::R15],
        r14: r[reg::R14],
        r13: r[reg::R13],
        r12: r[reg::R12],
        rbp: r[reg::RBP],
        rbx: r[reg::RBX],
        r11: r[reg::R11],
        r10: r[reg::R10],
        r9: r[reg::R9],
        r8: r[reg::R8],
        rax: r[reg::RAX],
        rcx: r[reg::RCX],
        rdx: r[reg::RDX],
        rsi: r[reg::RSI],
        rdi: r[reg::RDI],
        orig_rax: u64::MAX,
        rip: r[reg::RIP],
        cs: 0x33,
        eflags: r[reg::RFLAGS],
        rsp: r[reg::RSP],
        ss: 0x2b,
        fs_base: r[reg::FS_BASE],
        gs_base: r[reg::GS_BASE],
        ..UserRegs::default()
    }
}

fn prstatus(t: &CoreThread) -> Vec<u8> {
    let pid = std::process::id() as i32;
    let st = Prstatus {
        si_signo: t.signo,
        pr_cursig: t.signo as i16,
        pr_pid: t.tid,
        pr_ppid: 0,
        pr_pgrp: pid,
        pr_sid: pid,
        pr_reg: user_regs(&t.regs),
        ..Prstatus::default()
    };
    elf::note("CORE", elf::NT_PRSTATUS, st.as_bytes())
}

fn prpsinfo() -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    let pid = std::process::id() as i32;
    let (uid, gid) = std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()));
    let mut info = Prpsinfo {
        pr_state: 0,
        pr_sname: b'R',
        pr_zomb: 0,
        pr_nice: 0,
        pad0: 0,
        pr_flag: 0,
        pr_uid: uid,
        pr_gid: gid,
        pr_pid: pid,
        pr_ppid: 0,
        pr_pgrp: pid,
        pr_sid: pid,
        pr_fname: [0; 16],
        pr_psargs: [0; 80],
    };
    let comm = std::fs::read("/proc/self/comm").unwrap_or_default();
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    let n = comm.len().min(15);
    info.pr_fname[..n].copy_from_slice(&comm[..n]);
    let args: Vec<u8> = std::fs::read("/proc/self/cmdline")
        .unwrap_or_default()
        .into_iter()
        .map(|b| if b == 0 { b' ' } else { b })
        .collect();
    let args = args.trim_ascii_end();
    let n = args.len().min(79);
    info.pr_psargs[..n].copy_from_slice(&args[..n]);
    elf::note("CORE", elf::NT_PRPSINFO, info.as_bytes())
}

/// NT_FILE: every mapping of a file that can be opened by its name, as Linux writes it (count,
/// page size, then start, end and offset in pages of each, then the names). A memfd or a
/// deleted file is left out: gdb would only warn that it cannot open it.
fn nt_file(maps: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = maps
        .iter()
        .filter(|m| m.is_file() && !m.name.starts_with("/memfd:") && !m.name.ends_with(" (deleted)"))
        .collect();
    let mut desc = Vec::new();
    desc.extend_from_slice(&(files.len() as u64).to_le_bytes());
    desc.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        for v in [m.start, m.end, m.offset / PAGE] {
            desc.extend_from_slice(&v.to_le_bytes());
        }
    }
    for m in &files {
        desc.extend_from_slice(m.name.as_bytes());
        desc.push(0);
    }
    elf::note("CORE", elf::NT_FILE, &desc)
}

/// Reads the dumped memory without ever faulting.
struct Reader {
    mem: File,
}

impl Reader {
    /// Fill `buf` from `src` at `addr`; what cannot be read is zeros. Returns unreadable pages.
    fn read(&self, src: Source, addr: u64, buf: &mut [u8]) -> u64 {
        match src {
            Source::SelfMem => {
                if self.mem.read_exact_at(buf, addr).is_ok() {
                    return 0;
                }
                let mut bad = 0;
                for (i, page) in buf.chunks_mut(PAGE as usize).enumerate() {
                    if self.mem.read_exact_at(page, addr + i as u64 * PAGE).is_err() {
                        page.fill(0);
                        bad += 1;
                    }
                }
                bad
            }
            Source::Physmem { offset } => {
                let Some(pm) = crate::physmem::get() else {
                    buf.fill(0);
                    return buf.len() as u64 / PAGE;
                };
                let mut done = 0;
                while done < buf.len() {
                    match nix::sys::uio::pread(pm.fd(), &mut buf[done..], (offset + done as u64) as i64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(_) => break,
                    }
                }
                buf[done..].fill(0);
                ((buf.len() - done) as u64).div_ceil(PAGE)
            }
        }
    }
}

/// Write the core to `path` (which must not exist). `progress(done, total)` is called as
/// memory is written, with byte counts.
pub fn write_core(path: &Path, spec: &CoreSpec, progress: &mut dyn FnMut(u64, u64)) -> io::Result<DumpStats> {
    let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps")?);
    let segments = plan()?;
    let mut notes = Vec::new();
    if let Some(first) = spec.threads.first() {
        notes.extend(prstatus(first));
    }
    notes.extend(prpsinfo());
    if let Ok(auxv) = std::fs::read("/proc/self/auxv") {
        notes.extend(elf::note("CORE", elf::NT_AUXV, &auxv));
    }
    notes.extend(nt_file(&maps));
    for t in spec.threads.iter().skip(1) {
        notes.extend(prstatus(t));
    }
    for n in &spec.notes {
        notes.extend(elf::note(n.name, n.ntype, &n.desc));
    }

    let phnum = 1 + segments.len();
    let phoff = size_of::<Ehdr>() as u64;
    let notes_off = phoff + (phnum * size_of::<Phdr>()) as u64;
    let mut data_off = (notes_off + notes.len() as u64).next_multiple_of(PAGE);
    let mut ident = [0u8; 16];
    ident[..4].copy_from_slice(&elf::ELFMAG);
    ident[4] = elf::ELFCLASS64;
    ident[5] = elf::ELFDATA2LSB;
    ident[6] = elf::EV_CURRENT;
    ident[7] = elf::ELFOSABI_NONE;
    let ehdr = Ehdr {
        e_ident: ident,
        e_type: elf::ET_CORE,
        e_machine: elf::EM_X86_64,
        e_version: 1,
        e_phoff: phoff,
        e_ehsize: size_of::<Ehdr>() as u16,
        e_phentsize: size_of::<Phdr>() as u16,
        e_phnum: u16::try_from(phnum).map_err(|_| io::Error::other("too many mappings for one core"))?,
        ..Ehdr::default()
    };
    let mut phdrs = Vec::with_capacity(phnum);
    phdrs.push(Phdr {
        p_type: elf::PT_NOTE,
        p_offset: notes_off,
        p_filesz: notes.len() as u64,
        p_align: 4,
        ..Phdr::default()
    });
    let mut stats = DumpStats::default();
    for (m, _) in &segments {
        let len = m.end - m.start;
        let flags = [(m.readable(), elf::PF_R), (m.writable(), elf::PF_W), (m.executable(), elf::PF_X)]
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |f, (_, bit)| f | bit);
        phdrs.push(Phdr {
            p_type: elf::PT_LOAD,
            p_flags: flags,
            p_offset: data_off,
            p_vaddr: m.start,
            p_filesz: len,
            p_memsz: len,
            p_align: PAGE,
            ..Phdr::default()
        });
        data_off += len;
        stats.bytes += len;
    }
    stats.segments = segments.len();

    let out = OpenOptions::new().write(true).create_new(true).open(path)?;
    out.write_all_at(ehdr.as_bytes(), 0)?;
    out.write_all_at(phdrs.as_bytes(), phoff)?;
    out.write_all_at(&notes, notes_off)?;
    let reader = Reader { mem: File::open("/proc/self/mem")? };
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    for ((m, src), ph) in segments.iter().zip(phdrs.iter().skip(1)) {
        let mut at = 0u64;
        while at < ph.p_filesz {
            let n = (ph.p_filesz - at).min(CHUNK as u64) as usize;
            let chunk = &mut buf[..n];
            let src_at = match *src {
                Source::SelfMem => *src,
                Source::Physmem { offset } => Source::Physmem { offset: offset + at },
            };
            stats.unreadable_pages += reader.read(src_at, m.start + at, chunk);
            if chunk.iter().any(|&b| b != 0) {
                out.write_all_at(chunk, ph.p_offset + at)?;
            }
            at += n as u64;
            done += n as u64;
            progress(done, stats.bytes);
        }
    }
    out.set_len(data_off)?;
    out.sync_all()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c3800000-55d0c3a00000 r--p 00000000 08:01 42    /work/run/kernel
55d0c3a00000-55d0c3f00000 r-xp 00200000 08:01 42    /work/run/kernel
55d0c4000000-55d0c4010000 rw-p 00800000 08:01 42    /work/run/kernel
55d0c5000000-55d0c5400000 rw-p 00000000 00:00 0     [heap]
400000000000-400002000000 rw-s 00000000 00:01 7     /memfd:vk-physmem (deleted)
7efc00000000-7efc04000000 rw-s 00000000 00:01 8     /memfd:vk-slots (deleted)
7f0000000000-7f0000004000 ---p 00000000 00:00 0
7f0000004000-7f0000024000 rw-p 00000000 00:00 0
7f1000000000-7f1000200000 r-xp 00000000 08:01 9     /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000200000-7f1000204000 rw-p 00200000 08:01 9     /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00002000 r--p 00000000 00:00 0     [vvar]
7ffd00002000-7ffd00004000 r-xp 00000000 00:00 0     [vdso]
";

    #[test]
    fn the_dump_holds_what_matters() {
        let maps = parse_maps(MAPS);
        assert_eq!(maps.len(), 12);
        assert_eq!(maps[4].name, "/memfd:vk-physmem (deleted)");
        let dmap = Some((0x4000_0000_0000, 0x4000_0200_0000));
        let kept: Vec<(u64, Source)> =
            maps.iter().filter_map(|m| wanted(m, "/work/run/kernel", dmap).map(|s| (m.start, s))).collect();
        assert_eq!(
            kept,
            vec![
                (0x55d0c3800000, Source::SelfMem),
                (0x55d0c3a00000, Source::SelfMem),
                (0x55d0c4000000, Source::SelfMem),
                (0x55d0c5000000, Source::SelfMem),
                (0x400000000000, Source::Physmem { offset: 0 }),
                (0x7f0000004000, Source::SelfMem),
                (0x7f1000200000, Source::SelfMem),
                (0x7ffd00002000, Source::SelfMem),
            ]
        );
    }

    #[test]
    fn a_core_of_this_process_has_its_threads_notes_and_memory() {
        let dir = std::env::temp_dir().join(format!("vk-dump-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("core");
        let _ = std::fs::remove_file(&path);
        let marker: Box<[u8; 16]> = Box::new(*b"vk-dump-marker!!");
        let spec = CoreSpec {
            threads: vec![CoreThread { tid: 7, regs: crate::trap::capture_context(), signo: 5 }],
            notes: vec![CoreNote { name: "VK", ntype: 0x1234, desc: vec![9; 10] }],
        };
        let mut calls = 0;
        let stats = write_core(&path, &spec, &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls > 0 && stats.segments > 3, "{stats:?}");
        let core = std::fs::read(&path).unwrap();
        assert_eq!(&core[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([core[16], core[17]]), elf::ET_CORE);
        let hay = |needle: &[u8]| core.windows(needle.len()).any(|w| w == needle);
        assert!(hay(&marker[..]), "the heap is in the dump");
        assert!(hay(b"CORE\0\0\0\0"), "core notes");
        assert!(hay(b"VK\0\0"), "the caller's note");
        // A second dump to the same name is refused rather than overwriting the first.
        assert!(write_core(&path, &spec, &mut |_, _| {}).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
