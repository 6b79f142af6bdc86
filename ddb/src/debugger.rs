//! The command loop: `Stopped at`, the `db>` prompt, the command table and its dispatcher.
//!
//! Commands are a table of (words, aliases, help, handler). ddb's own commands are registered by
//! [`Debugger::new`] exactly the way the kernel registers `ps` or `show allpcpu` (as DragonFly's
//! `DB_COMMAND`/`DB_SHOW_COMMAND` do), and registering an existing name replaces it. A line is
//! matched against the longest run of whole words: `show allpcpu` finds the two-word command,
//! `show foo` the `show` command with argument `foo`. The first word may carry ddb modifiers
//! (`x/i`, `print/d`); the handler gets them at the start of its argument text.

use std::sync::Arc;

use crate::context::{CommandContext, HelpEntry, Session};
use crate::image::KernelImage;
use crate::pager::Pager;
use crate::target::Target;
use crate::{CommandFn, Console, Entry, Exit, commands, disasm, format};

/// The prompt.
pub const PROMPT: &str = "db> ";

/// Commands that only the kernel can provide; typed before it registers them they say so.
pub const KERNEL_COMMANDS: [&str; 7] =
    ["ps", "show allpcpu", "show proc", "show map", "show locks", "show page", "dump"];

struct Command {
    words: Vec<String>,
    aliases: Vec<Vec<String>>,
    help: String,
    f: CommandFn,
}

impl Command {
    fn names(&self) -> impl Iterator<Item = &Vec<String>> {
        std::iter::once(&self.words).chain(self.aliases.iter())
    }
}

/// The debugger: the image, the command table, history.
pub struct Debugger {
    image: Arc<KernelImage>,
    commands: Vec<Command>,
    session: Session,
}

impl std::fmt::Debug for Debugger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.commands.iter().map(|c| c.words.join(" ")).collect();
        f.debug_struct("Debugger").field("image", &self.image).field("commands", &names).finish_non_exhaustive()
    }
}

fn words(name: &str) -> Vec<String> {
    name.split_whitespace().map(str::to_string).collect()
}

impl Debugger {
    pub fn new(image: Arc<KernelImage>) -> Debugger {
        let mut debugger = Debugger { image, commands: Vec::new(), session: Session::default() };
        commands::register_builtins(&mut debugger);
        debugger
    }

    /// Add a command (`"ps"`, `"show allpcpu"`); `help` lists it with `help_text`.
    pub fn register(&mut self, name: &str, help_text: &str, f: CommandFn) {
        let words = words(name);
        if words.is_empty() {
            return;
        }
        if let Some(existing) = self.commands.iter_mut().find(|c| c.words == words) {
            existing.help = help_text.to_string();
            existing.f = f;
            return;
        }
        // A new command takes its name back from any alias that had it.
        for command in &mut self.commands {
            command.aliases.retain(|a| *a != words);
        }
        self.commands.push(Command { words, aliases: Vec::new(), help: help_text.to_string(), f });
    }

    /// Make `alias` (`"bt"`, `"show reg"`) another name of the registered command `name`.
    /// Returns false when `name` is not registered.
    pub fn alias(&mut self, alias: &str, name: &str) -> bool {
        let (alias, name) = (words(alias), words(name));
        if alias.is_empty() || self.commands.iter().any(|c| c.words == alias) {
            return false;
        }
        match self.commands.iter_mut().find(|c| c.words == name) {
            Some(command) => {
                command.aliases.push(alias);
                true
            }
            None => false,
        }
    }

    pub fn image(&self) -> &Arc<KernelImage> {
        &self.image
    }

