//! System call site patching: the fast path into the kernel that takes no host signal.
//!
//! A guest system call normally traps through seccomp: the host delivers SIGSYS to the stub
//! thread, whose handler hands the frame to the kernel, and `rt_sigreturn` goes back — a
//! signal delivery, ~2 µs of the host's time on every call. Once a process has made enough
//! calls, the kernel rewrites a site it trapped from, `mov $nr, %eax; syscall` (7 bytes), into
//! `jmp *ENTRY` (`ff 24 25` and a 32-bit absolute address: 7 bytes), where ENTRY is one of
//! the process's entries in its table, a mapping of its own at [`TABLE_BASE`] (below 2 GiB,
//! as the absolute address must be). An entry holds, for its one site:
//!
//! ```text
//!   +0   the address of +8 (what `jmp *ENTRY` jumps to)
//!   +8   mov $nr, %eax                      the call's number, as the site had it
//!   +13  movabs $site+7, %rcx                where the call returns to (as `syscall` sets rcx)
//!   +23  jmp *TABLE_BASE(%rip)              the stub's fast path (`asm`, `vk_stub_fast`),
//!                                           whose address is the table's first word
//! ```
//!
//! The fast path writes the registers and the xsave image into the frame the kernel reads
//! (the same ucontext layout as a host signal frame, at `FAST_UC_OFF` in the slot, found
//! through the gs base, which is the slot), reports the trap as a SIGSYS would, and goes back
//! by loading the flags and registers from the frame itself and jumping — the FPU state too
//! (`xrstor`) when the kernel wrote it (`msg::FAST_FP_DIRTY`), else the registers are still
//! the guest's; `rt_sigreturn` on the frame only with the trap flag set.
//!
//! The table's addresses all lie in 0x6xxxx, so the patched site's byte 5 — where `syscall`
//! began — is 0x06, an invalid instruction: a thread that had run the old `mov` when the
//! site was rewritten, and a call the kernel restarts (rip moved back two bytes, as Linux
//! does) trap there with SIGILL, which the kernel recognises ([`patched_site`]) as the call.
//! The site is written in three steps (byte 5 first, then bytes 1–6, then byte 0), so that
//! at every moment another thread reads either the old instructions or faults on 0x06.
//!
//! A `syscall` whose number the code before it put in rax (musl's wrappers, glibc's `read`,
//! whose `xor %eax, %eax` is 2 bytes) has no 7 bytes to rewrite; it *hops* instead: its two
//! bytes become `jmp rel8` (`eb`, [`hop`]) to the alignment padding after a nearby
//! unconditional jump or return (never executed: the kernel's `kern::hop` finds it), where a
//! jump to the entry is written ([`hop_jump`]: `jmp rel32` to +8, or `jmp *ENTRY` when the
//! table is out of a rel32's reach). The entry is as above but with a 5-byte `nop` for the
//! `mov` (rax is the call's already) and the `syscall`'s end as where the call returns. No
//! old instruction boundary lies inside two bytes: a restart (rip moved back two bytes)
//! takes the hop again. The two bytes are written as 0x06 at the first, then the
//! displacement, then `eb`, so that a thread at the site meanwhile faults on 0x06 (the call
//! in rax) or runs the old `syscall`.

use super::layout::STUB_BASE;

/// Where a process's table of entries is (the first entry is the header).
pub const TABLE_BASE: u64 = 0x6_0000;
/// Its end.
pub const TABLE_END: u64 = 0x7_0000;
/// Bytes of an entry.
pub const ENTRY_SIZE: u64 = 32;
/// The same, as a length.
pub const ENTRY_LEN: usize = ENTRY_SIZE as usize;
/// Entries in a table, the header included.
pub const ENTRIES: u32 = ((TABLE_END - TABLE_BASE) / ENTRY_SIZE) as u32;
/// Bytes of a site: `mov $nr, %eax` (5) and `syscall` (2).
pub const SITE_LEN: usize = 7;

const JMP_ABS: [u8; 3] = [0xff, 0x24, 0x25];
const MOV_EAX: u8 = 0xb8;
const MOVABS_RCX: [u8; 2] = [0x48, 0xb9];
const JMP_RIP: [u8; 2] = [0xff, 0x25];
/// The `syscall` instruction.
pub const SYSCALL: [u8; 2] = [0x0f, 0x05];
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const JMP_REL8: u8 = 0xeb;
const JMP_REL32: u8 = 0xe9;

