//! Waiting for children (wait4(2), waitid(2)): find a matching zombie (or a stop/continue
//! report), reap it, or sleep in "wait" until one of them has something to report. A tracer
//! also finds its tracees' ptrace stops and exits (`kern::ptrace::wait_scan`).

use std::sync::atomic::Ordering;


use crate::kern::errno::Errno;
use crate::kern::jobctl::Report;
use crate::kern::proc::UProc;
use crate::kern::proc::{self};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::WakeReason;
use crate::kern::uproc::free_pid;

/// Which children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// A child's event: its exit, or a stop or continue (with WUNTRACED / WCONTINUED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    /// The wait status word.
    pub status: i32,
    pub uid: u32,
    /// A stop or continue rather than an exit.
    pub event: Option<Report>,
    /// An exited child's CPU time (its own and its reaped children's).
    pub times: crate::kern::cputime::Times,
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOpts {
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
    pub nohang: bool,
    /// Leave the event to be reported again (WNOWAIT).
    pub nowait: bool,
}

fn matches(c: &UProc, which: Which) -> bool {
    match which {
        Which::Any => true,
        Which::Pid(p) => c.pid == p,
        Which::Pgid(g) => c.rec.pgid.load(Ordering::Relaxed) == g,
    }
}

enum Found {
    Zombie(UProc),
    Event(i32, u32, Report),
    /// A child between becoming a zombie and telling its parent (a few instructions on the
    /// exiting CPU, which cannot be preempted): look again in a moment.
    Exiting,
}

/// The first child with something to report, taking a stop/continue report unless `nowait`.
fn scan(p: &UProc, children: &mut Vec<UProc>, which: Which, o: WaitOpts) -> Option<Found> {
    for (i, c) in children.iter().enumerate() {
        if !matches(c, which) {
            continue;
        }
        if c.is_zombie() {
            if o.exited && !c.user().exit_notified.load(Ordering::Acquire) {
                return Some(Found::Exiting);
            }
            if o.exited {
                let z = if o.nowait { c.clone() } else { children.remove(i) };
                return Some(Found::Zombie(z));
            }
            continue;
        }
        // A child the waiter traces reports its stops as ptrace stops (kern::ptrace).
        if crate::kern::ptrace::traced_by(c, p) {
            continue;
        }
        let mut j = c.user().jobctl.lock();
        let want = match j.report {
            Some(Report::Stopped(_)) => o.stopped,
            Some(Report::Continued) => o.continued,
            Some(Report::Trapped(_)) | None => false,
        };
        if want {
            let r = j.report.expect("checked");
            if !o.nowait {
                j.report = None;
            }
            drop(j);
            return Some(Found::Event(c.pid, c.user().cred.lock().uid, r));
        }
    }
    None
}

/// Wait for a child matching `which` to exit (or stop, or continue, as `o` asks). `Ok(None)`
/// with `nohang` when none has anything to report yet.
pub fn wait_child(p: &UProc, which: Which, o: WaitOpts) -> Result<Option<Reaped>, Errno> {
    let chan = p.wchan();
    loop {
        let g = sleepq_lock(chan);
        // Tracees first (they may be children too): their stops and exits.
        let (tracees, traced) = crate::kern::ptrace::wait_scan(p, which, &o);
        if let Some(r) = traced {
            return Ok(Some(r));
        }
        let found = {
            let mut children = p.user().children.lock();
            if !tracees && !children.iter().any(|c| matches(c, which)) {
                return Err(Errno::ECHILD);
            }
            scan(p, &mut children, which, o)
        };
        match found {
            Some(Found::Zombie(z)) => {
                drop(g);
                let status = z.user().exit_status.lock().unwrap_or(0);
                let mut times = *z.user().times.dead.lock();
                times.add(*z.user().times.children.lock());
                let r = Reaped { pid: z.pid, status, uid: z.user().cred.lock().uid, event: None, times };
                if !o.nowait {
                    crate::kern::cputime::child_reaped(p, &z);
                    proc::remove(z.pid);
                    free_pid(z.pid);
                }
                return Ok(Some(r));
            }
            Some(Found::Event(pid, uid, ev)) => {
                return Ok(Some(Reaped { pid, status: ev.status(), uid, event: Some(ev), times: Default::default() }));
            }
            Some(Found::Exiting) => {
                drop(g);
                crate::kern::sched::yield_cpu();
                continue;
            }
            None => {}
        }
        if o.nohang {
            return Ok(None);
        }
        if tsleep_locked(g, "wait", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}
