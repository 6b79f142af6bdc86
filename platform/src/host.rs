//! Process-wide host state: exit and re-exec, the pidfile, ptrace permission for `vps`, and
//! the asynchronous host signals (SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGWINCH) that only the
//! main thread takes, with sigwaitinfo, and turns into kernel events.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

static ARGV: OnceLock<Vec<CString>> = OnceLock::new();

/// Remember the command line for `reboot` (re-exec).
pub fn save_args() {
    let args: Vec<CString> = std::env::args_os().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
    let _ = ARGV.set(args);
}

/// Leave the process with `code`, restoring the terminal first. Safe from any thread,
/// including a signal handler.
pub fn exit(code: i32) -> ! {
    crate::console::restore_terminal();
    crate::ctl::remove_socket();
    // SAFETY: _exit ends the process immediately; nothing after it runs.
    unsafe { libc::_exit(code) }
}

/// Start the kernel again in this process image (`reboot`): the same binary, the same
/// arguments. Returns only on failure.
pub fn reexec() -> io::Error {
    crate::console::restore_terminal();
    crate::ctl::remove_socket();
    // The pid stays: a stub still starting would take the new image for its parent.
    crate::stub::pool::drain();
    let Some(argv) = ARGV.get() else {
        return io::Error::other("no saved command line");
    };
    // Signal dispositions reset on exec but the mask is inherited: unblock everything but the
    // asynchronous host signals, or the new kernel would start with its IPI and fault signals
    // blocked. The host signals stay blocked across the exec (a SIGTERM sent meanwhile stays
    // pending for the new kernel's main thread instead of killing the process before it has
    // blocked them again).
    let keep = async_set();
    // SAFETY: sets the calling thread's mask from a valid sigset.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &keep, std::ptr::null_mut());
    }
    let path = CString::new("/proc/self/exe").unwrap_or_default();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: path and argv are NUL-terminated C strings that outlive the call, and the argv
    // array is NULL-terminated.
    unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Write our pid to `path` (`-p`).
pub fn write_pidfile(path: &Path) -> io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
}

/// Let any process of the same user read our memory (`vps -M /proc/PID/mem`) under Yama's
/// ptrace_scope=1.
pub fn allow_any_ptracer() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
}

/// Host signals the main thread turns into kernel events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSignal {
    /// SIGQUIT (`kill -QUIT`, `^\` on a cooked terminal): break into the debugger.
    Quit,
    /// SIGTERM: clean shutdown.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP: the terminal went away.
    Hup,
    /// SIGWINCH: the terminal was resized.
    Winch,
}

const ASYNC_SIGNALS: [libc::c_int; 5] = [libc::SIGQUIT, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGWINCH];

fn async_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset is valid storage; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in ASYNC_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block the asynchronous signals in the calling thread (and every thread it starts after),
/// ignore SIGPIPE, and let the host reap stub processes (SIGCHLD ignored: a stub's death is
/// seen through its pidfd). Call first thing in main.
pub fn block_async_signals() {
    let set = async_set();
    // SAFETY: sets the calling thread's mask from a valid sigset; SIG_IGN for SIGPIPE and
    // SIGCHLD are valid dispositions.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
}

/// Wait for the next asynchronous host signal (main thread only), for at most `timeout`
/// (None then).
pub fn wait_signal(timeout: std::time::Duration) -> Option<HostSignal> {
    let set = async_set();
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: sigtimedwait reads the set and the timeout and may write a siginfo we do not
    // need (NULL).
    let s = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    match s {
        libc::SIGQUIT => Some(HostSignal::Quit),
        libc::SIGTERM => Some(HostSignal::Term),
        libc::SIGINT => Some(HostSignal::Int),
        libc::SIGHUP => Some(HostSignal::Hup),
        libc::SIGWINCH => Some(HostSignal::Winch),
        _ => None, // EAGAIN (the timeout), EINTR
    }
}

/// Leave `s` pending again in this process (every thread blocks it, so it stays, across
/// execve too): the main thread gives back a signal it took while the kernel re-executes
/// itself (reboot), for the new kernel.
pub fn repost(s: HostSignal) {
    let signo = match s {
        HostSignal::Quit => libc::SIGQUIT,
        HostSignal::Term => libc::SIGTERM,
        HostSignal::Int => libc::SIGINT,
        HostSignal::Hup => libc::SIGHUP,
        HostSignal::Winch => libc::SIGWINCH,
    };
    // SAFETY: kill(2) of our own process with a signal every thread blocks: it stays pending
    // (across execve too). No memory is passed.
    unsafe { libc::kill(libc::getpid(), signo) };
}

/// The host's message for an OS error, without Rust's "(os error N)" suffix.
pub fn os_message(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}