/// Whether `code` is `mov $nr, %eax; syscall`.
pub fn is_site(code: &[u8; SITE_LEN], nr: u32) -> bool {
    code[0] == MOV_EAX && code[1..5] == nr.to_le_bytes() && code[5..] == SYSCALL
}

/// The address of entry `k` (1 ..), if the table has it.
pub fn entry_addr(k: u32) -> Option<u64> {
    (1..ENTRIES).contains(&k).then(|| TABLE_BASE + u64::from(k) * ENTRY_SIZE)
}

/// The table's header: the address of the stub's fast path, then the next free entry.
pub fn header(next: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&(STUB_BASE + super::asm::fast_offset()).to_le_bytes());
    h[8..12].copy_from_slice(&next.to_le_bytes());
    h
}

/// The next free entry a header records (0: not a header of ours).
pub fn header_next(h: &[u8; 16]) -> u32 {
    if h[..8] != (STUB_BASE + super::asm::fast_offset()).to_le_bytes() {
        return 0;
    }
    u32::from_le_bytes([h[8], h[9], h[10], h[11]])
}

/// Entry `at`'s bytes for a call that returns to `ret`: with `mov $nr, %eax` first for a
/// `mov` site (`Some(nr)`), a 5-byte `nop` there for a hop (rax holds the number).
pub fn entry(at: u64, nr: Option<u32>, ret: u64) -> [u8; ENTRY_LEN] {
    let mut e = [0xccu8; ENTRY_LEN];
    e[..8].copy_from_slice(&(at + 8).to_le_bytes());
    match nr {
        Some(nr) => {
            e[8] = MOV_EAX;
            e[9..13].copy_from_slice(&nr.to_le_bytes());
        }
        None => e[8..13].copy_from_slice(&NOP5),
    }
    e[13..15].copy_from_slice(&MOVABS_RCX);
    e[15..23].copy_from_slice(&ret.to_le_bytes());
    e[23..25].copy_from_slice(&JMP_RIP);
    let disp = TABLE_BASE as i64 - (at as i64 + 29);
    e[25..29].copy_from_slice(&(disp as i32).to_le_bytes());
    e
}

/// What entry `at`'s bytes say: its call's number (None: a hop's, from rax) and where the
/// call returns to — None unless they are an entry of ours exactly (the guest can write its
/// table, in principle: nothing is trusted).
pub fn decode_entry(at: u64, e: &[u8; ENTRY_LEN]) -> Option<(Option<u32>, u64)> {
    let nr = (e[8] == MOV_EAX).then(|| u32::from_le_bytes([e[9], e[10], e[11], e[12]]));
    let ret = u64::from_le_bytes(e[15..23].try_into().ok()?);
    (entry_addr(((at - TABLE_BASE) / ENTRY_SIZE) as u32) == Some(at) && *e == entry(at, nr, ret)).then_some((nr, ret))
}

/// A patched site as the kernel records it (`AddressSpace::callsites`, by the address of its
/// first byte): its entry and what was rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// The entry in the table.
    pub entry: u64,
    /// What kind of site.
    pub kind: Kind,
}

/// The two kinds of patched site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `mov $nr, %eax; syscall`, now `jmp *ENTRY`.
    Mov { nr: u32 },
    /// A `syscall` (the number in rax), now `jmp rel8` to `pad`, whose `len` bytes of padding
    /// (`orig` as they were) now jump to the entry.
    Hop { pad: u64, len: u8, orig: [u8; HOP_MAX] },
}

impl Site {
    /// The ranges of the program's text the patch at `site` rewrote, as (start, length): the
    /// site itself (a `mov` site's 7 bytes, a hop's `syscall`), then a hop's padding (length
    /// 0 for a `mov` site).
    pub fn spans(&self, site: u64) -> [(u64, u64); 2] {
        match self.kind {
            Kind::Mov { .. } => [(site, SITE_LEN as u64), (site, 0)],
            Kind::Hop { pad, len, .. } => [(site, 2), (pad, u64::from(len))],
        }
    }

