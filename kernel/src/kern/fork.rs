//! clone(2), fork(2), vfork(2): new threads and new processes.
//!
//! * A thread (CLONE_THREAD) shares everything; in the stub it is a new host thread in a new
//!   slot, started by a `clone` operation the parent's stub thread carries out on its way back
//!   to the guest.
//! * A process gets a copy-on-write copy of the address space and a new stub, a ready one
//!   from the pool (platform::stub::pool) when one is waiting. The pages the parent's stub
//!   maps are mapped in the child's stub before it first runs (in a few runs of pages), the
//!   stack pages around a lone thread's stack pointer are copied at once rather than shared
//!   (vm::space's `fork`); the rest come by the child's faults (with fault-around).
//! * A process with CLONE_VM (posix_spawn, vfork) shares the parent's address space: its
//!   thread is a new host thread of the parent's stub, as a thread would be; exec gives it its
//!   own. With CLONE_VFORK the parent sleeps until the child execs or exits — and the child
//!   runs on the parent's own stub thread meanwhile (lent: `UserThread::stub_borrowed`; not
//!   for a traced parent, nor with `-e vm.vforklend=0`), which comes back with the parent's
//!   FPU state and fs base restored: no host thread start and exit per vfork, and the
//!   parent's stub keeps one thread (recyclable). The child leaves it at its exec (a stub of
//!   its own) or exit without ending it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::UProc;
use crate::kern::proc::{self, Proc};
use crate::kern::sched;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked};
use crate::kern::thread::Thread;
use crate::kern::uproc::{UserProc, UserThread, alloc_pid, free_pid, tid_of};
use crate::kern::usertrap::user_main;
use crate::vm::uaccess::{self, UserPtr};

pub use crate::abi::proc::CloneFlags;

/// clone's arguments.
#[derive(Debug, Clone, Copy)]
pub struct CloneArgs {
    pub flags: CloneFlags,
    /// The signal the parent gets when the child exits (none if it is no signal).
    pub exit_signal: u32,
    /// The child's stack pointer (0: the parent's).
    pub stack: u64,
    /// Where CLONE_PARENT_SETTID writes the new id (in the parent's memory).
    pub parent_tid: UserPtr<i32>,
    /// Where CLONE_CHILD_SETTID writes it and CLONE_CHILD_CLEARTID clears it at exit (in the
    /// child's memory).
    pub child_tid: UserPtr<i32>,
    /// The child's TLS base (CLONE_SETTLS).
    pub tls: u64,
    /// clone3's CLONE_CLEAR_SIGHAND: the child's handlers are reset to SIG_DFL (ignored
    /// signals stay ignored).
    pub clear_sighand: bool,
}

impl Default for CloneArgs {
    /// fork(2): nothing shared, no exit signal yet.
    fn default() -> CloneArgs {
        CloneArgs {
            flags: CloneFlags::empty(),
            exit_signal: 0,
            stack: 0,
            parent_tid: UserPtr::new(0),
            child_tid: UserPtr::new(0),
            tls: 0,
            clear_sighand: false,
        }
    }
}

/// Create a thread or a process; returns the new id to the caller (the child sees 0).
/// EINVAL for a thread without shared signal handlers, shared handlers without shared
/// memory (as Linux), and for the namespaces and pidfds vk does not have.
pub fn do_clone(ctx: &mut Ctx<'_>, a: CloneArgs) -> SysResult {
    let f = a.flags;
    if f.intersects(CloneFlags::UNSUPPORTED) {
        return Err(Errno::EINVAL);
    }
    if (f.contains(CloneFlags::THREAD) && !f.contains(CloneFlags::SIGHAND))
        || (f.contains(CloneFlags::SIGHAND) && !f.contains(CloneFlags::VM))
    {
        return Err(Errno::EINVAL);
    }
    if f.contains(CloneFlags::THREAD) { new_thread(ctx, a) } else { new_process(ctx, a) }
}

/// Write a new thread's id to the guest (CLONE_PARENT_SETTID, CLONE_CHILD_SETTID).
fn put_tid(ctx: &Ctx<'_>, p: UserPtr<i32>, tid: i32) -> Result<(), Errno> {
    ctx.write(p, &tid)
}

fn child_regs(ctx: &Ctx<'_>, a: &CloneArgs) -> platform::stub::UserRegs {
    let mut regs = *ctx.regs;
    regs.set_rax(0);
    if a.stack != 0 {
        regs.set_rsp(a.stack);
    }
    regs
}

