//! Built-in commands against the fake system: `x`, `print`, `trace`, `show`.

use super::*;

#[test]
fn x_sizes_and_formats() {
    // STACK holds 0xaa, 0xbb, STACK + 0x50, …
    assert_eq!(
        output_of("x/gx 70000000,4"),
        "0x70000000:     aa                bb\n0x70000010:     70000050          402010\n"
    );
    assert_eq!(output_of("x/gz 70000000,2"), "0x70000000:     00000000000000aa  00000000000000bb\n");
    assert_eq!(output_of("x 70000000"), "0x70000000:     aa\n");
    assert_eq!(
        output_of("x 70000000,5"),
        "0x70000000:     aa        0         bb        0\n0x70000010:     70000050\n"
    );
    assert_eq!(output_of("x/bx 70000000,3"), "0x70000000:     aa  0   0\n");
    assert_eq!(output_of("x/hd 70000000,2"), "0x70000000:     170     0\n");
    assert_eq!(output_of("x/bd 70000000,1"), "0x70000000:     -86\n");
    assert_eq!(output_of("x/bu 70000000,1"), "0x70000000:     170\n");
    assert_eq!(output_of("x/bo 70000000,1"), "0x70000000:     252\n");
    assert_eq!(output_of("x/c ALLPROC-10,4"), "0x5ffff0:       vk k\n");
    assert_eq!(output_of("x/s ALLPROC-10"), "0x5ffff0:       vk kernel\n");
    assert_eq!(output_of("x/gx ALLPROC"), "kernel::ALLPROC:        1122334455667788\n");
    assert_eq!(output_of("x/a 70000018"), "0x70000018:     0x402010  kernel::kern::proc::fork+0x10\n");
}

#[test]
fn x_bad_input() {
    assert_eq!(output_of("x/q 0"), "bad modifier 'q'\n");
    assert_eq!(output_of("x/gx 10"), "cannot read 8 bytes at 0x10\n");
    assert_eq!(output_of("x/gx nosuch"), "symbol 'nosuch' not found\n");
    assert_eq!(output_of("x/gx 70000000,ffffffff"), "count 0xffffffff is too large (at most 0x10000)\n");
    // Runs off the end of the mapping: what was read, then the error.
    assert_eq!(
        output_of("x/gx 700000f0,4"),
        "0x700000f0:     0                 0\ncannot read 8 bytes at 0x70000100\n"
    );
}

#[test]
fn x_continues_and_remembers_format() {
    let (out, _) = run_script(&["x/gx 70000000,2", "", "x", "x/bx ,2"]);
    let expected = "db> x/gx 70000000,2\n0x70000000:     aa                bb\n\
                    db> \n0x70000010:     70000050          402010\n\
                    db> x\n0x70000020:     1\n\
                    db> x/bx ,2\n0x70000028:     2   0\n\
                    db> ";
    assert!(out.ends_with(expected), "{out}");
}

#[test]
fn x_instructions_symbolize_targets() {
    let out = output_of("x/i mi_switch,3");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "kernel::kern::sched::mi_switch: movq    (%rax),%rax");
    assert_eq!(lines[1], "kernel::kern::sched::mi_switch+0x3:     callq   kernel::kern::proc::fork");
    assert_eq!(lines[2], "kernel::kern::sched::mi_switch+0x8:     retq");
    // gdb's form: a decimal count before the letters.
    assert_eq!(output_of("x/3i mi_switch"), out);
    assert_eq!(output_of("x/2gx 70000000"), output_of("x/gx 70000000,2"));
    assert_eq!(output_of("x/10bx 70000000"), output_of("x/bx 70000000,0t10"));
    assert_eq!(output_of("x/2i mi_switch,2"), "count given twice (x/Ni addr or x/i addr,N)\n");
    // Past the mapped bytes: the read shrinks, then fails.
    let out = output_of("x/i mi_switch+8,2");
    assert!(out.ends_with("cannot read 1 bytes at 0x401009\n"), "{out}");
}

