//! `/proc/PID/fdinfo/N` and `/proc/PID/limits`: what a descriptor is (its offset, status
//! flags, mount and inode, and what the event files add: an eventfd's count, an epoll
//! instance's items, an inotify instance's watches, a signalfd's mask, a timerfd's setting),
//! and the process's resource limits — in Linux's formats (fs/proc/fd.c, fs/eventfd.c,
//! fs/eventpoll.c, fs/notify/fdinfo.c, fs/signalfd.c, fs/timerfd.c, fs/proc/base.c).

use std::fmt::Write as _;

use crate::fs::epoll::Epoll;
use crate::fs::eventfd::EventFd;
use crate::fs::file::{File, O_CLOEXEC};
use crate::fs::inotify::Inotify;
use crate::fs::signalfd::SignalFd;
use crate::fs::timerfd::{Clock, TimerFd};
use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::uproc::RLIM_INFINITY;

/// The text of `/proc/PID/fdinfo/FD`.
pub fn fdinfo(p: &UProc, fd: i32) -> Result<Vec<u8>, Errno> {
    let (f, cloexec) = {
        let files = p.user().files();
        let t = files.lock();
        let e = t.entry(fd).map_err(|_| Errno::ENOENT)?;
        (std::sync::Arc::clone(&e.file), e.cloexec)
    };
    let mut s = String::new();
    let pos = if f.vnode.seekable() { *f.offset.lock() } else { 0 };
    let flags = f.flags() | if cloexec { O_CLOEXEC } else { 0 };
    let mnt_id = f.mount().map_or(0, |m| m.id);
    let _ = write!(s, "pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{}\n", f.vnode.ino());
    extra(&mut s, &f);
    Ok(s.into_bytes())
}

/// The lines an event file adds.
fn extra(s: &mut String, f: &File) {
    let Some(any) = f.vnode.as_any() else { return };
    if let Some(e) = any.downcast_ref::<EventFd>() {
        let _ = writeln!(s, "eventfd-count: {:16x}", e.count());
    } else if let Some(ep) = any.downcast_ref::<Epoll>() {
        for (fd, events, data, file) in ep.items() {
            let (ino, dev) = file.map_or((0, 0), |f| (f.vnode.ino(), f.vnode.attr().map_or(0, |a| a.dev)));
            let _ = writeln!(s, "tfd: {fd:8} events: {events:8x} data: {data:16x}  pos:0 ino:{ino:x} sdev:{dev:x}");
        }
    } else if let Some(ino) = any.downcast_ref::<Inotify>() {
        // fs/notify/fdinfo.c: one line per watch (no file handle: vk has none to show).
        for (wd, v, mask) in ino.watch_list() {
            let dev = v.attr().map_or(0, |a| a.dev);
            let _ = writeln!(s, "inotify wd:{wd:x} ino:{:x} sdev:{dev:x} mask:{mask:x} ignored_mask:0", v.ino());
        }
    } else if let Some(sfd) = any.downcast_ref::<SignalFd>() {
        let _ = writeln!(s, "sigmask:\t{:016x}", sfd.mask());
    } else if let Some(t) = any.downcast_ref::<TimerFd>() {
        let clockid = match t.clock() {
            Clock::Realtime => 0,
            Clock::Monotonic => 1,
            Clock::Boottime => 7,
        };
        let (value, interval) = t.get();
        let ts = |ns: u64| (ns / 1_000_000_000, ns % 1_000_000_000);
        let (vs, vn) = ts(value);
        let (is, inn) = ts(interval);
        let _ = write!(
            s,
            "clockid: {clockid}\nticks: {}\nsettime flags: 00\nit_value: ({vs}, {vn})\nit_interval: ({is}, {inn})\n",
            t.ticks()
        );
    }
}

/// `/proc/PID/limits`: each limit's soft and hard values and unit.
pub fn limits(p: &UProc) -> Vec<u8> {
    const ROWS: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let lim = *p.user().rlimits.lock();
    let v = |x: u64| if x == RLIM_INFINITY { "unlimited".to_string() } else { x.to_string() };
    let mut s = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for ((name, unit), (soft, hard)) in ROWS.iter().zip(lim) {
        let _ = write!(s, "{name:<25} {:<20} {:<20} ", v(soft), v(hard));
        let _ = if unit.is_empty() { writeln!(s) } else { writeln!(s, "{unit:<10}") };
    }
    s.into_bytes()
}
