//! A terminal's modes, as the line discipline reads them, and their wire form: `struct
//! termios` of TCGETS/TCSETS ([`crate::abi::tty::Termios`]). The flag bits and control
//! character indices are asm-generic/termbits.h's, from linux-raw-sys.

use crate::abi::linux;
pub use crate::abi::tty::NCCS;

/// A control character's index in `c_cc`.
const fn cc(v: u32) -> usize {
    assert!((v as usize) < NCCS, "not a c_cc index");
    v as usize
}

/// c_cc indices.
pub const VINTR: usize = cc(linux::VINTR);
pub const VQUIT: usize = cc(linux::VQUIT);
pub const VERASE: usize = cc(linux::VERASE);
pub const VKILL: usize = cc(linux::VKILL);
pub const VEOF: usize = cc(linux::VEOF);
pub const VTIME: usize = cc(linux::VTIME);
pub const VMIN: usize = cc(linux::VMIN);
pub const VSTART: usize = cc(linux::VSTART);
pub const VSTOP: usize = cc(linux::VSTOP);
pub const VSUSP: usize = cc(linux::VSUSP);
pub const VEOL: usize = cc(linux::VEOL);
pub const VREPRINT: usize = cc(linux::VREPRINT);
pub const VDISCARD: usize = cc(linux::VDISCARD);
pub const VWERASE: usize = cc(linux::VWERASE);
pub const VLNEXT: usize = cc(linux::VLNEXT);
pub const VEOL2: usize = cc(linux::VEOL2);

/// c_iflag.
pub const IGNBRK: u32 = linux::IGNBRK;
pub const ISTRIP: u32 = linux::ISTRIP;
pub const INLCR: u32 = linux::INLCR;
pub const IGNCR: u32 = linux::IGNCR;
pub const ICRNL: u32 = linux::ICRNL;
pub const IXON: u32 = linux::IXON;
pub const IXANY: u32 = linux::IXANY;
pub const IMAXBEL: u32 = linux::IMAXBEL;
pub const IUTF8: u32 = linux::IUTF8;

/// c_oflag.
pub const OPOST: u32 = linux::OPOST;
pub const ONLCR: u32 = linux::ONLCR;
pub const OCRNL: u32 = linux::OCRNL;
pub const ONOCR: u32 = linux::ONOCR;
pub const ONLRET: u32 = linux::ONLRET;

/// c_cflag.
pub const B38400: u32 = linux::B38400;
pub const CS8: u32 = linux::CS8;
pub const CREAD: u32 = linux::CREAD;
pub const HUPCL: u32 = linux::HUPCL;

/// c_lflag.
pub const ISIG: u32 = linux::ISIG;
pub const ICANON: u32 = linux::ICANON;
pub const ECHO: u32 = linux::ECHO;
pub const ECHOE: u32 = linux::ECHOE;
pub const ECHOK: u32 = linux::ECHOK;
pub const ECHONL: u32 = linux::ECHONL;
pub const NOFLSH: u32 = linux::NOFLSH;
pub const TOSTOP: u32 = linux::TOSTOP;
pub const ECHOCTL: u32 = linux::ECHOCTL;
pub const ECHOKE: u32 = linux::ECHOKE;
pub const IEXTEN: u32 = linux::IEXTEN;

/// A terminal's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Default for Termios {
    /// Linux's defaults for a new terminal (`stty sane`).
    fn default() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[VINTR] = 0x03;
        cc[VQUIT] = 0x1c;
        cc[VERASE] = 0x7f;
        cc[VKILL] = 0x15;
        cc[VEOF] = 0x04;
        cc[VMIN] = 1;
        cc[VSTART] = 0x11;
        cc[VSTOP] = 0x13;
        cc[VSUSP] = 0x1a;
        cc[VREPRINT] = 0x12;
        cc[VDISCARD] = 0x0f;
        cc[VWERASE] = 0x17;
        cc[VLNEXT] = 0x16;
        Termios {
            iflag: ICRNL | IXON | IMAXBEL | IUTF8,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD | HUPCL,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        }
    }
}

impl Termios {
    /// From the guest's (or the host's) `struct termios`.
    pub fn from_guest(t: &crate::abi::tty::Termios) -> Termios {
        Termios { iflag: t.c_iflag, oflag: t.c_oflag, cflag: t.c_cflag, lflag: t.c_lflag, line: t.c_line, cc: t.c_cc }
    }

    /// As TCGETS gives it.
    pub fn to_guest(&self) -> crate::abi::tty::Termios {
        crate::abi::tty::Termios {
            c_iflag: self.iflag,
            c_oflag: self.oflag,
            c_cflag: self.cflag,
            c_lflag: self.lflag,
            c_line: self.line,
            c_cc: self.cc,
        }
    }

    pub fn lflag(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    pub fn iflag(&self, f: u32) -> bool {
        self.iflag & f != 0
    }

    /// Whether `c` is control character `idx` (a zero entry is disabled, as `_POSIX_VDISABLE`).
    pub fn is_cc(&self, idx: usize, c: u8) -> bool {
        self.cc[idx] != 0 && self.cc[idx] == c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        use zerocopy::IntoBytes;
        let t = Termios::default();
        assert_eq!(Termios::from_guest(&t.to_guest()), t);
        // c_cc starts at byte 17 of the 36-byte structure.
        assert_eq!(t.to_guest().as_bytes().len(), 36);
        assert_eq!(t.to_guest().as_bytes()[17 + VINTR], 3);
        assert_eq!((VMIN, VEOL2, ICANON, ECHO), (6, 16, 0o2, 0o10));
    }
}
