//! The command loop: entry line, prompt, repeat, exits, dispatch, paging.

use std::sync::Arc;

use super::*;
use crate::pager::{ERASE_MORE, MORE};

#[test]
fn stopped_at_then_prompt() {
    let (out, exit) = run_script(&[]);
    assert_eq!(exit, Exit::EndOfInput);
    assert_eq!(out, "Stopped at      kernel::kern::sched::mi_switch: movq    (%rax),%rax\ndb> ");
}

#[test]
fn stopped_at_without_symbol_is_hex() {
    let mut target = fake_target();
    target.cpus[0] = Some(registers(0x1234, STACK, STACK + 0x10));
    target.map(0x1234, vec![0x90]);
    let mut console = ScriptConsole::new(&[]);
    Debugger::new(Arc::new(fake_image())).run(&target, &mut console, &Entry { cpu: None, fatal: false, commands: Vec::new() });
    assert!(console.out.starts_with("Stopped at      0x1234: nop\n"), "{}", console.out);
}

#[test]
fn entry_commands_run_before_the_first_prompt() {
    let target = fake_target();
    let mut console = ScriptConsole::new(&[]);
    let entry = Entry { cpu: Some(0), fatal: false, commands: vec!["print 0x2a".to_string()] };
    Debugger::new(Arc::new(fake_image())).run(&target, &mut console, &entry);
    assert!(console.out.ends_with("movq    (%rax),%rax\n0x2a\ndb> "), "{}", console.out);
}

#[test]
fn exits() {
    for (line, exit) in [
        ("continue", Exit::Continue),
        ("c", Exit::Continue),
        ("halt", Exit::Halt),
        ("reboot", Exit::Reboot),
        ("panic", Exit::Panic),
    ] {
        let (out, got) = run_script(&["print 1", line, "print 2"]);
        assert_eq!(got, exit, "{line}");
        assert!(!out.contains("0x2"), "{line} ran on: {out}");
    }
    assert_eq!(run_script(&["print 1"]).1, Exit::EndOfInput);
}

#[test]
fn print_and_unknown_commands() {
    let (out, _) = run_script(&["print 10", "frobnicate", "print/d 10", "print 1/0", "print", "ps", "show allpcpu"]);
    let expected = "db> print 10\n0x10\n\
                    db> frobnicate\nNo such command\n\
                    db> print/d 10\n16\n\
                    db> print 1/0\ndivision by zero\n\
                    db> print\nexpression expected\n\
                    db> ps\nps: not available: the kernel has not registered it\n\
                    db> show allpcpu\nshow allpcpu: not available: the kernel has not registered it\n\
                    db> ";
    assert!(out.ends_with(expected), "{out}");
}

#[test]
fn empty_line_repeats() {
    let (out, _) = run_script(&["print 1+1", "", "frobnicate", ""]);
    assert!(
        out.ends_with("db> print 1+1\n0x2\ndb> \n0x2\ndb> frobnicate\nNo such command\ndb> \nNo such command\ndb> "),
        "{out}"
    );
    // Nothing to repeat yet: just another prompt.
    let (out, _) = run_script(&["", "print 3"]);
    assert!(out.ends_with("db> \ndb> print 3\n0x3\ndb> "), "{out}");
}

#[test]
fn registered_commands_dispatch_by_words() {
    let mut debugger = Debugger::new(Arc::new(fake_image()));
    debugger.register(
        "show allpcpu",
        "per-cpu data",
        Arc::new(|ctx, args| {
            ctx.print(&format!("allpcpu [{}] cpu {:?}\n", args.trim(), ctx.cpu));
            Ok(())
        }),
    );
    debugger.register("ps", "list processes", Arc::new(|_, _| Err("ps failed on purpose".to_string())));
    let lines = ["show allpcpu", "show allpcpu 3", "show", "show bogus", "ps", "help"];
    let (out, _) = run_with(debugger, ScriptConsole::new(&lines));
    assert!(out.contains("db> show allpcpu\nallpcpu [] cpu Some(0)\n"), "{out}");
    assert!(out.contains("db> show allpcpu 3\nallpcpu [3] cpu Some(0)\n"), "{out}");
    assert!(out.contains("db> show\nshow what? one of: allpcpu, registers, thread\n"), "{out}");
    assert!(out.contains("db> show bogus\nNo such command\n"), "{out}");
    assert!(out.contains("db> ps\nps failed on purpose\n"), "{out}");
    assert!(out.contains("\nps                      list processes\n"), "{out}");
    assert!(out.contains("\nshow allpcpu            per-cpu data\n"), "{out}");
    assert!(out.contains("\ntrace, bt               trace [tid|pid|addr]"), "{out}");
}

#[test]
fn register_replaces_and_alias_follows() {
    let mut debugger = Debugger::new(Arc::new(fake_image()));
    debugger.register(
        "trace",
        "kernel trace",
        Arc::new(|ctx, _| {
            ctx.print("replaced\n");
            Ok(())
        }),
    );
    let (out, _) = run_with(debugger, ScriptConsole::new(&["bt"]));
    assert!(out.ends_with("db> bt\nreplaced\ndb> "), "{out}");
}

#[test]
fn cpu_selection() {
    let (out, _) = run_script(&["cpu", "cpu 1", "cpu 7", "cpu x", "cpu 0"]);
    assert!(out.contains("db> cpu\ncpu 0 selected\n"), "{out}");
    assert!(out.contains("db> cpu 1\ncpu 1 has no registers\n"), "{out}");
    assert!(out.contains("db> cpu 7\nno cpu 7: this system has cpus 0 to 1\n"), "{out}");
    assert!(out.contains("db> cpu x\nbad cpu number 'x'\n"), "{out}");
    assert!(out.ends_with("db> cpu 0\ncpu 0 selected\ndb> "), "{out}");
}

#[test]
fn paging_with_more_and_q() {
    let mut console = ScriptConsole::new(&["help", "print 5"]);
    console.rows = Some(4);
    console.keys = [b'q'].into();
    let (out, _) = run_with(Debugger::new(Arc::new(fake_image())), console);
    let after_help = out.split("db> help\n").nth(1).expect("help ran");
    let shown: Vec<&str> = after_help.split(MORE).collect();
    assert_eq!(shown.len(), 2, "{out}");
    assert_eq!(shown[0].lines().count(), 3, "{out}");
    assert!(shown[1].starts_with(&format!("{ERASE_MORE}db> print 5\n0x5\n")), "{out}");
}