/// RLIMIT_NPROC: EAGAIN when the caller's real user already runs as many threads as the
/// soft limit allows (Linux counts tasks), unless the user is root or the caller has
/// CAP_SYS_RESOURCE or CAP_SYS_ADMIN.
fn nproc_check(ctx: &Ctx<'_>) -> Result<(), Errno> {
    use crate::kern::cred::{CAP_SYS_ADMIN, CAP_SYS_RESOURCE};
    let u = ctx.p.user();
    let limit = u.rlimits.lock()[6].0;
    if limit == crate::kern::uproc::RLIM_INFINITY {
        return Ok(());
    }
    let cred = u.cred();
    if cred.uid == 0 || cred.capable(CAP_SYS_RESOURCE) || cred.capable(CAP_SYS_ADMIN) {
        return Ok(());
    }
    let n: usize = crate::kern::proc::all()
        .into_iter()
        .filter_map(crate::kern::proc::UProc::new)
        .filter(|p| !p.is_zombie() && p.user().cred().uid == cred.uid)
        .map(|p| p.nthreads())
        .sum();
    if n as u64 >= limit { Err(Errno::EAGAIN) } else { Ok(()) }
}

fn new_thread(ctx: &mut Ctx<'_>, a: CloneArgs) -> SysResult {
    nproc_check(ctx)?;
    let stub = ctx.td.user().stub.lock().clone().ok_or(Errno::EAGAIN)?;
    let space = Arc::clone(stub.space());
    let slot = space.alloc_slot().ok_or(Errno::EAGAIN)?;
    let Some(tid) = alloc_pid() else {
        space.free_slot(slot);
        return Err(Errno::EAGAIN);
    };
    let ut = UserThread::new(Arc::new(space.thread(slot)), child_regs(ctx, &a));
    ut.sigstate.sig.lock().mask = ctx.td.user().sigstate.sig.lock().mask;
    ut.inherit_slack(ctx.td.user());
    let fs = if a.flags.contains(CloneFlags::SETTLS) { a.tls } else { ctx.td.user().fs_base.load(Ordering::Relaxed) };
    ut.fs_base.store(fs, Ordering::Relaxed);
    ut.queue_ops(|o| o.set_fs(fs));
    if a.flags.contains(CloneFlags::CHILD_CLEARTID) {
        ut.clear_child_tid.store(a.child_tid.addr(), Ordering::Relaxed);
    }
    if a.flags.contains(CloneFlags::PARENT_SETTID) {
        put_tid(ctx, a.parent_tid, tid)?;
    }
    if a.flags.contains(CloneFlags::CHILD_SETTID) {
        put_tid(ctx, a.child_tid, tid)?;
    }
    // The parent's stub thread starts the host thread on its way back to the guest.
    ctx.td.user().queue_ops(|o| o.clone_thread(slot));
    let td = match Thread::new_user(ctx.p, tid_of(tid), &ctx.p.comm(), ut, user_main) {
        Ok(td) => td,
        Err(_) => {
            free_pid(tid);
            space.free_slot(slot);
            return Err(Errno::EAGAIN);
        }
    };
    td.rec.cpu.store(platform::cpu::curcpu(), Ordering::Relaxed);
    td.set_affinity(ctx.td.affinity()); // inherited, as sched_setaffinity(2) says
    let event = crate::kern::ptrace::on_clone(ctx.td, &td, a.flags, a.exit_signal);
    sched::setrunnable(td.into_arc());
    if let Some(ev) = event {
        crate::kern::ptrace::event_stop(ctx.td, ctx.p, ctx.regs, ev, tid_of(tid));
    }
    usize::try_from(tid).map_err(|_| Errno::EAGAIN)
}

