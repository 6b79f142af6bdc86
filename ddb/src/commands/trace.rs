//! `trace` / `bt`: a stack trace, newest frame first, in ddb's shape:
//!
//! ```text
//! Tracing pid 3 tid 100007 td 0x7f3a5c001000
//! kernel::kern::sched::mi_switch(0,7f3a5c001000,1,0,7f3a5c0fe0a8) at 0x55d0c3a1b2c4 (+0x1a4) [sched.rs:212]
//! ```
//!
//! `(+0x1a4)` is the address's offset into the named function.
//!
//! The five words in parentheses are the stack words at each frame's CFA (see
//! [`crate::unwind`]): hints, not arguments, on x86-64.

use crate::context::CommandContext;
use crate::image::KernelImage;
use crate::target::{Frame, ThreadSummary};
use crate::unwind::{self, StopReason, Trace};

pub fn trace(ctx: &mut CommandContext<'_>, args: &str) -> Result<(), String> {
    let arg = args.trim();
    let (start, thread) = if arg.is_empty() { current(ctx)? } else { named(ctx, arg)? };
    let stack = thread.as_ref().and_then(|t| t.stack);
    if let Some(t) = &thread {
        ctx.print(&format!("Tracing pid {} tid {} td {:#x}\n", t.pid, t.tid, t.addr));
    }
    let trace = unwind::unwind(ctx.image, ctx.target, start, stack);
    let text = render(ctx.image, &trace);
    ctx.print(&text);
    Ok(())
}

/// The selected CPU's registers and its thread.
fn current(ctx: &CommandContext<'_>) -> Result<(Frame, Option<ThreadSummary>), String> {
    let cpu = ctx.cpu.ok_or("no cpu selected: give a thread, or select one with 'cpu N'")?;
    let regs = ctx.target.cpu_registers(cpu).ok_or_else(|| format!("cpu {cpu} has no registers"))?;
    let frame = regs.frame().ok_or_else(|| format!("cpu {cpu}: rip, rsp or rbp missing"))?;
    Ok((frame, ctx.target.cpu_thread(cpu)))
}

/// A thread by tid, pid or record address: its CPU's registers if it is running, else the
/// context `cpu_switch` saved.
fn named(ctx: &CommandContext<'_>, arg: &str) -> Result<(Frame, Option<ThreadSummary>), String> {
    let thread = ctx.find_thread(arg)?;
    let on_cpu = thread.oncpu.and_then(|c| ctx.target.cpu_registers(c)).and_then(|r| r.frame());
    let frame = on_cpu.or(thread.saved).ok_or_else(|| format!("thread {} has no saved context", thread.tid))?;
    Ok((frame, Some(thread)))
}

/// A trace as ddb prints it, one frame a line, and why it stopped if not at the bottom (also
/// the kernel's control socket's `stacks`).
pub fn render(image: &KernelImage, trace: &Trace) -> String {
    let mut text = String::new();
    for (i, frame) in trace.frames.iter().enumerate() {
        // A return address may already be past its function's end (a call to a function that
        // does not return): name the function that holds the call.
        let lookup = frame.lookup_pc(i);
        let sym = image.symbolize(lookup);
        let name = sym.map_or("??", |(name, _)| name);
        let args: Vec<String> = frame.args.iter().map(|a| a.map_or("?".to_string(), |v| format!("{v:x}"))).collect();
        text.push_str(&format!("{name}({}) at {:#x}", args.join(","), frame.pc));
        if let Some((_, off)) = sym {
            text.push_str(&format!(" (+{:#x})", off + frame.pc.wrapping_sub(lookup)));
        }
        if let Some(line) = image.source_line(frame.lookup_pc(i)) {
            text.push_str(&format!(" [{}]", line.short()));
        }
        text.push('\n');
    }
    let last_pc = trace.frames.last().map_or(0, |f| f.pc);
    let note = match trace.stop {
        StopReason::Bottom => None,
        StopReason::TooDeep => Some(format!("more frames not shown (at most {})", unwind::MAX_FRAMES)),
        StopReason::NoProgress => Some("the stack pointer did not advance".to_string()),
        StopReason::OutOfStack(addr) => Some(format!("next frame at {addr:#x} is outside the thread's stack")),
        StopReason::ReadError(addr) => Some(format!("cannot read the stack at {addr:#x}")),
        StopReason::NoUnwindInfo => Some(format!("no unwind information for {last_pc:#x}")),
    };
    if let Some(note) = note {
        text.push_str(&format!("--- trace stopped: {note} ---\n"));
    }
    text
}