    /// The bytes of the program's own the patch changed at `site`, as runs of (address, the
    /// original bytes, the patched ones, length; a length of 0 is no run): what a debugger
    /// reading the text is shown, and what putting the site back writes.
    pub fn runs(&self, site: u64) -> [(u64, [u8; HOP_MAX], [u8; HOP_MAX], usize); 2] {
        let mut a = [0u8; HOP_MAX];
        let mut b = [0u8; HOP_MAX];
        match self.kind {
            Kind::Mov { nr } => {
                a[0] = MOV_EAX;
                a[1..5].copy_from_slice(&nr.to_le_bytes());
                a[5..7].copy_from_slice(&SYSCALL);
                b[..SITE_LEN].copy_from_slice(&patch(self.entry));
                [(site, a, b, SITE_LEN), (site, a, b, 0)]
            }
            Kind::Hop { pad, len, orig } => {
                a[..2].copy_from_slice(&SYSCALL);
                b[..2].copy_from_slice(&hop(site, pad).unwrap_or([0; 2]));
                let (j, n) = hop_jump(pad, self.entry, usize::from(len)).unwrap_or(([0; HOP_MAX], 0));
                [(site, a, b, 2), (pad, orig, j, n)]
            }
        }
    }
}

/// The most bytes of padding a hop rewrites (`jmp *ENTRY`).
pub const HOP_MAX: usize = 7;
/// How far forward a hop reaches: from the end of the `syscall`, rel8's largest.
pub const HOP_REACH: u64 = 127;

/// The hop at `site` (`jmp rel8` from the `syscall` there to `pad`), if `pad` is in reach.
pub fn hop(site: u64, pad: u64) -> Option<[u8; 2]> {
    let d = pad.checked_sub(site + 2)?;
    (d <= HOP_REACH).then_some([JMP_REL8, d as u8])
}

/// Whether `code` is a hop to some padding: that padding.
pub fn hop_target(site: u64, code: [u8; 2]) -> Option<u64> {
    (code[0] == JMP_REL8 && code[1] < 0x80).then(|| site + 2 + u64::from(code[1]))
}

/// The jump written at `pad` (`room` bytes of padding there) to `entry`: `jmp rel32` to the
/// entry's code when it reaches and fits, else `jmp *ENTRY` (7 bytes); its bytes and length.
pub fn hop_jump(pad: u64, entry: u64, room: usize) -> Option<([u8; HOP_MAX], usize)> {
    let mut j = [0u8; HOP_MAX];
    let disp = (entry + 8) as i64 - (pad as i64).wrapping_add(5);
    if room >= 5 && i32::try_from(disp).is_ok() {
        j[0] = JMP_REL32;
        j[1..5].copy_from_slice(&(disp as i32).to_le_bytes());
        return Some((j, 5));
    }
    (room >= HOP_MAX).then(|| {
        j.copy_from_slice(&patch(entry));
        (j, HOP_MAX)
    })
}

/// Whether padding of `room` bytes at `pad` can hold a jump to the table.
pub fn hop_fits(pad: u64, room: usize) -> bool {
    hop_jump(pad, TABLE_END - ENTRY_SIZE, room).is_some() && hop_jump(pad, TABLE_BASE + ENTRY_SIZE, room).is_some()
}

/// The patched site: `jmp *at`.
pub fn patch(at: u64) -> [u8; SITE_LEN] {
    let mut p = [0u8; SITE_LEN];
    p[..3].copy_from_slice(&JMP_ABS);
    p[3..].copy_from_slice(&(at as u32).to_le_bytes());
    p
}

/// The entry a patched site jumps to, if `code` is one.
pub fn patched_site(code: &[u8; SITE_LEN]) -> Option<u64> {
    if code[..3] != JMP_ABS {
        return None;
    }
    let at = u64::from(u32::from_le_bytes([code[3], code[4], code[5], code[6]]));
    ((TABLE_BASE..TABLE_END).contains(&at) && (at - TABLE_BASE).is_multiple_of(ENTRY_SIZE) && at > TABLE_BASE).then_some(at)
}

