//! The stack walker behind `trace`: DWARF CFI from `.eh_frame`, frame pointers when there is none.
//!
//! For each frame the walker finds the canonical frame address (CFA, the caller's `rsp` after
//! the call returns), the return address (by x86-64 convention at `CFA - 8`) and the caller's
//! `rbp`:
//!
//! - **CFI**: the FDE covering the pc is found through `.eh_frame_hdr`'s binary search table
//!   (else a linear scan of `.eh_frame`); its row gives the CFA as `rsp`/`rbp` + offset and the
//!   rules for the return address (register 16) and `rbp` (register 6). A return address is the
//!   instruction *after* a call, which may already belong to the next function or CFI row, so
//!   every frame but the first is looked up at `pc - 1`.
//! - **Frame pointers** when no FDE covers the pc: `ra = *(rbp + 8)`, `rbp' = *rbp`,
//!   `CFA = rbp + 16`.
//!
//! The walk stops at a zero pc, at a return address whose rule is *undefined* (a kernel thread's
//! bottom trampoline says `.cfi_undefined rip`), when the stack pointer does not grow, when it
//! leaves the thread's stack, on a read error, or after [`MAX_FRAMES`].
//!
//! Each frame also carries the five words at its CFA — the words just above the return address,
//! which is what i386 ddb printed as "arguments". On x86-64 arguments travel in registers, so
//! these are only hints (spilled values, the caller's locals); `trace` prints them for the
//! familiar shape.

use gimli::{BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, LittleEndian, Register, RegisterRule};
use gimli::{UnwindContext, UnwindSection};

use crate::image::KernelImage;
use crate::target::{Frame, Target};

/// The deepest trace `trace` prints.
pub const MAX_FRAMES: usize = 64;

/// How many stack words each frame shows as "arguments".
pub const ARG_WORDS: usize = 5;

/// DWARF register numbers on x86-64 (System V psABI, figure 3.36).
const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);

/// How a frame's caller was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// From `.eh_frame` call frame information.
    Cfi,
    /// From the `rbp` chain.
    FramePointer,
    /// Neither worked: the frame is known (its pc), its caller is not.
    None,
}

/// One frame of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwoundFrame {
    /// The instruction pointer: exact for the first frame, a return address for the others.
    pub pc: u64,
    /// The stack pointer in this frame.
    pub rsp: u64,
    /// Canonical frame address, when it could be computed.
    pub cfa: Option<u64>,
    /// The [`ARG_WORDS`] words at the CFA (None where unreadable).
    pub args: [Option<u64>; ARG_WORDS],
    /// How this frame's caller was found.
    pub method: Method,
}

impl UnwoundFrame {
    /// The address to ask the line table about: the call instruction for a return address.
    pub fn lookup_pc(&self, index: usize) -> u64 {
        if index == 0 { self.pc } else { self.pc.wrapping_sub(1) }
    }
}

/// Why the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The outermost frame: a zero return address or one marked undefined.
    Bottom,
    /// [`MAX_FRAMES`] frames were walked.
    TooDeep,
    /// The caller's stack pointer would not be above this frame's.
    NoProgress,
    /// The caller's frame would be outside the thread's stack.
    OutOfStack(u64),
    /// A stack word could not be read.
    ReadError(u64),
    /// No CFI row and no usable frame pointer, or a rule this walker does not evaluate.
    NoUnwindInfo,
}

/// Frames newest first, and why the walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub frames: Vec<UnwoundFrame>,
    pub stop: StopReason,
}

/// The registers the walker tracks for one frame.
#[derive(Debug, Clone, Copy)]
struct Regs {
    pc: u64,
    rsp: u64,
    rbp: Option<u64>,
}

/// How to get from one frame to its caller.
struct Step {
    cfa: u64,
    /// None: the return address is undefined (outermost frame).
    ra: Option<u64>,
    rbp: Option<u64>,
    method: Method,
}

/// Walk the stack from `start`. `stack` is the thread's stack `[lo, hi)`, when known; it bounds
/// the walk only if `start.rsp` lies inside it.
pub fn unwind(image: &KernelImage, target: &dyn Target, start: Frame, stack: Option<(u64, u64)>) -> Trace {
    let stack = stack.filter(|&(lo, hi)| start.rsp >= lo && start.rsp < hi);
    let cfi = Cfi::new(image);
    let mut regs = Regs { pc: start.rip, rsp: start.rsp, rbp: Some(start.rbp) };
    let mut frames = Vec::new();
    loop {
        if regs.pc == 0 {
            return Trace { frames, stop: StopReason::Bottom };
        }
        if frames.len() == MAX_FRAMES {
            return Trace { frames, stop: StopReason::TooDeep };
        }
        let lookup_pc = if frames.is_empty() { regs.pc } else { regs.pc.wrapping_sub(1) };
        let step = match cfi.as_ref().and_then(|c| c.step(image.bias(), lookup_pc, regs, target)) {
            Some(result) => result,
            None => frame_pointer_step(regs, target),
        };
        let step = match step {
            Ok(step) => step,
            Err(stop) => {
                frames.push(UnwoundFrame {
                    pc: regs.pc,
                    rsp: regs.rsp,
                    cfa: None,
                    args: [None; ARG_WORDS],
                    method: Method::None,
                });
                return Trace { frames, stop };
            }
        };
        let args = std::array::from_fn(|i| read_u64(target, step.cfa.wrapping_add(8 * i as u64)).ok());
        frames.push(UnwoundFrame { pc: regs.pc, rsp: regs.rsp, cfa: Some(step.cfa), args, method: step.method });
        let Some(ra) = step.ra else {
            return Trace { frames, stop: StopReason::Bottom };
        };
        if step.cfa <= regs.rsp {
            return Trace { frames, stop: StopReason::NoProgress };
        }
        if let Some((lo, hi)) = stack
            && (step.cfa < lo || step.cfa > hi)
        {
            return Trace { frames, stop: StopReason::OutOfStack(step.cfa) };
        }
        regs = Regs { pc: ra, rsp: step.cfa, rbp: step.rbp };
    }
}

