//! Crate-level tests: the command loop end to end against a fake system, and the image,
//! disassembler and unwinder against this test binary itself.

mod commands;
mod selfimage;
mod session;
mod unwinding;

use std::sync::Arc;

use crate::symtab::{Symbol, SymbolKind};
use crate::target::{Frame, ThreadSummary};
use crate::testutil::{FakeTarget, ScriptConsole, registers};
use crate::{Debugger, Entry, Exit, KernelImage};

pub const MI_SWITCH: u64 = 0x40_1000;
pub const FORK: u64 = 0x40_2000;
pub const THREAD_START: u64 = 0x40_3000;
pub const ALLPROC: u64 = 0x60_0000;
pub const STACK: u64 = 0x7000_0000;
pub const THREAD_RECORD: u64 = 0x7f00_1000;

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<KernelImage>();
    send_sync::<Debugger>();
    send::<crate::StdConsole>();
}

/// Four symbols at bias 0.
pub fn fake_image() -> KernelImage {
    let sym = |value, size, kind, name: &str| Symbol {
        value,
        size,
        kind,
        name: name.to_string(),
        raw_name: name.to_string(),
    };
    KernelImage::from_symbols(
        vec![
            sym(MI_SWITCH, 0x100, SymbolKind::Function, "kernel::kern::sched::mi_switch"),
            sym(FORK, 0x80, SymbolKind::Function, "kernel::kern::proc::fork"),
            sym(THREAD_START, 0x40, SymbolKind::Function, "kernel::thread_start"),
            sym(ALLPROC, 8, SymbolKind::Object, "kernel::ALLPROC"),
        ],
        vec![(MI_SWITCH, THREAD_START + 0x40)],
        0,
    )
}

/// A two-CPU system stopped in `mi_switch` on cpu 0 with a three-frame `rbp` chain; cpu 1 has no
/// registers; thread 100002 is off CPU with a saved context in `fork`.
pub fn fake_target() -> FakeTarget {
    let mut t = FakeTarget::default();
    // mi_switch: movq (%rax),%rax; call fork; ret
    t.map(MI_SWITCH, vec![0x48, 0x8b, 0x00, 0xe8, 0xf8, 0x0f, 0x00, 0x00, 0xc3]);
    let mut stack = vec![0u64; 32];
    stack[0] = 0xaa;
    stack[1] = 0xbb;
    stack[2] = STACK + 0x50; // frame 0's rbp → frame 1
    stack[3] = FORK + 0x10;
    stack[4..9].copy_from_slice(&[1, 2, 3, 4, 5]);
    stack[10] = STACK + 0x90;
    stack[11] = THREAD_START + 8;
    stack[12..17].copy_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15]);
    // stack[18], stack[19]: rbp 0, return address 0: the bottom.
    t.map_words(STACK, &stack);
    t.map(
        ALLPROC - 0x10,
        b"vk kernel\0\0\0\0\0\0\0".iter().copied().chain(0x1122_3344_5566_7788u64.to_le_bytes()).collect(),
    );
    t.cpus = vec![Some(registers(MI_SWITCH, STACK, STACK + 0x10)), None];
    let running = ThreadSummary {
        tid: 100001,
        pid: 1,
        addr: THREAD_RECORD,
        name: "init".into(),
        state: "running on cpu0".into(),
        oncpu: Some(0),
        saved: None,
        stack: Some((STACK, STACK + 0x1000)),
    };
    let sleeping = ThreadSummary {
        tid: 100002,
        pid: 2,
        addr: THREAD_RECORD + 0x400,
        name: "syncer".into(),
        state: "sleeping on \"syncer\"".into(),
        oncpu: None,
        saved: Some(Frame { rip: FORK + 0x10, rsp: STACK + 0x40, rbp: STACK + 0x50 }),
        stack: Some((STACK, STACK + 0x1000)),
    };
    t.cpu_threads = vec![Some(running.clone()), None];
    t.threads = vec![running, sleeping];
    t.entry = Some(0);
    t
}

/// Run a script against the fake system; the transcript and how the loop ended.
pub fn run_script(lines: &[&str]) -> (String, Exit) {
    run_with(Debugger::new(Arc::new(fake_image())), ScriptConsole::new(lines))
}

pub fn run_with(mut debugger: Debugger, mut console: ScriptConsole) -> (String, Exit) {
    let target = fake_target();
    let exit = debugger.run(&target, &mut console, &Entry { cpu: Some(0), fatal: true, commands: Vec::new() });
    (console.out, exit)
}

/// The output of the one command in `line` (between its echo and the next prompt).
pub fn output_of(line: &str) -> String {
    let (out, _) = run_script(&[line]);
    let echo = format!("db> {line}\n");
    let start = out.find(&echo).map_or(0, |i| i + echo.len());
    let rest = &out[start..];
    rest[..rest.find("db> ").unwrap_or(rest.len())].to_string()
}
