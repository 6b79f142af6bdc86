//! The debugger at a real terminal: `^\` breaks in, rustyline reads commands, long output is
//! paged with `--More--`, and the terminal is left as it was found.

use vk_tests::PtyKernel;

#[test]
fn ctrl_backslash_at_the_console_enters_ddb() {
    let mut k = PtyKernel::start(&["-m", "32m", "-n", "2", "-e", "rootwait=1"], 24, 80);
    k.expect("waiting for a root device");
    k.type_bytes(b"\x1c");
    let b = k.expect("db> ");
    assert!(b.contains("KDB: enter: break-in"), "{b}");
    k.type_bytes(b"ps\r");
    let ps = k.expect("db> ");
    assert!(ps.contains("syncer"), "{ps}");
    k.type_bytes(b"continue\r");
    std::thread::sleep(std::time::Duration::from_millis(200));
    k.type_bytes(b"\x1c");
    k.expect("KDB: enter: break-in");
    k.expect("db> ");
    k.type_bytes(b"halt\r");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn long_output_is_paged_with_more() {
    let mut k = PtyKernel::start(&["-m", "32m", "-n", "4", "-e", "debug.panic=1"], 12, 80);
    k.expect("db> ");
    // Four CPUs of `show allpcpu` are ~40 lines: more than a 12-row screen.
    k.type_bytes(b"show allpcpu\r");
    k.expect("--More--");
    k.type_bytes(b" ");
    k.expect("--More--");
    k.type_bytes(b"q");
    let rest = k.expect("db> ");
    assert!(!rest.contains("cpuid        = 3"), "q stops the output:\n{rest}");
    k.type_bytes(b"halt\r");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}
