//! Debian's own strace and gdb inside vk (guest ptrace): `strace -f` follows a shell
//! pipeline and prints its write(2) calls; gdb runs a program, stops at a breakpoint on main,
//! prints variables, steps, shows `bt` at a segfault and the threads of a two-thread program.
//!
//! The program (`debugee.c` below, glibc, `-g -O0`, built by the host's gcc: bookworm's, as the
//! image's) is on a small second disk (vkd1) mounted at /mnt, so the Debian image itself is
//! only read (`-R`). Every command runs natively on the host first, where the same checks must
//! hold; then as process 1 of a Debian guest (batch mode: `-e init=/bin/sh -- -c ...`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vk_tests::guest::{PROGRAM_TIMEOUT, program_output};
use vk_tests::{Kernel, bin};

const DEBUGEE: &str = r#"#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int counter = 41;

static void *worker(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

static int crash(int *p) {
    return *p;
}

int main(int argc, char **argv) {
    int answer = counter + 1;
    printf("answer %d\n", answer);
    if (argc > 1 && strcmp(argv[1], "threads") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
        sleep(1);
        return crash(NULL);
    }
    return answer == 42 ? 0 : 1;
}
"#;

/// A directory with the debugee built in it and an ext2 image of that directory.
struct Tools {
    dir: PathBuf,
    image: PathBuf,
}

impl Tools {
    fn new(tag: &str) -> Tools {
        let dir = std::env::temp_dir().join(format!("vk-debian-debug-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).expect("make temp dir");
        std::fs::write(tree.join("debugee.c"), DEBUGEE).expect("write debugee.c");
        // Built in its directory, so its line tables name debugee.c as gdb finds it in /mnt.
        let st = Command::new("gcc")
            .args(["-g", "-O0", "-pthread", "-o", "debugee", "debugee.c"])
            .current_dir(&tree)
            .status()
            .expect("run gcc");
        assert!(st.success(), "gcc debugee.c");
        let image = dir.join("tools.img");
        let o = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2", "-d"])
            .arg(&tree)
            .arg(&image)
            .arg("8M")
            .output()
            .expect("run mke2fs");
        assert!(o.status.success(), "mke2fs: {}", String::from_utf8_lossy(&o.stderr));
        Tools { dir, image }
    }

    fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }
}

impl Drop for Tools {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn debian_image() -> PathBuf {
    let img = bin("debian.img");
    assert!(img.is_file(), "{} is missing: run `make debian`", img.display());
    img
}

/// Run `script` with sh natively, in `dir` (what /mnt is in the guest): its output.
fn native(dir: &Path, script: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().expect("run sh");
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Run `script` as the Debian guest's init, with the tools disk mounted on /mnt and as the
/// working directory: what it printed on the console.
fn in_vk(tools: &Tools, script: &str) -> String {
    let deb = debian_image();
    let (deb, img) = (deb.to_str().expect("utf-8 path"), tools.image.to_str().expect("utf-8 path"));
    let line = format!("mount -t ext2 /dev/vkd1 /mnt && cd /mnt && {{ {script}; }}; echo script-status=$?");
    let mut k = Kernel::start(&["-m", "256m", "-n", "2", "-C", "none", "-R", deb, "-R", img, "-e", "init=/bin/sh", "--", "-c", &line]);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    let console = k.output();
    assert_eq!(st.code(), Some(0), "the guest's shell: {console}");
    assert!(console.contains("script-status=0"), "{console}");
    program_output(&console).to_string()
}

/// strace -f of a pipeline: both processes' writes, the exec of cat, the exits.
fn check_strace(out: &str) {
    // (A line may be cut by another process's: count the calls, their results after.)
    let writes = out.lines().filter(|l| l.contains(r#"write(1, "hello-strace\n", 13"#)).count();
    assert_eq!(writes, 2, "echo's and cat's write of the line:\n{out}");
    // cat's exec succeeds (strace may split the line: `<unfinished ...>`, then `resumed`).
    let exec = out.lines().position(|l| l.contains("execve(") && l.contains(r#"/cat", ["cat"]"#));
    let exec = exec.unwrap_or_else(|| panic!("no exec of cat:\n{out}"));
    let lines: Vec<&str> = out.lines().collect();
    let done = lines[exec].ends_with("= 0")
        || lines[exec].ends_with("<unfinished ...>")
            && lines[exec..].iter().any(|l| l.contains("<... execve resumed>") && l.ends_with("= 0"));
    assert!(done, "cat's exec:\n{out}");
    assert!(out.lines().filter(|l| l.starts_with("[pid ")).count() >= 2, "children followed (-f):\n{out}");
    assert!(!out.contains("strace: "), "strace complained:\n{out}");
    assert!(out.contains("+++ exited with 0 +++"), "{out}");
}

/// The pipeline's output goes to /dev/null so that strace's lines are whole.
const STRACE: &str = "strace -q -f -e trace=write,execve sh -c 'echo hello-strace | cat' 2>&1 >/dev/null";

#[test]
fn strace_follows_a_shell_pipeline() {
    let tools = Tools::new("strace");
    check_strace(&native(&tools.tree(), STRACE));
    check_strace(&in_vk(&tools, STRACE));
}

const GDB_BREAK: &str = "gdb -nx -batch -ex 'break main' -ex run -ex 'print counter' -ex next -ex next \
     -ex 'print answer' -ex 'step' -ex bt -ex continue ./debugee 2>&1";

/// A breakpoint on main, a global and a local printed, line steps, a backtrace, the end.
fn check_gdb_break(out: &str) {
    assert!(out.contains("Breakpoint 1 at 0x"), "{out}");
    assert!(out.contains("Breakpoint 1, main (argc=1, argv=0x"), "{out}");
    assert!(out.contains("$1 = 41"), "{out}");
    assert!(out.contains("$2 = 42"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("#0  main (argc=1, argv=0x") && l.contains("at debugee.c:")), "{out}");
    assert!(out.contains("answer 42"), "{out}");
    assert!(out.contains("[Inferior 1 (process ") && out.contains(") exited normally]"), "{out}");
}

#[test]
fn gdb_breaks_on_main_prints_and_steps() {
    let tools = Tools::new("gdb-break");
    check_gdb_break(&native(&tools.tree(), GDB_BREAK));
    check_gdb_break(&in_vk(&tools, GDB_BREAK));
}

const GDB_CRASH: &str =
    "gdb -nx -batch -ex run -ex bt -ex 'info threads' -ex 'thread apply all bt' --args ./debugee threads 2>&1";

/// The segfault stops the program in crash() called from main; both threads are listed, the
/// second in pause() (`__libc_pause` where the host has glibc's debugging symbols) called
/// from worker().
fn check_gdb_crash(out: &str) {
    assert!(out.contains("received signal SIGSEGV, Segmentation fault."), "{out}");
    assert!(out.lines().any(|l| l.starts_with("#0  ") && l.contains(" in crash (p=0x0) at debugee.c:")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("#1  ") && l.contains(" in main (argc=2, argv=0x")), "{out}");
    let threads: Vec<&str> = out.lines().filter(|l| l.contains("Thread 0x") && l.contains("(LWP ")).collect();
    assert!(threads.iter().any(|l| l.starts_with("* 1 ") && l.contains("in crash (p=0x0)")), "{out}");
    assert!(threads.iter().any(|l| l.trim_start().starts_with("2 ") && l.contains("pause () ")), "{out}");
    assert!(out.lines().any(|l| l.contains(" in worker (arg=0x0) at debugee.c:")), "{out}");
}

#[test]
fn gdb_shows_a_segfault_and_the_threads() {
    let tools = Tools::new("gdb-crash");
    check_gdb_crash(&native(&tools.tree(), GDB_CRASH));
    check_gdb_crash(&in_vk(&tools, GDB_CRASH));
}
