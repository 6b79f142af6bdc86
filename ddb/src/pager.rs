//! `--More--`: ddb's output pager (db_more in BSD's db_output.c).
//!
//! When the console reports a row count, a command's output stops after `rows - 1` lines with
//! `--More--` and waits for a key: space shows another page, enter one more line, `q` throws away
//! the rest of this command's output. The prompt is then erased with `\r        \r`. The count
//! starts again at every command.

use crate::Console;

/// The text shown when a page is full.
pub const MORE: &str = "--More--";

/// What erases [`MORE`].
pub const ERASE_MORE: &str = "\r        \r";

/// Output to a console, a page at a time.
pub struct Pager<'c> {
    console: &'c mut dyn Console,
    rows: Option<usize>,
    lines: usize,
    at_line_start: bool,
    discard: bool,
}

impl<'c> Pager<'c> {
    pub fn new(console: &'c mut dyn Console) -> Pager<'c> {
        // A page needs room for a line and the prompt.
        let rows = console.page_rows().map(|r| r.max(2));
        Pager { console, rows, lines: 0, at_line_start: true, discard: false }
    }

    /// Start counting afresh, for the next command.
    pub fn reset(&mut self) {
        self.lines = 0;
        self.discard = false;
    }

    /// The console, for reading the next command.
    pub fn console(&mut self) -> &mut dyn Console {
        &mut *self.console
    }

    /// Write `s`, stopping at `--More--` whenever a page is full.
    pub fn write(&mut self, s: &str) {
        for piece in s.split_inclusive('\n') {
            if self.discard {
                return;
            }
            if let Some(rows) = self.rows
                && self.at_line_start
                && self.lines >= rows - 1
            {
                self.more(rows);
                if self.discard {
                    return;
                }
            }
            self.console.write_str(piece);
            self.at_line_start = piece.ends_with('\n');
            if self.at_line_start {
                self.lines += 1;
            }
        }
    }

    /// Show `--More--` and act on the key.
    fn more(&mut self, rows: usize) {
        self.console.write_str(MORE);
        loop {
            match self.console.read_key() {
                Some(b' ') => self.lines = 0,
                Some(b'\r' | b'\n') => self.lines = rows - 2,
                Some(b'q' | b'Q' | b'x' | b'X') | None => self.discard = true,
                Some(_) => continue,
            }
            break;
        }
        self.console.write_str(ERASE_MORE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ScriptConsole;

    fn lines(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn no_rows_no_paging() {
        let mut console = ScriptConsole::default();
        Pager::new(&mut console).write(&lines(100));
        assert_eq!(console.out, lines(100));
    }

    #[test]
    fn space_enter_and_q() {
        let mut console = ScriptConsole { rows: Some(4), keys: [b' ', b'\n', b'q'].into(), ..Default::default() };
        let mut pager = Pager::new(&mut console);
        pager.write(&lines(20));
        pager.write("not shown\n");
        pager.reset();
        pager.write("next command\n");
        let more = format!("{MORE}{ERASE_MORE}");
        let expected =
            format!("line 1\nline 2\nline 3\n{more}line 4\nline 5\nline 6\n{more}line 7\n{more}next command\n");
        assert_eq!(console.out, expected);
    }

    #[test]
    fn other_keys_wait_and_eof_stops() {
        let mut console = ScriptConsole { rows: Some(3), keys: [b'z'].into(), ..Default::default() };
        Pager::new(&mut console).write(&lines(5));
        assert_eq!(console.out, format!("line 1\nline 2\n{MORE}{ERASE_MORE}"));
    }

    #[test]
    fn no_more_at_an_exact_page_end() {
        let mut console = ScriptConsole { rows: Some(4), ..Default::default() };
        Pager::new(&mut console).write(&lines(3));
        assert_eq!(console.out, lines(3));
    }
}
