//! What goes into a guest core, as Linux's `fs/binfmt_elf.c` writes it:
//!
//! ```text
//!  Ehdr │ Phdr: PT_NOTE, PT_LOAD per mapping │ notes │ page-aligned segment data …
//!  notes, per thread (the dumping one first):
//!    NT_PRSTATUS  [first thread only: NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE]
//!    NT_PRFPREG (fxsave image)  NT_X86_XSTATE (xsave image, "LINUX")
//! ```
//!
//! Which mappings hold data follows Linux's default `coredump_filter` (0x33): private
//! anonymous memory and shared anonymous memory whole; private file mappings that are not
//! program text whole (Linux dumps those that have private pages — data, and RELRO made
//! read-only after relocation —; vk does not track which were written, so it takes every
//! non-executable one); of program text only the first page of a mapping at offset 0 (its
//! ELF header); nothing of a shared file mapping or one without access. A segment's `p_memsz`
//! is always the mapping's size, its `p_filesz` what was dumped of it.
//!
//! Memory is read through the address space as copyin reads it, but a page that was never
//! touched is not brought in: it stays a hole in the file (as Linux skips the zero page).
//! The ELF structures are platform's (`platform::dump::elf`), shared with the kernel's own
//! crash dumps.

use platform::dump::elf::{self, Ehdr, Phdr, Prpsinfo, Prstatus, Timeval, UserRegs as ElfRegs};
use platform::stub::{UserRegs, reg};
use zerocopy::IntoBytes;

use crate::abi::signal::Siginfo;
use crate::kern::cputime::Times;
use crate::vm::entry::{Backing, MapEntry};
use crate::vm::space::{AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};

/// One thread of the core: the registers the kernel holds for it, its FPU state as its stub
/// saved it, its signal state and times.
#[derive(Debug, Clone)]
pub struct ThreadSnap {
    pub tid: i32,
    pub regs: UserRegs,
    pub fs_base: u64,
    /// The xsave (or 512-byte fxsave) image from the stub's signal frame.
    pub fpstate: Option<Vec<u8>>,
    pub sigmask: u64,
    pub sigpend: u64,
    pub times: Times,
}

/// The process part of the notes.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub argv: Vec<Vec<u8>>,
    pub auxv: Vec<u8>,
    pub siginfo: Siginfo,
}

/// How much of a mapping the core holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    /// Bytes of data in the file (from `start`).
    pub dump_len: u64,
    /// Whether a page that is not resident here is read anyway (file data) rather than left a
    /// hole (anonymous memory this process never touched).
    pub fill_absent: bool,
}

/// `coredump_filter` 0x33 over one mapping.
pub fn segment_of(e: &MapEntry) -> Segment {
    let len = e.end - e.start;
    let (dump_len, fill_absent) = if e.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
        (0, false)
    } else {
        match &e.backing {
            Backing::Anon => (len, false),
            Backing::Shared { .. } => (len, false),
            // The vDSO whole (gdb reads its symbols there), not its data page: Linux's
            // always_dump_vma and VM_DONTDUMP.
            Backing::File { .. } if crate::kern::exec::vdso::is_special(e) => {
                (if e.prot & PROT_EXEC != 0 { len } else { 0 }, true)
            }
            // Program text: the ELF header page only (gdb reads the rest from the file).
            Backing::File { offset, .. } if e.prot & PROT_EXEC != 0 && e.prot & PROT_WRITE == 0 => {
                (if *offset == 0 && e.prot & PROT_READ != 0 { PAGE.min(len) } else { 0 }, true)
            }
            // Data, and read-only data that may have been written before it was made read-only
            // (RELRO: the dynamic section, the GOT, where gdb finds the shared libraries).
            Backing::File { .. } => (len, true),
            Backing::SharedFile { .. } => (0, false),
        }
    };
    Segment { start: e.start, end: e.end, prot: e.prot, dump_len, fill_absent }
}