/// The call a thread makes that faulted on byte 5 of the site `nr` was recorded for, whose
/// bytes are `code` now and whose rax is `rax`. Patched (the jump's first byte in place), it
/// is rax, however the thread came: past the old `mov` (rax = `nr`), a restart (the kernel
/// set rax), or a jump of the program's own to where `syscall` was, with the number its
/// path set — unless rax is what a `mov` read while bytes 1–4 were being rewritten gives
/// (each byte the old or the new one), which is `nr`. Being put back, the thread may have
/// run a `mov` made of the jump's bytes: `nr` too.
pub fn call_at_fault(code: &[u8; SITE_LEN], rax: u64, nr: u32) -> u64 {
    if code[0] != JMP_ABS[0] {
        return u64::from(nr);
    }
    let old = nr.to_le_bytes();
    let torn = rax >> 32 == 0
        && (rax as u32).to_le_bytes().iter().enumerate().all(|(i, &b)| b == old[i] || b == code[1 + i]);
    if torn { u64::from(nr) } else { rax }
}

/// The entry whose code `rip` is in, if it is in the table past the header.
pub fn entry_of(rip: u64) -> Option<u64> {
    if !(TABLE_BASE + ENTRY_SIZE..TABLE_END).contains(&rip) {
        return None;
    }
    Some(rip - (rip - TABLE_BASE) % ENTRY_SIZE)
}

/// The si_code the fast path reports its SIGSYS with (the host's is SYS_SECCOMP, 1): the
/// kernel counts these calls.
pub const SI_CODE: i32 = 0x7f5c;

/// Byte 5 of every patched site (the high half of the entry's address), an invalid
/// instruction in 64-bit mode: written first, so that a thread past the old `mov` faults.
pub const FAULT_BYTE: u8 = ((TABLE_BASE >> 16) & 0xff) as u8;

