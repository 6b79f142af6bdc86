//! The controlling terminal and job control at the terminal (credentials(7), termios(3)):
//!
//! * A session leader without a controlling terminal that opens a pty slave without
//!   O_NOCTTY, or asks with TIOCSCTTY, makes it its session's controlling terminal (if no
//!   live session has it). Opening /dev/console never does (Linux's tty_open: inits hand the
//!   console to getty, login or a `-/bin/sh` with TIOCSCTTY). A program named with `init=`
//!   (a shell, a test) gets the console at boot, so that `init=/bin/sh` has job control —
//!   vk's one departure; the default /sbin/init does not, as on Linux. A process has it
//!   while its `tty` record says so and its session is the terminal's; fork passes it on,
//!   setsid(2) and TIOCNOTTY drop it.
//! * `/dev/tty` opens the caller's controlling terminal (ENXIO without one).
//! * Any terminal can be one: the console or a pty slave; a process's `tty` record holds its
//!   terminal's device number.
//! * A background process group reading its controlling terminal gets SIGTTIN (EIO if it
//!   ignores or blocks SIGTTIN, or its group is orphaned); writing with TOSTOP, or changing the
//!   terminal (TCSETS*, TIOCSPGRP, TCFLSH…), gets SIGTTOU (unless ignored or blocked: then it
//!   goes ahead; EIO if orphaned). The call restarts once the process is continued.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DEV_CONSOLE, DEV_TTY, Tty};
use crate::fs::file::O_NOCTTY;
use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;
use crate::kern::proc::{self, Proc, UProc};
use crate::kern::signal::{self, SI_KERNEL, SIG_IGN, SIGCONT, SIGHUP, SIGTTIN, SIGTTOU, SigInfo};
use crate::kern::thread::Thread;

/// The guest processes.
fn procs() -> Vec<UProc> {
    proc::all_user()
}

/// Whether `p` has exited (a zombie, or on its way).
fn gone(p: &UProc) -> bool {
    p.is_zombie() || crate::kern::exit::exiting(p)
}

fn pgid(p: &Proc) -> i32 {
    p.rec.pgid.load(Ordering::Relaxed)
}

fn sid(p: &Proc) -> i32 {
    p.rec.sid.load(Ordering::Relaxed)
}

/// Send `sig` to every process of group `pgrp` (from the terminal: SI_KERNEL).
pub fn signal_pgrp(pgrp: i32, sig: i32) {
    if pgrp <= 0 {
        return;
    }
    for p in procs().iter().filter(|p| pgid(p) == pgrp) {
        signal::send_to_proc(p, SigInfo::kernel(sig, SI_KERNEL));
    }
}

/// Whether `p` has `tty` as its controlling terminal.
pub fn has_ctty(tty: &Tty, p: &UProc) -> bool {
    let session = tty.st.lock().session;
    tty.enabled && session != 0 && sid(p) == session && u64::from(p.rec.tty.load(Ordering::Relaxed)) == tty.dev
}

/// `p`'s controlling terminal, if it has one.
pub fn ctty_of(p: &UProc) -> Option<Arc<Tty>> {
    let dev = u64::from(p.rec.tty.load(Ordering::Relaxed));
    if dev == 0 {
        return None;
    }
    super::by_dev(dev).filter(|t| has_ctty(t, p))
}

/// Whether session `s` still has its leader.
fn session_alive(s: i32) -> bool {
    proc::find_user(s).is_some_and(|p| sid(&p) == s && !crate::kern::exit::exiting(&p))
}

/// An orphaned process group: no member has a parent in another group of the same session.
/// (Unlike Linux, a parent that is init counts: vk's init is often the interactive shell.)
pub fn is_orphaned(pgrp: i32) -> bool {
    !procs()
        .iter()
        .filter(|p| pgid(p) == pgrp)
        .any(|m| m.user().uparent().is_some_and(|pp| pgid(&pp) != pgrp && sid(&pp) == sid(m)))
}

