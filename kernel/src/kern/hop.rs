//! Where a `syscall` whose number comes from a register can hop to the fast path
//! (`platform::stub::fast` describes hops): the alignment padding after an unconditional
//! jump or return a little way after it.
//!
//! The instructions after a `syscall` are found by decoding forward from its end, a real
//! instruction boundary (the call returns there), so every boundary found is one the
//! program has. Padding is the no-operation instructions (or `int3`s) from the end of a
//! `ret` or `jmp` exactly to the next 16- or 8-byte boundary: what an assembler puts before
//! an aligned function or loop head. Nothing falls into it (the instruction before does not
//! fall through) and nothing jumps into it (a label is where the alignment ends), so the
//! kernel may write a jump there. Padding after a `call` is not taken (a call that returns
//! runs on into it, as into a loop aligned after it), nor a run of no-ops that starts on an
//! alignment boundary (that is code: a function's patchable entry).

use iced_x86::{Decoder, DecoderOptions, FlowControl, Mnemonic};
use platform::stub::fast::{HOP_REACH, hop_fits};

/// Bytes to read after a `syscall` to find its padding: its reach and the longest padding.
pub const LOOK: usize = 127 + 16;
const _: () = assert!(LOOK as u64 == HOP_REACH + 16);

/// The padding a `syscall` ending at `at` can hop to, given the bytes from `at` on
/// (`code`, at most [`LOOK`] of them used): its address and length, where a jump to the
/// table fits.
pub fn find_pad(code: &[u8], at: u64) -> Option<(u64, usize)> {
    let code = &code[..code.len().min(LOOK)];
    let mut d = Decoder::with_ip(64, code, at, DecoderOptions::NONE);
    while d.can_decode() {
        let i = d.decode();
        if i.is_invalid() || i.ip() > at + HOP_REACH {
            return None;
        }
        if !matches!(
            i.flow_control(),
            FlowControl::Return | FlowControl::UnconditionalBranch | FlowControl::IndirectBranch
        ) {
            continue;
        }
        let end = i.next_ip();
        if end > at + HOP_REACH {
            return None;
        }
        let rest = &code[usize::try_from(end - at).ok()?..];
        for align in [16u64, 8] {
            let to = end.next_multiple_of(align);
            let len = usize::try_from(to - end).ok()?;
            if len > 0 && nops_fill(rest, end, len) && hop_fits(end, len) {
                return Some((end, len));
            }
        }
    }
    None
}

/// Whether the `len` bytes from `at` (the start of `code`) are whole no-op instructions or
/// `int3`s, ending exactly there.
fn nops_fill(code: &[u8], at: u64, len: usize) -> bool {
    if code.len() < len {
        return false;
    }
    let mut d = Decoder::with_ip(64, &code[..len], at, DecoderOptions::NONE);
    while d.can_decode() {
        let i = d.decode();
        if i.is_invalid() || !matches!(i.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
            return false;
        }
    }
    // The decoder stops at the end of the bytes given: a no-op cut there decodes invalid.
    d.position() == len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// musl's `__syscall_cp_c` from the `syscall` on: `ret`, a 6-byte `nopw`, the next
    /// function.
    const MUSL_CP: [u8; 14] = [0xc3, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x89, 0xf8, 0x4d, 0x89, 0xc2, 0xc3];

    #[test]
    fn musls_cancellable_call_hops_to_the_padding_after_its_ret() {
        assert_eq!(find_pad(&MUSL_CP, 0x40_6f89), Some((0x40_6f8a, 6)));
    }

    #[test]
    fn glibc_style_read_hops_past_its_error_check() {
        // cmp $-4096, %rax; ja +1; ret; nopl 0(%rax) (4) ... ending on 16.
        let at = 0x1_0004;
        let code =
            [0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff, 0x77, 0x01, 0xc3, 0x0f, 0x1f, 0x40, 0x00, 0x90, 0x90, 0x90, 0x31];
        // ret ends at 0x1_000d: 3 bytes to 0x1_0010 — too few; to 8 no (already past).
        assert_eq!(find_pad(&code, at), None, "3 bytes of padding hold no jump");
        // Now ret ends at 0x1_0009: 7 bytes of no-ops to 0x1_0010.
        let at = 0x1_0000;
        assert_eq!(find_pad(&code[..16], at), Some((0x1_0009, 7)));
    }

    #[test]
    fn no_hop_into_what_a_call_or_a_fall_through_reaches() {
        // call rel32; then padding: a call returns into it.
        let code = [0xe8, 0, 0, 0, 0, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90];
        assert_eq!(find_pad(&code, 0x2000), None);
        // No-ops with nothing before that ends the flow: a loop's alignment, run into.
        let code = [0x48, 0x89, 0xc7, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x90, 0x90, 0x90];
        assert_eq!(find_pad(&code, 0x2000), None);
        // A ret that ends on the boundary: what follows is a function, even if a no-op.
        let code = [0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x00];
        assert_eq!(find_pad(&code, 0x200f), None);
    }

    #[test]
    fn padding_after_a_jump_counts_and_int3_fills_too() {
        // jmp rel8; int3 to the boundary at 0x3010.
        let mut code = vec![0xeb, 0x10];
        code.extend([0xcc; 14]);
        assert_eq!(find_pad(&code, 0x3000), Some((0x3002, 14)));
        // Cut short: the 8-byte boundary then.
        assert_eq!(find_pad(&code[..12], 0x3000), Some((0x3002, 6)));
        // Out of a hop's reach: none, however good.
        let mut far = vec![0x90u8; 128];
        far.extend_from_slice(&[0xc3, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]);
        assert_eq!(find_pad(&far, 0x4000), None);
    }

    #[test]
    fn a_high_library_needs_room_for_the_absolute_jump() {
        let lib = 0x7f12_3456_7000u64;
        assert_eq!(find_pad(&MUSL_CP, lib + 9), None, "6 bytes: no rel32 reach, no room for 7");
        let code = [0xc3, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(find_pad(&code, lib + 8), Some((lib + 9, 7)));
    }
}
