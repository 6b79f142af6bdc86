//! `vps -M /proc/PID/mem` reads the kernel's process list out of its memory, on a kernel
//! sitting at `db>` and on a running one.

use vk_tests::{Kernel, run};

fn vps(pid: i32, extra: &[&str]) -> (i32, String, String) {
    let mem = format!("/proc/{pid}/mem");
    let mut args = vec!["-M", mem.as_str()];
    args.extend_from_slice(extra);
    let (st, out, err) = run("vps", &args);
    (st.code().unwrap_or(-1), out, err)
}

fn line_of<'a>(out: &'a str, cmd: &str) -> &'a str {
    out.lines().find(|l| l.trim_end().ends_with(cmd)).unwrap_or_else(|| panic!("no {cmd} in:\n{out}"))
}

#[test]
fn vps_lists_the_threads_of_a_kernel_stopped_in_ddb() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2"]);
    k.expect("db> ");
    k.send("ps");
    let ddb_ps = k.expect("db> ");
    let (st, out, err) = vps(k.pid(), &[]);
    assert_eq!(st, 0, "vps failed: {err}");
    let header = out.lines().next().unwrap();
    for col in ["UID", "PID", "PPID", "CPU", "PRI", "NI", "VSZ", "RSS", "WCHAN", "STAT", "TT", "TIME", "COMMAND"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    for cmd in ["(swapper)", "(idle: cpu0)", "(idle: cpu1)", "(syncer)"] {
        line_of(&out, cmd);
        // ddb's ps shows the same threads.
        assert!(ddb_ps.contains(cmd.trim_matches(|c| c == '(' || c == ')')), "ddb ps lacks {cmd}:\n{ddb_ps}");
    }
    assert!(line_of(&out, "(syncer)").contains("syncer"), "the syncer sleeps on its timer:\n{out}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn vps_reads_a_running_kernel_found_through_its_pidfile() {
    let pidfile = std::env::temp_dir().join(format!("vk-vps-test-{}.pid", std::process::id()));
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "rootwait=1", "-p", pidfile.to_str().unwrap()]);
    k.expect("waiting for a root device");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(pid, k.pid());
    let (st, out, err) = vps(pid, &["-N", vk_tests::bin("kernel").to_str().unwrap()]);
    assert_eq!(st, 0, "{err}");
    assert!(line_of(&out, "(swapper)").contains("rootwait"), "the boot thread waits for root:\n{out}");
    let idle = line_of(&out, "(idle: cpu1)");
    assert!(idle.contains(" R"), "idle threads are runnable:\n{out}");
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0));
    std::fs::remove_file(&pidfile).unwrap();
}

#[test]
fn vps_errors_are_clear() {
    // Not a vk kernel: a sleeping child of ours.
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let (st, _, err) = vps(child.id() as i32, &[]);
    assert_eq!(st, 1, "{err}");
    assert!(err.contains("not a vk kernel"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();

    // A wrong namelist for a real kernel.
    let mut k = Kernel::start(&["-m", "32m", "-n", "1", "-e", "debug.panic=1"]);
    k.expect("db> ");
    let (st, _, err) = vps(k.pid(), &["-N", "/bin/true"]);
    assert_eq!(st, 1, "{err}");
    assert!(err.starts_with("vps: ") && err.lines().count() == 1, "{err}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));

    // No such process; bad usage.
    let (st, _, err) = vps(999_999_999, &[]);
    assert_eq!(st, 1, "{err}");
    let (st, _, err) = run("vps", &["-Z"]);
    assert_eq!(st.code(), Some(2), "{err}");
}

#[test]
fn memory_image_file_holds_physical_memory() {
    let img = std::env::temp_dir().join(format!("vk-physmem-{}", std::process::id()));
    let mut k = Kernel::start(&["-m", "16m", "-n", "1", "-i", img.to_str().unwrap(), "-e", "debug.panic=1"]);
    k.expect("db> ");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 16 << 20);
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
    std::fs::remove_file(&img).unwrap();
}