/// Process `p` is exiting (its children already given to init; `child_pgrps` their groups).
/// As Linux's exit does: a session leader's exit hangs up its controlling terminal (the
/// foreground group gets SIGHUP and SIGCONT, the session loses the terminal); and a process
/// group that this exit leaves orphaned with stopped members gets SIGHUP and SIGCONT, so
/// they do not stay stopped for ever with no one to continue them. (As in `is_orphaned`, a
/// parent that is init ties a group, unlike Linux: vk's init is often the interactive shell.)
pub fn exit_hangups(p: &UProc, parent: Option<&UProc>, child_pgrps: &[i32]) {
    if p.pid == sid(p)
        && let Some(tty) = ctty_of(p)
    {
        let _ = release(&tty, p);
    }
    let mut groups = Vec::new();
    // Its own group, if p was what tied it to the session: a parent in another group of it.
    if parent.is_some_and(|pp| pgid(pp) != pgid(p) && sid(pp) == sid(p)) {
        groups.push(pgid(p));
    }
    // Its children's groups (other groups of its session) that it tied.
    groups.extend(child_pgrps.iter().copied().filter(|&g| g != pgid(p)));
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        let members: Vec<_> = procs().into_iter().filter(|m| pgid(m) == g && !gone(m)).collect();
        let tied = members
            .iter()
            .any(|m| m.user().uparent().is_some_and(|pp| !gone(&pp) && pgid(&pp) != g && sid(&pp) == sid(m)));
        if !tied && members.iter().any(crate::kern::jobctl::is_stopped) {
            signal_pgrp(g, SIGHUP);
            signal_pgrp(g, SIGCONT);
        }
    }
}

/// Make the console the controlling terminal of `p`'s session. `steal`: TIOCSCTTY's argument
/// 1 by root, taking it from another session.
pub fn acquire(tty: &Tty, p: &UProc, steal: bool) -> Result<(), Errno> {
    if !tty.enabled {
        return Err(Errno::ENOTTY);
    }
    if has_ctty(tty, p) {
        return Ok(());
    }
    if p.pid != sid(p) || p.rec.tty.load(Ordering::Relaxed) != 0 {
        return Err(Errno::EPERM);
    }
    let held = tty.st.lock().session;
    if held != 0 && session_alive(held) && !(steal && p.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN)) {
        return Err(Errno::EPERM);
    }
    {
        let mut s = tty.st.lock();
        s.session = sid(p);
        s.pgrp = pgid(p);
    }
    p.rec.tty.store(u32::try_from(tty.dev).unwrap_or(0), Ordering::Relaxed);
    publish_foreground();
    Ok(())
}

