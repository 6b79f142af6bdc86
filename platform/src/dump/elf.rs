//! The ELF core-file structures a dump is made of (elf(5), `<linux/elfcore.h>`), as plain
//! `#[repr(C)]` zerocopy structs whose sizes are checked at compile time: the writer fills
//! them field by field and writes their bytes, so no offset is computed by hand.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const ELFMAG: [u8; 4] = *b"\x7fELF";
pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2LSB: u8 = 1;
pub const EV_CURRENT: u8 = 1;
pub const ELFOSABI_NONE: u8 = 0;
pub const ET_CORE: u16 = 4;
pub const EM_X86_64: u16 = 62;

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// Note types of a Linux core (`<linux/elf.h>`).
pub const NT_PRSTATUS: u32 = 1;
/// The x87/SSE state (`user_i387_struct`, the 512-byte fxsave image).
pub const NT_PRFPREG: u32 = 2;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
/// The killing signal's siginfo (128 bytes).
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;
/// The xsave image (named "LINUX"; bytes 464.. hold XCR0, as gdb reads it).
pub const NT_X86_XSTATE: u32 = 0x202;

/// `Elf64_Ehdr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, IntoBytes, Immutable)]
pub struct Ehdr {
    pub e_ident: [u8; 16],
    pub e_type: u16,
    pub e_machine: u16,
    pub e_version: u32,
    pub e_entry: u64,
    pub e_phoff: u64,
    pub e_shoff: u64,
    pub e_flags: u32,
    pub e_ehsize: u16,
    pub e_phentsize: u16,
    pub e_phnum: u16,
    pub e_shentsize: u16,
    pub e_shnum: u16,
    pub e_shstrndx: u16,
}

/// `Elf64_Phdr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, IntoBytes, Immutable)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

/// `Elf64_Nhdr`; the name and the descriptor follow, each padded to 4 bytes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, IntoBytes, Immutable)]
pub struct Nhdr {
    pub n_namesz: u32,
    pub n_descsz: u32,
    pub n_type: u32,
}

/// `struct user_regs_struct` (x86-64), the register block of `NT_PRSTATUS` (and what
/// ptrace's GETREGS/SETREGS copy: the kernel's `abi::ptrace::UserRegsStruct` is this one).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// `struct timeval` as the core notes hold it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, IntoBytes, Immutable)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct elf_prstatus` (x86-64): one per thread.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, IntoBytes, Immutable)]
pub struct Prstatus {
    pub si_signo: i32,
    pub si_code: i32,
    pub si_errno: i32,
    pub pr_cursig: i16,
    pub pad0: u16,
    pub pr_sigpend: u64,
    pub pr_sighold: u64,
    pub pr_pid: i32,
    pub pr_ppid: i32,
    pub pr_pgrp: i32,
    pub pr_sid: i32,
    pub pr_utime: Timeval,
    pub pr_stime: Timeval,
    pub pr_cutime: Timeval,
    pub pr_cstime: Timeval,
    pub pr_reg: UserRegs,
    pub pr_fpvalid: i32,
    pub pad1: u32,
}

/// `struct elf_prpsinfo` (x86-64): the process.
#[repr(C)]
#[derive(Debug, Clone, Copy, IntoBytes, Immutable)]
pub struct Prpsinfo {
    pub pr_state: i8,
    pub pr_sname: u8,
    pub pr_zomb: i8,
    pub pr_nice: i8,
    pub pad0: u32,
    pub pr_flag: u64,
    pub pr_uid: u32,
    pub pr_gid: u32,
    pub pr_pid: i32,
    pub pr_ppid: i32,
    pub pr_pgrp: i32,
    pub pr_sid: i32,
    pub pr_fname: [u8; 16],
    pub pr_psargs: [u8; 80],
}

// The sizes Linux's `fs/binfmt_elf.c` writes on x86-64.
const _: () = {
    assert!(size_of::<Ehdr>() == 64);
    assert!(size_of::<Phdr>() == 56);
    assert!(size_of::<Nhdr>() == 12);
    assert!(size_of::<UserRegs>() == 27 * 8);
    assert!(size_of::<Prstatus>() == 336);
    assert!(core::mem::offset_of!(Prstatus, pr_reg) == 112);
    assert!(size_of::<Prpsinfo>() == 136);
};

/// One note, encoded: header, name with its NUL, descriptor, each padded to 4 bytes.
pub fn note(name: &str, ntype: u32, desc: &[u8]) -> Vec<u8> {
    let namesz = name.len() + 1;
    let hdr = Nhdr { n_namesz: namesz as u32, n_descsz: desc.len() as u32, n_type: ntype };
    let mut out = Vec::with_capacity(12 + namesz.next_multiple_of(4) + desc.len().next_multiple_of(4));
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.resize(12 + namesz.next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_padded_to_four_bytes() {
        let n = note("CORE", NT_PRSTATUS, &[1, 2, 3, 4, 5]);
        assert_eq!(n.len(), 12 + 8 + 8);
        assert_eq!(&n[0..4], &5u32.to_le_bytes());
        assert_eq!(&n[4..8], &5u32.to_le_bytes());
        assert_eq!(&n[12..17], b"CORE\0");
        assert_eq!(&n[20..25], &[1, 2, 3, 4, 5]);
    }
}
