//! The `vps` binary, run as a user runs it: on this test process (which holds a fake kernel,
//! shared with kvm-mem's tests), on a process that is not a vk kernel, on one that has exited,
//! without permission, and with bad options.
#![deny(unsafe_code)]

#[path = "../../kvm-mem/tests/fake/mod.rs"]
mod fake;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};

fn vps(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vps")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `sleep` child, killed (by its pid) when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap())
    }
    fn mem(&self) -> String {
        format!("/proc/{}/mem", self.0.id())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lists_the_fake_kernel_in_this_process() {
    let _g = fake::lock();
    fake::build();
    let mem = format!("/proc/{}/mem", std::process::id());
    let out = vps(&["-M", &mem]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "  UID   PID  PPID CPU PRI NI   VSZ   RSS WCHAN   STAT TT       TIME COMMAND");
    assert_eq!(lines[1], "    0     0     0   0  84  0     0     0 nowork  DL   ??    0:00.00 (swapper)");
    assert_eq!(lines[2], "    0     0     0   0 255  0     0     0 -       RL   ??    0:03.17 (idle: cpu0)");
    assert!(lines[3].ends_with(" ??    0:00.00 (syncer)"), "{stdout}");
    assert!(lines[4].starts_with("    0     1     0   1 120  0  1264   512 wait    "), "{stdout}");
    assert!(lines[4].ends_with(" ??    0:00.01 (init)"), "{stdout}");
    assert_eq!(lines.len(), 5, "{stdout}");
    // -N naming the executable gives the same list; -v says where the roots are.
    let exe = std::env::current_exe().unwrap();
    let out = vps(&["-v", "-M", &mem, "-N", exe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5);
    assert!(text(&out.stderr).contains(&format!("layout v2 at {:#x}", fake::addr(&fake::vk_layout))));
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["-x"], &["-M"], &["-M", "/proc/1/mem", "extra"], &["-N", "kernel"]] {
        let out = vps(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("vps: ") && err.ends_with("(vps -h for help)\n") && err.lines().count() == 1, "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = vps(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: vps -M /proc/PID/mem"));
}

#[test]
fn a_process_that_is_not_a_vk_kernel_exits_1() {
    let sleeper = Sleeper::new();
    let out = vps(&["-M", &sleeper.mem()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("vps: {}: not a vk kernel (its executable /", sleeper.mem())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_wrong_namelist_exits_1() {
    let mem = format!("/proc/{}/mem", std::process::id());
    let out = vps(&["-M", &mem, "-N", "/bin/true"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "vps: /bin/true: no symbol vk_layout: not a vk kernel\n");
    let out = vps(&["-M", &mem, "-N", "/nonexistent/kernel"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "vps: /nonexistent/kernel: no such file\n");
}

#[test]
fn a_process_that_has_exited_exits_1() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = vps(&["-M", &format!("/proc/{pid}/mem")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), format!("vps: /proc/{pid}/mem: no such process\n"));
    let out = vps(&["-M", "/nonexistent/vmcore.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("vps: /nonexistent/vmcore.0: neither a /proc/PID/mem path nor a vmcore"));
}

#[test]
fn permission_denied_exits_1() {
    // As root, read a root process as nobody; otherwise read init, which is not ours.
    let is_root =
        std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    let sleeper;
    let (mem, out) = if is_root {
        sleeper = Sleeper::new();
        let out = Command::new(env!("CARGO_BIN_EXE_vps")).args(["-M", &sleeper.mem()]).uid(65534).gid(65534).output();
        let Ok(out) = out else { return eprintln!("cannot run vps as nobody; skipped") };
        (sleeper.mem(), out)
    } else {
        ("/proc/1/mem".to_string(), vps(&["-M", "/proc/1/mem"]))
    };
    let err = text(&out.stderr);
    if err.contains("Permission denied") && err.contains("os error 13") && !err.contains(&mem) {
        return eprintln!("vps itself could not be executed as nobody ({err}); skipped");
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with(&format!("vps: {mem}: permission denied")), "{err}");
}
