//! The stub's executable: a minimal static ELF made at boot, in a sealed memfd, from the stub
//! code in our own text (`asm::code`) and the seccomp program (`filter::build`):
//!
//! ```text
//!  file 0x0000  ELF header, one program header (PT_LOAD r-x at STUB_BASE)
//!       0x1000  ┌ stub code                      ← STUB_BASE (the entry point)
//!               │ …
//!       +MOVES_OFF   the table of host vDSO moves (`vdso`), zero-terminated
//!       +FILTER_OFF  struct sock_fprog { len, filter = STUB_BASE + FILTER_OFF + 16 }
//!       +FILTER_OFF+16  the BPF instructions
//! ```
//!
//! Exec'ing it gives each stub a fresh, nearly empty address space without copying the
//! kernel's (posix_spawn is vfork + exec).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use super::asm;
use super::filter::{self, SockFilter};
use super::layout::{FILTER_OFF, STUB_BASE};
use super::vdso::{self, MAX_MOVES, MOVES_OFF};

const FILE_OFF: u64 = 0x1000;

/// The image's bytes.
pub fn build() -> Vec<u8> {
    let code = asm::code();
    assert!((code.len() as u64) <= MOVES_OFF, "stub code does not fit below its tables");
    let prog: Vec<SockFilter> = filter::build(code.len() as u64);
    let mut image = code.to_vec();
    image.resize(MOVES_OFF as usize, 0xcc);
    let moves = vdso::moves();
    for i in 0..MAX_MOVES {
        image.extend_from_slice(&moves.get(i).map_or(0, |m| m.word()).to_le_bytes());
    }
    image.resize(FILTER_OFF as usize, 0);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    image.extend_from_slice(&(prog.len() as u16).to_le_bytes());
    image.extend_from_slice(&[0u8; 6]);
    image.extend_from_slice(&(STUB_BASE + FILTER_OFF + 16).to_le_bytes());
    for f in &prog {
        image.extend_from_slice(&f.code.to_le_bytes());
        image.push(f.jt);
        image.push(f.jf);
        image.extend_from_slice(&f.k.to_le_bytes());
    }
    let mut elf = Vec::with_capacity(FILE_OFF as usize + image.len());
    // ELF header
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0u8; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&STUB_BASE.to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    // Program header: PT_LOAD, R+X
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&FILE_OFF.to_le_bytes()); // p_offset
    elf.extend_from_slice(&STUB_BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&STUB_BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&(image.len() as u64).to_le_bytes()); // p_filesz
    elf.extend_from_slice(&(image.len() as u64).to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    elf.resize(FILE_OFF as usize, 0);
    elf.extend_from_slice(&image);
    elf
}

static IMAGE: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// The sealed memfd holding the image (made on first use).
pub fn fd() -> io::Result<&'static OwnedFd> {
    IMAGE
        .get_or_init(|| make().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(format!("stub image: {e}")))
}

fn make() -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the new fd is ours.
    let raw = unsafe { libc::memfd_create(c"vk-stub".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let file = std::fs::File::from(fd.try_clone()?);
    std::io::Write::write_all(&mut &file, &build())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_an_elf_goblin_can_read() {
        let bytes = build();
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), STUB_BASE);
        let code = asm::code();
        assert_eq!(&bytes[0x1000..0x1000 + code.len()], code);
        let prog_len = u16::from_le_bytes([bytes[0x1000 + FILTER_OFF as usize], bytes[0x1001 + FILTER_OFF as usize]]);
        assert_eq!(prog_len as usize, filter::build(code.len() as u64).len());
        assert!(asm::first_trap_offset() < code.len() as u64);
    }
}
