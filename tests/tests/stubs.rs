//! Stub processes on the host: a kernel's stubs (its guests' and the pool of ready ones) do
//! not outlive it, whether it is killed with SIGKILL or re-executes itself for a reboot.

use std::time::{Duration, Instant};

use vk_tests::guest::root_dir;
use vk_tests::{Kernel, children_of};

fn boot(init_cmd: &str, extra: &[&str]) -> Kernel {
    let root = root_dir().to_string_lossy().into_owned();
    let mut argv = vec!["-m", "64m", "-n", "2", "-r", &root];
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&["-e", "init=/bin/sh", "--", "-c", init_cmd]);
    Kernel::start(&argv)
}

/// Whether host process `pid` still runs (a zombie waiting for its new parent does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')))
        .unwrap_or(false)
}

/// Wait up to 20 s for every one of `pids` to be gone; the ones still running.
fn survivors(pids: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kernel's host children once there are at least `n`.
fn children_at_least(k: &Kernel, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = children_of(k.pid());
        if c.len() >= n || Instant::now() >= deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_kernel_leaves_no_stubs_behind() {
    // Three guest processes (the shell and two sleeps), and the pool's ready stubs.
    let mut k = boot("sleep 60 & sleep 60 & echo ready; wait", &["-e", "vm.stubpool=2"]);
    k.expect("ready");
    let stubs = children_at_least(&k, 5);
    assert!(stubs.len() >= 5, "three guests and two ready stubs: {stubs:?}\n{}", k.output());
    k.signal(libc::SIGKILL);
    k.wait();
    assert_eq!(survivors(&stubs), Vec::<i32>::new(), "stubs outlived a killed kernel");
}

#[test]
fn a_reboot_leaves_no_stubs_of_the_old_kernel() {
    // The shell and the sleep have their stubs when "booted" is printed; the pool's are
    // there too, unless the host is slow (it fills before root is mounted).
    let mut k = boot("sleep 60 & echo booted; sleep 2; reboot -f", &["-e", "vm.stubpool=3"]);
    k.close_stdin();
    k.expect("booted");
    let before = children_at_least(&k, 2);
    assert!(before.len() >= 2, "{before:?}");
    k.expect("Rebooting...");
    k.expect("booted");
    let left = survivors(&before);
    // The new kernel's stubs are new processes; none of the old ones may be among its children.
    assert_eq!(left, Vec::<i32>::new(), "stubs of the old kernel outlived its re-exec");
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn without_a_pool_stubs_are_started_when_needed() {
    // fork and exec (a pipeline) with no ready stubs: each is started on the spot.
    let mut k = boot("echo one two | wc -w; echo $(echo three)", &["-e", "vm.stubpool=0"]);
    k.close_stdin();
    let st = k.wait();
    let out = k.output();
    assert!(out.contains("2\n") && out.contains("three"), "{out}");
    assert_eq!(st.code(), Some(0), "{out}");
}

/// Host mappings of process `pid`.
fn host_mappings(pid: i32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count())
}

#[test]
fn ended_processes_leave_no_host_mappings_behind() {
    // Every guest thread has a kernel stack (two host mappings); an ended one's stack must
    // go (or be kept for the next thread), not stay with a reference its last frame held.
    let mut k = boot(
        "i=0; while [ $i -lt 40 ]; do /bin/true; i=$((i+1)); done; echo warm; sleep 3; \
         i=0; while [ $i -lt 400 ]; do /bin/true; i=$((i+1)); done; echo done; sleep 60",
        &[],
    );
    k.expect("warm");
    let before = host_mappings(k.pid());
    k.expect("done");
    let after = host_mappings(k.pid());
    assert!(before > 0, "{}", k.output());
    // 400 more processes: a leak would add 800 mappings.
    assert!(after < before + 100, "host mappings {before} -> {after} over 400 processes");
    k.signal(libc::SIGKILL);
    k.wait();
}
