//! Leaving: exit(2) of a thread, the end of a process (exit_group(2), a fatal signal), and
//! what init's end means for the machine.
//!
//! A process that exits keeps its record as a zombie until its parent reaps it; its memory,
//! stub and descriptors go at once; its children are given to init.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::kern::ctx::Exit;
use crate::kern::uproc::{pid_of, tid_of};
use crate::kern::proc;
use crate::kern::proc::UProc;
use crate::kern::sched;
use crate::kern::sleep::wakeup;
use crate::kern::thread::UThread;
use crate::vm::space::VmMap;
use platform::stub::StubThread;

/// The wait(2) status word of death by `sig`.
pub fn sigstatus(sig: i32) -> i32 {
    sig & 0x7f
}

/// The shell's view of a wait status: the exit code, or 128 + the signal.
pub fn status_code(status: i32) -> i32 {
    if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) }
}

/// Whether the process has begun to exit (another thread's exit_group, a fatal signal).
pub fn exiting(p: &UProc) -> bool {
    p.user().exit_status.lock().is_some()
}

/// The calling guest thread leaves, and with it its process if it was the last thread or
/// the exit is for the whole group (the others are told to leave; the last one out ends the
/// process). Takes the caller's references to its thread and process: nothing on this stack
/// may outlive the thread (the frame is never unwound), or the thread's kernel stack and the
/// process record would never be freed.
pub fn exit(td: UThread, p: UProc, e: Exit) -> ! {
    exit_thread(&td, &p, e);
    drop(td);
    drop(p);
    sched::thread_exit()
}

fn exit_thread(td: &UThread, p: &UProc, e: Exit) {
    // A core being written waits for this thread's registers (and for it to stay put).
    crate::kern::coredump::exit_wait(td, p);
    let status = match e {
        Exit::Group(s) => s,
        Exit::Thread(code) => (code & 0xff) << 8,
    };
    crate::kern::ptrace::exit_event(td, p, status);
    if let Exit::Group(_) = e {
        crate::kern::signal::kill_process(p, status);
    }
    crate::kern::futex::exit_robust_list(p, td.tid(), td.user().robust_list.swap(0, Ordering::Relaxed));
    crate::kern::futex::clear_tid(p, td.user().clear_child_tid.swap(0, Ordering::Relaxed));
    crate::kern::cputime::thread_gone(td, p);
    let (_, left) = p.remove_thread(td.tid());
    if crate::kern::ptrace::is_traced(td) {
        let final_status = p.user().exit_status.lock().unwrap_or(status);
        crate::kern::ptrace::exited(td, p, final_status, left == 0);
    }
    // The host thread ends in its stub (which may be shared: a vfork child's is a thread of
    // its parent's stub).
    let stub = td.user().stub.lock().take();
    // A vfork parent's lent thread goes back to it as it is (its trap waits for the
    // parent's resume), before the parent is released below.
    let stub = stub.filter(|_| !td.user().stub_borrowed.swap(false, Ordering::AcqRel));
    // The last thread's stub thread stays trapped: its stub may go back to the pool once the
    // address space is gone (`recycle_stub`).
    let (stub, last) = match stub {
        Some(s) if left == 0 => (None, Some(s)),
        s => (s, None),
    };
    if let Some(stub) = stub {
        let slot = stub.slot();
        let space = Arc::clone(stub.space());
        if let Ok(s) = Arc::try_unwrap(stub) {
            s.exit(platform::stub::Ops::new());
        }
        space.free_slot(slot);
    }
    if left == 0 {
        let status = {
            let mut st = p.user().exit_status.lock();
            *st.get_or_insert(status)
        };
        proc_exit(p, status, last);
    } else if let Some(tid) = pid_of(td.tid()).filter(|&t| t != p.pid) {
        crate::kern::uproc::free_pid(tid);
    }
}

/// Release a process's resources and make it a zombie; `last` is the stub thread of its last
/// thread, still trapped.
fn proc_exit(p: &UProc, status: i32, last: Option<Arc<StubThread>>) {
    let u = p.user();
    crate::kern::cputime::cancel_all(p);
    crate::kern::posix_timer::delete_all(p);
    crate::kern::aio::destroy_all(p);
    crate::kern::ptrace::tracer_gone(p);
    // Memory and the stub: the address space goes when its last user lets go.
    let empty = crate::vm::space::AddressSpace::new(tid_of(p.pid)).into_map();
    let vm = std::mem::replace(&mut *u.vm.lock(), empty);
    if let Some(t) = last {
        recycle_stub(&vm, t);
    }
    drop(vm);
    // Descriptors.
    let files = std::mem::take(&mut *u.files().lock());
    drop(files);
    // System V semaphore adjustments (SEM_UNDO).
    crate::kern::sysv::sem::exit(p.pid);
    // The working directory (Linux's exit_fs): a zombie must not keep a file system busy.
    let (cwd, root) = {
        let mut fs = u.fs.lock();
        (std::mem::replace(&mut fs.cwd, crate::fs::namei::NamePath::root()), std::mem::replace(&mut fs.root, crate::fs::namei::NamePath::root()))
    };
    drop((cwd, root));
    // Nor its program (Linux's exit_mm drops the exe file; a zombie's exe link is ENOENT).
    let exe = u.exe.lock().take();
    drop(exe);
    let deny = u.exe_deny.lock().take();
    drop(deny);
    p.rec.rss_pages.store(0, Ordering::Relaxed);
    p.rec.vsz_bytes.store(0, Ordering::Relaxed);
    p.rec.xstat.store(status, Ordering::Relaxed);
    // A parent that ignores SIGCHLD never sees a zombie: take the child off its list before
    // the state says ZOMBIE, or a wait(2) running now could reap it (it must get ECHILD).
    let parent = u.uparent();
    let autoreap = parent.as_ref().is_some_and(parent_autoreaps);
    if let Some(pp) = parent.as_ref().filter(|_| autoreap) {
        pp.user().children.lock().retain(|c| c.pid != p.pid);
    }
    p.set_state(crate::kern::proc::ProcState::Zombie);
    // Process descriptors (fs/pidfd.rs) poll readable from here.
    crate::fs::vfs::poll_wakeup();
    // Children go to the nearest child subreaper among the ancestors, or to init.
    let children = std::mem::take(&mut *u.children.lock());
    let child_pgrps: Vec<i32> = children.iter().map(|c| c.rec.pgid.load(Ordering::Relaxed)).collect();
    // The reaper is woken only for children it got (a wait(2) may now find a zombie among
    // them): waking it for none would cost it a round trip through its wait, and it is often
    // the exiting process's parent, whose sync wake-up (`notify_parent`) must come first.
    if !children.is_empty()
        && let Some(reaper) = new_parent(p, parent.as_ref())
    {
        for c in children {
            c.rec.ppid.store(reaper.pid, Ordering::Relaxed);
            *c.user().parent.lock() = Arc::downgrade(reaper.arc());
            reaper.user().children.lock().push(c);
        }
        wakeup(reaper.wchan());
    }
    crate::kern::fork::vfork_release(p);
    if p.pid == 1 {
        init_exited(status);
    }
    crate::kern::tty::ctty::exit_hangups(p, parent.as_ref(), &child_pgrps);
    match parent {
        Some(parent) => notify_parent(p, &parent, status, autoreap),
        // Init's parent is the system process: no one to tell.
        None => u.exit_notified.store(true, Ordering::Release),
    }
}

