//! The vDSO from outside: a dynamically linked glibc program reading the clocks N times makes
//! no clock system calls (ktrace counts them: N times each with `-e vm.vdso=0`, when glibc
//! finds no vDSO), and `-e vm.vdso=0` leaves the mappings and AT_SYSINFO_EHDR out. That the
//! vDSO's answers are right is t_vdso's (guest.rs).

use std::time::Duration;

use vk_tests::Kernel;
use vk_tests::guest::{program_output, root_dir};

const LOOPS: usize = 500;

/// Boot the staged root with `args` (then `-e init=…` and init's arguments): the console.
fn boot(args: &[&str], init: &[&str]) -> (Option<i32>, String) {
    let root = root_dir().to_string_lossy().into_owned();
    let mut argv = vec!["-m", "256m", "-n", "2", "-r", &root];
    argv.extend_from_slice(args);
    let init_arg = format!("init={}", init[0]);
    argv.extend_from_slice(&["-e", &init_arg, "--"]);
    argv.extend_from_slice(&init[1..]);
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let st = k.wait_within(Duration::from_secs(60));
    (st.code(), k.output())
}

/// The time system calls ktrace saw.
fn clock_calls(console: &str) -> usize {
    console
        .lines()
        .filter(|l| {
            l.starts_with("ktrace: ")
                && [" clock_gettime(228) ", " gettimeofday(96) ", " time(201) "].iter().any(|c| l.contains(c))
        })
        .count()
}

fn looped(args: &[&str]) -> usize {
    let n = LOOPS.to_string();
    let (code, console) = boot(args, &["/usr/tests/t_vdso_glibc", "loop", &n]);
    assert!(
        code == Some(0) && console.contains(&format!("looped {LOOPS}, 0 failed")),
        "t_vdso_glibc loop under {args:?}: exit {code:?}\n{}",
        &console[console.len().saturating_sub(4000)..]
    );
    clock_calls(&console)
}

#[test]
fn reading_the_time_through_glibc_does_not_trap() {
    let with = looped(&["-e", "debug.ktrace=1"]);
    let without = looped(&["-e", "debug.ktrace=1", "-e", "vm.vdso=0"]);
    // Each loop reads four times: clock_gettime twice, gettimeofday, time.
    assert!(without >= 4 * LOOPS, "without a vDSO every read is a system call: {without}");
    assert!(with < 10, "with the vDSO, {with} time system calls for {LOOPS} loops");
}

#[test]
fn vm_vdso_0_maps_no_vdso() {
    let script = "grep -c '\\[vdso\\]\\|\\[vvar\\]' /proc/self/maps; od -A n -t u8 -w16 /proc/self/auxv | grep -c '^ *33 '; true";
    let (code, console) = boot(&["-e", "vm.vdso=0"], &["/bin/sh", "-c", script]);
    assert_eq!(code, Some(0), "{console}");
    assert_eq!(program_output(&console).split_whitespace().collect::<Vec<_>>(), ["0", "0"], "{console}");
    let (code, console) = boot(&[], &["/bin/sh", "-c", script]);
    assert_eq!(code, Some(0), "{console}");
    assert_eq!(program_output(&console).split_whitespace().collect::<Vec<_>>(), ["2", "1"], "{console}");
}
