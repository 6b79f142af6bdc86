//! The control socket (`kernel -C`) and `vkctl`: `status`, `ps`, `stacks` while the machine
//! keeps running, `ktrace`, `dmesg`, `break` into ddb and back, `halt` with exit status 0 and
//! the socket removed; the default socket found without `-C`; bad and random requests get
//! error replies and leave the kernel serving.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vk_tests::{Kernel, bin};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("vk-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `vkctl ARGS` with `env` added: (exit code, stdout, stderr).
fn vkctl(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let o = Command::new(bin("vkctl"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run vkctl");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `vkctl -C SOCK CMD`, which must succeed: its output.
fn ok(sock: &Path, cmd: &[&str]) -> String {
    let mut args = vec!["-C", sock.to_str().unwrap()];
    args.extend_from_slice(cmd);
    let (code, out, err) = vkctl(&args, &[]);
    assert_eq!(code, Some(0), "vkctl {cmd:?}: {err}");
    out
}

/// A guest that keeps making system calls and printing: `tick N` every second from pid 1,
/// with `sleep 600 | cat` beside it.
const GUEST: &str = "sleep 600 | cat & i=0; while :; do i=$((i+1)); echo tick $i; sleep 1; done";

fn root() -> String {
    vk_tests::guest::root_dir().to_string_lossy().into_owned()
}

/// The highest `tick N` printed so far.
fn last_tick(console: &str) -> u32 {
    console.lines().filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok()).max().unwrap_or(0)
}

#[test]
fn vkctl_ps_stacks_ktrace_and_halt() {
    let dir = Scratch::new("main");
    let sock = dir.0.join("k.ctl");
    let root = root();
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-C", sock.to_str().unwrap(), "-r", &root, "-e", "init=/bin/sh", "--", "-c", GUEST]);
    k.expect(&format!("vkctl: control socket {}", sock.display()));
    k.expect("tick 1\n");
    vk_tests::vps_until(k.pid(), "sleep | cat never slept", |v| v.contains(" nanslp ") && v.contains(" piperd "));

    let status = ok(&sock, &["status"]);
    assert!(status.contains("cpus: 2 (") && status.contains("processes: ") && status.contains(" kB free"), "{status}");
    let ps = ok(&sock, &["ps"]);
    assert!(ps.contains("(cat)") && ps.contains("(sleep)") && ps.contains("(vkctl)"), "{ps}");
    let cat_pid = ps.lines().find(|l| l.ends_with("(cat)")).and_then(|l| l.split_whitespace().nth(1)).unwrap().to_string();

    // Every thread's stack, with the machine running: the ticks go on after it.
    let before = last_tick(&k.output());
    let stacks = ok(&sock, &["stacks"]);
    let cat = stacks
        .split("\n\n")
        .find(|s| s.starts_with(&format!("pid {cat_pid} tid {cat_pid} ")))
        .unwrap_or_else(|| panic!("no stack for cat (pid {cat_pid}):\n{stacks}"));
    assert!(cat.contains("sleeping on \"piperd\"") && cat.contains("mi_switch") && cat.contains("pipe"), "{cat}");
    assert!(stacks.contains("syncer_main") && stacks.contains("running on cpu"), "{stacks}");
    assert!(stacks.contains("(this thread, answering)"), "{stacks}");
    k.expect(&format!("tick {}\n", before + 2));

    // ktrace: pid 1's system calls appear on the console, then stop being traced.
    assert!(ok(&sock, &["ktrace", "1", "on"]).contains("ktrace: pid 1 (sh) traced"));
    k.expect("ktrace: 1/1 ");
    assert!(ok(&sock, &["ktrace"]).contains("tracing pid 1"));
    assert!(ok(&sock, &["ktrace", "1", "off"]).contains("no longer traced"));
    assert!(ok(&sock, &["ktrace"]).contains("no process traced"));
    let (code, _, err) = vkctl(&["-C", sock.to_str().unwrap(), "ktrace", "99999", "on"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no process 99999"), "{err}");

    assert!(ok(&sock, &["dmesg"]).contains("vkctl: control socket"));

    // halt: the reply, then a clean stop with status 0, and the socket is gone.
    assert_eq!(ok(&sock, &["halt"]), "halting\n");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    assert!(k.output().contains("The operating system has halted."));
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn the_default_socket_break_and_none() {
    let dir = Scratch::new("default");
    let xdg = dir.0.to_str().unwrap().to_string();
    let env = [("XDG_RUNTIME_DIR", xdg.as_str())];
    let root = root();
    let mut k = Kernel::start_env(Path::new("."), &["-m", "32m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", GUEST], &env);
    let sock = dir.0.join("vk").join(format!("{}.ctl", k.pid()));
    k.expect(&format!("vkctl: control socket {}", sock.display()));
    k.expect("tick 1\n");
    // Without -C, vkctl finds the one live kernel's socket.
    let (code, out, err) = vkctl(&["status"], &env);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("host pid {}", k.pid())), "{out}");

    // break: ddb takes the console; `continue` there, and the machine runs on.
    let (code, out, _) = vkctl(&["break"], &env);
    assert_eq!(code, Some(0));
    assert!(out.contains("entering the debugger"), "{out}");
    k.expect("KDB: enter: vkctl break");
    k.expect("db> ");
    k.send("continue");
    let now = last_tick(&k.output());
    k.expect(&format!("tick {}\n", now + 1));
    assert_eq!(vkctl(&["ps"], &env).0, Some(0));
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    assert!(!sock.exists(), "the socket is removed at exit");
    let (code, _, err) = vkctl(&["status"], &env);
    assert_eq!(code, Some(1));
    assert!(err.contains("no running kernel"), "{err}");

    // -C none: no socket.
    let mut k = Kernel::start_env(Path::new("."), &["-m", "32m", "-C", "none", "-r", &root, "-e", "init=/bin/sh", "--", "-c", "echo done"], &env);
    assert_eq!(k.wait().code(), Some(0));
    assert!(!k.output().contains("vkctl: control socket"), "{}", k.output());
}

/// Send raw bytes (and shut the writing side down); the raw reply.
fn raw(sock: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).expect("connect");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read the reply");
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn bad_requests_get_errors_never_a_crash() {
    let dir = Scratch::new("bad");
    let sock = dir.0.join("k.ctl");
    let root = root();
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-C", sock.to_str().unwrap(), "-r", &root, "-e", "init=/bin/sh", "--", "-c", GUEST]);
    k.expect("tick 1\n");
    let err = |bytes: &[u8], why: &str| {
        let r = raw(&sock, bytes);
        assert!(r.starts_with("VKCTL/1 ERR ") && r.contains(why), "{bytes:?}: {r:?}");
    };
    err(b"", "empty");
    err(b"\n", "empty");
    err(b"ps\n", "not a vk control message");
    err(b"VKCTL/2 ps\n", "version 2 not supported");
    err(b"VKCTL/99999999999999999999 ps\n", "not supported");
    err(b"VKCTL/1\n", "no command");
    err(b"VKCTL/1 \xff\xfe\n", "not UTF-8");
    err(&[b'A'; 5000], "too long");
    err(b"VKCTL/1 frobnicate\n", "unknown command 'frobnicate'");
    err(b"VKCTL/1 ps now\n", "takes no arguments");
    err(b"VKCTL/1 ktrace one on\n", "not a process id");
    err(b"VKCTL/1 ktrace 1 sideways\n", "on or off");
    err(b"VKCTL/1 ktrace 1 on extra\n", "usage");
    err(b"VKCTL/1 halt now\n", "takes no arguments");
    assert!(raw(&sock, b"VKCTL/1 status").starts_with("VKCTL/1 OK\n"), "no newline is fine");

    // A little fuzzing: random bytes, and random words after a good head.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let commands = ["status", "ps", "dmesg", "ktrace", "help"];
    for i in 0..60 {
        let len = (next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 {
            let words: Vec<String> = (0..next() % 4)
                .map(|_| {
                    let w = next();
                    if w % 3 == 0 { commands[(w as usize / 3) % commands.len()].to_string() } else { format!("{:x}", w % 100_000) }
                })
                .collect();
            bytes = format!("VKCTL/1 {}\n", words.join(" ")).into_bytes();
        }
        let r = raw(&sock, &bytes);
        assert!(r.starts_with("VKCTL/1 OK\n") || r.starts_with("VKCTL/1 ERR "), "{bytes:?}: {r:?}");
    }
    // Still serving, and the guest still runs.
    let now = last_tick(&k.output());
    assert!(ok(&sock, &["status"]).contains("cpus: 2"));
    k.expect(&format!("tick {}\n", now + 1));
    assert_eq!(ok(&sock, &["halt"]), "halting\n");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn reboot_comes_back_with_its_socket() {
    let dir = Scratch::new("reboot");
    let sock = dir.0.join("k.ctl");
    let root = root();
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-C", sock.to_str().unwrap(), "-r", &root, "-e", "init=/bin/sh", "--", "-c", GUEST]);
    k.expect("tick 1\n");
    assert_eq!(ok(&sock, &["reboot"]), "rebooting\n");
    k.expect("Rebooting...");
    // The same process, started again: a new boot, the socket served anew.
    k.expect(&format!("vkctl: control socket {}", sock.display()));
    k.expect("tick 1\n");
    assert!(ok(&sock, &["status"]).contains(&format!("host pid {}", k.pid())));
    assert_eq!(ok(&sock, &["halt"]), "halting\n");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    assert!(!sock.exists());
}