    /// Print `Stopped at …`, then run the command loop until one ends it.
    pub fn run(&mut self, target: &dyn Target, console: &mut dyn Console, entry: &Entry) -> Exit {
        let mut pager = Pager::new(console);
        let mut cpu = entry.cpu.or_else(|| target.entry_cpu());
        if let Some(rip) = cpu.and_then(|c| target.cpu_registers(c)).and_then(|r| r.get("rip")) {
            pager.write(&stopped_at(&self.image, target, rip));
            self.session.dot = rip;
            self.session.next = rip;
        }
        self.session.exit = None;
        for command in &entry.commands {
            self.execute(target, &mut pager, &mut cpu, command);
        }
        let mut last: Option<String> = None;
        loop {
            pager.reset();
            let Some(line) = pager.console().read_line(PROMPT) else {
                return Exit::EndOfInput;
            };
            let line = line.trim();
            let line = if line.is_empty() {
                match &last {
                    Some(previous) => previous.clone(),
                    None => continue,
                }
            } else {
                line.to_string()
            };
            self.session.repeat = None;
            self.execute(target, &mut pager, &mut cpu, &line);
            last = Some(self.session.repeat.take().unwrap_or(line));
            if let Some(exit) = self.session.exit.take() {
                return exit;
            }
        }
    }

    /// Run one command line.
    fn execute(&mut self, target: &dyn Target, pager: &mut Pager<'_>, cpu: &mut Option<u32>, line: &str) {
        let Some((index, args)) = self.find(line) else {
            let known = KERNEL_COMMANDS.iter().find(|k| starts_with_words(line, k));
            match known {
                Some(name) => pager.write(&format!("{name}: not available: the kernel has not registered it\n")),
                None => pager.write("No such command\n"),
            }
            return;
        };
        let f = Arc::clone(&self.commands[index].f);
        let help = self.help_entries();
        let mut out = |s: &str| pager.write(s);
        let mut ctx = CommandContext {
            target,
            image: &self.image,
            cpu: *cpu,
            out: &mut out,
            session: &mut self.session,
            help: &help,
        };
        let result = f(&mut ctx, args);
        *cpu = ctx.cpu;
        if let Err(message) = result {
            pager.write(&format!("{message}\n"));
        }
    }

    /// The command a line names (longest word match) and the argument text after its name.
    fn find<'l>(&self, line: &'l str) -> Option<(usize, &'l str)> {
        let (first, after_first) = split_first_word(line);
        let rest_words: Vec<(usize, &str)> = word_spans(after_first);
        let mut best: Option<(usize, usize)> = None; // (index, words matched)
        for (index, command) in self.commands.iter().enumerate() {
            for name in command.names() {
                let matched = name.len();
                let fits = name[0] == first
                    && name[1..].iter().zip(&rest_words).filter(|(w, (_, r))| *w == r).count() == matched - 1;
                if fits && best.is_none_or(|(_, n)| matched > n) {
                    best = Some((index, matched));
                }
            }
        }
        let (index, matched) = best?;
        let args = match matched {
            1 => after_first,
            n => {
                let (start, word) = rest_words[n - 2];
                &after_first[start + word.len()..]
            }
        };
        Some((index, args))
    }

    fn help_entries(&self) -> Vec<HelpEntry> {
        self.commands
            .iter()
            .map(|c| HelpEntry { names: c.names().map(|n| n.join(" ")).collect(), help: c.help.clone() })
            .collect()
    }
}

/// The command word (up to whitespace or a `/` modifier) and the rest of the line, modifiers
/// included.
fn split_first_word(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    let end = line.find(|c: char| c.is_whitespace() || c == '/').unwrap_or(line.len());
    (&line[..end], &line[end..])
}

/// Whitespace-separated words with their byte offsets.
fn word_spans(s: &str) -> Vec<(usize, &str)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(st)) => {
                spans.push((st, &s[st..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        spans.push((st, &s[st..]));
    }
    spans
}

/// `line`'s leading words are `name`'s words.
fn starts_with_words(line: &str, name: &str) -> bool {
    let (first, rest) = split_first_word(line);
    let mut line_words = std::iter::once(first).chain(rest.split_whitespace());
    name.split_whitespace().all(|w| line_words.next() == Some(w))
}

/// `Stopped at      name+0xoff:     insn`.
fn stopped_at(image: &KernelImage, target: &dyn Target, rip: u64) -> String {
    let mut line = String::from("Stopped at");
    format::tab(&mut line);
    line.push_str(&format::location(image, rip));
    line.push(':');
    format::tab(&mut line);
    match disasm::disassemble(image, target, rip) {
        Ok(insn) => line.push_str(&insn.text),
        Err(e) => line.push_str(&format!("<{e}>")),
    }
    line.push('\n');
    line
}
