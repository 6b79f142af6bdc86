//! Crash dumps: ddb's `dump` and a panic with `-e dumpdir=DIR` write `vmcore.N`, an ELF core
//! that `vps -M vmcore.N` and `gdb kernel vmcore.N` read. Dumps are big: these tests use small
//! `-m` and remove their directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use vk_tests::{Kernel, bin, run};

/// A fresh directory for one test's dumps, removed when dropped.
struct DumpDir(PathBuf);

impl DumpDir {
    fn new(name: &str) -> DumpDir {
        let d = std::env::temp_dir().join(format!("vk-dump-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        DumpDir(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for DumpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `Dumping N MB: a b c d done` line is there and its marks climb to N.
fn check_progress(out: &str) {
    let line = out.lines().find(|l| l.starts_with("Dumping ")).unwrap_or_else(|| panic!("no progress:\n{out}"));
    let (head, marks) = line.split_once(" MB:").unwrap_or_else(|| panic!("{line}"));
    let total: u64 = head.trim_start_matches("Dumping ").parse().unwrap_or_else(|_| panic!("{line}"));
    let marks: Vec<&str> = marks.split_whitespace().collect();
    assert_eq!(marks.last(), Some(&"done"), "{line}");
    let nums: Vec<u64> = marks[..marks.len() - 1].iter().map(|m| m.parse().unwrap()).collect();
    assert!(!nums.is_empty() && nums.windows(2).all(|w| w[0] < w[1]), "{line}");
    assert_eq!(nums.last(), Some(&total), "{line}");
}

/// Host thread ids of the CPUs, from `show allpcpu`.
fn cpu_host_tids(allpcpu: &str) -> Vec<String> {
    allpcpu.lines().filter_map(|l| l.strip_prefix("host tid     = ")).map(|t| t.trim().to_string()).collect()
}

fn gdb(args: &[&str]) -> String {
    let out = Command::new("gdb")
        .arg("-nx")
        .arg("-batch")
        .args(args)
        .output()
        .expect("gdb is installed (scripts/ensure-deps)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn ddb_dump_writes_a_vmcore_that_vps_and_gdb_read() {
    let dir = DumpDir::new("ddb");
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let mut k = Kernel::start_in(
        dir.path(),
        &["-m", "24m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", "sleep 60 | cat"],
    );
    k.expect("Mounting root from ");
    vk_tests::vps_until(k.pid(), "sleep | cat never slept", |vps| vps.contains(" nanslp ") && vps.contains(" piperd "));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send("show allpcpu");
    let tids = cpu_host_tids(&k.expect("db> "));
    assert_eq!(tids.len(), 2);
    k.send("dump");
    let out = k.expect("db> ");
    check_progress(&out);
    assert!(out.contains("Dump complete: ./vmcore.0 ("), "{out}");
    // The next dump takes the next free name.
    k.send("dump");
    assert!(k.expect("db> ").contains("Dump complete: ./vmcore.1 ("));
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));

    // vps reads the dump as it reads /proc/PID/mem: the same processes, asleep where they were.
    let kernel = bin("kernel");
    let kernel = kernel.to_string_lossy();
    let (st, ps, err) = run("vps", &["-M", &dir.file("vmcore.0"), "-N", &kernel]);
    assert!(st.success(), "{err}");
    let line =
        |cmd: &str| ps.lines().find(|l| l.trim_end().ends_with(cmd)).unwrap_or_else(|| panic!("no {cmd}:\n{ps}"));
    assert!(line("sleep)").contains(" nanslp "), "{ps}");
    assert!(line("cat)").contains(" piperd "), "{ps}");
    line("(syncer)");
    // Without -N, the dump names its kernel (NT_FILE).
    let (st, ps2, err) = run("vps", &["-M", &dir.file("vmcore.1")]);
    assert!(st.success(), "{err}");
    assert_eq!(ps2.lines().count(), ps.lines().count(), "{ps2}\n{ps}");

    // gdb: a thread per CPU (its LWP is the CPU's host thread) with kernel frames.
    let g = gdb(&["-ex", "info threads", "-ex", "thread apply all bt", &kernel, &dir.file("vmcore.0")]);
    for tid in &tids {
        let section = g
            .split("\nThread ")
            .find(|s| s.contains(&format!("(LWP {tid}))")))
            .unwrap_or_else(|| panic!("no thread for host tid {tid}:\n{g}"));
        assert!(
            section.contains("#0 ") && section.contains(" at kernel/src/"),
            "cpu thread {tid} has kernel frames:\n{section}"
        );
    }
    // Sleeping kernel threads are threads too, unwound from the context cpu_switch saved.
    assert!(g.contains("syncer_main"), "{g}");
    assert!(g.contains("sys_nanosleep") || g.contains("sys_clock_nanosleep"), "the sleeping guest's kernel side:\n{g}");

    // The shipped gdb commands read the dump through vk_layout, as vps does.
    let pid_of = |cmd: &str| line(cmd).split_whitespace().nth(1).unwrap().to_string();
    let (sleep, cat) = (pid_of("sleep)"), pid_of("cat)"));
    let gdbinit = bin("gdbinit");
    let g = gdb(&[
        "-x",
        &gdbinit.to_string_lossy(),
        "-ex",
        "vk-ps",
        "-ex",
        &format!("vk-trace {sleep}"),
        "-ex",
        &format!("vk-proc {cat}"),
        &kernel,
        &dir.file("vmcore.0"),
    ]);
    check_vk_commands(&g, &sleep, &cat);
}

/// What `vk-ps`, `vk-trace SLEEP` and `vk-proc CAT` print for `sleep 60 | cat`.
fn check_vk_commands(g: &str, sleep: &str, cat: &str) {
    let ps = g.lines().skip_while(|l| !l.starts_with("  PID  PPID")).collect::<Vec<_>>();
    assert!(!ps.is_empty(), "vk-ps header:\n{g}");
    let row = |pid: &str| {
        ps.iter()
            .find(|l| l.split_whitespace().next() == Some(pid))
            .copied()
            .unwrap_or_else(|| panic!("no pid {pid}:\n{g}"))
    };
    assert!(
        row(sleep).contains(" sleeping ") && row(sleep).contains(" nanslp ") && row(sleep).contains("sleep"),
        "{g}"
    );
    assert!(row(cat).contains(" piperd ") && row(cat).contains("cat"), "{g}");
    assert!(ps.iter().any(|l| l.contains("(syncer)")), "{g}");
    assert!(g.contains(&format!("Tracing pid {sleep} tid {sleep} ")), "{g}");
    assert!(g.contains("from the context cpu_switch saved"), "{g}");
    assert!(
        g.contains("mi_switch+0x") && g.contains("nanosleep+0x") && g.contains("vk_kthread_trampoline"),
        "vk-trace:\n{g}"
    );
    assert!(g.contains(&format!("Process {cat} (cat) at 0x")), "{g}");
    assert!(g.contains("sleeping on \"piperd\""), "vk-proc:\n{g}");
}

#[test]
fn the_gdb_commands_read_a_live_kernel() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let mut k =
        Kernel::start(&["-m", "24m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", "sleep 60 | cat"]);
    k.expect("Mounting root from ");
    let ps = vk_tests::vps_until(k.pid(), "sleep | cat never slept", |vps| {
        vps.contains(" nanslp ") && vps.contains(" piperd ")
    });
    let pid_of = |wchan: &str| {
        let l = ps.lines().find(|l| l.contains(wchan)).unwrap();
        l.split_whitespace().nth(1).unwrap().to_string()
    };
    let (sleep, cat) = (pid_of(" nanslp "), pid_of(" piperd "));
    let gdbinit = bin("gdbinit");
    let pid = k.pid().to_string();
    let g = gdb(&[
        "-x",
        &gdbinit.to_string_lossy(),
        "-ex",
        "vk-ps",
        "-ex",
        &format!("vk-trace {sleep}"),
        "-ex",
        &format!("vk-proc {cat}"),
        "-ex",
        "vk-trace 0",
        "-p",
        &pid,
    ]);
    check_vk_commands(&g, &sleep, &cat);
    // A running CPU's thread is traced from its host thread's registers.
    assert!(g.contains("'s host thread (LWP "), "{g}");
    // gdb detached: the kernel runs on and halts cleanly.
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn a_panic_with_dumpdir_dumps_by_itself() {
    let dir = DumpDir::new("panic");
    let arg = format!("dumpdir={}", dir.path().display());
    let mut k = Kernel::start(&["-m", "16m", "-n", "1", "-e", "debug.panic=1", "-e", &arg]);
    let out = k.expect("db> ");
    check_progress(&out);
    assert!(out.find("panic: kdb_sysctl_panic").unwrap() < out.find("Dumping ").unwrap(), "{out}");
    assert!(out.contains(&format!("Dump complete: {}/vmcore.0", dir.path().display())), "{out}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
    let (st, ps, err) = run("vps", &["-M", &dir.file("vmcore.0")]);
    assert!(st.success(), "{err}");
    assert!(ps.contains("(swapper)") && ps.contains("(idle: cpu0)"), "{ps}");
}

#[test]
fn vps_refuses_a_core_that_is_not_a_vk_dump() {
    let dir = DumpDir::new("notvk");
    // A truncated vmcore and a file that is not a core at all.
    std::fs::write(dir.file("vmcore.9"), b"\x7fELF\x02\x01\x01").unwrap();
    let (st, _, err) = run("vps", &["-M", &dir.file("vmcore.9")]);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("neither a /proc/PID/mem path nor a vmcore"), "{err}");
}
