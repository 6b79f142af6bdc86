//! The image, disassembler and CFI unwinder on this test binary: real symbols, real code, real
//! `.eh_frame`.

use std::sync::Arc;
use std::time::Instant;

use crate::disasm;
use crate::testutil::{
    FakeTarget, ScriptConsole, SelfTarget, ddb_probe_callee, ddb_probe_caller, registers, self_image,
};
use crate::unwind::{self, Method, StopReason};
use crate::{Debugger, Entry, Exit, Frame, KernelImage};

fn addr_of(f: fn(u64) -> u64) -> u64 {
    f as usize as u64
}

#[test]
fn load_is_quick_and_finds_symbols() {
    let exe = std::env::current_exe().expect("current_exe");
    let started = Instant::now();
    let image = KernelImage::load(&exe, 0).expect("load");
    eprintln!("loaded {} symbols in {:?}", image.symbol_count(), started.elapsed());
    assert!(image.symbol_count() > 1000);
    assert!(image.unwind_sections().eh_frame.is_some());
    assert!(image.unwind_sections().eh_frame_hdr.is_some());
}

#[test]
fn symbolize_and_lookup_a_function() {
    let image = self_image();
    let callee = addr_of(ddb_probe_callee);
    let (name, off) = image.symbolize(callee).expect("symbolize");
    assert_eq!((name, off), ("ddb::testutil::ddb_probe_callee", 0));
    let (name, off) = image.symbolize(callee + 3).expect("symbolize +3");
    assert_eq!((name, off), ("ddb::testutil::ddb_probe_callee", 3));
    assert_eq!(image.lookup("ddb_probe_callee"), Some(callee));
    assert_eq!(image.lookup("testutil::ddb_probe_callee"), Some(callee));
    assert_eq!(image.lookup("ddb::testutil::ddb_probe_callee"), Some(callee));
    assert_eq!(image.lookup("probe_callee"), None);
    // The raw (mangled) name gives the unrelocated value.
    let sym = image.symbol_table().resolve("ddb_probe_callee").expect("resolve");
    assert_eq!(image.raw_symbol(&sym.raw_name), Some(callee - image.bias()));
    assert_eq!(image.lookup(&sym.raw_name), Some(callee));
}

#[test]
fn source_lines() {
    let image = self_image();
    let line = image.source_line(addr_of(ddb_probe_callee)).expect("line table");
    assert_eq!(line.file_name(), "testutil.rs");
    assert!(line.line > 100, "{line:?}");
}

#[test]
fn disassemble_real_code_through_proc_self_mem() {
    let image = self_image();
    let target = SelfTarget::new();
    let caller = addr_of(ddb_probe_caller);
    let first = disasm::disassemble(image, &target, caller).expect("first instruction");
    assert!(!first.text.contains("(bad)"), "{first:?}");
    let mut at = caller;
    let mut found = None;
    for _ in 0..64 {
        let insn = disasm::disassemble(image, &target, at).expect("instruction");
        if insn.text.starts_with("call") && insn.text.contains("ddb_probe_callee") {
            found = Some(insn);
            break;
        }
        at += insn.len as u64;
    }
    let call = found.expect("a call to ddb_probe_callee");
    assert_eq!(call.text, "callq   ddb::testutil::ddb_probe_callee");
    // Unreadable memory is an error, not a fault.
    assert!(disasm::disassemble(image, &target, 8).is_err());
}

/// The return address just after `ddb_probe_caller`'s call to `ddb_probe_callee`.
fn return_address_in_caller(image: &KernelImage) -> u64 {
    let target = SelfTarget::new();
    let mut at = addr_of(ddb_probe_caller);
    loop {
        let insn = disasm::disassemble(image, &target, at).expect("instruction");
        at += insn.len as u64;
        if insn.text.starts_with("call") && insn.text.contains("ddb_probe_callee") {
            return at;
        }
    }
}

