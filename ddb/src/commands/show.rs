//! `show registers` and `show thread`: what ddb knows without help from the kernel.

use crate::context::CommandContext;
use crate::format;
use crate::target::ThreadSummary;

/// `show registers`: `name  0x%016x  symbol+0xoff`, one register a line, like FreeBSD's ddb.
pub fn registers(ctx: &mut CommandContext<'_>, _args: &str) -> Result<(), String> {
    let cpu = ctx.cpu.ok_or("no cpu selected: select one with 'cpu N'")?;
    let regs = ctx.target.cpu_registers(cpu).ok_or_else(|| format!("cpu {cpu} has no registers"))?;
    let mut text = String::new();
    for &(name, value) in &regs.regs {
        text.push_str(&format!("{name:<9}{value:#018x}"));
        if let Some((sym, off)) = ctx.image.symbolize_exact(value) {
            text.push_str("  ");
            text.push_str(&format::sym_off(sym, off));
        }
        text.push('\n');
    }
    ctx.print(&text);
    Ok(())
}

/// Column where `show thread` values start.
const FIELD_COLUMN: usize = 10;

/// `show thread [tid|addr]`: the selected CPU's thread, or the one named.
pub fn thread(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let arg = args.trim();
    let thread = if arg.is_empty() {
        let cpu = ctx.cpu.ok_or("no cpu selected: name a thread")?;
        ctx.current_thread().ok_or_else(|| format!("no thread on cpu {cpu}"))?
    } else {
        ctx.find_thread(arg)?
    };
    let text = describe(ctx, &thread);
    ctx.print(&text);
    Ok(())
}

fn describe(ctx: &CommandContext<'_>, t: &ThreadSummary) -> String {
    let mut fields: Vec<(&str, String)> = vec![
        ("tid", t.tid.to_string()),
        ("pid", t.pid.to_string()),
        ("name", t.name.clone()),
        ("record", format!("{:#x}", t.addr)),
        ("state", t.state.clone()),
        ("cpu", t.oncpu.map_or("-".to_string(), |c| c.to_string())),
    ];
    if let Some(saved) = t.saved {
        fields.push((
            "saved",
            format!("rip {} rsp {:#x} rbp {:#x}", format::location(ctx.image, saved.rip), saved.rsp, saved.rbp),
        ));
    }
    if let Some((lo, hi)) = t.stack {
        let kib = hi.saturating_sub(lo) / 1024;
        fields.push(("stack", format!("{lo:#x}-{hi:#x} ({kib} KiB)")));
    }
    let mut text = format!("{t}\n");
    for (name, value) in fields {
        let mut line = format!("  {name}");
        format::pad_to(&mut line, FIELD_COLUMN);
        line.push_str(&value);
        text.push_str(&line);
        text.push('\n');
    }
    text
}
