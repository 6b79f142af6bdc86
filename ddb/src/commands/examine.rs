//! `x` (examine memory) and `print`, after ddb(4).
//!
//! `x/<modifiers> [addr][,count]`: sizes `b` `h` `l` `g` (1, 2, 4, 8 bytes; `l` by default) and
//! formats `x` hex, `z` zero-padded hex, `d` signed, `u` unsigned, `o` octal, `c` characters,
//! `s` NUL-terminated strings, `i` instructions, `a` addresses with their symbol (always 8
//! bytes). Each line starts with the address as `name+0xoff:` and holds up to 16 bytes of
//! values. Modifiers, once given, are remembered; without an address `x` continues where the last
//! one stopped, and an empty line repeats it from there. The count is an expression, so it is
//! hex like every ddb number: `x/i f,10` shows sixteen instructions. gdb's form, a decimal
//! count before the modifier letters (`x/10i $rip`, `x/4xg addr`), is accepted too.

use crate::context::CommandContext;
use crate::target::ReadError;
use crate::{disasm, expr, format};

/// The most units one `x` shows.
const MAX_COUNT: u64 = 0x10000;

/// Bytes of numbers per output line.
const LINE_BYTES: usize = 16;

/// The longest string `x/s` shows.
const MAX_STRING: usize = 4096;

/// A parsed `x` modifier string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    size: usize,
    kind: char,
}

fn parse_format(mods: &str) -> Result<Format, String> {
    let mut format = Format { size: 4, kind: 'x' };
    for c in mods.chars() {
        match c {
            'b' => format.size = 1,
            'h' => format.size = 2,
            'l' => format.size = 4,
            'g' => format.size = 8,
            'x' | 'z' | 'd' | 'u' | 'o' | 'c' | 's' | 'i' | 'a' => format.kind = c,
            _ => return Err(format!("bad modifier '{c}'")),
        }
    }
    match format.kind {
        'c' | 's' => format.size = 1,
        'a' => format.size = 8,
        _ => {}
    }
    Ok(format)
}

/// Split gdb's leading decimal count off the modifiers: `10i` is (Some(10), "i").
fn gdb_count(mods: &str) -> Result<(Option<u64>, &str), String> {
    let letters = mods.trim_start_matches(|c: char| c.is_ascii_digit());
    let digits = &mods[..mods.len() - letters.len()];
    if digits.is_empty() {
        return Ok((None, mods));
    }
    let n = digits.parse().map_err(|_| format!("bad count '{digits}'"))?;
    Ok((Some(n), letters))
}

