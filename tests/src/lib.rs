//! The integration-test harness: run the built `kernel` (and `vps`) like a person would, read
//! the console, and stop kernels by their own pid.
//!
//! Binaries come from `$VK_RUN` (set by `make test` to `run/`), else `run/` or
//! `target/release/` of the workspace. Build them with `make` first.

pub mod guest;
pub mod image;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous: CI machines are slow and tests must not assert on timing.
pub const TIMEOUT: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// Path of a built binary (`kernel`, `vps`).
pub fn bin(name: &str) -> PathBuf {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("VK_RUN") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(workspace().join("run"));
    dirs.push(workspace().join("target/release"));
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not built (looked in {dirs:?}); run `make` first");
}

/// Console output collected by reader threads (one per stream).
#[derive(Default)]
struct Output {
    text: Mutex<String>,
    grew: Condvar,
    /// Streams not yet at end of file; the output has ended when none is left.
    open: Mutex<usize>,
}

impl Output {
    fn with_streams(n: usize) -> Output {
        Output { open: Mutex::new(n), ..Output::default() }
    }

    fn is_closed(&self) -> bool {
        self.open.lock().map(|n| *n == 0).unwrap_or(true)
    }

    /// Wait until `needle` appears after `*cursor`; move the cursor past it and return the
    /// text up to and including it. On timeout or end of output, Err with the reason and the
    /// whole output.
    fn expect(&self, cursor: &mut usize, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.text.lock().expect("output lock");
        loop {
            let from = (*cursor).min(text.len());
            if let Some(i) = text[from..].find(needle) {
                let end = from + i + needle.len();
                let seen = text[from..end].to_string();
                *cursor = end;
                return Ok(seen);
            }
            let now = Instant::now();
            let closed = self.is_closed();
            if now >= deadline || closed {
                let why = if closed { "the kernel's output ended" } else { "timed out" };
                return Err(format!("{why} waiting for {needle:?}; output:\n{}", *text));
            }
            text = self.grew.wait_timeout(text, (deadline - now).min(Duration::from_millis(200))).expect("output lock").0;
        }
    }
}

/// A running kernel.
pub struct Kernel {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Output>,
    /// Where in the output `expect` continues from.
    cursor: usize,
}

impl Kernel {
    /// Start `run/kernel` with `args`; stdout and stderr are collected together.
    pub fn start(args: &[&str]) -> Kernel {
        Kernel::start_in(std::path::Path::new("."), args)
    }

    /// Start `run/kernel` with `args` in the working directory `dir` (where `dump` writes).
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Kernel {
        Kernel::start_env(dir, args, &[])
    }

    /// [`Kernel::start_in`] with variables added to the kernel's environment.
    pub fn start_env(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Kernel {
        let mut child = Command::new(bin("kernel"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the kernel");
        let out = Arc::new(Output::with_streams(2));
        for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>)]
            .into_iter()
            .flatten()
        {
            let out = Arc::clone(&out);
            std::thread::spawn(move || pump(stream, &out));
        }
        let stdin = child.stdin.take();
        Kernel { child, stdin, out, cursor: 0 }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.out.text.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Wait until `needle` appears after the cursor; move the cursor past it and return the
    /// text up to and including it. Panics with the whole output on timeout or exit.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, TIMEOUT)
    }

    pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> String {
        match self.out.expect(&mut self.cursor, needle, timeout) {
            Ok(seen) => seen,
            Err(e) => {
                std::thread::sleep(Duration::from_millis(100));
                panic!("{e}\n(kernel status: {:?})", self.child.try_wait());
            }
        }
    }

    /// Type a line at the console.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(line.as_bytes()).and_then(|()| stdin.write_all(b"\n")).and_then(|()| stdin.flush()).expect("write to kernel");
    }

    /// End the console input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Send a host signal to the kernel (by its pid).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is passed.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill({}, {sig})", self.pid());
    }

    /// Wait for the kernel to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_within(TIMEOUT)
    }

    pub fn wait_within(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                // Let the readers drain the pipes.
                let t = Instant::now();
                while !self.out.is_closed() && t.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return st;
            }
            if Instant::now() >= deadline {
                panic!("kernel did not exit; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn pump(mut r: Box<dyn Read + Send>, out: &Output) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Ok(mut t) = out.text.lock() {
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                out.grew.notify_all();
            }
        }
    }
    if let Ok(mut n) = out.open.lock() {
        *n = n.saturating_sub(1);
    }
    out.grew.notify_all();
}

