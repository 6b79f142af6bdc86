//! The `kernel` command line: bad input is one line naming the problem, exit status 2, before
//! anything starts; `-h` prints usage.

use vk_tests::run;

fn bad(args: &[&str], needle: &str) {
    let (st, out, err) = run("kernel", args);
    assert_eq!(st.code(), Some(2), "{args:?}: status {st:?}\nstdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got:\n{err}");
    assert!(lines[0].starts_with("kernel: "), "{args:?}: {err}");
    assert!(lines[0].contains(needle), "{args:?}: want {needle:?} in {err:?}");
    assert!(out.is_empty(), "{args:?}: nothing may start, but stdout has:\n{out}");
}

#[test]
fn malformed_options_exit_2_with_one_line() {
    bad(&["-m", "lots"], "-m lots: bad memory size");
    bad(&["-m", "1m"], "too little memory");
    bad(&["-n", "0"], "-n 0: CPU count out of range");
    bad(&["-n", "17"], "out of range");
    bad(&["-n"], "-n: option requires an argument");
    bad(&["-q"], "unknown option -q");
    bad(&["-e", "debug.trap"], "not name=value");
    bad(&["-r", "/nonexistent/rootimg.01"], "-r /nonexistent/rootimg.01: No such file or directory");
    bad(&["-R", "/nonexistent/img"], "No such file or directory");
    bad(&["stray"], "unexpected argument");
}

#[test]
fn unreadable_image_is_refused() {
    // As root every file is readable, so use a directory we cannot list as non-root, or a
    // dangling symlink, which fails the same way for everyone.
    let p = std::env::temp_dir().join(format!("vk-dangling-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink("/nonexistent/target", &p).unwrap();
    bad(&["-r", p.to_str().unwrap()], "No such file or directory");
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn bad_memory_image_path_is_refused() {
    bad(&["-i", "/nonexistent/dir/physmem"], "memory image /nonexistent/dir/physmem");
}

#[test]
fn help_prints_usage_and_exits_0() {
    let (st, out, _) = run("kernel", &["-h"]);
    assert_eq!(st.code(), Some(0));
    assert!(out.starts_with("usage: kernel"), "{out}");
    assert!(out.contains("-m size"));
}