/// NT_FILE's entries: `(start, end, offset in pages, path)` of every file mapping (not the
/// vDSO's, which are no file's, as on Linux).
pub fn file_entries(vm: &AddressSpace) -> Vec<(u64, u64, u64, Vec<u8>)> {
    vm.entries()
        .filter(|e| matches!(e.backing, Backing::File { .. } | Backing::SharedFile { .. }))
        .filter(|e| !crate::kern::exec::vdso::is_special(e))
        .map(|e| (e.start, e.end, e.offset() / PAGE, vm.entry_name(e).to_vec()))
        .collect()
}

fn timeval(ns: u64) -> Timeval {
    Timeval {
        tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        tv_usec: i64::try_from(ns % 1_000_000_000 / 1000).unwrap_or(0),
    }
}

/// `user_regs_struct` from the registers the kernel keeps (no system call in progress:
/// orig_rax -1).
fn elf_regs(t: &ThreadSnap) -> ElfRegs {
    crate::abi::ptrace::user_regs(&t.regs.gregs, u64::MAX, t.regs.gregs[reg::EFL], t.fs_base)
}

fn prstatus(t: &ThreadSnap, p: &ProcInfo) -> Vec<u8> {
    let sig = p.siginfo.si_signo;
    let st = Prstatus {
        si_signo: sig,
        pr_cursig: i16::try_from(sig).unwrap_or(0),
        pr_sigpend: t.sigpend,
        pr_sighold: t.sigmask,
        pr_pid: t.tid,
        pr_ppid: p.ppid,
        pr_pgrp: p.pgrp,
        pr_sid: p.sid,
        pr_utime: timeval(t.times.user_ns),
        pr_stime: timeval(t.times.sys_ns),
        pr_reg: elf_regs(t),
        pr_fpvalid: i32::from(t.fpstate.is_some()),
        ..Prstatus::default()
    };
    elf::note("CORE", elf::NT_PRSTATUS, st.as_bytes())
}

fn prpsinfo(p: &ProcInfo) -> Vec<u8> {
    let mut info = Prpsinfo {
        pr_state: 0,
        pr_sname: b'R',
        pr_zomb: 0,
        pr_nice: 0,
        pad0: 0,
        pr_flag: 0,
        pr_uid: p.uid,
        pr_gid: p.gid,
        pr_pid: p.pid,
        pr_ppid: p.ppid,
        pr_pgrp: p.pgrp,
        pr_sid: p.sid,
        pr_fname: [0; 16],
        pr_psargs: [0; 80],
    };
    let comm = p.comm.as_bytes();
    let n = comm.len().min(15);
    info.pr_fname[..n].copy_from_slice(&comm[..n]);
    let args = p.argv.join(&b' ');
    let n = args.len().min(79);
    info.pr_psargs[..n].copy_from_slice(&args[..n]);
    elf::note("CORE", elf::NT_PRPSINFO, info.as_bytes())
}