impl Drop for Kernel {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The host processes whose parent is `pid` (a kernel's stubs and io helpers).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok()))
                == Some(pid)
        })
        .collect()
}

/// Stop a kernel still running, by its own pid (never by name), and then its stub processes
/// by theirs (they also die with the kernel, by PR_SET_PDEATHSIG; this makes sure).
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let stubs = children_of(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        for p in stubs {
            // SAFETY: kill(2) on a pid that was our kernel's child a moment ago.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

/// Run a binary to completion: (exit status, stdout, stderr).
pub fn run(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let o = Command::new(bin(name)).args(args).stdin(Stdio::null()).output().expect("run binary");
    (o.status, String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Run `vps -M /proc/PID/mem` against kernel `pid` until its listing satisfies `ready`, and
/// return that listing; fail with `what` and the last listing after [`TIMEOUT`]. (vps reads
/// from outside, so this waits for a state without disturbing the kernel.)
pub fn vps_until(pid: i32, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let mem = format!("/proc/{pid}/mem");
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let vps = run("vps", &["-M", &mem]).1;
        if ready(&vps) {
            return vps;
        }
        assert!(std::time::Instant::now() < deadline, "{what}:\n{vps}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A kernel whose console is a pseudo-terminal (its controlling terminal), driven like a
/// person at a terminal.
pub struct PtyKernel {
    child: Child,
    master: std::fs::File,
    out: Arc<Output>,
    cursor: usize,
    /// The pty's modes before the kernel started.
    initial: TermModes,
}

/// A terminal's modes as tcgetattr reports them: the four flag words and the control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermModes {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub cc: Vec<u8>,
}

fn term_modes(fd: &std::fs::File) -> TermModes {
    let t: libc::termios = nix::sys::termios::tcgetattr(fd).expect("tcgetattr on the pty").into();
    TermModes { iflag: t.c_iflag, oflag: t.c_oflag, cflag: t.c_cflag, lflag: t.c_lflag, cc: t.c_cc.to_vec() }
}

impl PtyKernel {
    /// Start the kernel on a new pty of `rows` × `cols`.
    pub fn start(args: &[&str], rows: u16, cols: u16) -> PtyKernel {
        use std::os::unix::process::CommandExt;
        let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let slave: std::fs::File = pty.slave.into();
        let initial = term_modes(&slave);
        let mut cmd = Command::new(bin("kernel"));
        cmd.args(args)
            .env("TERM", "xterm")
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        // SAFETY: between fork and exec we only call async-signal-safe functions: setsid and an
        // ioctl on fd 0, making the pty the new session's controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot start the kernel");
        drop(cmd);
        let master: std::fs::File = pty.master.into();
        let out = Arc::new(Output::with_streams(1));
        let reader = master.try_clone().expect("dup master");
        let o = Arc::clone(&out);
        std::thread::spawn(move || pump(Box::new(reader), &o));
        PtyKernel { child, master, out, cursor: 0, initial }
    }

    /// The pty's modes before the kernel started.
    pub fn initial_modes(&self) -> TermModes {
        self.initial.clone()
    }

    /// The pty's modes now (read through the master).
    pub fn modes(&self) -> TermModes {
        term_modes(&self.master)
    }

    /// Resize the terminal (TIOCSWINSZ on the master) and tell the kernel (SIGWINCH), as a
    /// terminal emulator does when its window changes.
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one winsize from a live local; the fd is our pty master.
        let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&self.master), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ");
        self.signal(libc::SIGWINCH);
    }

    /// Send a host signal to the kernel (by its pid).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is passed.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill({}, {sig})", self.pid());
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn output(&self) -> String {
        self.out.text.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// As [`Kernel::expect`].
    pub fn expect(&mut self, needle: &str) -> String {
        match self.out.expect(&mut self.cursor, needle, TIMEOUT) {
            Ok(seen) => seen,
            Err(e) => {
                std::thread::sleep(Duration::from_millis(100));
                panic!("{e}\n(kernel status: {:?})", self.child.try_wait());
            }
        }
    }

    /// As [`PtyKernel::expect`], but None (the cursor unmoved) if `needle` does not appear
    /// within `timeout`: for typing a key again until it takes effect.
    pub fn try_expect(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        self.out.expect(&mut self.cursor, needle, timeout).ok()
    }

    /// Type bytes at the terminal.
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).and_then(|()| self.master.flush()).expect("write to pty");
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            if Instant::now() >= deadline {
                panic!("kernel did not exit; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyKernel {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
