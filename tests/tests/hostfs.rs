//! hostfs (`-r DIR`) under a host that changes its files while the kernel runs: the guest's
//! page cache of a host file must not serve the old data once the host rewrote it — not to a
//! new open, and not to a descriptor opened before the change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, root_dir};

/// A fresh scratch root: the staged busybox as /bin/sh and /bin/cat.
fn scratch_root(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vk-hostfs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(root_dir().join("bin/busybox"), dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    dir
}

/// Rewrite the host file `p` in place (same inode) with `data`, its mtime a second past the
/// last one: a change whatever the host file system's timestamp granularity.
fn rewrite(p: &Path, data: &str) {
    let before = std::fs::metadata(p).unwrap().modified().unwrap();
    std::fs::write(p, data).unwrap();
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(before + Duration::from_secs(1)).unwrap();
}

#[test]
fn a_file_the_host_rewrites_is_read_anew() {
    let dir = scratch_root("rewrite");
    let data = dir.join("data");
    std::fs::write(&data, "first version\n").unwrap();
    let root = dir.to_string_lossy().into_owned();
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", &root, "-e", "init=/bin/sh"]);
    k.send("cat /data; echo \"@\"\"1\"");
    let seen = k.expect("@1\n");
    assert!(seen.contains("first version"), "{seen}");
    // The same size, other bytes: a new open sees them.
    rewrite(&data, "other version\n");
    k.send("cat /data; echo \"@\"\"2\"");
    let seen = k.expect("@2\n");
    assert!(seen.contains("other version") && !seen.contains("first"), "{seen}");
    // A descriptor opened before a change reads the new data too (each read checks).
    k.send("exec 3</data; echo \"@\"\"3\"");
    k.expect("@3\n");
    rewrite(&data, "third version\n");
    k.send("cat <&3; echo \"@\"\"4\"");
    let seen = k.expect("@4\n");
    assert!(seen.contains("third version") && !seen.contains("other"), "{seen}");
    // Longer, then shorter: the end follows the host's.
    rewrite(&data, "a fourth, longer version\n");
    k.send("cat /data; echo \"@\"\"5\"");
    let seen = k.expect("@5\n");
    assert!(seen.contains("a fourth, longer version\n"), "{seen}");
    rewrite(&data, "5th\n");
    k.send("cat /data; echo \"@\"\"6\"");
    let seen = k.expect("@6\n");
    assert!(seen.contains("5th\n@6") && !seen.contains("longer"), "{seen}");
    k.close_stdin();
    let st = k.wait_within(PROGRAM_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{}", k.output());
    let _ = std::fs::remove_dir_all(&dir);
}