fn new_process(ctx: &mut Ctx<'_>, a: CloneArgs) -> SysResult {
    let parent = ctx.p;
    let pu = parent.user();
    // CLONE_PARENT: the child is the caller's sibling — its parent the caller's parent, its
    // exit signal the caller's own (copy_process); init may not (EINVAL).
    let sibling = a.flags.contains(CloneFlags::PARENT);
    let real_parent = if sibling {
        if parent.pid == 1 {
            return Err(Errno::EINVAL);
        }
        pu.parent.lock().upgrade().and_then(UProc::new).ok_or(Errno::EINVAL)?
    } else {
        parent.clone()
    };
    nproc_check(ctx)?;
    let pid = alloc_pid().ok_or(Errno::EAGAIN)?;
    let fail = |e: Errno| {
        free_pid(pid);
        e
    };
    let shared_vm = a.flags.contains(CloneFlags::VM);
    // A vfork child runs on its parent's own stub thread until it execs or exits: the parent
    // sleeps meanwhile and gets it back with its FPU state and fs base as they were.
    let lend = shared_vm && a.flags.contains(CloneFlags::VFORK) && lend_on_vfork() && !crate::kern::ptrace::is_traced(ctx.td);
    let lent = if lend { ctx.td.user().stub.lock().clone() } else { None };
    // The child's address space and its thread in a stub: a copy-on-write copy in a new stub,
    // or (CLONE_VM) the parent's own, with a new thread in the parent's stub (or, lent, the
    // parent's thread itself).
    let (vm, t0, slot_in_parent) = if let Some(t) = &lent {
        (None, Arc::clone(t), None)
    } else if shared_vm {
        let stub = ctx.td.user().stub.lock().clone().ok_or(Errno::EAGAIN).map_err(fail)?;
        let space = Arc::clone(stub.space());
        let slot = space.alloc_slot().ok_or(Errno::EAGAIN).map_err(fail)?;
        // Start the child's host thread now: a vfork parent sleeps before it would next
        // return to its stub.
        let mut ops = platform::stub::Ops::new();
        ops.clone_thread(slot);
        if !stub.exec_ops(ops) {
            space.free_slot(slot);
            return Err(fail(Errno::EAGAIN));
        }
        (None, Arc::new(space.thread(slot)), Some((space, slot)))
    } else {
        // A lone thread's fork copies the stack pages around its stack pointer at once (none
        // of its threads can write them meanwhile); see AddressSpace::fork.
        // The stub first: the copies fork makes for the child go where its residue maps the
        // last child's (AddressSpace::fork_onto).
        let pm = platform::physmem::get().ok_or(Errno::ENOMEM).map_err(fail)?;
        let (space, t0, residue) = platform::stub::pool::get_with_residue(pm.fd()).map_err(|e| {
            log::warn!("fork: {e}");
            fail(Errno::EAGAIN)
        })?;
        let map = pu.vm();
        let lone = parent.nthreads() == 1 && Arc::strong_count(&map) <= 2;
        let mut vm = {
            let mut g = map.write();
            let child = g.fork_onto(tid_of(pid), lone.then(|| ctx.regs.rsp()), &residue);
            // The parent's other threads lose write access to the now shared pages before
            // the map is let go (Linux write-protects them under mmap_lock): a copy-on-write
            // copy made while another thread could still write the old page through the
            // stub — a kernel write into guest memory, or a fault — would miss what that
            // thread wrote after the copy (t_vmrace: a new thread's pushed return address).
            if !lone {
                crate::kern::usertrap::sync_stub_held(ctx, &g);
            }
            child
        };
        drop(map);
        // What a recycled stub still maps from its last process (a sibling's, often the
        // same pages at the same places): kept where alike, unmapped first where not.
        vm.adopt_residue(&residue);
        vm.stub = Some(space);
        if let Some(p) = ctx.td.user().stub.lock().as_ref() {
            t0.inherit_tuning(p);
        }
        if a.flags.contains(CloneFlags::CHILD_SETTID) {
            uaccess::write(&vm, a.child_tid, &pid).map_err(fail)?;
        }
        let tls = if a.flags.contains(CloneFlags::SETTLS) { a.tls } else { ctx.td.user().fs_base.load(Ordering::Relaxed) };
        copy_thread_page(&vm, tls);
        (Some(vm), Arc::new(t0), None)
    };
    let files = if a.flags.contains(CloneFlags::FILES) { None } else { Some(pu.files().lock().clone()) };
    let fs = pu.fs.lock().clone();
    let cred = pu.cred.lock().clone();
    let own_vm = vm.unwrap_or_else(|| crate::vm::space::AddressSpace::new(tid_of(pid)));
    let mut user = UserProc::new(own_vm, files.clone().unwrap_or_default(), fs, cred.clone(), Arc::downgrade(real_parent.arc()));
    if a.flags.contains(CloneFlags::FS) {
        user.fs = Arc::clone(&pu.fs);
    }
    if files.is_none() {
        *user.files.lock() = pu.files();
    }
    if shared_vm {
        *user.vm.lock() = pu.vm();
        if a.flags.contains(CloneFlags::CHILD_SETTID) {
            put_tid(ctx, a.child_tid, pid).map_err(fail)?;
        }
    }
    *user.exe.lock() = pu.exe.lock().clone();
    *user.exe_deny.lock() = pu.exe_deny.lock().as_ref().map(crate::fs::writecount::DenyWrite::share);
    *user.argv.lock() = pu.argv.lock().clone();
    *user.auxv.lock() = pu.auxv.lock().clone();
    *user.environ.lock() = pu.environ.lock().clone();
    *user.rlimits.lock() = *pu.rlimits.lock();
    user.persona.store(pu.persona.load(Ordering::Relaxed), Ordering::Relaxed);
    let sched = *pu.sched.lock();
    *user.sched.lock() = sched.for_child();
    user.ioprio.store(pu.ioprio.load(Ordering::Relaxed), Ordering::Relaxed);
    // Any byte: one that is no signal means none is sent (the legacy clone takes it as is).
    let exit_signal = if sibling { pu.exit_signal.load(Ordering::Relaxed) } else { i32::try_from(a.exit_signal).unwrap_or(0) };
    user.exit_signal.store(exit_signal, Ordering::Relaxed);
    {
        let mut sig = pu.sig.lock().clone();
        sig.pending.clear();
        if a.clear_sighand {
            sig.reset_handlers();
        }
        *user.sig.lock() = sig;
    }
    let comm = parent.comm();
    let child = Proc::new_user(pid, real_parent.pid, &comm, user);
    child.set_comm(&comm);
    child.rec.pgid.store(parent.rec.pgid.load(Ordering::Relaxed), Ordering::Relaxed);
    child.rec.sid.store(parent.rec.sid.load(Ordering::Relaxed), Ordering::Relaxed);
    child.rec.tty.store(parent.rec.tty.load(Ordering::Relaxed), Ordering::Relaxed);
    // SCHED_RESET_ON_FORK also takes a negative nice value back to 0.
    let nice = parent.rec.nice.load(Ordering::Relaxed);
    let reset = parent.user().sched.lock().reset_on_fork;
    child.rec.nice.store(if reset { nice.max(0) } else { nice }, Ordering::Relaxed);
    let fg = parent.rec.flags.load(Ordering::Relaxed) & kvm_mem::abi::pflags::FOREGROUND;
    child.rec.flags.fetch_or(fg, Ordering::Relaxed);
    child.rec.uid.store(cred.uid, Ordering::Relaxed);
    child.rec.gid.store(cred.gid, Ordering::Relaxed);
    let ut = UserThread::new(t0, child_regs(ctx, &a));
    ut.stub_borrowed.store(lent.is_some(), Ordering::Relaxed);
    ut.sigstate.sig.lock().mask = ctx.td.user().sigstate.sig.lock().mask;
    ut.inherit_slack(ctx.td.user());
    ut.sigstate.sig.lock().altstack = ctx.td.user().sigstate.sig.lock().altstack;
    if !a.flags.contains(CloneFlags::VM) {
        ut.rseq.inherit(&ctx.td.user().rseq); // the same area in the copied memory
    }
    let fs_base =
        if a.flags.contains(CloneFlags::SETTLS) { a.tls } else { ctx.td.user().fs_base.load(Ordering::Relaxed) };
    ut.fs_base.store(fs_base, Ordering::Relaxed);
    ut.queue_ops(|o| o.set_fs(fs_base));
    if a.flags.contains(CloneFlags::CHILD_CLEARTID) {
        ut.clear_child_tid.store(a.child_tid.addr(), Ordering::Relaxed);
    }
    if a.flags.contains(CloneFlags::PARENT_SETTID) {
        put_tid(ctx, a.parent_tid, pid).map_err(fail)?;
    }
    let td = match Thread::new_user(&child, tid_of(pid), &comm, ut, user_main) {
        Ok(td) => td,
        Err(_) => {
            if let Some((space, slot)) = slot_in_parent {
                space.free_slot(slot);
            }
            return Err(fail(Errno::EAGAIN));
        }
    };
    td.rec.cpu.store(platform::cpu::curcpu(), Ordering::Relaxed);
    td.set_affinity(ctx.td.affinity()); // inherited, as sched_setaffinity(2) says
    // The child joins its parent's children — unless that parent (CLONE_PARENT: another
    // process) exited meanwhile and gave its children away: then it goes where they went.
    let mut rp = real_parent.clone();
    loop {
        {
            let mut kids = rp.user().children.lock();
            if !rp.is_zombie() {
                kids.push(child.clone());
                break;
            }
        }
        let Some(next) = crate::kern::exit::new_parent(&rp, rp.user().uparent().as_ref()) else { break };
        child.rec.ppid.store(next.pid, Ordering::Relaxed);
        *child.user().parent.lock() = Arc::downgrade(next.arc());
        rp = next;
    }
    proc::insert(Arc::clone(child.arc()));
    let event = crate::kern::ptrace::on_clone(ctx.td, &td, a.flags, a.exit_signal);
    // Lent: what the child's run changes in the stub thread's frame (its FPU state) is kept
    // to give back, and this thread has no stub thread until then (the scheduler does not
    // mark the child's as napping when this one sleeps).
    let lent = lent.map(|t| {
        let fp = t.fpstate();
        drop(ctx.td.user().stub.lock().take());
        (t, fp)
    });
    sched::setrunnable(td.into_arc());
    if let Some(ev) = event {
        crate::kern::ptrace::event_stop(ctx.td, ctx.p, ctx.regs, ev, tid_of(pid));
    }
    if a.flags.contains(CloneFlags::VFORK) {
        wait_vfork(&child);
        if let Some((t, fp)) = lent {
            // The child execs or exits on its own trap: the thread waits trapped in the frame
            // of that trap, which the next resume fills with this thread's registers.
            if let Some(fp) = fp {
                t.set_fpstate(&fp);
            }
            *ctx.td.user().stub.lock() = Some(t);
            let fs = ctx.td.user().fs_base.load(Ordering::Relaxed);
            ctx.td.user().queue_ops(|o| o.set_fs(fs));
        }
        let done = crate::abi::ptrace::PTRACE_EVENT_VFORK_DONE;
        crate::kern::ptrace::event_stop(ctx.td, ctx.p, ctx.regs, done, tid_of(pid));
    }
    usize::try_from(pid).map_err(|_| Errno::EAGAIN)
}