#[test]
fn print_formats() {
    assert_eq!(output_of("print/x 0t255"), "0xff\n");
    assert_eq!(output_of("print/d -1"), "-1\n");
    assert_eq!(output_of("print/u -1"), "18446744073709551615\n");
    assert_eq!(output_of("print/o 8"), "0o10\n");
    assert_eq!(output_of("print/c 41"), "A\n");
    assert_eq!(output_of("print/z 1"), "0x0000000000000001\n");
    assert_eq!(output_of("print/a fork+10"), "kernel::kern::proc::fork+0x10\n");
    assert_eq!(output_of("print $rip"), "0x401000\n");
    assert_eq!(output_of("print *ALLPROC"), "0x1122334455667788\n");
    assert_eq!(output_of("print/q 1"), "bad modifier 'q'\n");
    assert_eq!(output_of("print mi_"), "symbol 'mi_' not found\n");
}

#[test]
fn trace_current_cpu() {
    let out = output_of("trace");
    let expected = "Tracing pid 1 tid 100001 td 0x7f001000\n\
                    kernel::kern::sched::mi_switch(1,2,3,4,5) at 0x401000 (+0x0)\n\
                    kernel::kern::proc::fork(11,12,13,14,15) at 0x402010 (+0x10)\n\
                    kernel::thread_start(0,0,0,0,0) at 0x403008 (+0x8)\n";
    assert_eq!(out, expected);
    assert_eq!(output_of("bt"), expected);
}

#[test]
fn trace_named_threads() {
    // Off CPU: from its saved context (frame 0 is fork, whose rbp is STACK + 0x50).
    let off_cpu = "Tracing pid 2 tid 100002 td 0x7f001400\n\
                   kernel::kern::proc::fork(11,12,13,14,15) at 0x402010 (+0x10)\n\
                   kernel::thread_start(0,0,0,0,0) at 0x403008 (+0x8)\n";
    assert_eq!(output_of("trace 100002"), off_cpu);
    assert_eq!(output_of("trace 2"), off_cpu);
    assert_eq!(output_of("trace 7f001400"), off_cpu);
    assert_eq!(output_of("trace 0x7f001400"), off_cpu);
    // On CPU: that CPU's registers.
    assert!(output_of("trace 1").contains("mi_switch(1,2,3,4,5) at 0x401000 (+0x0)\n"));
    assert_eq!(output_of("trace 99"), "no such thread or process: 99\n");
}

#[test]
fn trace_without_cpu_registers() {
    let (out, _) = run_script(&["cpu 1", "trace"]);
    assert!(out.ends_with("cpu 1 has no registers\ndb> trace\nTracing pid 1 tid 100001 td 0x7f001000\nkernel::kern::sched::mi_switch(1,2,3,4,5) at 0x401000 (+0x0)\nkernel::kern::proc::fork(11,12,13,14,15) at 0x402010 (+0x10)\nkernel::thread_start(0,0,0,0,0) at 0x403008 (+0x8)\ndb> "), "{out}");
}

#[test]
fn show_registers() {
    let out = output_of("show registers");
    assert!(out.starts_with("rax      0x0000000000000000\nrbx      0x0000000000000001\n"), "{out}");
    assert!(out.contains("\nrip      0x0000000000401000  kernel::kern::sched::mi_switch\n"), "{out}");
    assert!(out.contains("\nrsp      0x0000000070000000\n"), "{out}");
    assert_eq!(output_of("show reg"), out);
}

#[test]
fn show_thread() {
    let out = output_of("show thread");
    assert_eq!(
        out,
        "thread 100001 (init) pid 1 at 0x7f001000: running on cpu0\n  tid     100001\n  pid     1\n  name    init\n  record  0x7f001000\n  state   running on cpu0\n  cpu     0\n  stack   0x70000000-0x70001000 (4 KiB)\n"
    );
    let out = output_of("show thread 100002");
    assert!(out.contains("\n  saved   rip kernel::kern::proc::fork+0x10 rsp 0x70000040 rbp 0x70000050\n"), "{out}");
    assert!(out.contains("\n  cpu     -\n"), "{out}");
}
