//! Running guest programs: natively on the host, and as init under the kernel with the staged
//! root directory (`run/root`, made by `make root`) as its hostfs root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Kernel, workspace};

/// How long one guest program may take (natively or under vk).
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(180);

/// The staged root tree: `$VK_RUN/root`, else `run/root` of the workspace.
pub fn root_dir() -> PathBuf {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("VK_RUN") {
        dirs.push(PathBuf::from(d).join("root"));
    }
    dirs.push(workspace().join("run/root"));
    for d in &dirs {
        if d.join("bin/busybox").is_file() {
            return d.clone();
        }
    }
    panic!("no staged root (looked in {dirs:?}); run `make root` first");
}

/// What a program did: its exit code (None: killed by a signal or timed out) and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: Option<i32>,
    pub output: String,
}

/// Run `prog args` on the host in `cwd` with a small fixed environment (the one vk gives
/// init), stdout and stderr together; killed (by its pid) after `timeout`.
pub fn run_native(prog: &Path, args: &[&str], cwd: &Path, path_env: &str, timeout: Duration) -> Outcome {
    use std::os::unix::process::CommandExt;
    // Output into a file, so the child and its descendants share one ordered stream.
    let out_path = std::env::temp_dir().join(format!("vk-native-{}-{}.out", std::process::id(), unique()));
    let out = std::fs::File::create(&out_path).expect("create output file");
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", "/")
        .env("PATH", path_env)
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            // The whole process group, by its id (the child's pid): never by name.
            // SAFETY: kill(2) with our own child's process group id; no memory is passed.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = std::fs::read(&out_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    Outcome { code: status.and_then(|s| s.code()), output }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The kernel's command line to run `init args` on the staged root.
pub fn kernel_args<'a>(root: &'a str, init: &'a str, args: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = ["-m", "256m", "-n", "2", "-r", root, "-e"].iter().map(|s| s.to_string()).collect();
    v.push(format!("init={init}"));
    if !args.is_empty() {
        v.push("--".into());
        v.extend(args.iter().map(|s| s.to_string()));
    }
    v
}

/// Run `init args` as process 1 under the kernel: the kernel's exit code (init's status) and
/// what init printed — the console output after the root is mounted, up to `init exited`.
pub fn run_guest(init: &str, args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let root = root_dir();
    let root_s = root.to_string_lossy().into_owned();
    let argv = kernel_args(&root_s, init, args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let st = k.wait_within(timeout);
    let console = k.output();
    (st.code(), program_output(&console).to_string(), console)
}

/// The part of a batch-mode console that init printed.
pub fn program_output(console: &str) -> &str {
    let start = console.find("Mounting root from ").and_then(|i| console[i..].find('\n').map(|j| i + j + 1)).unwrap_or(0);
    let end = console[start..].rfind("init exited with status ").map_or(console.len(), |i| start + i);
    &console[start..end]
}

/// The last `N passed, M failed` line of a guest test's output.
pub fn summary(output: &str) -> Option<(u32, u32)> {
    output.lines().rev().find_map(|l| {
        let (p, rest) = l.trim().split_once(" passed, ")?;
        let f = rest.strip_suffix(" failed")?;
        Some((p.parse().ok()?, f.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        assert_eq!(summary("x\n12 passed, 0 failed\n"), Some((12, 0)));
        assert_eq!(summary("FAIL a\n3 passed, 2 failed"), Some((3, 2)));
        assert_eq!(summary("nothing"), None);
    }

    #[test]
    fn console_cut() {
        let c = "banner\nMounting root from hostfs:/x (read-only)\nhello\nworld\ninit exited with status 0\n";
        assert_eq!(program_output(c), "hello\nworld\n");
    }
}