/// The caller by the `rbp` chain.
fn frame_pointer_step(regs: Regs, target: &dyn Target) -> Result<Step, StopReason> {
    let rbp = regs.rbp.ok_or(StopReason::NoUnwindInfo)?;
    // A frame pointer below the stack pointer is not this frame's: rbp is a general register.
    if rbp < regs.rsp {
        return Err(StopReason::NoUnwindInfo);
    }
    let ra = read_u64(target, rbp.wrapping_add(8))?;
    let caller_rbp = read_u64(target, rbp)?;
    Ok(Step { cfa: rbp.wrapping_add(16), ra: Some(ra), rbp: Some(caller_rbp), method: Method::FramePointer })
}

fn read_u64(target: &dyn Target, addr: u64) -> Result<u64, StopReason> {
    let mut buf = [0u8; 8];
    target.read_memory(addr, &mut buf).map_err(|e| StopReason::ReadError(e.addr))?;
    Ok(u64::from_le_bytes(buf))
}

type Reader<'a> = EndianSlice<'a, LittleEndian>;

/// The image's `.eh_frame`, its search table and base addresses.
struct Cfi<'a> {
    eh_frame: EhFrame<Reader<'a>>,
    hdr: Option<gimli::ParsedEhFrameHdr<Reader<'a>>>,
    bases: BaseAddresses,
}

impl<'a> Cfi<'a> {
    fn new(image: &'a KernelImage) -> Option<Cfi<'a>> {
        let sections = image.unwind_sections();
        let eh = sections.eh_frame.as_ref()?;
        let mut bases = BaseAddresses::default().set_eh_frame(eh.addr);
        if let Some(text) = sections.text_addr {
            bases = bases.set_text(text);
        }
        let mut eh_frame = EhFrame::new(&eh.data, LittleEndian);
        eh_frame.set_address_size(8);
        let hdr = sections.eh_frame_hdr.as_ref().and_then(|h| {
            bases = bases.clone().set_eh_frame_hdr(h.addr);
            EhFrameHdr::new(&h.data, LittleEndian).parse(&bases, 8).ok()
        });
        Some(Cfi { eh_frame, hdr, bases })
    }

    /// The caller per the CFI row for `lookup_pc` (runtime); None when no FDE covers it, so the
    /// frame-pointer walk gets a chance.
    fn step(&self, bias: u64, lookup_pc: u64, regs: Regs, target: &dyn Target) -> Option<Result<Step, StopReason>> {
        let probe = lookup_pc.checked_sub(bias)?;
        let mut ctx = UnwindContext::new();
        let row = match self.hdr.as_ref().and_then(|h| h.table()) {
            Some(table) => {
                table.unwind_info_for_address(&self.eh_frame, &self.bases, &mut ctx, probe, EhFrame::cie_from_offset)
            }
            None => self.eh_frame.unwind_info_for_address(&self.bases, &mut ctx, probe, EhFrame::cie_from_offset),
        };
        let row = row.ok()?;
        let cfa = match *row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                let base = match register {
                    RSP => Some(regs.rsp),
                    RBP => regs.rbp,
                    _ => None,
                };
                match base {
                    Some(base) => base.wrapping_add_signed(offset),
                    None => return Some(Err(StopReason::NoUnwindInfo)),
                }
            }
            CfaRule::Expression(_) => return Some(Err(StopReason::NoUnwindInfo)),
        };
        let ra = match row.register(RA) {
            Some(RegisterRule::Undefined) => None,
            // x86-64 CIEs always give the return address a rule; absent one, `call` put it here.
            None => Some(cfa.wrapping_sub(8)),
            Some(RegisterRule::Offset(off)) => Some(cfa.wrapping_add_signed(off)),
            Some(_) => return Some(Err(StopReason::NoUnwindInfo)),
        };
        let ra = match ra {
            Some(slot) => match read_u64(target, slot) {
                Ok(value) => Some(value),
                Err(stop) => return Some(Err(stop)),
            },
            None => None,
        };
        let rbp = match row.register(RBP) {
            None | Some(RegisterRule::SameValue) => regs.rbp,
            Some(RegisterRule::Offset(off)) => read_u64(target, cfa.wrapping_add_signed(off)).ok(),
            Some(RegisterRule::ValOffset(off)) => Some(cfa.wrapping_add_signed(off)),
            Some(_) => None,
        };
        Some(Ok(Step { cfa, ra, rbp, method: Method::Cfi }))
    }
}
