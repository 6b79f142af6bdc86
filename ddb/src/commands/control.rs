//! Leaving ddb (`continue`, `halt`, `reboot`, `panic`), choosing a CPU, and finding commands.

use crate::Exit;
use crate::context::CommandContext;
use crate::debugger::KERNEL_COMMANDS;

/// `continue`: resume. After a fatal trap the kernel decides what resuming means (it panics).
pub fn cont(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    ctx.request_exit(Exit::Continue);
    Ok(())
}

pub fn halt(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    ctx.request_exit(Exit::Halt);
    Ok(())
}

pub fn reboot(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    ctx.request_exit(Exit::Reboot);
    Ok(())
}

pub fn panic(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    ctx.request_exit(Exit::Panic);
    Ok(())
}

/// `cpu N` selects a CPU; a bare `cpu` says which is selected.
pub fn cpu(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let arg = args.trim();
    if arg.is_empty() {
        let text = match ctx.cpu {
            Some(cpu) => format!("cpu {cpu} selected\n"),
            None => "no cpu selected\n".to_string(),
        };
        ctx.print(&text);
        return Ok(());
    }
    let ncpus = ctx.target.ncpus();
    let cpu: u32 = arg.parse().map_err(|_| format!("bad cpu number '{arg}'"))?;
    if cpu >= ncpus {
        return Err(format!("no cpu {cpu}: this system has cpus 0 to {}", ncpus.saturating_sub(1)));
    }
    if ctx.target.cpu_registers(cpu).is_none() {
        return Err(format!("cpu {cpu} has no registers"));
    }
    ctx.cpu = Some(cpu);
    ctx.print(&format!("cpu {cpu} selected\n"));
    Ok(())
}

/// Column where help text starts.
const HELP_COLUMN: usize = 24;

pub fn help(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    let mut entries = ctx.help.to_vec();
    entries.sort_by(|a, b| a.names.cmp(&b.names));
    let mut text = String::new();
    for entry in entries {
        let mut line = entry.names.join(", ");
        crate::format::pad_to(&mut line, HELP_COLUMN);
        line.push_str(&entry.help);
        text.push_str(&line);
        text.push('\n');
    }
    ctx.print(&text);
    Ok(())
}

/// A bare `show` lists the show commands; `show <unknown>` is no command. (Registered `show x`
/// commands are dispatched before this is reached.)
pub fn show(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let Some(what) = args.split_whitespace().next() else {
        let mut names: Vec<String> = ctx
            .help
            .iter()
            .flat_map(|e| e.names.first())
            .filter_map(|n| n.strip_prefix("show ").map(str::to_string))
            .collect();
        names.sort();
        ctx.print(&format!("show what? one of: {}\n", names.join(", ")));
        return Ok(());
    };
    let name = format!("show {what}");
    if KERNEL_COMMANDS.contains(&name.as_str()) {
        return Err(format!("{name}: not available: the kernel has not registered it"));
    }
    Err("No such command".to_string())
}
