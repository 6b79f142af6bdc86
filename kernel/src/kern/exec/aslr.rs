//! Address-space layout randomisation, as Linux does it on x86-64 (arch/x86/mm/mmap.c,
//! fs/binfmt_elf.c, mm/util.c): each exec picks
//!
//! ```text
//!  stack top    STACK_TOP - random pages (22 bits: up to 16 GiB), and the first rsp a
//!               further random 0..8 KiB lower (arch_align_stack)
//!  mmap base    STACK_TOP - gap - random pages (28 bits: up to 1 TiB); the gap covers the
//!               stack's rlimit, its guard and its largest random offset (at least 128 MiB)
//!  PIE base     ELF_ET_DYN_BASE (2/3 of the address space, as Linux) + random pages
//!               (28 bits), for a position-independent program with an interpreter
//!  brk          the end of the program's data + up to 32 MiB (randomize_va_space 2 only)
//! ```
//!
//! The interpreter and a position-independent program run without one (a static PIE, or
//! `ld.so` run directly) go in the mmap area, top-down from the mmap base.
//!
//! `/proc/sys/kernel/randomize_va_space` (0: off, 1: all but brk, 2: all; from `-e vm.aslr=N`
//! at boot, 2 by default) and a persona with ADDR_NO_RANDOMIZE turn it off, so a ddb session
//! can be repeated address for address.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::abi::exec::Persona;
use crate::kern::errno::Errno;
use crate::vm::space::{MMAP_MIN, PAGE, STACK_TOP, page_down};

/// Linux's ELF_ET_DYN_BASE on x86-64: two thirds of the 47-bit address space.
pub const ELF_ET_DYN_BASE: u64 = (0x7fff_ffff_f000 / 3 * 2) & !(PAGE - 1);
/// Random bits of the stack top, in pages (STACK_RND_MASK).
const STACK_RND_BITS: u32 = 22;
/// Random bits of the mmap base and the PIE base, in pages (mmap_rnd_bits' default).
const MMAP_RND_BITS: u32 = 28;
/// Random bits of the brk start, in pages (arch_randomize_brk: within 32 MiB).
const BRK_RND_BITS: u32 = 13;
/// The first rsp moves down by up to this much within the top pages (arch_align_stack).
const SP_RND_BYTES: u64 = 8192;
/// The guard gap below the stack (stack_guard_gap: 256 pages).
const STACK_GUARD_GAP: u64 = 256 * PAGE;
/// The least gap between the stack top and the mmap base (MIN_GAP).
const MIN_GAP: u64 = 128 << 20;

/// randomize_va_space before boot set it.
const UNSET: u32 = u32::MAX;
static RANDOMIZE_VA_SPACE: AtomicU32 = AtomicU32::new(UNSET);

/// `/proc/sys/kernel/randomize_va_space`: 0, 1 or 2 (`-e vm.aslr=N` at boot, else 2).
pub fn randomize_va_space() -> u32 {
    let v = RANDOMIZE_VA_SPACE.load(Ordering::Relaxed);
    if v != UNSET {
        return v;
    }
    let boot = match crate::kern::kenv::get("vm.aslr").map(str::trim) {
        Some("0" | "off" | "no" | "false") => 0,
        Some("1") => 1,
        _ => 2,
    };
    match RANDOMIZE_VA_SPACE.compare_exchange(UNSET, boot, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => boot,
        Err(now) => now,
    }
}

/// A write to randomize_va_space: 0, 1 or 2 (EINVAL otherwise, as its proc_dointvec_minmax).
pub fn set_randomize_va_space(v: u32) -> Result<(), Errno> {
    if v > 2 {
        return Err(Errno::EINVAL);
    }
    RANDOMIZE_VA_SPACE.store(v, Ordering::Relaxed);
    Ok(())
}

/// Where one exec puts things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Randomise (Linux's PF_RANDOMIZE).
    pub randomize: bool,
    /// Randomise the break too (randomize_va_space 2).
    pub randomize_brk: bool,
    /// The top of the stack mapping (page aligned).
    pub stack_top: u64,
    /// Top-down mmap placement starts below this.
    pub mmap_base: u64,
    /// Where a position-independent program with an interpreter is loaded (before its
    /// alignment and first segment's address are applied).
    pub et_dyn_base: u64,
    /// How far the stack may reach below its top: RLIMIT_STACK at exec (page aligned).
    pub stack_size: u64,
}

/// The stack mapping for an RLIMIT_STACK of `rlimit` bytes: the limit page aligned, at least
/// 64 KiB (room for the arguments); an unlimited (or larger) one takes [`STACK_MAX`].
pub fn stack_size_for(rlimit: u64) -> u64 {
    (rlimit.clamp(STACK_MIN, STACK_MAX) + PAGE - 1) & !(PAGE - 1)
}

/// The most stack vk reserves at exec (an unlimited RLIMIT_STACK, which lets Linux's stack
/// grow until it meets another mapping).
pub const STACK_MAX: u64 = 1 << 30;
const STACK_MIN: u64 = 64 << 10;

/// `bits` random bits, as a count of pages in bytes.
fn random_pages(bits: u32) -> u64 {
    (random_u64() & ((1u64 << bits) - 1)) * PAGE
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    platform::io::random_bytes(&mut b);
    u64::from_le_bytes(b)
}

impl Layout {
    /// The layout for a program exec'd with persona `persona` and an RLIMIT_STACK of
    /// `stack_rlimit` bytes.
    pub fn choose(persona: Persona, stack_rlimit: u64) -> Layout {
        let level = randomize_va_space();
        let randomize = level != 0 && !persona.contains(Persona::ADDR_NO_RANDOMIZE);
        Layout::new(randomize, randomize && level > 1, stack_size_for(stack_rlimit))
    }

