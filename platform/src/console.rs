//! The host console as the kernel sees it before there is a tty driver: raw output on fd 1,
//! terminal state saved at boot and restored on every way out, and single keys for the
//! debugger's `--More--`.
//!
//! Output uses write(2) directly, never Rust's `stdout()`: its lock could be held by a CPU
//! that the debugger has stopped.

use std::io::IsTerminal;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

/// Write all of `bytes` to fd 1 (retrying on EINTR and short writes; giving up on errors).
pub fn write(bytes: &[u8]) {
    write_fd(1, bytes);
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

/// The host terminal's settings as the kernel's `struct termios` (what TCGETS returns: four
/// flag words, the line discipline, 19 control characters), if stdin is a terminal.
pub fn kernel_termios() -> Option<[u8; 36]> {
    let mut t = [0u8; 36];
    // SAFETY: TCGETS writes one kernel struct termios (36 bytes) into our buffer.
    let r = unsafe { libc::ioctl(0, libc::TCGETS, t.as_mut_ptr()) };
    (r == 0).then_some(t)
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

/// Put the terminal back as it was at boot.
pub fn restore_terminal() {
    // try_lock: this runs on exit paths, possibly from a signal handler.
    if let Ok(s) = SAVED.try_lock()
        && let Some(t) = s.as_ref()
    {
        let _ = termios::tcsetattr(stdin_fd(), SetArg::TCSANOW, t);
    }
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