const _: () = {
    // Bytes 5 and 6 of every entry address: 0x06 (push %es: invalid in 64-bit mode), 0x00.
    assert!(TABLE_BASE >> 16 == 6 && (TABLE_END - 1) >> 16 == 6);
    assert!(FAULT_BYTE == 0x06);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_is_recognised_only_with_its_own_number() {
        let code = [0xb8, 39, 0, 0, 0, 0x0f, 0x05];
        assert!(is_site(&code, 39));
        assert!(!is_site(&code, 40));
        assert!(!is_site(&[0xb8, 39, 0, 0, 0, 0x0f, 0x0b], 39));
    }

    #[test]
    fn entries_round_trip_and_reject_anything_else() {
        let at = entry_addr(3).unwrap();
        assert_eq!(at, TABLE_BASE + 96);
        let e = entry(at, Some(1), 0x40_1234 + 7);
        assert_eq!(decode_entry(at, &e), Some((Some(1), 0x40_1234 + 7)));
        let h = entry(at, None, 0x40_1236);
        assert_eq!(decode_entry(at, &h), Some((None, 0x40_1236)));
        assert_eq!(h[8..13], NOP5);
        let mut bad = e;
        bad[30] = 0x90;
        assert_eq!(decode_entry(at, &bad), None);
        assert_eq!(decode_entry(at + 32, &e), None, "an entry's bytes at another entry");
        assert_eq!(entry_addr(0), None);
        assert_eq!(entry_addr(ENTRIES), None);
        // The entry's jump reads the table's first word.
        let disp = i32::from_le_bytes(e[25..29].try_into().unwrap());
        assert_eq!((at as i64 + 29 + i64::from(disp)) as u64, TABLE_BASE);
    }

    #[test]
    fn a_patched_site_faults_where_syscall_was_and_names_its_entry() {
        let at = entry_addr(7).unwrap();
        let p = patch(at);
        assert_eq!(p[5], FAULT_BYTE);
        assert_eq!(patched_site(&p), Some(at));
        assert_eq!(patched_site(&patch(TABLE_BASE)), None, "the header is no entry");
        assert_eq!(patched_site(&patch(at + 1)), None);
        assert_eq!(patched_site(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05]), None);
        assert_eq!(entry_of(at + 13), Some(at));
        assert_eq!(entry_of(TABLE_BASE + 4), None);
        assert_eq!(entry_of(TABLE_END), None);
    }

    #[test]
    fn a_fault_on_byte_5_makes_the_call_in_rax_unless_a_torn_mov_set_it() {
        let at = entry_addr(4).unwrap();
        let p = patch(at);
        assert_eq!(call_at_fault(&p, 82, 82), 82, "past the old mov, or a restart");
        assert_eq!(call_at_fault(&p, 39, 82), 39, "a jump of the program's own with its number");
        // A mov read while bytes 1-4 changed: any mix of old and new bytes is the site's call.
        assert_eq!(call_at_fault(&p, u64::from(u32::from_le_bytes([p[1], 0, p[3], 0])), 82), 82);
        assert_eq!(call_at_fault(&p, u64::from(u32::from_le_bytes([p[1], p[2], p[3], p[4]])), 82), 82);
        assert_eq!(call_at_fault(&p, u64::from(u32::from_le_bytes([82, p[2], 0, 0])), 82), 82);
        // Being put back: the recorded call whatever rax is.
        let mut back = p;
        back[0] = 0xb8;
        assert_eq!(call_at_fault(&back, 0x2524, 82), 82);
    }

    #[test]
    fn the_header_names_the_fast_path() {
        let h = header(5);
        assert_eq!(header_next(&h), 5);
        assert_eq!(header_next(&[0; 16]), 0);
    }
    #[test]
    fn a_hop_jumps_forward_within_reach_to_a_jump_to_its_entry() {
        let site = 0x40_6f87;
        assert_eq!(hop(site, site + 3), Some([0xeb, 1]));
        assert_eq!(hop(site, site + 2 + 127), Some([0xeb, 127]));
        assert_eq!(hop(site, site + 2 + 128), None, "out of rel8's reach");
        assert_eq!(hop(site, site + 1), None, "backwards");
        assert_eq!(hop_target(site, [0xeb, 1]), Some(site + 3));
        assert_eq!(hop_target(site, [0x0f, 0x05]), None);
        assert_eq!(hop_target(site, [0xeb, 0xfe]), None, "a backward jump is none of ours");
        let at = entry_addr(9).unwrap();
        // A static program's padding reaches the table with rel32: 5 bytes.
        let (j, n) = hop_jump(0x40_6f8a, at, 6).unwrap();
        assert_eq!(n, 5);
        assert_eq!(j[0], 0xe9);
        let disp = i32::from_le_bytes(j[1..5].try_into().unwrap());
        assert_eq!((0x40_6f8a + 5 + i64::from(disp)) as u64, at + 8, "to the entry's code");
        // A library high up does not: `jmp *ENTRY`, which needs 7.
        let lib = 0x7f00_1234_5678;
        assert_eq!(hop_jump(lib, at, 6), None);
        let (j, n) = hop_jump(lib, at, 7).unwrap();
        assert_eq!((n, j), (7, patch(at)));
        assert!(hop_fits(0x40_6f8a, 5) && !hop_fits(lib, 6) && hop_fits(lib, 8) && !hop_fits(0x40_6f8a, 4));
    }

    #[test]
    fn a_sites_runs_say_what_was_there_and_what_is() {
        let at = entry_addr(2).unwrap();
        let m = Site { entry: at, kind: Kind::Mov { nr: 39 } };
        let [(a, o, p, n), (_, _, _, 0)] = m.runs(0x1000) else { panic!("one run") };
        assert_eq!((a, n, &o[..7], &p[..7]), (0x1000, 7, &[0xb8, 39, 0, 0, 0, 0x0f, 0x05][..], &patch(at)[..]));
        let h = Site { entry: at, kind: Kind::Hop { pad: 0x1010, len: 5, orig: [0x66, 0x0f, 0x1f, 0x44, 0, 0, 0] } };
        let [(a, o, p, n), (b, q, r, k)] = h.runs(0x1000);
        assert_eq!((a, n, &o[..2], &p[..2]), (0x1000, 2, &SYSCALL[..], &[0xeb, 0x0e][..]));
        assert_eq!((b, k, &q[..5]), (0x1010, 5, &[0x66, 0x0f, 0x1f, 0x44, 0][..]));
        assert_eq!(r[0], 0xe9);
        assert_eq!(m.spans(0x1000), [(0x1000, 7), (0x1000, 0)]);
        assert_eq!(h.spans(0x1000), [(0x1000, 2), (0x1010, 5)]);
    }
}
