//! The disassembler behind `Stopped at` and `x/i`: iced-x86 in AT&T syntax, as BSD ddb prints.
//!
//! Mnemonics carry their size suffix (`movq (%rax),%rax`) and operands start at column 8 like
//! ddb's tab. Branch and call targets inside a known symbol print as `name+0xoff`; a
//! `%rip`-relative operand that lands in a known symbol gets it as a trailing `# name+0xoff`
//! comment (Rust statics are all reached that way). Instruction bytes come through
//! [`Target::read_memory`]; near the end of a mapping fewer than 15 bytes are readable, so the
//! read shrinks until it succeeds.

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, SymbolResolver, SymbolResult};

use crate::image::KernelImage;
use crate::target::{ReadError, Target};

/// The longest x86 instruction.
pub const MAX_INSN_LEN: usize = 15;

/// Column where the first operand starts (ddb prints a tab after the mnemonic).
const OPERAND_COLUMN: u32 = 8;

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub addr: u64,
    /// Length in bytes (at least 1, so a walk always advances).
    pub len: usize,
    /// AT&T text, e.g. `movq    (%rax),%rax`; `(bad)` for undecodable bytes.
    pub text: String,
}

/// Disassemble the instruction at `addr`.
pub fn disassemble(image: &KernelImage, target: &dyn Target, addr: u64) -> Result<Decoded, ReadError> {
    let bytes = read_insn_bytes(target, addr)?;
    let mut decoder = Decoder::with_ip(64, &bytes, addr, DecoderOptions::NONE);
    let insn = decoder.decode();
    let len = if insn.is_invalid() { 1 } else { insn.len().max(1) };
    Ok(Decoded { addr, len, text: format_insn(image, &insn) })
}

/// Up to [`MAX_INSN_LEN`] bytes at `addr`, fewer when the rest is unreadable.
fn read_insn_bytes(target: &dyn Target, addr: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = [0u8; MAX_INSN_LEN];
    if target.read_memory(addr, &mut buf).is_ok() {
        return Ok(buf.to_vec());
    }
    // Find how far the mapping goes, a byte at a time (at most 14 more reads).
    let mut readable = Vec::with_capacity(MAX_INSN_LEN);
    for i in 0..MAX_INSN_LEN as u64 {
        let mut byte = [0u8; 1];
        if target.read_memory(addr.wrapping_add(i), &mut byte).is_err() {
            break;
        }
        readable.push(byte[0]);
    }
    if readable.is_empty() {
        return Err(ReadError { addr, len: 1 });
    }
    Ok(readable)
}

/// AT&T text of `insn`, with symbolized branch targets.
fn format_insn(image: &KernelImage, insn: &Instruction) -> String {
    let branch = match insn.near_branch_target() {
        0 => None,
        target => image.symbolize(target).map(|(name, off)| BranchSymbol {
            target,
            symbol_addr: target - off,
            name: name.to_string(),
        }),
    };
    let mut formatter = GasFormatter::with_options(Some(Box::new(OneSymbol(branch))), None);
    let options = formatter.options_mut();
    options.set_gas_show_mnemonic_size_suffix(true);
    options.set_uppercase_hex(false);
    options.set_branch_leading_zeros(false);
    options.set_first_operand_char_index(OPERAND_COLUMN);
    let mut text = String::new();
    formatter.format(insn, &mut text);
    if insn.is_ip_rel_memory_operand()
        && let Some((name, off)) = image.symbolize_exact(insn.ip_rel_memory_address())
    {
        text.push_str(&format!("  # {}", crate::format::sym_off(name, off)));
    }
    text
}

/// A branch target and the symbol it lies in.
struct BranchSymbol {
    target: u64,
    symbol_addr: u64,
    name: String,
}

/// Resolves exactly the one branch target of the instruction being formatted; immediates and
/// displacements stay numbers.
struct OneSymbol(Option<BranchSymbol>);

impl SymbolResolver for OneSymbol {
    fn symbol(
        &mut self,
        _instruction: &Instruction,
        _operand: u32,
        _instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<SymbolResult<'_>> {
        let branch = self.0.as_ref().filter(|b| b.target == address)?;
        Some(SymbolResult::with_str(branch.symbol_addr, &branch.name))
    }
}
