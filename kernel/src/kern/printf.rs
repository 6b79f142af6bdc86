//! Console messages: `kprintf!` writes to the console and appends to the message buffer
//! ([`MSGBUF`], exported as `vk_msgbuf`), which `dmesg`, ddb and dump readers read back.
//!
//! Lines from different CPUs do not interleave: writers take the console spinlock. The
//! debugger never does (a stopped CPU may hold it): it uses [`cons_write_nolock`].

use std::fmt;
use std::sync::atomic::Ordering;

use kvm_mem::abi::{MSGBUF_SIZE, MsgBufRecord};
use platform::sync::SpinLock;

use crate::kern::conv::bucket;

/// The console message buffer (exported as `vk_msgbuf`).
pub static MSGBUF: MsgBufRecord = MsgBufRecord::new();

static CONSOLE: SpinLock<()> = SpinLock::new("console", ());

/// Append to the message buffer (lock-free: writers reserve a range of the ring).
pub fn msgbuf_append(bytes: &[u8]) {
    let start = MSGBUF.wptr.fetch_add(bytes.len() as u64, Ordering::AcqRel);
    for (i, b) in bytes.iter().enumerate() {
        let pos = bucket(start.wrapping_add(i as u64), MSGBUF_SIZE);
        MSGBUF.buf[pos].store(*b, Ordering::Relaxed);
    }
}

/// The message buffer's text, oldest first.
pub fn msgbuf_text() -> String {
    let w = MSGBUF.wptr.load(Ordering::Acquire);
    let len = w.min(MSGBUF_SIZE as u64);
    let bytes: Vec<u8> =
        (w - len..w).map(|i| MSGBUF.buf[bucket(i, MSGBUF_SIZE)].load(Ordering::Relaxed)).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Write to the console and the message buffer.
pub fn cons_write(bytes: &[u8]) {
    msgbuf_append(bytes);
    let _g = CONSOLE.lock();
    platform::console::write(bytes);
}

/// A guest's console output: to the console (not the kernel's message buffer).
pub fn cons_write_guest(bytes: &[u8]) {
    let _g = CONSOLE.lock();
    platform::console::write_raw(bytes);
}

/// Write without the console lock (the debugger and the trap path).
pub fn cons_write_nolock(bytes: &[u8]) {
    msgbuf_append(bytes);
    platform::console::write(bytes);
}

#[doc(hidden)]
pub fn _kprintf(args: fmt::Arguments<'_>) {
    let s = fmt::format(args);
    cons_write(s.as_bytes());
}

#[doc(hidden)]
pub fn _kprintf_nolock(args: fmt::Arguments<'_>) {
    let s = fmt::format(args);
    cons_write_nolock(s.as_bytes());
}

/// printf to the console and the message buffer.
#[macro_export]
macro_rules! kprintf {
    ($($arg:tt)*) => { $crate::kern::printf::_kprintf(format_args!($($arg)*)) };
}

/// kprintf for the trap and debugger paths: never takes the console lock.
#[macro_export]
macro_rules! kprintf_nolock {
    ($($arg:tt)*) => { $crate::kern::printf::_kprintf_nolock(format_args!($($arg)*)) };
}

/// The `log` crate's messages go to the console too (`-v` shows debug ones).
struct KernelLogger;

impl log::Log for KernelLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = match r.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warning",
                log::Level::Info => "info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            _kprintf(format_args!("{}: {}: {}\n", r.target(), level, r.args()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: KernelLogger = KernelLogger;

/// Route `log` to the console: warnings by default, debug with `-v`.
pub fn init_logging(verbose: bool) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if verbose { log::LevelFilter::Debug } else { log::LevelFilter::Warn });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgbuf_keeps_the_latest_text_in_order() {
        msgbuf_append(b"hello, ");
        msgbuf_append(b"world\n");
        assert!(msgbuf_text().ends_with("hello, world\n"));
        let big = vec![b'x'; MSGBUF_SIZE + 100];
        msgbuf_append(&big);
        msgbuf_append(b"tail");
        let t = msgbuf_text();
        assert_eq!(t.len(), MSGBUF_SIZE);
        assert!(t.ends_with("xxtail"));
    }
}
