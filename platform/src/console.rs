//! The host console: output on fd 1, the host terminal's state saved at boot, put in raw mode
//! while the kernel runs (its tty does the line discipline) and restored on every way out
//! (halt, reboot, a host signal, a panic; and while the debugger owns the terminal), and
//! single keys for the debugger's `--More--`.
//!
//! Output uses write(2) directly, never Rust's `stdout()`: its lock could be held by a CPU
//! that the debugger has stopped. While the terminal is raw, output is queued for a host
//! thread ([`crate::console_output`]) so that a CPU never blocks on it. In raw mode the host does no output processing, so kernel
//! messages ([`write`]) get their `\n` turned into `\r\n` here; the guest's output
//! ([`write_raw`]) was already processed by the kernel's tty.

use std::io::IsTerminal;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

/// The host terminal is in raw mode (set by [`raw_mode`], cleared by [`restore_terminal`]).
static RAW: AtomicBool = AtomicBool::new(false);
/// Raw mode was on when the debugger took the terminal: put it back on `continue`.
static RAW_BEFORE_DDB: AtomicBool = AtomicBool::new(false);
/// How long the exit paths and the debugger wait for queued output to be written.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Write a kernel message to fd 1 (retrying on EINTR and short writes; giving up on errors),
/// with `\n` as `\r\n` when the terminal is raw.
pub fn write(bytes: &[u8]) {
    if !RAW.load(Ordering::Acquire) {
        crate::console_output::write(bytes);
        return;
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    crate::console_output::write(&out);
}

/// Write bytes to fd 1 as they are (the guest's output, processed by the kernel's tty).
pub fn write_raw(bytes: &[u8]) {
    crate::console_output::write(bytes);
}

/// Write all of `bytes` to a host fd.
pub fn write_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) reads `bytes.len()` bytes from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Whether the host's stdin has input (or end of file) waiting, without waiting.
pub fn stdin_readable() -> bool {
    let mut pfd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one pollfd we own, with a zero timeout.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Rows and columns of the terminal on stdout.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the local we pass.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(0) }
}

static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Remember the terminal's state at boot so every exit can restore it.
pub fn save_terminal() {
    if !stdin_is_terminal() {
        return;
    }
    if let (Ok(t), Ok(mut s)) = (termios::tcgetattr(stdin_fd()), SAVED.lock()) {
        *s = Some(t);
    }
}

/// Put the terminal back as it was at boot (after writing what is queued for it).
pub fn restore_terminal() {
    crate::console_output::flush(FLUSH_TIMEOUT);
    crate::console_output::set_queued(false);
    // try_lock: this runs on exit paths, possibly from a signal handler.
    if let Ok(s) = SAVED.try_lock()
        && let Some(t) = s.as_ref()
    {
        let _ = termios::tcsetattr(stdin_fd(), SetArg::TCSANOW, t);
    }
    RAW.store(false, Ordering::Release);
}

/// Put the host terminal (if stdin is one, and its state was saved) in raw mode: no echo, no
/// line editing, no signals from keys, no flow control, no output processing. The kernel's
/// tty does all of that for the guest.
pub fn raw_mode() {
    let Ok(s) = SAVED.try_lock() else { return };
    let Some(saved) = s.as_ref() else { return };
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    if termios::tcsetattr(stdin_fd(), SetArg::TCSANOW, &raw).is_ok() {
        RAW.store(true, Ordering::Release);
        crate::console_output::set_queued(true);
    }
}

/// The debugger takes the terminal: stop the console input thread from reading (so it does
/// not take the debugger's keys) and give the terminal back its boot state (rustyline and
/// `--More--` switch modes as they need from there).
pub fn debugger_enter() {
    crate::console_input::pause();
    crate::console_output::flush(FLUSH_TIMEOUT);
    crate::console_output::set_queued(false);
    let raw = RAW.load(Ordering::Acquire);
    RAW_BEFORE_DDB.store(raw, Ordering::Release);
    if raw {
        restore_terminal();
    }
}

/// The debugger gives the terminal back (`continue`): raw mode again, input resumes.
pub fn debugger_leave() {
    if RAW_BEFORE_DDB.swap(false, Ordering::AcqRel) {
        raw_mode();
    }
    crate::console_input::resume();
}

/// The host terminal's boot settings as the kernel's `struct termios` (what TCGETS returned
/// then), if stdin is a terminal.
pub fn saved_kernel_termios() -> Option<[u8; 36]> {
    let s = SAVED.try_lock().ok()?;
    let t: libc::termios = s.as_ref()?.clone().into();
    let mut k = [0u8; 36];
    k[0..4].copy_from_slice(&t.c_iflag.to_le_bytes());
    k[4..8].copy_from_slice(&t.c_oflag.to_le_bytes());
    k[8..12].copy_from_slice(&t.c_cflag.to_le_bytes());
    k[12..16].copy_from_slice(&t.c_lflag.to_le_bytes());
    k[16] = t.c_line;
    k[17..36].copy_from_slice(&t.c_cc[..19]);
    Some(k)
}

/// Read one key from the terminal without waiting for a newline. None at end of input.
pub fn read_key() -> Option<u8> {
    let fd = stdin_fd();
    let old = termios::tcgetattr(fd).ok();
    if let Some(old) = &old {
        let mut raw = old.clone();
        raw.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &raw);
    }
    let mut b = [0u8; 1];
    let r = loop {
        match nix::unistd::read(fd, &mut b) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r,
        }
    };
    if let Some(old) = &old {
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, old);
    }
    match r {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}
