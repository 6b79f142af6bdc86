//! Terminal structures: `struct termios` as TCGETS/TCSETS carry it and `struct winsize`.

use super::{linux, linux_struct};

/// Control characters in a termios.
pub const NCCS: usize = size_of::<[u8; 19]>();

linux_struct! {
    /// `struct termios` (asm-generic/termbits.h): four flag words, the line discipline and
    /// 19 control characters — 36 bytes.
    pub struct Termios = linux::termios {
        pub c_iflag: u32,
        pub c_oflag: u32,
        pub c_cflag: u32,
        pub c_lflag: u32,
        pub c_line: u8,
        pub c_cc: [u8; NCCS],
    }
}

linux_struct! {
    /// `struct winsize` (TIOCGWINSZ, TIOCSWINSZ): rows, columns and pixel sizes.
    pub struct Winsize = linux::winsize {
        pub ws_row: u16,
        pub ws_col: u16,
        pub ws_xpixel: u16,
        pub ws_ypixel: u16,
    }
}
