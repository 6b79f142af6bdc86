//! The host's vDSO in every stub, at one fixed address ([`HOST_VDSO`]).
//!
//! Guest clocks are the host's (CLOCK_REALTIME is the host's, CLOCK_MONOTONIC and its kin the
//! host's CLOCK_MONOTONIC), so the fastest honest way for a guest to read them is the host's
//! own vDSO code, which reads the host kernel's time data pages (`[vvar]`, `[vvar_vclock]`)
//! without a system call. The host maps its vDSO and those pages at a random place in every
//! new process; the stub moves them (mremap, as CRIU does), keeping their relative layout —
//! the vDSO's code finds its data pages at fixed offsets from itself — to the same address in
//! every stub, so that a guest's pointers into it stay good across fork and exec whichever
//! stub the guest lands in. vk's own vDSO (mapped in the guest's address space by the kernel)
//! calls it there.
//!
//! ```text
//!  STUB_BASE + 8 MiB  ┌ (free)
//!                     │ [vvar] [vvar_vclock]    the host's data pages, as far below the vDSO
//!  HOST_VDSO ────────►├ [vdso]                  as the host put them
//!  SLOTS_BASE         └
//! ```
//!
//! The moves are found once, from the kernel process's own mappings (every process of one
//! host kernel has the same layout, only its place differs), and written into the stub image
//! ([`MOVES_OFF`]); the stub's first instructions carry them out, before it maps anything,
//! so nothing of its own can be where the host put them. With no vDSO on the host, or a
//! layout this does not understand, the table is empty: the stub unmaps them as everything
//! else the host gave it, and vk's vDSO answers with system calls.
//!
//! Trust: the host's vDSO lies above `USER_END`, where the guest cannot map or unmap (the
//! filter refuses the stub's mapping calls there, and the kernel never asks for them). A guest
//! can read it and run it, as it can the stub's code: its `syscall` instructions are not the
//! stub's (the filter's range is the stub code only), so any system call it makes traps as the
//! guest's own.

use std::sync::OnceLock;

use super::layout::{SLOTS_BASE, STUB_BASE};
use crate::PAGE_SIZE;

/// Where the host's vDSO (its ELF header) sits in every stub.
pub const HOST_VDSO: u64 = STUB_BASE + 0x00c0_0000;
/// The host's data pages and vDSO must lie within this many bytes of [`HOST_VDSO`], either
/// side (between the stub's code and its slots).
const REACH: u64 = 0x0040_0000;
/// Offset in the stub image (from `STUB_BASE`) of the table of moves: [`MAX_MOVES`] words, each
/// the offset from the vDSO in pages (low 32 bits, signed) and the length in pages (high 32
/// bits); a zero length ends it.
pub const MOVES_OFF: u64 = super::layout::FILTER_OFF - 0x40;
/// Mappings the table can move (the vDSO and its data pages; Linux 6.x has three).
pub const MAX_MOVES: usize = 8;

/// One host mapping to move: its place relative to the vDSO's ELF header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub off_pages: i32,
    pub len_pages: u32,
}

impl Move {
    /// The table word the stub reads.
    pub fn word(&self) -> u64 {
        u64::from(self.off_pages as u32) | u64::from(self.len_pages) << 32
    }
}

/// The host's vDSO as this process has it.
#[derive(Debug)]
pub struct HostVdso {
    /// Its bytes (the `[vdso]` mapping of this process), to look its symbols up in.
    pub image: &'static [u8],
    /// What the stub moves to put it at [`HOST_VDSO`].
    pub moves: Vec<Move>,
}

static HOST: OnceLock<Option<HostVdso>> = OnceLock::new();

/// The host's vDSO, found on first use; None when the host has none or its layout is not
/// one the stub can move.
pub fn host() -> Option<&'static HostVdso> {
    HOST.get_or_init(find).as_ref()
}

/// The moves the stub image carries (none without a usable host vDSO).
pub fn moves() -> &'static [Move] {
    host().map_or(&[], |h| h.moves.as_slice())
}

