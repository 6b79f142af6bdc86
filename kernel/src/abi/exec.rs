//! What exec(2) hands a new program and what personality(2) keeps: the auxiliary vector's
//! entry (`Elf64_auxv_t`, elf(5), getauxval(3)) and the personality word (linux/personality.h).

use zerocopy::{Immutable, IntoBytes};

/// One auxiliary vector entry: a type (`AT_*`, linux/auxvec.h) and its value. glibc's
/// `Elf64_auxv_t` is this pair of words; the kernel writes it as `elf_addr_t[2]`, which
/// linux-raw-sys has no type for, so the layout is pinned by the assertion below.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoBytes, Immutable)]
pub struct AuxEntry {
    pub a_type: u64,
    pub a_val: u64,
}

const _: () = assert!(size_of::<AuxEntry>() == 2 * size_of::<u64>());

/// personality(2)'s query value: return the persona, change nothing.
pub const PERSONALITY_QUERY: u32 = 0xffff_ffff;

/// The execution domain (the low byte): PER_LINUX is 0, PER_LINUX32 8.
pub const PER_MASK: u32 = 0xff;
/// The 32-bit execution domain: uname(2) says `i686`.
pub const PER_LINUX32: u32 = 0x0008;

bitflags::bitflags! {
    /// The flag bits of a persona (linux/personality.h; linux-raw-sys does not carry it).
    /// personality(2) stores any value, as Linux does; vk honours ADDR_NO_RANDOMIZE (no
    /// address-space randomisation for programs exec'd from then on) and keeps the rest so
    /// they are reported and inherited.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Persona: u32 {
        const UNAME26 = 0x002_0000;
        const ADDR_NO_RANDOMIZE = 0x004_0000;
        const FDPIC_FUNCPTRS = 0x008_0000;
        const MMAP_PAGE_ZERO = 0x010_0000;
        const ADDR_COMPAT_LAYOUT = 0x020_0000;
        const READ_IMPLIES_EXEC = 0x040_0000;
        const ADDR_LIMIT_32BIT = 0x080_0000;
        const SHORT_INODE = 0x100_0000;
        const WHOLE_SECONDS = 0x200_0000;
        const STICKY_TIMEOUTS = 0x400_0000;
        const ADDR_LIMIT_3GB = 0x800_0000;
        // Any other bit, and the execution domain in the low byte, is kept as it is.
        const _ = !0;
    }
}

impl Persona {
    /// What an exec that changes the effective ids clears (PER_CLEAR_ON_SETID): a set-id
    /// program must not inherit a layout its caller chose.
    pub const CLEAR_ON_SETID: Persona = Persona::READ_IMPLIES_EXEC
        .union(Persona::ADDR_NO_RANDOMIZE)
        .union(Persona::ADDR_COMPAT_LAYOUT)
        .union(Persona::MMAP_PAGE_ZERO);

    /// The persona after exec'ing a 64-bit ELF program (Linux's `SET_PERSONALITY` on x86-64
    /// clears READ_IMPLIES_EXEC), and, for a set-id exec, [`Persona::CLEAR_ON_SETID`].
    pub fn after_exec(self, setid: bool) -> Persona {
        let mut p = self.difference(Persona::READ_IMPLIES_EXEC);
        if setid {
            p.remove(Persona::CLEAR_ON_SETID);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_clears_what_linux_clears() {
        let p =
            Persona::from_bits_retain(8) | Persona::ADDR_NO_RANDOMIZE | Persona::READ_IMPLIES_EXEC | Persona::UNAME26;
        assert_eq!(p.after_exec(false), Persona::from_bits_retain(8) | Persona::ADDR_NO_RANDOMIZE | Persona::UNAME26);
        assert_eq!(p.after_exec(true), Persona::from_bits_retain(8) | Persona::UNAME26);
    }

    #[test]
    fn unknown_bits_are_kept() {
        assert_eq!(Persona::from_bits_retain(0x1234_5678).bits(), 0x1234_5678);
    }
}