/// A terminal hung up (a pty's master closed): the session that has it loses it; its leader
/// and its foreground group get SIGHUP, the group SIGCONT too (tty_vhangup, disassociate).
pub fn hangup(tty: &Tty) {
    let (session, pgrp) = {
        let mut s = tty.st.lock();
        let r = (s.session, s.pgrp);
        s.session = 0;
        s.pgrp = 0;
        r
    };
    if session == 0 {
        return;
    }
    let dev = u32::try_from(tty.dev).unwrap_or(0);
    for q in procs().iter().filter(|q| sid(q) == session) {
        let _ = q.rec.tty.compare_exchange(dev, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
    publish_foreground();
    if let Some(leader) = proc::find_user(session).filter(|l| pgid(l) != pgrp) {
        signal::send_to_proc(&leader, SigInfo::kernel(SIGHUP, SI_KERNEL));
    }
    signal_pgrp(pgrp, SIGHUP);
    signal_pgrp(pgrp, SIGCONT);
}

/// TIOCNOTTY: the caller gives up its controlling terminal; a session leader's whole session
/// does (its foreground group gets SIGHUP and SIGCONT).
pub fn release(tty: &Tty, p: &UProc) -> Result<(), Errno> {
    if !has_ctty(tty, p) {
        return Err(Errno::ENOTTY);
    }
    if p.pid != sid(p) {
        p.rec.tty.store(0, Ordering::Relaxed);
        return Ok(());
    }
    let pgrp = {
        let mut s = tty.st.lock();
        let pgrp = s.pgrp;
        s.session = 0;
        s.pgrp = 0;
        pgrp
    };
    for q in procs().iter().filter(|q| sid(q) == p.pid) {
        q.rec.tty.store(0, Ordering::Relaxed);
    }
    publish_foreground();
    signal_pgrp(pgrp, SIGHUP);
    signal_pgrp(pgrp, SIGCONT);
    Ok(())
}

/// open(2) of a terminal node: `/dev/tty` becomes the caller's controlling terminal (ENXIO
/// without one); `/dev/ptmx` a new pty's master; a pty slave an open end of it (EIO while
/// locked). A pty slave opened by a session leader without one, without O_NOCTTY, becomes its
/// controlling terminal; the console never does.
pub fn on_open(p: &UProc, v: VnodeRef, flags: u32) -> Result<VnodeRef, Errno> {
    let rdev = v.attr()?.rdev;
    let (v, tty) = if rdev == DEV_TTY {
        let tty = ctty_of(p).ok_or(Errno::ENXIO)?;
        let v = if tty.dev == DEV_CONSOLE { crate::fs::devfs::console() } else { crate::fs::devpts::open_slave(&tty)? };
        return Ok(v);
    } else if rdev == super::DEV_PTMX {
        // A master is nobody's controlling terminal.
        return crate::fs::devpts::open_master(p.user().cred().fsuid);
    } else if rdev == DEV_CONSOLE {
        return Ok(v);
    } else {
        let tty = v.tty().ok_or(Errno::ENXIO)?;
        (crate::fs::devpts::open_slave(&tty)?, tty)
    };
    if flags & O_NOCTTY == 0 && tty.enabled && p.pid == sid(p) && p.rec.tty.load(Ordering::Relaxed) == 0 {
        let _ = acquire(&tty, p, false);
    }
    Ok(v)
}

/// What a process does with its terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// A write with TOSTOP set.
    Write,
    /// Changing modes, the foreground group, flushing.
    Change,
}

/// Job-control check for thread `td` of `p`: Ok to go ahead, else EIO or ERESTARTSYS after
/// signalling its group (the call restarts when the group is continued).
pub fn check(tty: &Tty, td: &Thread, p: &UProc, what: Access) -> Result<(), Errno> {
    if !has_ctty(tty, p) {
        return Ok(());
    }
    let fg = tty.st.lock().pgrp;
    let mine = pgid(p);
    if fg == mine {
        return Ok(());
    }
    let sig = if what == Access::Read { SIGTTIN } else { SIGTTOU };
    let ignored = p.user().sig.lock().action(sig).handler == SIG_IGN
        || td.as_user().is_some_and(|u| u.sigstate.sig.lock().mask & signal::bit(sig) != 0);
    if ignored {
        return if what == Access::Read { Err(Errno::EIO) } else { Ok(()) };
    }
    if is_orphaned(mine) {
        return Err(Errno::EIO);
    }
    signal_pgrp(mine, sig);
    Err(Errno::ERESTARTSYS)
}

/// [`check`] for the calling thread.
pub fn check_current(tty: &Tty, what: Access) -> Result<(), Errno> {
    let Some(td) = crate::kern::sched::curthread() else { return Ok(()) };
    let Some(p) = td.proc_().and_then(UProc::new) else { return Ok(()) };
    check(tty, &td, &p, what)
}

/// Boot: the session of an init named with `init=` gets the console (see the module doc).
pub fn boot(p: &UProc) {
    let tty = super::console();
    if tty.enabled {
        let _ = acquire(tty, p, false);
    }
}

/// Keep `p`'s FOREGROUND flag (ps's `+`) true to the terminal: set while its group is the
/// foreground group of the session that has the console.
pub fn update_foreground(p: &UProc) {
    use kvm_mem::abi::pflags::FOREGROUND;
    let fg = ctty_of(p).is_some_and(|tty| {
        let s = tty.st.lock();
        s.session != 0 && s.pgrp == pgid(p) && sid(p) == s.session
    });
    if fg && p.rec.tty.load(Ordering::Relaxed) != 0 {
        p.rec.flags.fetch_or(FOREGROUND, Ordering::Relaxed);
    } else {
        p.rec.flags.fetch_and(!FOREGROUND, Ordering::Relaxed);
    }
}

/// [`update_foreground`] for every process: the foreground group or the session changed.
pub fn publish_foreground() {
    for p in procs() {
        update_foreground(&p);
    }
}

/// The terminal's foreground group, for `p` whose controlling terminal it is (stat's tpgid),
/// else -1.
pub fn tpgid(p: &UProc) -> i32 {
    ctty_of(p).map_or(-1, |tty| tty.st.lock().pgrp)
}

/// TIOCSPGRP: make `pgrp` (a group of the caller's session) the foreground group.
pub fn set_pgrp(tty: &Tty, p: &UProc, pgrp: i32) -> Result<(), Errno> {
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    let s = sid(p);
    if !procs().iter().any(|q| pgid(q) == pgrp && sid(q) == s) {
        return Err(Errno::EPERM);
    }
    tty.st.lock().pgrp = pgrp;
    publish_foreground();
    Ok(())
}
