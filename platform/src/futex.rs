//! Futex wait and wake on an `AtomicU32`, the host's sleeping primitive for idle CPUs, the
//! debugger's stopped CPUs and (later) the stub hand-off.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Why a wait returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken (or the value already differed, or a spurious wake-up).
    Woken,
    /// The timeout passed.
    TimedOut,
    /// A signal (an IPI) interrupted the wait.
    Interrupted,
}

/// Sleep while `word == expected`, at most `timeout`. Process-private futex.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitResult {
    wait_op(word, expected, timeout, libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG)
}

fn wait_op(word: &AtomicU32, expected: u32, timeout: Option<Duration>, op: libc::c_int) -> WaitResult {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the u32 at `word` (a live atomic, suitably aligned) and the
    // optional relative timespec we own for the duration of the call; it writes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return WaitResult::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => WaitResult::TimedOut,
        Some(libc::EINTR) => WaitResult::Interrupted,
        _ => WaitResult::Woken, // EAGAIN: the value had already changed
    }
}

/// Wake up to `n` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32);
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is a live atomic.
    let r = unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, n, 0usize, 0usize, 0u32)
    };
    usize::try_from(r).unwrap_or(0)
}

/// Wake every waiter on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}

/// As [`wait`], on memory shared with another process (not a private futex).
pub fn wait_shared(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitResult {
    wait_op(word, expected, timeout, libc::FUTEX_WAIT)
}

/// As [`wake`], on memory shared with another process.
pub fn wake_shared(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32);
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is a live atomic.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32) };
    usize::try_from(r).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn wait_returns_at_once_when_value_differs() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 0, Some(Duration::from_secs(5))), WaitResult::Woken);
    }

    #[test]
    fn wait_times_out() {
        let w = AtomicU32::new(0);
        assert_eq!(wait(&w, 0, Some(Duration::from_millis(10))), WaitResult::TimedOut);
    }

    #[test]
    fn wake_releases_a_waiter() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                wait(&w2, 0, None);
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::Release);
        wake_all(&w);
        t.join().unwrap();
    }
}
