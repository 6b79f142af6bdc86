//! The process side of execve(2): load the new image, then — past the point of no return —
//! swap the address space and stub, reset what exec resets, and start at the entry point.
//! A lone thread keeps its stub (the old image is unmapped from it); otherwise the new image
//! gets a new stub, from the pool of ready ones when one is waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use platform::stub::{Ops, UserRegs};

use crate::abi::exec::Persona;
use crate::kern::cred::Cred;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::exec;
use crate::kern::uproc::{pid_of, tid_of};
use crate::vm::space::AddressSpace;

pub fn execve(ctx: &mut Ctx<'_>, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult {
    let start = {
        let fs = ctx.p.user().fs.lock();
        if path.first() == Some(&b'/') { fs.root.clone() } else { fs.cwd.clone() }
    };
    execve_from(ctx, &start, path, argv, envp)
}

/// execve with a relative `path` looked up from `start` (execveat's directory descriptor).
pub fn execve_from(ctx: &mut Ctx<'_>, start: &crate::fs::namei::NamePath, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult {
    let u = ctx.p.user();
    let cwd = start.clone();
    let cred = u.cred();
    let persona = Persona::from_bits_retain(u.persona.load(Ordering::Relaxed));
    let no_setid = crate::kern::ptrace::setid_exec_refused(ctx.td);
    let req = exec::Request {
        cwd: &cwd,
        path,
        argv,
        envp,
        cred: Cred::clone(&cred),
        owner: tid_of(ctx.p.pid),
        persona,
        no_setid,
        stack_rlimit: u.rlimits.lock()[linux_raw_sys::general::RLIMIT_STACK as usize].0,
    };
    let mut image = match exec::load(req) {
        Ok(i) => i,
        Err(e) => {
            if let Some(why) = e.why {
                crate::kprintf!("exec: pid {} ({}): {why}\n", ctx.p.pid, ctx.p.comm());
            }
            return Err(e.errno);
        }
    };
    // The stub: the caller's own when nothing else runs in it (exec then only unmaps the old
    // image there), else a new one (a ready one from the pool: a vfork child's exec). What
    // a recycled one still maps from its last process — often this very program, spawned
    // again — is kept where the new image maps the same (its cached text), as a fork child
    // keeps it, and unmapped ahead of the image's maps where not.
    let reuse = own_stub(ctx);
    let mut t0 = None;
    if !reuse {
        let pm = platform::physmem::get().ok_or(Errno::ENOMEM)?;
        let (space, t, residue) = platform::stub::pool::get_with_residue(pm.fd()).map_err(|e| {
            log::warn!("exec: {e}");
            Errno::EAGAIN
        })?;
        image.vm.adopt_residue(&residue);
        image.vm.stub = Some(space);
        t0 = Some(t);
    }
    // No return from here on. Other threads leave first (de_thread).
    stop_other_threads(ctx);
    // A non-leader thread that execs becomes the leader: it takes the pid as its tid.
    let me = ctx.td.tid();
    if me != tid_of(ctx.p.pid) {
        ctx.p.rekey_thread(me, tid_of(ctx.p.pid));
        if let Some(old) = pid_of(me) {
            crate::kern::uproc::free_pid(old);
        }
    }
    // The old image's robust futexes die with it; a tid word in memory that others share (a
    // vfork parent's) is cleared and woken, as Linux's exec_mm_release does.
    let ut = ctx.td.user();
    crate::kern::futex::exit_robust_list(ctx.p, ctx.td.tid(), ut.robust_list.swap(0, Ordering::Relaxed));
    let ctid = ut.clear_child_tid.swap(0, Ordering::Relaxed);
    if Arc::strong_count(&u.vm()) > 2 {
        crate::kern::futex::clear_tid(ctx.p, ctid);
    }
    let mut ops = Ops::new();
    if reuse {
        hand_over_stub(ctx, &mut image.vm);
        ops.set_fs(0);
    }
    drop(std::mem::replace(&mut *u.vm.lock(), image.vm.into_map()));
    if let Some(t0) = t0 {
        // The new stub thread starts from the old one's hand-over measures, as a fork child
        // does from its parent's: a vfork child's are its parent's (a shell's, co-located),
        // and a fresh start would spin, place its stub apart and move it back at the next
        // block (five affinity changes a posix_spawn).
        let old = {
            let mut slot = ut.stub.lock();
            if let Some(old) = slot.as_ref() {
                t0.inherit_tuning(old);
            }
            slot.replace(Arc::new(t0))
        };
        // The old thread ends in its stub: a vfork child's was a thread of its parent's stub
        // — or its parent's own, lent (`fork::new_process`), which goes back as it is.
        let old = old.filter(|_| !ut.stub_borrowed.swap(false, Ordering::AcqRel));
        if let Some(old) = old {
            let (space, slot) = (Arc::clone(old.space()), old.slot());
            if let Ok(t) = Arc::try_unwrap(old) {
                t.exit(Ops::new());
            }
            space.free_slot(slot);
        }
    }
    // The fast path's gs base on the slot again: the old program may have moved it.
    if let Some(slot) = ut.stub.lock().as_ref().map(|t| t.slot()) {
        ops.set_gs_slot(slot);
    }
    ut.set_ops(ops);
    // The trap loop fetches the new stub thread and address space again.
    ut.stub_gen.fetch_add(1, Ordering::Release);
    ut.fs_base.store(0, Ordering::Relaxed);
    ut.rseq.clear();
    *ctx.regs = UserRegs::start(image.entry, image.sp);
    crate::fs::file::close_on_exec(&u.files());
    u.sig.lock().reset_handlers();
    crate::kern::posix_timer::delete_all(ctx.p);
    crate::kern::aio::destroy_all(ctx.p);
    {
        let mut ts = ut.sigstate.sig.lock();
        ts.altstack = crate::kern::signal::AltStack::default();
        ts.saved_mask = None;
    }
    // New effective ids (a setuid or setgid program) also reset the parent-death signal.
    if image.cred.euid != cred.euid || image.cred.egid != cred.egid {
        ut.pdeathsig.store(0, Ordering::Relaxed);
    }
    ctx.p.rec.uid.store(image.cred.uid, Ordering::Relaxed);
    ctx.p.rec.gid.store(image.cred.gid, Ordering::Relaxed);
    *u.cred.lock() = Arc::new(image.cred);
    u.persona.store(image.persona.bits(), Ordering::Relaxed);
    u.execed.store(true, Ordering::Relaxed);
    ctx.p.set_comm(&image.comm);
    *u.exe.lock() = Some(image.path);
    drop(u.exe_deny.lock().replace(image.deny));
    *u.argv.lock() = image.argv;
    *u.auxv.lock() = image.auxv;
    *u.environ.lock() = image.environ;
    crate::kern::fork::vfork_release(ctx.p);
    Ok(0)
}