/// Give a forked child its own copy of the page of its thread's descriptor (at the TLS base,
/// `tls`) now, as the stack pages around its stack pointer are: a musl child writes its
/// thread id, robust list and thread list there before anything else, which otherwise costs
/// it a copy-on-write fault — a round trip through the stub, ~10–20 µs — on its first
/// instructions. The word at `tls` is written back as it was (the page's contents are the
/// parent's at the fork, which no one can change meanwhile: the child has not run, the
/// parent's threads lost write access); a page that is not writable, or not there, stays
/// as it is.
fn copy_thread_page(vm: &crate::vm::space::AddressSpace, tls: u64) {
    if tls == 0 {
        return;
    }
    let p = UserPtr::<u64>::new(tls & !7);
    if let Ok(v) = uaccess::read(vm, p) {
        let _ = uaccess::write(vm, p, &v);
    }
}

/// Whether a vfork child borrows its parent's stub thread (`-e vm.vforklend=0`: it gets a
/// thread of its own in the parent's stub, as a CLONE_VM child without CLONE_VFORK does).
/// Lent, a vfork costs no host thread start and exit, and the parent's stub stays one
/// thread's (recyclable at its exit): vfork+exec+wait on `-n 2` 545 → 405 µs (paired).
fn lend_on_vfork() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::kern::kenv::get("vm.vforklend").is_none_or(|v| v != "0"))
}

/// The vfork parent sleeps until the child execs or exits.
fn wait_vfork(child: &UProc) {
    let chan = child.wchan();
    loop {
        let g = sleepq_lock(chan);
        if child.user().vfork_released.load(Ordering::Acquire) {
            return;
        }
        tsleep_locked(g, "vfork", SleepOpts::UNINTERRUPTIBLE);
    }
}

/// A vfork child execs or exits: its parent may go on.
pub fn vfork_release(p: &UProc) {
    p.user().vfork_released.store(true, Ordering::Release);
    crate::kern::sched::wake_sync(|| crate::kern::sleep::wakeup(p.wchan()));
}
