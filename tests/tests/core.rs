//! Guest core files: a guest program that segfaults with `ulimit -c unlimited` leaves an ELF
//! core in its working directory that gdb on the host reads — the faulting frame and its
//! callers, as it reads a native core of the same program. core_pattern's specifiers name
//! the file; a pipe pattern is refused. (t_core, a guest test program, checks the notes and
//! the wait status natively and under vk.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vk_tests::Kernel;
use vk_tests::guest::{program_output, root_dir};
use vk_tests::image::ImageCopy;

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

fn debugfs(image: &Path, request: &str) -> String {
    let o = Command::new("debugfs").args(["-R", request]).arg(image).output().expect("run debugfs (e2fsprogs)");
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn gdb(args: &[&str]) -> String {
    let out = Command::new("gdb").arg("-nx").arg("-batch").args(args).output().expect("gdb is installed (scripts/ensure-deps)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The function names of a gdb backtrace, innermost first (`crash_here.constprop` → `crash_here`).
fn frames(bt: &str) -> Vec<String> {
    bt.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let after = l.split(" in ").nth(1).or_else(|| l.split_whitespace().nth(1))?;
            let name = after.split_whitespace().next()?;
            Some(name.split('.').next().unwrap_or(name).to_string())
        })
        .collect()
}

const SCRIPT: &str = "mkdir -p /c && cd /c && ulimit -c unlimited && /usr/tests/h_core; echo \"status $?\"; \
    echo 'core.%e.%p' > /proc/sys/kernel/core_pattern && /usr/tests/h_core threads; \
    echo '|/bin/cat' > /proc/sys/kernel/core_pattern || echo 'pipe refused'; \
    cat /proc/sys/kernel/core_pattern; ls /c; sync";

#[test]
fn a_guest_segfault_leaves_a_core_gdb_reads() {
    let img = ImageCopy::new("core");
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", img.path(), "-e", "init=/bin/sh", "--", "-c", SCRIPT]);
    k.close_stdin();
    let st = k.wait_within(BOOT_TIMEOUT);
    let console = k.output();
    let out = program_output(&console).to_string();
    assert_eq!(st.code(), Some(0), "{console}");
    assert!(out.contains("(core dumped)") && out.contains("status 139"), "{out}");
    assert!(out.contains("pipe refused") && out.contains("core.%e.%p\n"), "a pipe pattern is refused:\n{out}");
    let threaded = out
        .lines()
        .find(|l| l.starts_with("core.h_core."))
        .unwrap_or_else(|| panic!("core_pattern core.%e.%p:\n{out}"))
        .trim()
        .to_string();
    assert!(threaded["core.h_core.".len()..].parse::<u32>().is_ok(), "{threaded}");

    // Take the cores out of the image and read them with gdb.
    let prog = root_dir().join("usr/tests/h_core");
    let prog = prog.to_string_lossy();
    let core = img.dir.join("core");
    let threaded_core = img.dir.join("core.threads");
    debugfs(&img.image, &format!("dump /c/core {}", core.display()));
    debugfs(&img.image, &format!("dump /c/{threaded} {}", threaded_core.display()));
    let bt = gdb(&["-ex", "bt", &prog, &core.to_string_lossy()]);
    assert!(bt.contains("Program terminated with signal SIGSEGV"), "{bt}");
    let vk_frames = frames(&bt);
    assert_eq!(vk_frames.first().map(String::as_str), Some("crash_here"), "the faulting frame first:\n{bt}");
    assert!(vk_frames.iter().any(|f| f == "descend") && vk_frames.iter().any(|f| f == "main"), "{bt}");
    // The auxiliary vector exec gave the program, and the signal's siginfo.
    let info = gdb(&["-ex", "info auxv", "-ex", "p $_siginfo.si_signo", "-ex", "p $_siginfo._sifields._sigfault.si_addr", &prog, &core.to_string_lossy()]);
    assert!(info.contains("AT_PAGESZ") && info.contains("4096") && info.contains("AT_ENTRY"), "{info}");
    assert!(info.contains("= 11\n") && info.contains("(void *) 0x0"), "{info}");
    let th = gdb(&["-ex", "info threads", "-ex", "thread apply all bt", &prog, &threaded_core.to_string_lossy()]);
    assert!(th.contains("* 1    LWP ") && th.contains("  2    LWP "), "two threads:\n{th}");
    let thread1 = th.split("\nThread 1 ").nth(1).unwrap_or_default();
    assert!(thread1.contains("crash_here"), "the faulting thread is thread 1:\n{th}");
    assert!(th.split("\nThread 2 ").nth(1).is_some_and(|t| t.contains("#0 ")), "{th}");

    // Natively, the same program's core reads the same — when the host writes plain `core`
    // files into the working directory (a pipe or another path there: skipped, as this test
    // does not change the host's core_pattern).
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let uses_pid = std::fs::read_to_string("/proc/sys/kernel/core_uses_pid").unwrap_or_default();
    if pattern.trim_end() != "core" || uses_pid.trim() != "0" {
        eprintln!("native half skipped: the host's core_pattern is {pattern:?} (core_uses_pid {uses_pid:?})");
        return;
    }
    let dir = img.dir.join("native");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("sh")
        .args(["-c", &format!("ulimit -c unlimited && exec {prog}")])
        .current_dir(&dir)
        .output()
        .expect("run h_core natively");
    assert_eq!(st.status.code(), None, "h_core dies of a signal natively");
    let native_core = dir.join("core");
    assert!(native_core.is_file(), "no native core in {}", dir.display());
    let native_bt = gdb(&["-ex", "bt", &prog, &native_core.to_string_lossy()]);
    assert_eq!(frames(&native_bt), vk_frames, "native:\n{native_bt}\nvk:\n{bt}");
}