/// The stub of an exiting process's last thread `t`: back to the pool of ready stubs, scrubbed
/// of the process's mappings (platform::stub::pool::recycle), when it is the address space's
/// own and no one else uses the space; else its host thread exits as any other's.
fn recycle_stub(vm: &Arc<VmMap>, t: Arc<StubThread>) {
    let slot = t.slot();
    let space = Arc::clone(t.space());
    let Ok(t) = Arc::try_unwrap(t) else {
        space.free_slot(slot);
        return;
    };
    if Arc::strong_count(vm) == 1 && recycling() {
        let mut g = vm.write();
        if g.stub.as_ref().is_some_and(|s| Arc::ptr_eq(s, &space))
            && let Some((stub, unmaps, deferred, keep)) = g.take_stub_keeping()
        {
            drop(space);
            // The pages go once the stub has unmapped them (or is killed); those it keeps
            // mapped are someone else's too (see vm::residue).
            let mut pages = g.take_pages();
            pages.extend(deferred);
            platform::stub::pool::recycle(stub, t, unmaps, pages, Arc::clone(g.physmem()), keep);
            return;
        }
    }
    t.exit(platform::stub::Ops::new());
    space.free_slot(slot);
}

/// Whether exiting processes' stubs go back to the pool (`-e vm.stubrecycle=0`: never).
fn recycling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::kern::kenv::get("vm.stubrecycle").is_none_or(|v| v != "0"))
}

/// Who takes `p`'s children: the nearest ancestor that is a child subreaper
/// (PR_SET_CHILD_SUBREAPER) and not exiting, else init (none when `p` is init).
pub(crate) fn new_parent(p: &UProc, parent: Option<&UProc>) -> Option<UProc> {
    let mut a = parent.cloned();
    while let Some(q) = a.filter(|q| q.pid > 1) {
        if q.user().child_subreaper.load(Ordering::Relaxed) && !q.is_zombie() && !exiting(&q) {
            return Some(q);
        }
        a = q.user().uparent();
    }
    proc::find_user(1).filter(|i| i.pid != p.pid)
}

/// Whether `parent` reaps its children at once: SIGCHLD ignored, or SA_NOCLDWAIT.
fn parent_autoreaps(parent: &UProc) -> bool {
    use crate::abi::signal::SaFlags;
    use crate::kern::signal::{SIG_IGN, SIGCHLD};
    let act = parent.user().sig.lock().action(SIGCHLD);
    act.handler == SIG_IGN || act.flags.contains(SaFlags::NOCLDWAIT)
}

/// Tell the parent: SIGCHLD (or the clone exit signal), and a wake-up for wait(2). A parent
/// that ignores SIGCHLD (or asked SA_NOCLDWAIT) gets no zombie: the child is reaped at once.
fn notify_parent(p: &UProc, parent: &UProc, status: i32, autoreap: bool) {
    use crate::kern::signal::{self, SigInfo};
    let exit_signal = p.user().exit_signal.load(Ordering::Relaxed);
    if autoreap {
        proc::remove(p.pid);
        crate::kern::uproc::free_pid(p.pid);
    } else if signal::valid(exit_signal) {
        let uid = p.user().cred.lock().uid;
        let mut info = SigInfo::child(p.pid, uid, status);
        info.si_signo = exit_signal;
        signal::send_to_proc(parent, info);
    }
    p.user().exit_notified.store(true, Ordering::Release);
    // Sync: the parent may run here at once, this thread is on its way out.
    crate::kern::sched::wake_sync(|| wakeup(parent.wchan()));
}

/// init is gone: in batch mode (`-e init=`) this is how the machine stops.
fn init_exited(status: i32) -> ! {
    let code = status_code(status);
    crate::kprintf!("init exited with status {code}\n");
    if platform::stub::spin::STATS_ON.load(Ordering::Relaxed) {
        crate::kprintf!("sched stats: {}\n", crate::kern::sched::stats_line());
    }
    crate::kern::shutdown::halt_with(code)
}
