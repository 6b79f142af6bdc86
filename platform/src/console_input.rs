//! Console input: a host thread reads the host's stdin as it arrives and hands the bytes to the
//! kernel like a keyboard interrupt — the kernel's handler runs on cpu0 at its next safe point
//! (a posted call), never on this thread.
//!
//! * `^\` (0x1c) on a terminal breaks into the debugger, as in DragonFly's vkernel: the thread
//!   raises SIGQUIT at the kernel process (the main thread's break-in path) and stops reading;
//!   the guest never sees the byte. The rest of that read is dropped: it was typed for `db>`.
//! * While the debugger owns the terminal ([`pause`]) the thread does not read: the keys are
//!   the debugger's. [`pause`] waits for a read in progress to finish, so no key typed for the
//!   debugger is taken once it returns.
//! * When stdin is not a terminal (a pipe, a file) the thread reads only on demand
//!   ([`demand`]: a guest waits for console input), so input nobody asked for stays in the
//!   pipe — for the debugger, say, in a scripted session.
//! * End of input (or an error: the terminal went away) is handed over once; then the thread
//!   ends.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the kernel's input handler gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes typed (or piped in).
    Bytes(Vec<u8>),
    /// End of input: the host's stdin is at end of file or gone.
    End,
}

/// The kernel's input handler (runs on cpu0 at a safe point).
pub type InputHook = fn(Input);

/// The break-in key.
pub const BREAK_KEY: u8 = 0x1c;

static HOOK: OnceLock<InputHook> = OnceLock::new();
static PAUSED: AtomicBool = AtomicBool::new(false);
static READING: AtomicBool = AtomicBool::new(false);
static DEMAND: AtomicBool = AtomicBool::new(false);
static THREAD: OnceLock<std::thread::Thread> = OnceLock::new();

/// Start the input thread (once). `breakin`: whether `^\` breaks into the debugger (stdin is
/// a terminal).
pub fn start(hook: InputHook, breakin: bool) {
    if HOOK.set(hook).is_err() {
        return;
    }
    let run = move || {
        let _ = THREAD.set(std::thread::current());
        reader(hook, breakin)
    };
    if let Err(e) = crate::cpu::spawn_host_thread("consin", run) {
        log::error!("console: cannot start the input thread: {e}");
    }
}

/// Stop reading (the debugger takes the terminal); returns once no read is in progress.
pub fn pause() {
    PAUSED.store(true, Ordering::SeqCst);
    while READING.load(Ordering::SeqCst) {
        std::hint::spin_loop();
    }
}

/// Read again.
pub fn resume() {
    PAUSED.store(false, Ordering::SeqCst);
}

/// Someone waits for console input: read some (when stdin is not a terminal the thread reads
/// only then).
pub fn demand() {
    if !DEMAND.swap(true, Ordering::SeqCst)
        && let Some(t) = THREAD.get()
    {
        t.unpark();
    }
}

fn post(hook: InputHook, input: Input) {
    crate::cpu::post_call(0, move || hook(input));
}

/// Wait until fd 0 has input (or end of file, or an error).
fn wait_readable() {
    let mut pfd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one pollfd we own; a one-second timeout lets a pause take effect.
    unsafe { libc::poll(&mut pfd, 1, 1000) };
}

fn reader(hook: InputHook, breakin: bool) {
    let mut buf = vec![0u8; 1024];
    loop {
        if PAUSED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if !breakin && !DEMAND.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(500));
            continue;
        }
        wait_readable();
        if !crate::console::stdin_readable() {
            continue;
        }
        READING.store(true, Ordering::SeqCst);
        if PAUSED.load(Ordering::SeqCst) {
            READING.store(false, Ordering::SeqCst);
            continue;
        }
        // SAFETY: read(2) into a buffer we own; poll said it will not block.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        let err = if n < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) } else { 0 };
        if n > 0 && breakin && let Some(i) = buf[..n as usize].iter().position(|&b| b == BREAK_KEY) {
            PAUSED.store(true, Ordering::SeqCst);
            READING.store(false, Ordering::SeqCst);
            if i > 0 {
                post(hook, Input::Bytes(buf[..i].to_vec()));
            }
            // SAFETY: kill(2) of our own process with SIGQUIT; no memory is passed.
            unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
            continue;
        }
        READING.store(false, Ordering::SeqCst);
        if n > 0 {
            DEMAND.store(false, Ordering::SeqCst);
        }
        match n {
            n if n > 0 => post(hook, Input::Bytes(buf[..n as usize].to_vec())),
            _ if err == libc::EINTR || err == libc::EAGAIN => {}
            _ => {
                post(hook, Input::End);
                return;
            }
        }
    }
}