fn find() -> Option<HostVdso> {
    // SAFETY: getauxval only reads this process's auxiliary vector.
    let ehdr = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    if ehdr == 0 {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let (moves, vdso_len) = plan(&maps, ehdr)?;
    // SAFETY: the host kernel maps the vDSO readable at `ehdr` for `vdso_len` bytes
    // (/proc/self/maps says so) for the life of the process, and nothing in vk moves or
    // unmaps this process's vDSO; the bytes never change.
    let image = unsafe { std::slice::from_raw_parts(ehdr as *const u8, vdso_len as usize) };
    if !image.starts_with(b"\x7fELF") {
        return None;
    }
    Some(HostVdso { image, moves })
}

/// From a /proc/PID/maps text and the vDSO's address: the moves (the run of `[vvar…]` and
/// `[vdso]` mappings that touch one another around the vDSO) and the vDSO's length.
fn plan(maps: &str, ehdr: u64) -> Option<(Vec<Move>, u64)> {
    let special: Vec<(u64, u64, bool)> = maps
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next()?.split_once('-')?;
            let name = f.nth(4)?;
            let is_vdso = name == "[vdso]";
            (is_vdso || name.starts_with("[vvar")).then_some(())?;
            Some((u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(e, 16).ok()?, is_vdso))
        })
        .collect();
    let at = special.iter().position(|&(s, _, v)| v && s == ehdr)?;
    let vdso_len = special[at].1 - ehdr;
    // Widen to the neighbours that touch.
    let (mut lo, mut hi) = (at, at);
    while lo > 0 && special[lo - 1].1 == special[lo].0 {
        lo -= 1;
    }
    while hi + 1 < special.len() && special[hi + 1].0 == special[hi].1 {
        hi += 1;
    }
    let run = &special[lo..=hi];
    if run.len() > MAX_MOVES || ehdr - run[0].0 > REACH || run[run.len() - 1].1 - ehdr > REACH {
        return None;
    }
    let page = PAGE_SIZE as u64;
    let moves = run
        .iter()
        .map(|&(s, e, _)| {
            let off = (s.wrapping_sub(ehdr) as i64) / page as i64;
            Some(Move { off_pages: i32::try_from(off).ok()?, len_pages: u32::try_from((e - s) / page).ok()? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((moves, vdso_len))
}

const _: () = {
    assert!(HOST_VDSO - REACH >= STUB_BASE + 0x0080_0000);
    assert!(HOST_VDSO + REACH <= SLOTS_BASE);
    assert!(MOVES_OFF + (MAX_MOVES as u64) * 8 <= super::layout::FILTER_OFF);
};

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
7f2c7d3b0000-7f2c7d3b9000 rw-p 00000000 00:00 0
7f2c7d3b9000-7f2c7d3bd000 r--p 00000000 00:00 0                          [vvar]
7f2c7d3bd000-7f2c7d3bf000 r--p 00000000 00:00 0                          [vvar_vclock]
7f2c7d3bf000-7f2c7d3c1000 r-xp 00000000 00:00 0                          [vdso]
7f2c7d3c1000-7f2c7d3c3000 r--p 00000000 08:01 123                        /usr/lib/ld.so
";

    #[test]
    fn the_vdso_and_the_data_pages_that_touch_it_move_together() {
        let (moves, len) = plan(MAPS, 0x7f2c_7d3b_f000).unwrap();
        assert_eq!(len, 0x2000);
        assert_eq!(
            moves,
            [
                Move { off_pages: -6, len_pages: 4 },
                Move { off_pages: -2, len_pages: 2 },
                Move { off_pages: 0, len_pages: 2 }
            ]
        );
        assert_eq!(moves[0].word(), 0x4_ffff_fffa);
    }

    #[test]
    fn no_vdso_at_the_address_means_no_plan() {
        assert!(plan(MAPS, 0x7f2c_7d3b_9000).is_none());
        assert!(plan("", 0x1000).is_none());
    }

    #[test]
    fn this_host_has_a_vdso_the_stub_can_move() {
        // Every Linux x86-64 host vk supports has one (without it vk still works, slower).
        let Some(h) = host() else { return };
        assert!(h.moves.iter().any(|m| m.off_pages == 0));
        assert!(h.image.starts_with(b"\x7fELF"));
    }
}