fn nt_file(files: &[(u64, u64, u64, Vec<u8>)]) -> Vec<u8> {
    let mut desc = Vec::new();
    desc.extend_from_slice(&(files.len() as u64).to_le_bytes());
    desc.extend_from_slice(&PAGE.to_le_bytes());
    for (start, end, pgoff, _) in files {
        for v in [start, end, pgoff] {
            desc.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (_, _, _, name) in files {
        desc.extend_from_slice(name);
        desc.push(0);
    }
    elf::note("CORE", elf::NT_FILE, &desc)
}

/// Where the signal frame's `struct _fpx_sw_bytes` sits in an fxsave/xsave image.
const SW_BYTES: usize = 464;
const FXSAVE_LEN: usize = 512;
/// `FP_XSTATE_MAGIC1`: the image is an xsave image with a header after the fxsave part.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// NT_PRFPREG (the fxsave part, software bytes cleared) and, for an xsave image, NT_X86_XSTATE:
/// the image with XCR0 where ptrace and cores put it (the first software word), which is how
/// gdb learns the layout. The signal frame keeps `magic1, extended_size, xfeatures,
/// xstate_size` there instead.
pub fn fpu_notes(fp: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(fx) = fp.get(..FXSAVE_LEN) else { return out };
    let mut fx = fx.to_vec();
    fx[SW_BYTES..].fill(0);
    out.extend(elf::note("CORE", elf::NT_PRFPREG, &fx));
    if le_u32(fp, SW_BYTES) != Some(FP_XSTATE_MAGIC1) {
        return out;
    }
    let (Some(xfeatures), Some(size)) = (le_u64(fp, SW_BYTES + 8), le_u32(fp, SW_BYTES + 16)) else { return out };
    let size = usize::try_from(size).unwrap_or(0);
    let Some(xs) = fp.get(..size).filter(|_| size > FXSAVE_LEN + 64) else { return out };
    let mut xs = xs.to_vec();
    xs[SW_BYTES..FXSAVE_LEN].fill(0);
    xs[SW_BYTES..SW_BYTES + 8].copy_from_slice(&xfeatures.to_le_bytes());
    out.extend(elf::note("LINUX", elf::NT_X86_XSTATE, &xs));
    out
}

/// The notes, in Linux's order.
pub fn notes(threads: &[ThreadSnap], p: &ProcInfo, files: &[(u64, u64, u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in threads.iter().enumerate() {
        out.extend(prstatus(t, p));
        if i == 0 {
            out.extend(prpsinfo(p));
            out.extend(elf::note("CORE", elf::NT_SIGINFO, p.siginfo.as_bytes()));
            out.extend(elf::note("CORE", elf::NT_AUXV, &p.auxv));
            out.extend(nt_file(files));
        }
        if let Some(fp) = &t.fpstate {
            out.extend(fpu_notes(fp));
        }
    }
    out
}

/// The headers: ELF header, PT_NOTE, a PT_LOAD per segment. Returns them with the file
/// offset of each segment's data and the file's total length.
pub fn headers(segments: &[Segment], notes_len: usize) -> Option<(Vec<u8>, Vec<u64>, u64)> {
    let phnum = 1 + segments.len();
    let phoff = size_of::<Ehdr>() as u64;
    let notes_off = phoff + (phnum * size_of::<Phdr>()) as u64;
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
        e_ehsize: u16::try_from(size_of::<Ehdr>()).ok()?,
        e_phentsize: u16::try_from(size_of::<Phdr>()).ok()?,
        e_phnum: u16::try_from(phnum).ok()?,
        ..Ehdr::default()
    };
    let mut phdrs = vec![Phdr {
        p_type: elf::PT_NOTE,
        p_offset: notes_off,
        p_filesz: notes_len as u64,
        p_align: 4,
        ..Phdr::default()
    }];
    let mut off = (notes_off + notes_len as u64).next_multiple_of(PAGE);
    let mut offsets = Vec::with_capacity(segments.len());
    for s in segments {
        let flags = [(PROT_READ, elf::PF_R), (PROT_WRITE, elf::PF_W), (PROT_EXEC, elf::PF_X)]
            .iter()
            .filter(|(p, _)| s.prot & p != 0)
            .fold(0, |f, (_, bit)| f | bit);
        phdrs.push(Phdr {
            p_type: elf::PT_LOAD,
            p_flags: flags,
            p_offset: off,
            p_vaddr: s.start,
            p_filesz: s.dump_len,
            p_memsz: s.end - s.start,
            p_align: PAGE,
            ..Phdr::default()
        });
        offsets.push(off);
        off += s.dump_len;
    }
    let mut out = Vec::with_capacity(usize::try_from(notes_off).ok()?);
    out.extend_from_slice(ehdr.as_bytes());
    out.extend_from_slice(phdrs.as_bytes());
    Some((out, offsets, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpu_notes_put_xcr0_where_gdb_reads_it() {
        let mut fp = vec![0u8; 1024];
        fp[0] = 0x7f; // FCW
        fp[SW_BYTES..SW_BYTES + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        fp[SW_BYTES + 4..SW_BYTES + 8].copy_from_slice(&1028u32.to_le_bytes());
        fp[SW_BYTES + 8..SW_BYTES + 16].copy_from_slice(&0x7u64.to_le_bytes());
        fp[SW_BYTES + 16..SW_BYTES + 20].copy_from_slice(&832u32.to_le_bytes());
        let n = fpu_notes(&fp);
        // NT_PRFPREG: 12-byte header, "CORE\0" padded to 8, 512 bytes.
        assert_eq!(&n[8..12], &elf::NT_PRFPREG.to_le_bytes());
        assert_eq!(n[20], 0x7f);
        assert!(n[20 + SW_BYTES..20 + 512].iter().all(|&b| b == 0));
        let x = &n[20 + 512..];
        assert_eq!(&x[4..8], &832u32.to_le_bytes(), "xstate_size bytes");
        assert_eq!(&x[8..12], &elf::NT_X86_XSTATE.to_le_bytes());
        assert_eq!(&x[12..18], b"LINUX\0");
        assert_eq!(&x[20 + SW_BYTES..20 + SW_BYTES + 8], &7u64.to_le_bytes(), "XCR0 at 464");
        // A plain fxsave image gives NT_PRFPREG only.
        assert_eq!(fpu_notes(&fp[..512]).len(), 20 + 512);
        assert!(fpu_notes(&fp[..100]).is_empty());
    }

    #[test]
    fn segments_follow_the_default_filter() {
        let e = |prot, backing| MapEntry { start: 0x1000, end: 0x5000, prot, backing, name: Vec::new() };
        assert_eq!(segment_of(&e(PROT_READ | PROT_WRITE, Backing::Anon)).dump_len, 0x4000);
        assert!(!segment_of(&e(PROT_READ, Backing::Anon)).fill_absent);
        assert_eq!(segment_of(&e(0, Backing::Anon)).dump_len, 0);
        let dir = crate::fs::tmpfs::new();
        let file = |offset| Backing::File { vnode: std::sync::Arc::clone(&dir), offset, file_len: 0x4000 };
        assert_eq!(segment_of(&e(PROT_READ | PROT_EXEC, file(0))).dump_len, PAGE, "text: the ELF header");
        assert_eq!(segment_of(&e(PROT_READ | PROT_EXEC, file(0x1000))).dump_len, 0);
        assert_eq!(segment_of(&e(PROT_READ, file(0x5000))).dump_len, 0x4000, "RELRO, rodata");
        assert!(segment_of(&e(PROT_READ | PROT_WRITE, file(0x9000))).fill_absent);
        let shared = Backing::Shared { object: crate::vm::entry::SharedObject::with_physmem(scratch()), offset: 0 };
        assert_eq!(segment_of(&e(PROT_READ, shared)).dump_len, 0x4000);
    }

    fn scratch() -> std::sync::Arc<platform::physmem::PhysMem> {
        std::sync::Arc::new(platform::physmem::PhysMem::scratch(platform::physmem::MIN_PHYSMEM).expect("scratch memory"))
    }

    #[test]
    fn headers_lay_segments_out_page_aligned() {
        let segs = vec![
            Segment { start: 0x400000, end: 0x401000, prot: PROT_READ, dump_len: 0x1000, fill_absent: true },
            Segment { start: 0x600000, end: 0x604000, prot: PROT_READ | PROT_WRITE, dump_len: 0, fill_absent: false },
            Segment { start: 0x7000, end: 0x9000, prot: PROT_READ | PROT_WRITE, dump_len: 0x2000, fill_absent: false },
        ];
        let (h, offs, total) = headers(&segs, 100).unwrap();
        assert_eq!(h.len(), 64 + 4 * 56);
        assert_eq!(offs, vec![0x1000, 0x2000, 0x2000]);
        assert_eq!(total, 0x4000);
        assert_eq!(&h[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([h[56], h[57]]), 4, "e_phnum");
    }
}
