//! What a command handler sees: the target, the image, the selected CPU, paged output, and the
//! session state that outlives one command (dot, the next address, the last `x` format).

use crate::Exit;
use crate::expr::{self, Env};
use crate::image::KernelImage;
use crate::target::{RegisterSet, Target, ThreadSummary};

/// State kept between commands (and between entries into ddb, like ddb's `db_dot`).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// `.`: the last address examined.
    pub dot: u64,
    /// Where a bare `x` continues.
    pub next: u64,
    /// The last `x` modifiers (`xl` until one is given).
    pub x_format: String,
    /// Set by a command that ends the loop.
    pub exit: Option<Exit>,
    /// What an empty line runs instead of the line just run (a bare `x` continues, say).
    pub repeat: Option<String>,
}

impl Default for Session {
    fn default() -> Self {
        Session { dot: 0, next: 0, x_format: "xl".to_string(), exit: None, repeat: None }
    }
}

/// One line of `help`.
#[derive(Debug, Clone)]
pub(crate) struct HelpEntry {
    pub names: Vec<String>,
    pub help: String,
}

/// What a command handler gets.
pub struct CommandContext<'a> {
    pub target: &'a dyn Target,
    pub image: &'a KernelImage,
    /// The CPU selected with `cpu N` (initially the entry CPU).
    pub cpu: Option<u32>,
    pub(crate) out: &'a mut dyn FnMut(&str),
    pub(crate) session: &'a mut Session,
    pub(crate) help: &'a [HelpEntry],
}

impl CommandContext<'_> {
    /// Write command output (paged).
    pub fn print(&mut self, s: &str) {
        (self.out)(s)
    }

    /// The selected CPU's registers.
    pub fn registers(&self) -> Option<RegisterSet> {
        self.target.cpu_registers(self.cpu?)
    }

    /// The thread on the selected CPU.
    pub fn current_thread(&self) -> Option<ThreadSummary> {
        self.target.cpu_thread(self.cpu?)
    }

    /// Evaluate a ddb expression (hex by default; symbols, `$reg`, `.`, `*addr`).
    pub fn eval(&self, text: &str) -> Result<u64, String> {
        let regs = self.registers();
        let env = Env { image: self.image, target: self.target, registers: regs.as_ref(), dot: self.session.dot };
        expr::evaluate(&env, text).map_err(|e| e.to_string())
    }

    /// `.`, the last address examined.
    pub fn dot(&self) -> u64 {
        self.session.dot
    }

    /// Set `.` (and where a bare `x` continues).
    pub fn set_dot(&mut self, addr: u64) {
        self.session.dot = addr;
        self.session.next = addr;
    }

    /// End the command loop once this command returns.
    pub fn request_exit(&mut self, exit: Exit) {
        self.session.exit = Some(exit);
    }

    /// Find a thread the way `trace` and `show thread` name one: a decimal tid or pid first, then
    /// an expression (a record address, hex by default).
    pub fn find_thread(&self, arg: &str) -> Result<ThreadSummary, String> {
        let arg = arg.trim();
        if let Ok(n) = arg.parse::<u64>()
            && let Some(thread) = self.target.find_thread(n)
        {
            return Ok(thread);
        }
        let key = self.eval(arg)?;
        self.target.find_thread(key).ok_or_else(|| format!("no such thread or process: {arg}"))
    }
}
