//! Halting and restarting from inside the guest: reboot(2) through busybox `halt`, `poweroff`
//! and `reboot`, only for root; and `-s`, single user, where busybox init starts a root shell.

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, root_dir};

fn boot(extra: &[&str], init: &str, args: &[&str]) -> Kernel {
    let root = root_dir().to_string_lossy().into_owned();
    let mut argv: Vec<String> = ["-m", "64m", "-n", "2", "-r", &root].iter().map(|s| s.to_string()).collect();
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.push("-e".into());
    argv.push(format!("init={init}"));
    if !args.is_empty() {
        argv.push("--".into());
        argv.extend(args.iter().map(|s| s.to_string()));
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Kernel::start(&argv)
}

#[test]
fn halt_and_poweroff_stop_the_kernel_with_status_0() {
    for cmd in ["halt -f", "poweroff -f"] {
        let mut k = boot(&[], "/bin/sh", &["-c", &format!("echo before; {cmd}; echo after")]);
        k.close_stdin();
        let st = k.wait_within(PROGRAM_TIMEOUT);
        let out = k.output();
        assert_eq!(st.code(), Some(0), "{out}");
        assert!(out.contains("before") && !out.contains("after"), "{cmd}: {out}");
        assert!(out.contains("reboot: halt by pid ") && out.contains("The operating system has halted."), "{out}");
        assert!(!out.contains("init exited"), "{out}");
    }
}

#[test]
fn only_root_may_halt() {
    let script = "/usr/tests/h_exec -u 65534 /sbin/halt -f; echo \"nobody: $?\"";
    let mut k = boot(&[], "/bin/sh", &["-c", script]);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    let out = k.output();
    assert!(out.contains("Operation not permitted") && out.contains("nobody: 1"), "{out}");
    assert!(out.contains("init exited with status 0"), "{out}");
    assert_eq!(st.code(), Some(0));
}

#[test]
fn reboot_starts_the_kernel_again() {
    let mut k = boot(&[], "/bin/sh", &["-c", "echo booted; reboot -f"]);
    k.close_stdin();
    k.expect("booted");
    k.expect("reboot: restart by pid ");
    k.expect("Rebooting...");
    k.expect("Copyright (c) 2026 The vk Project.");
    k.expect("booted");
    // The second life reboots too: stop it from outside, cleanly.
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait_within(PROGRAM_TIMEOUT).code(), Some(0));
}

/// A host SIGTERM stops a kernel whatever it is doing — also in the middle of a reboot, whose
/// re-executed kernel would not know of the signal the old one took (it used to boot again,
/// and on for ever). Each life here reboots at once, so the signal lands in any phase.
#[test]
fn sigterm_stops_a_kernel_that_keeps_rebooting() {
    for round in 0..3 {
        let mut k = boot(&[], "/bin/sh", &["-c", "reboot -f"]);
        k.close_stdin();
        for _ in 0..=round {
            k.expect("Rebooting...");
        }
        k.signal(libc::SIGTERM);
        let st = k.wait_within(std::time::Duration::from_secs(60));
        assert_eq!(st.code(), Some(0), "round {round}: {}", k.output());
    }
}

#[test]
fn single_user_gives_a_root_shell_on_the_console() {
    let mut k = boot(&["-s"], "/sbin/init", &[]);
    k.send("echo single $((6 * 7)) $(id -u)");
    k.expect("single 42 0");
    k.send("ps");
    k.expect("/sbin/init -s");
    k.send("poweroff -f");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait_within(PROGRAM_TIMEOUT).code(), Some(0));
}