pub fn examine(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let (mods, rest) = super::modifiers(args);
    let (mods_count, mods) = gdb_count(mods)?;
    let mods = if mods.is_empty() { ctx.session.x_format.clone() } else { mods.to_string() };
    let format = parse_format(&mods)?;
    let (addr_text, count_text) = expr::split_count(rest);
    let addr = if addr_text.is_empty() { ctx.session.next } else { ctx.eval(addr_text)? };
    let count = match (count_text, mods_count) {
        (Some(_), Some(_)) => return Err("count given twice (x/Ni addr or x/i addr,N)".to_string()),
        (Some(text), None) => ctx.eval(text)?,
        (None, Some(n)) => n,
        (None, None) => 1,
    };
    if count > MAX_COUNT {
        return Err(format!("count {count:#x} is too large (at most {MAX_COUNT:#x})"));
    }
    ctx.session.x_format = mods.clone();
    ctx.session.dot = addr;
    let (text, next, error) = match format.kind {
        'i' => instructions(ctx, addr, count),
        's' => strings(ctx, addr, count),
        _ => numbers(ctx, addr, count, format),
    };
    ctx.print(&text);
    ctx.session.next = next;
    ctx.session.repeat = Some(match count {
        1 => format!("x/{mods}"),
        n => format!("x/{mods} ,{n:#x}"),
    });
    match error {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// Output, the address after the last unit shown, and the read error that cut it short.
type Examined = (String, u64, Option<ReadError>);

fn line_start(ctx: &CommandContext<'_>, addr: u64) -> String {
    let mut line = format::location(ctx.image, addr);
    line.push(':');
    format::tab(&mut line);
    line
}

fn numbers(ctx: &CommandContext<'_>, addr: u64, count: u64, format: Format) -> Examined {
    let per_line = match format.kind {
        'a' => 1,
        _ => LINE_BYTES / format.size,
    };
    let mut text = String::new();
    let mut line = String::new();
    let mut at = addr;
    for i in 0..count {
        let mut buf = [0u8; 8];
        if let Err(e) = ctx.target.read_memory(at, &mut buf[..format.size]) {
            finish(&mut text, &mut line);
            return (text, at, Some(e));
        }
        let value = u64::from_le_bytes(buf);
        if line.is_empty() {
            line = line_start(ctx, at);
        } else if format.kind != 'c' {
            line.push_str("  ");
        }
        line.push_str(&render_value(ctx, value, format));
        at = at.wrapping_add(format.size as u64);
        if (i + 1) % per_line as u64 == 0 {
            finish(&mut text, &mut line);
        }
    }
    finish(&mut text, &mut line);
    (text, at, None)
}

fn finish(text: &mut String, line: &mut String) {
    if !line.is_empty() {
        text.push_str(line.trim_end());
        text.push('\n');
        line.clear();
    }
}

fn render_value(ctx: &CommandContext<'_>, value: u64, format: Format) -> String {
    let bits = 8 * format.size as u32;
    let digits = 2 * format.size;
    // Left-justified in a column as wide as the largest value, like ddb's `%-*lr`.
    match format.kind {
        'z' => format!("{value:0digits$x}"),
        'd' => {
            let signed = ((value << (64 - bits)) as i64) >> (64 - bits);
            format!("{signed:<w$}", w = decimal_width(format.size) + 1)
        }
        'u' => format!("{value:<w$}", w = decimal_width(format.size)),
        'o' => format!("{value:<w$o}", w = bits.div_ceil(3) as usize),
        'c' => format::printable_byte(value as u8),
        'a' => format!("{:#x}  {}", value, format::location(ctx.image, value)),
        _ => format!("{value:<digits$x}"),
    }
}

/// Digits of the largest unsigned value of `size` bytes.
fn decimal_width(size: usize) -> usize {
    match size {
        1 => 3,
        2 => 5,
        4 => 10,
        _ => 20,
    }
}

fn instructions(ctx: &CommandContext<'_>, addr: u64, count: u64) -> Examined {
    let mut text = String::new();
    let mut at = addr;
    for _ in 0..count {
        match disasm::disassemble(ctx.image, ctx.target, at) {
            Ok(insn) => {
                text.push_str(&line_start(ctx, at));
                text.push_str(&insn.text);
                text.push('\n');
                at = at.wrapping_add(insn.len as u64);
            }
            Err(e) => return (text, at, Some(e)),
        }
    }
    (text, at, None)
}

fn strings(ctx: &CommandContext<'_>, addr: u64, count: u64) -> Examined {
    let mut text = String::new();
    let mut at = addr;
    for _ in 0..count {
        let mut line = line_start(ctx, at);
        let start = at;
        loop {
            let mut byte = [0u8; 1];
            if let Err(e) = ctx.target.read_memory(at, &mut byte) {
                finish(&mut text, &mut line);
                return (text, at, Some(e));
            }
            at = at.wrapping_add(1);
            if byte[0] == 0 {
                break;
            }
            line.push_str(&format::printable_byte(byte[0]));
            if at - start >= MAX_STRING as u64 {
                line.push_str("...");
                break;
            }
        }
        finish(&mut text, &mut line);
    }
    (text, at, None)
}

/// `print[/xzduoca] expr`.
pub fn print(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let (mods, rest) = super::modifiers(args);
    let kind = match mods.len() {
        0 => 'x',
        1 => mods.chars().next().unwrap_or('x'),
        _ => return Err(format!("bad modifier '{mods}': give one of x z d u o c a")),
    };
    let value = ctx.eval(rest)?;
    let text = match kind {
        'x' => format!("{value:#x}"),
        'z' => format!("{value:#018x}"),
        'd' => (value as i64).to_string(),
        'u' => value.to_string(),
        'o' => format!("{value:#o}"),
        'c' => format::printable_byte(value as u8),
        'a' => format::location(ctx.image, value),
        other => return Err(format!("bad modifier '{other}'")),
    };
    ctx.print(&format!("{text}\n"));
    Ok(())
}
