//! How ddb spells addresses and lines up columns.
//!
//! ddb prints a location as `name+0xoff` (just `name` at offset zero) and separates it from what
//! follows with a tab; the console may be a pipe, so tabs are expanded here to the next multiple
//! of [`TAB_WIDTH`] columns.

use crate::image::KernelImage;

/// Columns per tab stop.
pub const TAB_WIDTH: usize = 8;

/// `name+0xoff`, or `name` when the offset is zero.
pub fn sym_off(name: &str, off: u64) -> String {
    if off == 0 { name.to_string() } else { format!("{name}+{off:#x}") }
}

/// `addr` as `name+0xoff` when a symbol holds it (with ddb's nearest-function fallback for code),
/// else `0x…`.
pub fn location(image: &KernelImage, addr: u64) -> String {
    match image.symbolize(addr) {
        Some((name, off)) => sym_off(name, off),
        None => format!("{addr:#x}"),
    }
}

/// Append spaces to `line` up to the next tab stop (at least one space).
pub fn tab(line: &mut String) {
    let width = line.rsplit('\n').next().map_or(0, |l| l.chars().count());
    let pad = TAB_WIDTH - width % TAB_WIDTH;
    line.extend(std::iter::repeat_n(' ', pad));
}

/// Pad `line` with spaces to `column` (at least one space).
pub fn pad_to(line: &mut String, column: usize) {
    let width = line.rsplit('\n').next().map_or(0, |l| l.chars().count());
    line.extend(std::iter::repeat_n(' ', column.saturating_sub(width).max(1)));
}

/// A byte as ddb shows it in `x/c`: the character when printable ASCII, else `\xNN`.
pub fn printable_byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' { char::from(b).to_string() } else { format!("\\x{b:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_expand_to_stops() {
        let mut s = String::from("Stopped at");
        tab(&mut s);
        assert_eq!(s.len(), 16);
        let mut s = String::from("12345678");
        tab(&mut s);
        assert_eq!(s.len(), 16);
        assert_eq!(sym_off("f", 0), "f");
        assert_eq!(sym_off("f", 0x3b), "f+0x3b");
        assert_eq!(printable_byte(b'A'), "A");
        assert_eq!(printable_byte(0), "\\x00");
    }
}
