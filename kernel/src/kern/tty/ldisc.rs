//! The line discipline (Linux's n_tty, BSD's termios discipline) as a plain state machine:
//! typed bytes in, readable input, echo and signals out; no locks, no sleeping.
//!
//! * Input: ISTRIP, IGNCR/ICRNL/INLCR; ISIG: VINTR → SIGINT, VSUSP → SIGTSTP, with the input
//!   flushed unless NOFLSH (VQUIT is no signal: `^\` is the debugger's, see the module above);
//!   IXON: VSTOP stops output and VSTART (or any key with IXANY) restarts it, both consumed
//!   (echo is not held); IEXTEN: VLNEXT, VWERASE, VREPRINT.
//! * Canonical mode: a line being edited (VERASE, VKILL, VWERASE), committed by `\n`, VEOL,
//!   VEOL2 or VEOF (which is not kept: a VEOF on an empty line reads as end of file).
//! * Echo: ECHO (control characters as `^X` with ECHOCTL), ECHOE (erase as `\b \b`), ECHOK,
//!   ECHOKE, ECHONL; through output processing.
//! * Output: OPOST with ONLCR and OCRNL.

use std::collections::VecDeque;

use super::termios::*;
use crate::kern::signal::{SIGINT, SIGTSTP};

/// A queue entry ending a line (canonical mode).
const DELIM: u16 = 0x100;
/// A VEOF: ends a line without data.
const EOF_MARK: u16 = 0x200;
/// Most bytes a line (canonical) or the input queue (raw) holds; more are dropped.
pub const MAX_INPUT: usize = 4095;

/// A terminal's input state.
#[derive(Debug, Default)]
pub struct LineDisc {
    pub t: Termios,
    /// Input ready to read: bytes, lines ended by DELIM entries or an EOF_MARK.
    q: VecDeque<u16>,
    /// Line ends in `q`.
    lines: usize,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// The next byte is literal (after VLNEXT).
    lnext: bool,
    /// Echo output, processed, waiting to be written.
    echo: Vec<u8>,
    /// Output stopped by VSTOP (IXON) or TCOOFF: writers wait until VSTART, any key with
    /// IXANY, TCOON, or IXON turned off.
    pub stopped: bool,
}

fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl LineDisc {
    pub fn new(t: Termios) -> LineDisc {
        LineDisc { t, ..LineDisc::default() }
    }

    fn canon(&self) -> bool {
        self.t.lflag(ICANON)
    }

    /// Output processing of `bytes` into `out`.
    pub fn opost(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.t.oflag & OPOST == 0 {
            out.extend_from_slice(bytes);
            return;
        }
        for &b in bytes {
            match b {
                b'\n' if self.t.oflag & ONLCR != 0 => out.extend_from_slice(b"\r\n"),
                b'\r' if self.t.oflag & OCRNL != 0 => out.push(b'\n'),
                _ => out.push(b),
            }
        }
    }

    fn echo_raw(&mut self, bytes: &[u8]) {
        let mut out = std::mem::take(&mut self.echo);
        self.opost(bytes, &mut out);
        self.echo = out;
    }

    /// Echo one input byte as the terminal shows it.
    fn echo_char(&mut self, c: u8) {
        if !self.t.lflag(ECHO) {
            return;
        }
        if self.t.lflag(ECHOCTL) && is_ctl(c) && c != b'\t' && c != b'\n' {
            self.echo_raw(&[b'^', c ^ 0x40]);
        } else {
            self.echo_raw(&[c]);
        }
    }

    /// The echo output waiting to be written.
    pub fn take_echo(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.echo)
    }

    /// Drop all input (typed-ahead lines and the line being edited).
    pub fn flush_input(&mut self) {
        self.q.clear();
        self.lines = 0;
        self.line.clear();
        self.lnext = false;
    }

    /// New modes. Leaving canonical mode makes the line being edited readable; entering it
    /// makes what was typed before one line, readable at once (as Linux's n_tty does).
    pub fn set_termios(&mut self, t: Termios) {
        let was_canon = self.canon();
        self.t = t;
        if !self.t.iflag(IXON) {
            self.stopped = false;
        }
        if was_canon && !self.canon() {
            let line = std::mem::take(&mut self.line);
            self.q.extend(line.iter().map(|&b| u16::from(b)));
        } else if !was_canon && self.canon() {
            self.q.retain(|&x| x != EOF_MARK);
            if let Some(last) = self.q.back_mut() {
                if *last & DELIM == 0 {
                    *last |= DELIM;
                }
                self.lines = self.q.iter().filter(|&&x| x & DELIM != 0).count();
            } else {
                self.lines = 0;
            }
        }
    }

    /// The host's input ended: what is being edited becomes readable, then end of file.
    pub fn hangup(&mut self) {
        if self.canon() {
            self.commit(EOF_MARK);
        }
    }

    fn commit(&mut self, end: u16) {
        let line = std::mem::take(&mut self.line);
        let n = line.len();
        for (i, &b) in line.iter().enumerate() {
            let flag = if end == DELIM && i + 1 == n { DELIM } else { 0 };
            self.q.push_back(u16::from(b) | flag);
        }
        if end == EOF_MARK {
            self.q.push_back(EOF_MARK);
        }
        self.lines += 1;
    }

    /// Bytes that arrived without a line discipline (the host's stdin is not a terminal).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.q.extend(bytes.iter().map(|&b| u16::from(b)));
    }

    /// Data bytes ready to read (FIONREAD).
    pub fn available(&self) -> usize {
        self.q.iter().filter(|&&x| x != EOF_MARK).count()
    }

    /// Whether a canonical read would return now (a whole line, or end of file).
    pub fn line_ready(&self) -> bool {
        self.lines > 0
    }

    /// Read: in canonical mode up to the end of one line (0 for a VEOF on an empty line),
    /// else up to `buf.len()` bytes of what is there.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let canon = self.canon();
        let mut n = 0;
        while n < buf.len() {
            let Some(x) = self.q.pop_front() else { break };
            if x == EOF_MARK {
                self.lines = self.lines.saturating_sub(1);
                if canon {
                    return n;
                }
                continue;
            }
            // The character is the low byte; the high bits mark delimiters.
            let [c, _] = x.to_le_bytes();
            buf[n] = c;
            n += 1;
            if x & DELIM != 0 {
                self.lines = self.lines.saturating_sub(1);
                if canon {
                    return n;
                }
            }
        }
        // A full buffer that ends just before a VEOF: the VEOF ended this line.
        if canon && n > 0 && self.q.front() == Some(&EOF_MARK) {
            self.q.pop_front();
            self.lines = self.lines.saturating_sub(1);
        }
        n
    }

    fn erase_one(&mut self) -> bool {
        let Some(mut c) = self.line.pop() else { return false };
        if self.t.iflag(IUTF8) {
            // A UTF-8 character: continuation bytes back to its lead byte.
            while c & 0xc0 == 0x80 {
                match self.line.pop() {
                    Some(p) => c = p,
                    None => break,
                }
            }
        }
        if self.t.lflag(ECHO) {
            let width = if self.t.lflag(ECHOCTL) && is_ctl(c) && c != b'\t' { 2 } else { 1 };
            for _ in 0..width {
                self.echo_raw(b"\x08 \x08");
            }
        }
        true
    }

    fn erase(&mut self, c: u8) {
        if self.t.lflag(ECHOE) {
            self.erase_one();
        } else if self.line.pop().is_some() {
            self.echo_char(c);
        }
    }

    fn kill(&mut self, c: u8) {
        if self.line.is_empty() {
            return;
        }
        if self.t.lflag(ECHOKE) && self.t.lflag(ECHOE) {
            while self.erase_one() {}
        } else {
            self.line.clear();
            self.echo_char(c);
            if self.t.lflag(ECHOK) && self.t.lflag(ECHO) {
                self.echo_raw(b"\n");
            }
        }
    }

    fn werase(&mut self, c: u8) {
        if !self.t.lflag(ECHOE) {
            while self.line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                self.line.pop();
            }
            while self.line.last().is_some_and(|b| !b.is_ascii_whitespace()) {
                self.line.pop();
            }
            self.echo_char(c);
            return;
        }
        while self.line.last().is_some_and(|b| b.is_ascii_whitespace()) {
            self.erase_one();
        }
        while self.line.last().is_some_and(|b| !b.is_ascii_whitespace()) {
            self.erase_one();
        }
    }

    fn put(&mut self, c: u8) {
        if self.canon() {
            if self.line.len() < MAX_INPUT {
                self.line.push(c);
                self.echo_char(c);
            }
        } else if self.q.len() < MAX_INPUT {
            self.q.push_back(u16::from(c));
            self.echo_char(c);
        }
    }

    /// One typed byte; returns a signal for the foreground process group, if the byte is one.
    pub fn receive(&mut self, c: u8) -> Option<i32> {
        let t = self.t;
        let c = if t.iflag(ISTRIP) { c & 0x7f } else { c };
        if self.lnext {
            self.lnext = false;
            if t.lflag(ECHO) && t.lflag(ECHOCTL) {
                self.echo_raw(b"\x08");
            }
            self.put(c);
            return None;
        }
        let c = match c {
            b'\r' if t.iflag(IGNCR) => return None,
            b'\r' if t.iflag(ICRNL) => b'\n',
            b'\n' if t.iflag(INLCR) => b'\r',
            c => c,
        };
        if t.lflag(ISIG) {
            let sig = if t.is_cc(VINTR, c) {
                Some(SIGINT)
            } else if t.is_cc(VSUSP, c) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if !t.lflag(NOFLSH) {
                    self.flush_input();
                }
                self.echo_char(c);
                return Some(sig);
            }
        }
        if t.iflag(IXON) {
            // termios(3): VSTOP stops output, VSTART restarts it; both are consumed. With IXANY
            // any other character restarts it too (and is then read as usual).
            if t.is_cc(VSTOP, c) {
                self.stopped = true;
                return None;
            }
            if t.is_cc(VSTART, c) {
                self.stopped = false;
                return None;
            }
            if t.iflag(IXANY) {
                self.stopped = false;
            }
        }
        if t.lflag(IEXTEN) && t.is_cc(VLNEXT, c) {
            self.lnext = true;
            if t.lflag(ECHO) && t.lflag(ECHOCTL) {
                self.echo_raw(b"^");
            }
            return None;
        }
        if !self.canon() {
            self.put(c);
            return None;
        }
        if t.is_cc(VERASE, c) {
            self.erase(c);
        } else if t.is_cc(VKILL, c) {
            self.kill(c);
        } else if t.lflag(IEXTEN) && t.is_cc(VWERASE, c) {
            self.werase(c);
        } else if t.lflag(IEXTEN) && t.is_cc(VREPRINT, c) {
            self.echo_char(c);
            if t.lflag(ECHO) {
                let line = self.line.clone();
                self.echo_raw(b"\n");
                for b in line {
                    self.echo_char(b);
                }
            }
        } else if t.is_cc(VEOF, c) {
            self.commit(EOF_MARK);
        } else if c == b'\n' || t.is_cc(VEOL, c) || t.is_cc(VEOL2, c) {
            if c == b'\n' && t.lflag(ECHONL) && !t.lflag(ECHO) {
                self.echo_raw(b"\n");
            } else {
                self.echo_char(c);
            }
            self.line.push(c);
            self.commit(DELIM);
        } else {
            self.put(c);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(ld: &mut LineDisc, s: &[u8]) -> Vec<Option<i32>> {
        s.iter().map(|&c| ld.receive(c)).collect()
    }

    fn read_all(ld: &mut LineDisc) -> Vec<u8> {
        let mut b = [0u8; 64];
        let n = ld.read(&mut b);
        b[..n].to_vec()
    }

    #[test]
    fn stop_and_start_hold_output_and_are_consumed() {
        let mut ld = LineDisc::new(Termios::default());
        typed(&mut ld, b"\x13");
        assert!(ld.stopped);
        typed(&mut ld, b"a");
        assert!(ld.stopped, "without IXANY only VSTART restarts");
        typed(&mut ld, b"\x11b\n");
        assert!(!ld.stopped);
        assert_eq!(read_all(&mut ld), b"ab\n", "STOP and START are not input");
        let mut t = Termios::default();
        t.iflag |= IXANY;
        ld.set_termios(t);
        typed(&mut ld, b"\x13c");
        assert!(!ld.stopped, "IXANY: any key restarts");
        typed(&mut ld, b"\x13");
        t.iflag &= !IXON;
        ld.set_termios(t);
        assert!(!ld.stopped, "turning IXON off restarts output");
    }

    #[test]
    fn canonical_editing() {
        let mut ld = LineDisc::new(Termios::default());
        typed(&mut ld, b"helx\x7flo wor\x17world\r");
        assert!(ld.line_ready());
        assert_eq!(read_all(&mut ld), b"hello world\n");
        assert_eq!(ld.take_echo(), b"helx\x08 \x08lo wor\x08 \x08\x08 \x08\x08 \x08world\r\n");
        typed(&mut ld, b"junk\x15ok\n");
        assert_eq!(read_all(&mut ld), b"ok\n");
        assert!(!ld.line_ready());
    }

    #[test]
    fn eof_and_partial_lines() {
        let mut ld = LineDisc::new(Termios::default());
        typed(&mut ld, b"abc\x04\x04");
        assert_eq!(read_all(&mut ld), b"abc");
        assert!(ld.line_ready());
        assert_eq!(read_all(&mut ld), b"", "VEOF on an empty line is end of file");
        assert!(!ld.line_ready());
    }

    #[test]
    fn signals_flush_and_echo() {
        let mut ld = LineDisc::new(Termios::default());
        assert_eq!(typed(&mut ld, b"ab\x03"), vec![None, None, Some(SIGINT)]);
        assert_eq!(ld.take_echo(), b"ab^C");
        typed(&mut ld, b"\n");
        assert_eq!(read_all(&mut ld), b"\n", "the line before ^C was flushed");
        assert_eq!(typed(&mut ld, b"\x1a"), vec![Some(SIGTSTP)]);
    }

    #[test]
    fn raw_mode_passes_bytes() {
        let mut t = Termios::default();
        t.lflag &= !(ICANON | ECHO | ISIG);
        t.iflag &= !ICRNL;
        let mut ld = LineDisc::new(t);
        typed(&mut ld, b"a\x03\r\x7f");
        assert_eq!(ld.available(), 4);
        assert_eq!(read_all(&mut ld), b"a\x03\r\x7f");
        assert!(ld.take_echo().is_empty());
    }

    #[test]
    fn typeahead_in_raw_mode_is_a_line_in_canonical_mode() {
        let mut raw = Termios::default();
        raw.lflag &= !ICANON;
        let mut ld = LineDisc::new(raw);
        typed(&mut ld, b"ab");
        ld.set_termios(Termios::default());
        assert!(ld.line_ready());
        assert_eq!(read_all(&mut ld), b"ab");
        assert!(!ld.line_ready());
    }

    #[test]
    fn output_processing() {
        let ld = LineDisc::new(Termios::default());
        let mut out = Vec::new();
        ld.opost(b"a\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
    }
}