#[test]
fn cfi_unwinds_from_a_function_entry() {
    let image = self_image();
    let ra = return_address_in_caller(image);
    // At its first instruction a function's CFA is rsp + 8 and the return address is at rsp.
    const RSP: u64 = 0x7000_0000;
    let mut target = FakeTarget::default();
    let mut stack = vec![0u64; 512];
    stack[0] = ra;
    stack[1..6].copy_from_slice(&[10, 11, 12, 13, 14]);
    // The caller's frame pointer, in case its CFA is rbp-based: saved rbp 0, return address 0.
    const RBP: u64 = RSP + 0x800;
    target.map_words(RSP, &stack);
    let start = Frame { rip: addr_of(ddb_probe_callee), rsp: RSP, rbp: RBP };
    let trace = unwind::unwind(image, &target, start, Some((RSP, RSP + 4096)));
    assert_eq!(trace.frames.len(), 2, "{trace:?}");
    assert_eq!(trace.stop, StopReason::Bottom);
    let f0 = &trace.frames[0];
    assert_eq!(
        (f0.method, f0.cfa, f0.args),
        (Method::Cfi, Some(RSP + 8), [Some(10), Some(11), Some(12), Some(13), Some(14)])
    );
    let f1 = &trace.frames[1];
    assert_eq!(f1.pc, ra);
    assert_eq!(f1.method, Method::Cfi);
    assert_eq!(image.symbolize(f1.pc).map(|s| s.0), Some("ddb::testutil::ddb_probe_caller"));
    // The caller's frame is above the callee's.
    assert!(f1.cfa.expect("caller cfa") > RSP + 8);
}

#[test]
fn undefined_return_address_ends_the_walk() {
    // glibc's _start marks its return address undefined (`cfi_undefined (rip)`), as a kernel
    // thread's trampoline does.
    let image = self_image();
    let Some(start) = image.raw_symbol("_start") else {
        eprintln!("no _start symbol: skipped");
        return;
    };
    let mut target = FakeTarget::default();
    target.map_words(0x7000_0000, &[0xdead; 64]);
    let frame = Frame { rip: start + image.bias(), rsp: 0x7000_0000, rbp: 0 };
    let trace = unwind::unwind(image, &target, frame, None);
    assert_eq!(trace.frames.len(), 1, "{trace:?}");
    assert_eq!(trace.stop, StopReason::Bottom, "{trace:?}");
    assert_eq!(trace.frames[0].method, Method::Cfi);
}

#[test]
fn stopped_at_and_trace_with_real_symbols_and_lines() {
    let image = self_image();
    let ra = return_address_in_caller(image);
    const RSP: u64 = 0x7000_0000;
    let mut target = FakeTarget { fallback: Some(SelfTarget::new()), ..Default::default() };
    let mut stack = vec![0u64; 512];
    stack[0] = ra;
    stack[1..6].copy_from_slice(&[0xa, 0xb, 0xc, 0xd, 0xe]);
    target.map_words(RSP, &stack);
    let callee = addr_of(ddb_probe_callee);
    target.cpus = vec![Some(registers(callee, RSP, RSP + 0x800))];
    let mut console = ScriptConsole::new(&["trace", "x/i ddb_probe_callee,2"]);
    let exit = Debugger::new(Arc::clone(image)).run(&target, &mut console, &Entry { cpu: Some(0), fatal: false, commands: Vec::new() });
    assert_eq!(exit, Exit::EndOfInput);
    let out = &console.out;
    let first = out.lines().next().expect("Stopped at");
    assert!(first.starts_with("Stopped at      ddb::testutil::ddb_probe_callee: "), "{out}");
    assert!(!first.contains("cannot read"), "{out}");
    let trace: Vec<&str> = out.split("db> trace\n").nth(1).expect("trace ran").lines().take(2).collect();
    assert!(
        trace[0].starts_with(&format!("ddb::testutil::ddb_probe_callee(a,b,c,d,e) at {callee:#x} (+0x0) [testutil.rs:")),
        "{out}"
    );
    assert!(trace[1].starts_with("ddb::testutil::ddb_probe_caller("), "{out}");
    assert!(trace[1].contains(&format!(") at {ra:#x} (+0x")) && trace[1].contains(") [testutil.rs:"), "{out}");
    assert!(out.contains("\nddb::testutil::ddb_probe_callee+0x"), "{out}");
}