/// Whether exec can keep the caller's stub: the caller is the process's only thread, no other
/// process shares its memory (a vfork child runs in its parent's stub), and the stub is the
/// address space's. A reference to the space held for a moment elsewhere (a /proc reader)
/// only costs a new stub.
fn own_stub(ctx: &Ctx<'_>) -> bool {
    if ctx.p.nthreads() != 1 {
        return false;
    }
    let vm = ctx.p.user().vm();
    if Arc::strong_count(&vm) > 2 {
        return false;
    }
    let Some(t) = ctx.td.user().stub.lock().clone() else { return false };
    vm.read().stub.as_ref().is_some_and(|s| Arc::ptr_eq(s, t.space()))
}

/// Move the caller's stub from its old address space to `new`: the stub unmaps the old image
/// on the new one's first resume, before its maps and its first instruction (the old pages
/// wait for it in `new`'s deferred list: none is given to someone else while the stub maps
/// it), and the guest starts with a fresh FPU state, as from a new stub.
fn hand_over_stub(ctx: &Ctx<'_>, new: &mut AddressSpace) {
    let vm = ctx.p.user().vm();
    let mut old = vm.write();
    // The old image's unmaps go with the new one's first resume (AddressSpace::give_stub).
    if old.give_stub(new)
        && let Some(t) = ctx.td.user().stub.lock().clone()
    {
        t.reset_fpstate();
    }
}

/// Make every other thread of the process exit, and wait until they have.
fn stop_other_threads(ctx: &Ctx<'_>) {
    let me = ctx.td.tid();
    loop {
        let others: Vec<_> = ctx.p.threads().into_iter().filter(|t| t.tid() != me).collect();
        if others.is_empty() {
            return;
        }
        for t in &others {
            t.user().exit_req.store(true, Ordering::Release);
            crate::kern::signal::signal_wake(t);
        }
        crate::kern::sleep::pause("exec", std::time::Duration::from_millis(1));
    }
}