    /// A layout, randomised or not, with a stack of `stack_size` bytes (page aligned).
    pub fn new(randomize: bool, randomize_brk: bool, stack_size: u64) -> Layout {
        let stack_top = if randomize { STACK_TOP - random_pages(STACK_RND_BITS) } else { STACK_TOP };
        // mmap_base(): the gap below the top keeps room for the stack however far it moved.
        let stack_pad = if randomize { (1u64 << STACK_RND_BITS) * PAGE } else { 0 } + STACK_GUARD_GAP;
        let gap = (stack_size + stack_pad).max(MIN_GAP);
        let mmap_rnd = if randomize { random_pages(MMAP_RND_BITS) } else { 0 };
        let mmap_base = page_down(STACK_TOP - gap - mmap_rnd);
        let et_dyn_base = if randomize { ELF_ET_DYN_BASE + random_pages(MMAP_RND_BITS) } else { ELF_ET_DYN_BASE };
        Layout { randomize, randomize_brk, stack_top, mmap_base, et_dyn_base, stack_size }
    }

    /// The start of the break after a program whose data ends at `end` (page aligned):
    /// randomize_page(end, 32 MiB) when the break is randomised.
    pub fn brk_start(&self, end: u64) -> u64 {
        if self.randomize_brk { end + random_pages(BRK_RND_BITS) } else { end }
    }

    /// The first stack pointer below `sp` (arch_align_stack): a random 0..8 KiB lower when
    /// randomising, 16-byte aligned.
    pub fn align_sp(&self, sp: u64) -> u64 {
        let sp = if self.randomize { sp - (random_u64() % SP_RND_BYTES) } else { sp };
        sp & !15
    }

    /// The lowest address the stack mapping takes.
    pub fn stack_bottom(&self) -> u64 {
        self.stack_top - self.stack_size
    }
}

const _: () = assert!(
    ELF_ET_DYN_BASE + (1u64 << MMAP_RND_BITS) * PAGE < STACK_TOP - (1u64 << STACK_RND_BITS) * PAGE - STACK_MAX - MIN_GAP
);
const _: () = assert!(ELF_ET_DYN_BASE > MMAP_MIN);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::space::STACK_SIZE;

    #[test]
    fn stack_follows_rlimit_stack() {
        assert_eq!(stack_size_for(8 << 20), 8 << 20);
        assert_eq!(stack_size_for(1000), STACK_MIN);
        assert_eq!(stack_size_for(u64::MAX), STACK_MAX);
        assert_eq!(stack_size_for((1 << 20) + 1), (1 << 20) + PAGE);
        let l = Layout::new(false, false, stack_size_for(64 << 20));
        assert_eq!(l.stack_bottom(), STACK_TOP - (64 << 20));
        assert!(l.mmap_base <= l.stack_bottom() - STACK_GUARD_GAP);
    }

    #[test]
    fn fixed_layout_is_the_same_every_time() {
        let (a, b) = (Layout::new(false, false, STACK_SIZE), Layout::new(false, false, STACK_SIZE));
        assert_eq!(a, b);
        assert_eq!(a.stack_top, STACK_TOP);
        assert_eq!(a.et_dyn_base, ELF_ET_DYN_BASE);
        assert_eq!(a.brk_start(0x60_0000), 0x60_0000);
        assert_eq!(a.align_sp(0x7000_0008), 0x7000_0000);
        assert!(a.mmap_base <= a.stack_bottom() - MIN_GAP + STACK_SIZE);
    }

    #[test]
    fn random_layouts_stay_in_their_ranges() {
        for _ in 0..64 {
            let l = Layout::new(true, true, STACK_SIZE);
            assert!(l.stack_top <= STACK_TOP && l.stack_top > STACK_TOP - (1 << 34) - PAGE);
            assert!(l.stack_top.is_multiple_of(PAGE) && l.mmap_base.is_multiple_of(PAGE));
            // The mmap area lies below the lowest stack the randomisation could pick.
            assert!(l.mmap_base < STACK_TOP - (1u64 << STACK_RND_BITS) * PAGE - STACK_SIZE);
            assert!(l.mmap_base > STACK_TOP - (1u64 << 40) - (1 << 35));
            assert!(l.et_dyn_base >= ELF_ET_DYN_BASE && l.et_dyn_base < ELF_ET_DYN_BASE + (1 << 40));
            let brk = l.brk_start(0x60_0000);
            assert!((0x60_0000..0x60_0000 + (32 << 20)).contains(&brk) && brk.is_multiple_of(PAGE));
            let sp = l.align_sp(l.stack_top - 64);
            assert!(sp.is_multiple_of(16) && sp <= l.stack_top - 64 && sp > l.stack_top - 64 - SP_RND_BYTES - 16);
        }
    }

    #[test]
    fn randomize_va_space_takes_0_to_2() {
        let before = randomize_va_space();
        assert_eq!(set_randomize_va_space(3), Err(Errno::EINVAL));
        assert_eq!(randomize_va_space(), before);
        set_randomize_va_space(1).unwrap();
        assert_eq!(randomize_va_space(), 1);
        set_randomize_va_space(before).unwrap();
    }

    #[test]
    fn random_layouts_differ() {
        // 22 and 28 random bits: 8 draws that all agree mean no randomness at all.
        let ls: Vec<Layout> = (0..8).map(|_| Layout::new(true, true, STACK_SIZE)).collect();
        assert!(ls.iter().any(|l| l.stack_top != ls[0].stack_top));
        assert!(ls.iter().any(|l| l.mmap_base != ls[0].mmap_base));
        assert!(ls.iter().any(|l| l.et_dyn_base != ls[0].et_dyn_base));
    }
}
