//! ddb — vk's kernel debugger, after ddb(4).
//!
//! When kernel code faults or panics, every CPU stops and the kernel calls [`Debugger::run`] on
//! the trapping CPU. ddb reads the stopped system only through [`Target`] (memory reads that fail
//! instead of faulting, CPU registers, threads) and talks through a [`Console`]; it takes no lock
//! the trapped code could hold.
//!
//! | module        | what it owns                                                        |
//! |---------------|---------------------------------------------------------------------|
//! | `target`      | the [`Target`] contract: memory, registers, threads                 |
//! | `image`       | [`KernelImage`]: the kernel's ELF — symbols, unwind and line tables |
//! | `symtab`      | the sorted symbol table: `name+0xoff` and name look-up              |
//! | `unwind`      | the stack walker: `.eh_frame` CFI, frame pointers as a fallback     |
//! | `disasm`      | AT&T disassembly (iced-x86) with symbolized branch targets          |
//! | `expr`        | the expression language (`print`, `x`, `trace` arguments)           |
//! | `debugger`    | [`Debugger`]: `Stopped at`, the `db>` loop, the command table       |
//! | `context`     | [`CommandContext`]: what a command handler gets                     |
//! | `commands`    | the built-in commands                                               |
//! | `pager`       | `--More--`                                                          |
//! | `console`     | [`StdConsole`]: rustyline on a terminal, plain lines otherwise      |
//! | `format`      | how addresses and columns are printed                               |
//!
//! The kernel registers the commands that need its own types (`ps`, `show allpcpu`,
//! `show msgbuf`/`dmesg`, `show proc`, `show map`, `show syscalls`, `show locks`,
//! `show page`, `ktrace`, `dump`) with [`Debugger::register`].

#![deny(unsafe_code)]

mod commands;
pub mod console;
mod context;
mod debugger;
pub mod disasm;
mod elffile;
pub mod expr;
pub mod format;
pub mod image;
mod pager;
pub mod symtab;
pub mod target;
pub mod unwind;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use console::StdConsole;
pub use context::CommandContext;
pub use commands::trace::render as render_trace;
pub use debugger::{Debugger, KERNEL_COMMANDS, PROMPT};
pub use image::{ImageError, KernelImage, SourceLine};
pub use symtab::LookupError;
pub use target::{Frame, ReadError, RegisterSet, Target, ThreadSummary};

use std::sync::Arc;

/// How ddb talks to the person at the console.
pub trait Console {
    /// Write output (already formatted, `\n` line ends).
    fn write_str(&mut self, s: &str);
    /// Read one command line after printing `prompt`; None at end of input.
    fn read_line(&mut self, prompt: &str) -> Option<String>;
    /// Rows of the terminal when output should be paged with `--More--`, else None.
    fn page_rows(&self) -> Option<usize>;
    /// Read one key for `--More--` (space: a page, enter: a line, q: stop). None: end of input.
    fn read_key(&mut self) -> Option<u8>;
}

/// What entered the debugger, for the `Stopped at` line and for `continue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The CPU that entered (its registers give `Stopped at`).
    pub cpu: Option<u32>,
    /// Entered because of a fatal trap or a panic: `continue` cannot resume.
    pub fatal: bool,
    /// Commands run before the first prompt (the watchdog's entry runs `trace`).
    pub commands: Vec<String>,
}

/// How the command loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `continue`: resume the system.
    Continue,
    /// `halt`.
    Halt,
    /// `reboot`.
    Reboot,
    /// `panic`.
    Panic,
    /// End of input at the prompt.
    EndOfInput,
}

/// A command handler: gets the rest of the line after the command name.
pub type CommandFn = Arc<dyn Fn(&mut CommandContext<'_>, &str) -> Result<(), String> + Send + Sync>;
