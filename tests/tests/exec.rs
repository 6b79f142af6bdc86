//! exec of dynamically linked programs copied in from the host, as a user would: the program
//! and the libraries `ldd` names, in the same places. Without its interpreter a program fails
//! with ENOENT and a console line naming the interpreter.

use std::path::{Path, PathBuf};
use std::process::Command;

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, root_dir};

/// A fresh scratch root holding h_exec.
fn scratch_root(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vk-dynroot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root_dir().join("usr/tests/h_exec"), dir.join("h_exec")).unwrap();
    dir
}

/// Copy the host file `path` to the same place under `root`, following symbolic links.
fn copy_in(root: &Path, path: &Path) {
    let to = root.join(path.strip_prefix("/").unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(path, &to).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
}

/// A host program and every library (and the interpreter) `ldd` says it needs.
fn copy_with_libs(root: &Path, prog: &str) {
    let out = Command::new("ldd").arg(prog).output().expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ld-linux-x86-64.so.2"), "{prog} is not dynamically linked:\n{text}");
    copy_in(root, Path::new(prog));
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            copy_in(root, Path::new(path));
        }
    }
}

/// Boot `root` with h_exec running `args`: exit code and console.
fn run_h_exec(root: &Path, args: &[&str]) -> (Option<i32>, String) {
    let root = root.to_string_lossy();
    let mut argv = vec!["-m", "128m", "-n", "2", "-r", &root, "-e", "init=/h_exec", "--"];
    argv.extend_from_slice(args);
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    (st.code(), k.output())
}

#[test]
fn a_host_program_with_its_libraries_runs() {
    let dir = scratch_root("ls");
    copy_with_libs(&dir, "/usr/bin/ls");
    let (code, out) = run_h_exec(&dir, &["/usr/bin/ls", "/"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("h_exec") && out.contains("usr") && out.contains("lib64"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dynamic_linker_lists_what_a_program_needs() {
    let dir = scratch_root("ldd");
    copy_with_libs(&dir, "/usr/bin/ls");
    let (code, out) = run_h_exec(&dir, &["/lib64/ld-linux-x86-64.so.2", "--list", "/usr/bin/ls"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x"), "{out}");
    assert!(out.contains("libselinux.so.1 => "), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dynamically_linked_init_runs() {
    let dir = scratch_root("init");
    copy_with_libs(&dir, "/usr/bin/env");
    let root = dir.to_string_lossy();
    let mut k = Kernel::start(&["-m", "128m", "-n", "1", "-r", &root, "-e", "init=/usr/bin/env"]);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    let out = k.output();
    assert!(out.contains("PATH=/sbin:/bin:/usr/sbin:/usr/bin") && out.contains("HOME=/"), "{out}");
    assert_eq!(st.code(), Some(0), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_interpreter_is_enoent_with_a_message() {
    let dir = scratch_root("nointerp");
    std::fs::copy("/usr/bin/true", dir.join("dyn")).unwrap();
    let (code, out) = run_h_exec(&dir, &["/dyn"]);
    assert!(
        out.contains(
            "exec: pid 1 (h_exec): /dyn: its interpreter /lib64/ld-linux-x86-64.so.2: No such file or directory"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("h_exec: /dyn: No such file or directory (errno {})", libc::ENOENT)), "{out}");
    assert_eq!(code, Some(126), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// h_dynprobe's line (its stack, mmap, PIE, interpreter and break addresses) as init, booted
/// with `extra` kernel environment.
fn probe_boot(extra: &[&str]) -> String {
    let root = root_dir();
    let root = root.to_string_lossy();
    let mut argv = vec!["-m", "128m", "-n", "2", "-r", &root, "-e", "init=/usr/tests/h_dynprobe_glibc"];
    argv.extend_from_slice(extra);
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    let out = k.output();
    assert_eq!(st.code(), Some(0), "{out}");
    out.lines().find(|l| l.starts_with("stack=")).unwrap_or_else(|| panic!("no probe line:\n{out}")).to_string()
}

/// With `-e vm.aslr=0` two boots lay a program out address for address alike (so a ddb
/// session can be repeated); by default they do not.
#[test]
fn vm_aslr_0_makes_boots_repeatable() {
    let (a, b) = (probe_boot(&["-e", "vm.aslr=0"]), probe_boot(&["-e", "vm.aslr=0"]));
    assert_eq!(a, b);
    let (c, d) = (probe_boot(&[]), probe_boot(&[]));
    let field = |l: &str, k: &str| l.split_whitespace().find(|w| w.starts_with(k)).map(str::to_string);
    for k in ["stack=", "mmap=", "pie=", "base=", "brk="] {
        assert_ne!(field(&c, k), field(&d, k), "{k} the same in two randomised boots:\n{c}\n{d}");
    }
}
