//! [`StdConsole`]: the [`Console`] the kernel hands to ddb.
//!
//! Output goes through the `write` callback only — the kernel passes a raw write(2) to fd 1,
//! because a stopped CPU may hold std's stdout lock, so ddb never uses `print!`. Input:
//!
//! - on a terminal, rustyline reads lines with editing and in-memory history; Ctrl-C gives an
//!   empty line, Ctrl-D (end of file) ends input;
//! - otherwise the prompt is written and a line is assembled from `read_key`, one byte at a time,
//!   without echo. Reading byte-wise (rather than through `std::io::stdin()`) keeps nothing
//!   buffered in the process when ddb returns, and takes no lock a stopped CPU could hold.
//!
//! `--More--` keys also come from `read_key`.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::Console;

/// How output is written.
pub type WriteFn = Box<dyn FnMut(&[u8]) + Send>;

/// How one byte of input is read (None at end of input).
pub type ReadKeyFn = Box<dyn FnMut() -> Option<u8> + Send>;

/// The longest command line taken from a non-terminal; the rest of the line is dropped.
const MAX_LINE: usize = 4096;

/// A console over a write callback and a key reader, with rustyline on a terminal.
pub struct StdConsole {
    write: WriteFn,
    read_key: ReadKeyFn,
    rows: Option<usize>,
    terminal: bool,
    /// Created on the first line read from a terminal; None after creating it failed.
    editor: Option<DefaultEditor>,
    editor_failed: bool,
}

impl std::fmt::Debug for StdConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdConsole").field("rows", &self.rows).field("terminal", &self.terminal).finish_non_exhaustive()
    }
}

impl StdConsole {
    /// `rows`: page output with `--More--` after this many rows (None: never). `terminal`: read
    /// lines with rustyline.
    pub fn new(write: WriteFn, read_key: ReadKeyFn, rows: Option<usize>, terminal: bool) -> StdConsole {
        StdConsole { write, read_key, rows, terminal, editor: None, editor_failed: false }
    }

    fn editor(&mut self) -> Option<&mut DefaultEditor> {
        if self.editor.is_none() && !self.editor_failed {
            match DefaultEditor::new() {
                Ok(editor) => self.editor = Some(editor),
                Err(_) => self.editor_failed = true,
            }
        }
        self.editor.as_mut()
    }

    /// A line from `read_key`, after writing the prompt.
    fn read_plain_line(&mut self, prompt: &str) -> Option<String> {
        (self.write)(prompt.as_bytes());
        let mut bytes = Vec::new();
        loop {
            match (self.read_key)() {
                None if bytes.is_empty() => return None,
                None | Some(b'\n') => break,
                Some(b) if bytes.len() < MAX_LINE => bytes.push(b),
                Some(_) => {}
            }
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Console for StdConsole {
    fn write_str(&mut self, s: &str) {
        (self.write)(s.as_bytes());
    }

    fn read_line(&mut self, prompt: &str) -> Option<String> {
        if !self.terminal {
            return self.read_plain_line(prompt);
        }
        let Some(editor) = self.editor() else {
            return self.read_plain_line(prompt);
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    // History is a convenience: a full or failing history loses nothing else.
                    let _ = editor.add_history_entry(line.as_str());
                }
                Some(line)
            }
            Err(ReadlineError::Interrupted) => Some(String::new()),
            Err(_) => None,
        }
    }

    fn page_rows(&self) -> Option<usize> {
        self.rows
    }

    fn read_key(&mut self) -> Option<u8> {
        (self.read_key)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn console(input: &[u8]) -> (StdConsole, Arc<Mutex<Vec<u8>>>) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let mut input: std::collections::VecDeque<u8> = input.iter().copied().collect();
        let console = StdConsole::new(
            Box::new(move |b| sink.lock().expect("sink").extend_from_slice(b)),
            Box::new(move || input.pop_front()),
            Some(24),
            false,
        );
        (console, out)
    }

    #[test]
    fn plain_lines_from_read_key() {
        let (mut c, out) = console(b"trace\r\nx/i foo\nlast");
        assert_eq!(c.read_line("db> ").as_deref(), Some("trace"));
        assert_eq!(c.read_line("db> ").as_deref(), Some("x/i foo"));
        assert_eq!(c.read_line("db> ").as_deref(), Some("last"));
        assert_eq!(c.read_line("db> "), None);
        c.write_str("done\n");
        assert_eq!(c.page_rows(), Some(24));
        assert_eq!(String::from_utf8_lossy(&out.lock().expect("out")), "db> db> db> db> done\n");
    }
}
