//! The console tty: the kernel on a pseudo-terminal with busybox's interactive shell as init,
//! typed at like a person would — the line discipline, `stty`, signals from keys, job control,
//! the window size, `^\` into ddb, and the host terminal's modes left as they were found.

use vk_tests::PtyKernel;

/// Boot an interactive shell on the console and wait for its first prompt.
fn shell() -> PtyKernel {
    let root = vk_tests::guest::root_dir();
    let root = root.to_str().expect("root path");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", root, "-e", "init=/bin/sh", "--", "-i"], 24, 80);
    k.expect("/ # ");
    k
}

/// Type a command line and wait for its echo and the next prompt; the output in between.
fn run(k: &mut PtyKernel, cmd: &str) -> String {
    k.type_bytes(format!("{cmd}\r").as_bytes());
    k.expect(&format!("{cmd}\r\n"));
    k.expect("/ # ")
}

fn exit(mut k: PtyKernel) {
    k.type_bytes(b"exit\r");
    k.expect("init exited with status 0");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn typed_lines_are_echoed_and_edited() {
    let mut k = shell();
    // cat reads through the kernel's canonical line discipline (the shell's own line editor
    // is not involved): erase, kill and word-erase edit the line, and their echo shows it.
    // `go` is printed once the shell has put the terminal back in canonical mode: keys typed
    // before that would be read in its line editor's raw mode.
    k.type_bytes(b"echo g''o; cat\r");
    k.expect("go\r\n");
    k.type_bytes(b"ab\x7fc\r");
    k.expect("ab\x08 \x08c\r\n");
    k.expect("ac\r\n");
    k.type_bytes(b"junk\x15ok\r");
    k.expect("\x08 \x08\x08 \x08\x08 \x08\x08 \x08ok\r\n");
    k.expect("ok\r\n");
    k.type_bytes(b"one two\x17three\r");
    k.expect("one three\r\n");
    k.type_bytes(b"\x04");
    k.expect("/ # ");
    exit(k);
}

#[test]
fn stty_shows_and_changes_the_modes() {
    let mut k = shell();
    let a = run(&mut k, "stty -a");
    for want in ["rows 24; columns 80", "intr = ^C", "erase = ^?", "isig icanon", " echo ", " icrnl", " onlcr", "-tostop"] {
        assert!(a.contains(want), "stty -a lacks {want:?}:\n{a}");
    }
    k.type_bytes(b"stty raw -echo; stty -a | grep -o -- -icanon; stty -a | grep -o -- '-echo '\r");
    k.expect("-icanon");
    k.expect("-echo ");
    k.expect("/ # ");
    // Raw: no echo from the kernel (the shell's line editor echoes for itself).
    k.type_bytes(b"stty sane\r");
    k.expect("/ # ");
    let a = run(&mut k, "stty -a");
    assert!(a.contains(" icanon ") && a.contains(" echo "), "{a}");
    exit(k);
}

/// Start `sleep 100` as the foreground job and return once it runs (in the foreground group,
/// the terminal back in canonical mode): it says so before it becomes sleep.
fn foreground_sleep(k: &mut PtyKernel) {
    k.type_bytes(b"sh -c 'echo sleep-starts; exec sleep 100'\r");
    k.expect("sleep-starts\r\n");
}

/// Type `key` until `needle` appears: a job-control key typed before the shell has made the
/// job the foreground group goes to the shell, which ignores it.
fn type_until(k: &mut PtyKernel, key: &[u8], needle: &str) -> String {
    for _ in 0..60 {
        k.type_bytes(key);
        if let Some(s) = k.try_expect(needle, std::time::Duration::from_secs(1)) {
            return s;
        }
    }
    k.expect(needle)
}

/// Ask `jobs` until it shows `state`: the job gets there when it next touches the terminal.
fn jobs_until(k: &mut PtyKernel, state: &str) {
    let mut jobs = String::new();
    for _ in 0..100 {
        jobs = run(k, "jobs");
        if jobs.contains(state) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("jobs never showed {state:?}:\n{jobs}");
}

#[test]
fn ctrl_c_interrupts_the_foreground_job() {
    let mut k = shell();
    foreground_sleep(&mut k);
    k.type_bytes(b"\x03");
    k.expect("^C");
    k.expect("/ # ");
    let status = run(&mut k, "echo $?");
    assert!(status.contains("130"), "{status}");
    exit(k);
}

#[test]
fn job_control_with_jobs_fg_ctrl_z_bg_and_kill() {
    let mut k = shell();
    run(&mut k, "sleep 100 &");
    let jobs = run(&mut k, "jobs");
    assert!(jobs.contains("Running") && jobs.contains("sleep 100"), "{jobs}");
    k.type_bytes(b"fg\r");
    k.expect("fg\r\nsleep 100\r\n");
    type_until(&mut k, b"\x1a", "Stopped");
    k.expect("/ # ");
    let jobs = run(&mut k, "jobs");
    assert!(jobs.contains("Stopped"), "{jobs}");
    let bg = run(&mut k, "bg");
    assert!(bg.contains("sleep 100"), "{bg}");
    let jobs = run(&mut k, "jobs");
    assert!(jobs.contains("Running"), "{jobs}");
    // The shell reports the end of the job at its next prompt, or the one after.
    if !run(&mut k, "kill %1").contains("Terminated") {
        k.type_bytes(b"jobs\r");
        k.expect("Terminated");
    }
    exit(k);
}

#[test]
fn background_reader_is_stopped_by_sigttin_until_fg() {
    let mut k = shell();
    run(&mut k, "cat &");
    jobs_until(&mut k, "Stopped (tty input)");
    k.type_bytes(b"fg\r");
    k.expect("fg\r\ncat\r\n");
    // Typed after the shell's line editor gave the terminal back: keys typed before would
    // be in its raw mode, so type until cat, continued in the foreground, echoes a line.
    type_until(&mut k, b"hello\r", "hello\r\nhello\r\n");
    k.type_bytes(b"\x04");
    k.expect("/ # ");
    exit(k);
}

#[test]
fn window_size_follows_the_terminal() {
    let mut k = shell();
    let size = run(&mut k, "stty size");
    assert!(size.contains("24 80"), "{size}");
    // A foreground job sees SIGWINCH when the host terminal is resized.
    k.type_bytes(b"sh -c 'trap \"echo got-winch; exit\" WINCH; echo trap-set; while :; do sleep 1; done'\r");
    k.expect("trap-set\r\n");
    k.resize(30, 100);
    k.expect("got-winch");
    k.expect("/ # ");
    let size = run(&mut k, "stty size");
    assert!(size.contains("30 100"), "{size}");
    exit(k);
}

#[test]
fn dev_tty_is_the_controlling_terminal() {
    let mut k = shell();
    let out = run(&mut k, "echo via-dev-tty > /dev/tty");
    assert!(out.contains("via-dev-tty"), "{out}");
    // A new session has no controlling terminal.
    k.type_bytes(b"setsid sh -c 'echo x > /dev/tty'\r");
    // The whole line (sh writes the message and its newline apart; typing before the newline
    // would interleave the echo with it).
    k.expect("No such device or address\r\n");
    run(&mut k, "true");
    exit(k);
}

#[test]
fn ctrl_backslash_enters_ddb_and_continue_returns_to_the_shell() {
    let mut k = shell();
    k.type_bytes(b"\x1c");
    k.expect("KDB: enter: break-in");
    k.expect("db> ");
    k.type_bytes(b"continue\r");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = run(&mut k, "echo back-in-the-shell");
    assert!(out.contains("back-in-the-shell"), "{out}");
    exit(k);
}

#[test]
fn host_terminal_modes_are_restored_after_exit() {
    let mut k = shell();
    let before = k.initial_modes();
    exit_keep(&mut k);
    assert_eq!(k.modes(), before);
}

#[test]
fn host_terminal_modes_are_restored_after_halt_from_ddb() {
    let mut k = shell();
    let before = k.initial_modes();
    k.type_bytes(b"\x1c");
    k.expect("db> ");
    k.type_bytes(b"halt\r");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    assert_eq!(k.modes(), before);
}

#[test]
fn host_terminal_modes_are_restored_after_sigterm() {
    let mut k = shell();
    let before = k.initial_modes();
    k.signal(libc::SIGTERM);
    k.wait();
    assert_eq!(k.modes(), before);
}

#[test]
fn host_terminal_modes_are_restored_after_a_panic() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_str().expect("root path");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", root, "-e", "init=/bin/sh", "-e", "debug.panic=1", "--", "-i"], 24, 80);
    let before = k.initial_modes();
    k.expect("db> ");
    k.type_bytes(b"halt\r");
    k.wait();
    assert_eq!(k.modes(), before);
}

fn exit_keep(k: &mut PtyKernel) {
    k.type_bytes(b"exit\r");
    k.expect("init exited with status 0");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn poll_and_raw_reads_with_vmin_and_vtime() {
    let mut k = shell();
    // read -t polls the console before it reads. (`ready` is printed once the shell's line
    // editor has given the terminal back: keys typed before would be read in its raw mode.)
    k.type_bytes(b"echo r''eady; read -t 30 x; echo got=$x\r");
    k.expect("ready\r\n");
    k.type_bytes(b"polled\r");
    k.expect("got=polled\r\n");
    k.expect("/ # ");
    // VMIN 3: one read(2) returns once three bytes are there, however they were typed.
    k.type_bytes(b"stty -icanon -echo min 3 time 0; echo s''et; dd bs=16 count=1 | od -c\r");
    k.expect("set\r\n");
    k.type_bytes(b"ab");
    k.type_bytes(b"c");
    let od = k.expect("/ # ");
    assert!(od.contains("a   b   c") && od.contains("0+1 records in"), "{od}");
    run(&mut k, "stty sane");
    // VMIN 0, VTIME 5: a read with nothing typed returns 0 bytes after half a second.
    let out = run(&mut k, "stty -icanon min 0 time 5; dd bs=16 count=1; stty sane");
    assert!(out.contains("0+0 records in"), "{out}");
    exit(k);
}

#[test]
fn host_terminal_modes_are_restored_across_a_reboot() {
    let mut k = shell();
    let before = k.initial_modes();
    k.type_bytes(b"\x1c");
    k.expect("db> ");
    k.type_bytes(b"reboot\r");
    k.expect("Copyright (c) 2026 The vk Project.");
    k.expect("/ # ");
    let out = run(&mut k, "echo rebooted");
    assert!(out.contains("rebooted"), "{out}");
    exit_keep(&mut k);
    assert_eq!(k.modes(), before);
}

#[test]
fn background_writer_with_tostop_is_stopped_by_sigttou() {
    let mut k = shell();
    run(&mut k, "stty tostop");
    run(&mut k, "(echo from-the-background) &");
    jobs_until(&mut k, "Stopped (tty output)");
    k.type_bytes(b"fg\r");
    k.expect("from-the-background\r\n");
    k.expect("/ # ");
    run(&mut k, "stty -tostop");
    exit(k);
}

#[test]
fn ctrl_s_holds_output_until_ctrl_q() {
    let mut k = shell();
    // ^S stops output: the command runs once typed, but nothing it or the shell writes
    // appears until ^Q.
    k.type_bytes(b"\x13");
    k.type_bytes(b"echo he''ld\r");
    let early = k.try_expect("held\r\n", std::time::Duration::from_millis(500));
    assert!(early.is_none(), "output appeared while stopped: {early:?}");
    k.type_bytes(b"\x11");
    k.expect("held\r\n");
    k.expect("/ # ");
    // With ixon off, ^S is an ordinary character.
    run(&mut k, "stty -ixon");
    k.type_bytes(b"\x13");
    k.type_bytes(b"\x7f"); // erase it again at the line editor
    let out = run(&mut k, "echo free");
    assert!(out.contains("free"), "{out}");
    exit(k);
}
