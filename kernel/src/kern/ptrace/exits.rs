//! What a tracer's wait(2) finds: its tracees' stops, the exits of tracees that are not its
//! own children, and what becomes of tracees when the tracer goes.

use super::*;

/// A traced thread has exited with wait status `status`: its tracer learns it through wait
/// (unless the tracer is the parent of the process that ends with it: the zombie tells).
pub fn exited(td: &UThread, p: &UProc, status: i32, last: bool) {
    let pt = &td.user().ptrace;
    let tracer = {
        let mut st = pt.st.lock();
        let t = std::mem::take(&mut st.tracer);
        st.stop = None;
        pt.set_flags(&st);
        t
    };
    if tracer == 0 {
        return;
    }
    let tid = crate::kern::uproc::pid_of(td.tid()).unwrap_or(p.pid);
    let leader = tid == p.pid;
    let parent = p.rec.ppid.load(Ordering::Relaxed);
    if leader && last && parent == tracer {
        return;
    }
    let uid = p.user().cred.lock().uid;
    EXITS.lock().push(ExitReport { tracer, tid, pgid: p.rec.pgid.load(Ordering::Relaxed), status, uid });
    if let Some(t) = proc::find_user(tracer) {
        signal::send_to_proc(&t, SigInfo::child(tid, uid, status));
        wakeup(t.wchan());
    }
}

/// An exit of a tracee not reported as a zombie to the tracer: kept until it waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExitReport {
    tracer: i32,
    tid: i32,
    pgid: i32,
    status: i32,
    uid: u32,
}

pub(super) static EXITS: SpinLock<Vec<ExitReport>> = SpinLock::new("ptrace_exits", Vec::new());

/// The tracer process `p` is gone: its tracees are let go (resumed where stopped) or, with
/// PTRACE_O_EXITKILL, killed.
pub fn tracer_gone(p: &UProc) {
    EXITS.lock().retain(|e| e.tracer != p.pid);
    for tp in proc::all_user() {
        for t in tp.threads() {
            let kill = {
                let pt = &t.user().ptrace;
                let mut st = pt.st.lock();
                if st.tracer != p.pid {
                    continue;
                }
                let kill = st.options & PTRACE_O_EXITKILL != 0;
                detach_locked(&mut st);
                pt.set_flags(&st);
                kill
            };
            wakeup(chan(&t));
            if kill {
                signal::send_to_proc(&tp, SigInfo::kernel(SIGKILL, signal::SI_KERNEL));
            }
        }
    }
}

/// Whether a tracee's id matches what wait asked for.
pub(super) fn wanted(which: Which, tid: i32, pgid: i32) -> bool {
    match which {
        Which::Any => true,
        Which::Pid(p) => p == tid,
        Which::Pgid(g) => g == pgid,
    }
}

/// wait(2) for tracer `w`: whether any of its tracees matches `which` (so wait must not say
/// ECHILD), and the first unreported stop or exit (taken unless `nowait`). A tracee is
/// waited for whatever its kind, as if __WALL were given (Linux's eligible_child). Called under the
/// tracer's sleep-queue lock, so a stop made after the scan wakes the wait.
pub fn wait_scan(w: &UProc, which: Which, o: &WaitOpts) -> (bool, Option<Reaped>) {
    let mut any = false;
    {
        let mut exits = EXITS.lock();
        if exits.is_empty() && NTRACED.load(Ordering::Acquire) == 0 {
            return (false, None);
        }
        if let Some(i) = exits.iter().position(|e| e.tracer == w.pid && wanted(which, e.tid, e.pgid)) {
            any = true;
            if o.exited {
                let e = exits[i];
                if !o.nowait {
                    exits.remove(i);
                }
                let r = Reaped { pid: e.tid, status: e.status, uid: e.uid, event: None, times: Default::default() };
                return (true, Some(r));
            }
        }
    }
    for tp in proc::all_user() {
        for t in tp.threads() {
            let tid = crate::kern::uproc::pid_of(t.tid()).unwrap_or(0);
            let mut st = t.user().ptrace.st.lock();
            if st.tracer != w.pid || !wanted(which, tid, tp.rec.pgid.load(Ordering::Relaxed)) {
                continue;
            }
            any = true;
            if let Some(s) = st.stop.as_mut().filter(|s| !s.reported) {
                if !o.nowait {
                    s.reported = true;
                }
                let code = s.code;
                drop(st);
                let uid = tp.user().cred.lock().uid;
                let ev = Report::Trapped(code);
                return (
                    true,
                    Some(Reaped { pid: tid, status: ev.status(), uid, event: Some(ev), times: Default::default() }),
                );
            }
        }
    }
    (any, None)
}

/// Whether `child` (a child of `w`) is traced by `w`: its job-control stops then reach `w`
/// as ptrace stops only.
pub fn traced_by(child: &UProc, w: &UProc) -> bool {
    NTRACED.load(Ordering::Acquire) != 0 && child.threads().iter().any(|t| t.user().ptrace.st.lock().tracer == w.pid)
}
