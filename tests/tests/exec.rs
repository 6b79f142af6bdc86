//! exec of programs vk cannot run yet: a dynamically linked program fails with ENOEXEC and a
//! console line saying why, both from execve(2) and as init.

use std::path::PathBuf;

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, root_dir};

/// A root directory holding h_exec and a dynamically linked host program as /dyn.
fn dyn_root(tag: &str) -> PathBuf {
    let host_prog = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| std::fs::read(p).is_ok_and(|b| b.windows(12).any(|w| w == b"/ld-linux-x8")))
        .expect("a dynamically linked /usr/bin/true on the host");
    let dir = std::env::temp_dir().join(format!("vk-dynroot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(host_prog, dir.join("dyn")).unwrap();
    std::fs::copy(root_dir().join("usr/tests/h_exec"), dir.join("h_exec")).unwrap();
    dir
}

#[test]
fn a_dynamically_linked_program_fails_with_enoexec_and_a_message() {
    let dir = dyn_root("execve");
    let root = dir.to_string_lossy();
    let mut k = Kernel::start(&["-m", "64m", "-n", "1", "-r", &root, "-e", "init=/h_exec", "--", "/dyn"]);
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    let out = k.output();
    assert!(
        out.contains("exec: pid 1 (h_exec): /dyn: dynamically linked programs are not supported yet"),
        "{out}"
    );
    assert!(out.contains(&format!("h_exec: /dyn: Exec format error (errno {})", libc::ENOEXEC)), "{out}");
    assert!(out.contains("init exited with status 126"), "{out}");
    assert_eq!(st.code(), Some(126));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dynamically_linked_init_is_no_init() {
    let dir = dyn_root("init");
    let root = dir.to_string_lossy();
    let mut k = Kernel::start(&["-m", "64m", "-n", "1", "-r", &root, "-e", "init=/dyn"]);
    let b = k.expect("db> ");
    assert!(b.contains("init: /dyn: dynamically linked programs are not supported yet"), "{b}");
    assert!(b.contains("panic: no init"), "{b}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
