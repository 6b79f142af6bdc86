//! Process system calls: exit, ids, credentials, uname(2), limits, TLS, randomness.

use std::sync::atomic::Ordering;

use crate::kern::ctx::{Ctx, Exit};
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::UProc;
use crate::kern::uproc::RLIM_NLIMITS;

pub fn sys_exit(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Thread(ctx.int(0) & 0xff));
    Ok(0)
}

pub fn sys_exit_group(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Group((ctx.int(0) & 0xff) << 8));
    Ok(0)
}

pub fn sys_getpid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.pid as usize)
}

pub fn sys_gettid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.td.tid() as usize)
}

pub fn sys_getppid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.rec.ppid.load(Ordering::Relaxed).max(0) as usize)
}

pub fn sys_getuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().uid as usize)
}

pub fn sys_geteuid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().euid as usize)
}

pub fn sys_getgid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().gid as usize)
}

pub fn sys_getegid(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.user().cred.lock().egid as usize)
}

pub fn sys_sched_yield(_ctx: &mut Ctx<'_>) -> SysResult {
    crate::kern::sched::yield_cpu();
    Ok(0)
}

pub fn sys_set_tid_address(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.td.user().clear_child_tid.store(ctx.arg(0), Ordering::Relaxed);
    Ok(ctx.td.tid() as usize)
}

pub fn sys_uname(ctx: &mut Ctx<'_>) -> SysResult {
    use crate::kern::utsname;
    let fields: [Vec<u8>; 6] = [
        utsname::SYSNAME.into(),
        utsname::hostname(),
        utsname::RELEASE.into(),
        utsname::version().into_bytes(),
        utsname::MACHINE.into(),
        b"(none)".to_vec(),
    ];
    let mut b = vec![0u8; 65 * 6];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    ctx.copyout(ctx.arg(0), &b)?;
    Ok(0)
}

/// sethostname(2): root only (EPERM), at most 64 bytes (EINVAL).
pub fn sys_sethostname(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.p.user().cred.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    let len = usize::try_from(ctx.arg(1)).ok().filter(|&l| l <= crate::kern::utsname::HOST_NAME_MAX).ok_or(Errno::EINVAL)?;
    let mut name = vec![0u8; len];
    ctx.copyin(ctx.arg(0), &mut name)?;
    crate::kern::utsname::set_hostname(&name)?;
    Ok(0)
}

const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;

pub fn sys_arch_prctl(ctx: &mut Ctx<'_>) -> SysResult {
    let u = ctx.td.user();
    match ctx.int(0) {
        ARCH_SET_FS => {
            let base = ctx.arg(1);
            if base >= platform::stub::layout::USER_END {
                return Err(Errno::EPERM);
            }
            u.fs_base.store(base, Ordering::Relaxed);
            u.ops.lock().set_fs(base);
            Ok(0)
        }
        ARCH_GET_FS => {
            ctx.copyout_u64(ctx.arg(1), u.fs_base.load(Ordering::Relaxed))?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prlimit64(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    if pid != 0 && pid != ctx.p.pid {
        return Err(Errno::ESRCH);
    }
    let res = usize::try_from(ctx.uint(1)).ok().filter(|&r| r < RLIM_NLIMITS).ok_or(Errno::EINVAL)?;
    let (new, old) = (ctx.arg(2), ctx.arg(3));
    let mut limits = *ctx.p.user().rlimits.lock();
    let prev = limits[res];
    if new != 0 {
        let mut b = [0u8; 16];
        ctx.copyin(new, &mut b)?;
        let soft = u64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let hard = u64::from_le_bytes(b[8..].try_into().map_err(|_| Errno::EFAULT)?);
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if hard > prev.1 && ctx.p.user().cred.lock().euid != 0 {
            return Err(Errno::EPERM);
        }
        limits[res] = (soft, hard);
        if res == 7 {
            // RLIMIT_NOFILE bounds new descriptors.
            ctx.p.user().files().lock().limit = usize::try_from(soft).unwrap_or(usize::MAX);
        }
    }
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&prev.0.to_le_bytes());
        b[8..].copy_from_slice(&prev.1.to_le_bytes());
        ctx.copyout(old, &b)?;
    }
    *ctx.p.user().rlimits.lock() = limits;
    Ok(0)
}

pub fn sys_getrandom(ctx: &mut Ctx<'_>) -> SysResult {
    let len = ctx.size(1).min(1 << 20);
    if ctx.uint(2) & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; len];
    platform::io::random_bytes(&mut b);
    ctx.copyout(ctx.arg(0), &b)?;
    Ok(len)
}

use crate::kern::fork::{self, CloneArgs};
use crate::kern::wait::{self, Which};

pub fn sys_clone(ctx: &mut Ctx<'_>) -> SysResult {
    // clone(flags, stack, parent_tid, child_tid, tls): x86-64 argument order.
    let a = CloneArgs { flags: ctx.arg(0), stack: ctx.arg(1), parent_tid: ctx.arg(2), child_tid: ctx.arg(3), tls: ctx.arg(4) };
    fork::do_clone(ctx, a)
}

pub fn sys_fork(ctx: &mut Ctx<'_>) -> SysResult {
    fork::do_clone(ctx, CloneArgs { flags: 17, ..Default::default() })
}

pub fn sys_vfork(ctx: &mut Ctx<'_>) -> SysResult {
    fork::do_clone(ctx, CloneArgs { flags: fork::CLONE_VM | fork::CLONE_VFORK | 17, ..Default::default() })
}

const WNOHANG: u32 = 1;
const WUNTRACED: u32 = 2;
const WEXITED: u32 = 4;
const WCONTINUED: u32 = 8;
const WNOWAIT: u32 = 0x0100_0000;
const WALL: u32 = 0x4000_0000;
const WCLONE: u32 = 0x8000_0000;
const WNOTHREAD: u32 = 0x2000_0000;

pub fn sys_wait4(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let opts = ctx.uint(2);
    if opts & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | WCLONE | WNOTHREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(ctx.p.rec.pgid.load(Ordering::Relaxed)),
        p if p < -1 => Which::Pgid(-p),
        p => Which::Pid(p),
    };
    let o = wait::WaitOpts {
        exited: true,
        stopped: opts & WUNTRACED != 0,
        continued: opts & WCONTINUED != 0,
        nohang: opts & WNOHANG != 0,
        nowait: false,
    };
    match wait::wait_child(ctx.p, which, o)? {
        None => Ok(0),
        Some(r) => {
            if ctx.arg(1) != 0 {
                ctx.copyout_i32(ctx.arg(1), r.status)?;
            }
            if ctx.arg(3) != 0 {
                ctx.copyout(ctx.arg(3), &crate::sys::time::child_rusage(r.times))?;
            }
            Ok(r.pid as usize)
        }
    }
}

pub fn sys_waitid(ctx: &mut Ctx<'_>) -> SysResult {
    let (idtype, id, infop, opts) = (ctx.int(0), ctx.int(1), ctx.arg(2), ctx.uint(3));
    if opts & !(WNOHANG | WEXITED | WUNTRACED | WCONTINUED | WNOWAIT | WALL | WCLONE | WNOTHREAD) != 0
        || opts & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let which = match idtype {
        0 => Which::Any,
        1 if id > 0 => Which::Pid(id),
        2 => Which::Pgid(if id == 0 { ctx.p.rec.pgid.load(Ordering::Relaxed) } else { id }),
        _ => return Err(Errno::EINVAL),
    };
    let o = wait::WaitOpts {
        exited: opts & WEXITED != 0,
        stopped: opts & WUNTRACED != 0,
        continued: opts & WCONTINUED != 0,
        nohang: opts & WNOHANG != 0,
        nowait: opts & WNOWAIT != 0,
    };
    let r = wait::wait_child(ctx.p, which, o)?;
    if infop != 0 {
        // siginfo_t: signo, errno, code, then (pid, uid, status) in the union.
        let mut si = [0u8; 128];
        if let Some(r) = r {
            let (code, status) = match r.event {
                Some(crate::kern::jobctl::Report::Stopped(sig)) => (crate::kern::jobctl::CLD_STOPPED, sig),
                Some(crate::kern::jobctl::Report::Continued) => {
                    (crate::kern::jobctl::CLD_CONTINUED, crate::kern::signal::SIGCONT)
                }
                None if r.status & 0x7f == 0 => (1i32, (r.status >> 8) & 0xff),
                None => (2i32, r.status & 0x7f),
            };
            si[0..4].copy_from_slice(&17i32.to_le_bytes());
            si[8..12].copy_from_slice(&code.to_le_bytes());
            si[16..20].copy_from_slice(&r.pid.to_le_bytes());
            si[20..24].copy_from_slice(&r.uid.to_le_bytes());
            si[24..28].copy_from_slice(&status.to_le_bytes());
        }
        ctx.copyout(infop, &si)?;
    }
    // The raw system call's fifth argument: the child's rusage.
    if ctx.arg(4) != 0 {
        let t = r.map(|r| r.times).unwrap_or_default();
        ctx.copyout(ctx.arg(4), &crate::sys::time::child_rusage(t))?;
    }
    Ok(0)
}

/// A NULL-terminated array of string pointers (argv, envp), within ARG_MAX in all.
fn str_array(ctx: &Ctx<'_>, addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0.. {
        let p = ctx.copyin_u64(addr + 8 * i)?;
        if p == 0 {
            break;
        }
        // Each string is at most MAX_ARG_STRLEN bytes with its NUL, as in Linux.
        let s = ctx
            .copyin_str(p, crate::kern::exec::MAX_ARG_STRLEN - 1)
            .map_err(|e| if e == Errno::ENAMETOOLONG { Errno::E2BIG } else { e })?;
        total += s.len() + 9;
        if total > crate::kern::exec::ARG_MAX {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

pub fn sys_execve(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let argv = str_array(ctx, ctx.arg(1))?;
    let envp = str_array(ctx, ctx.arg(2))?;
    crate::kern::execve::execve(ctx, &path, argv, envp)
}

/// A process by pid, if it is a guest process.
fn guest(pid: i32) -> Result<UProc, Errno> {
    crate::kern::proc::find_user(pid).ok_or(Errno::ESRCH)
}

pub fn sys_getpgid(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let p = if pid == 0 { ctx.p.clone() } else { guest(pid)? };
    Ok(p.rec.pgid.load(Ordering::Relaxed) as usize)
}

pub fn sys_getpgrp(ctx: &mut Ctx<'_>) -> SysResult {
    Ok(ctx.p.rec.pgid.load(Ordering::Relaxed) as usize)
}

pub fn sys_getsid(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let p = if pid == 0 { ctx.p.clone() } else { guest(pid)? };
    Ok(p.rec.sid.load(Ordering::Relaxed) as usize)
}

/// setpgid(2): move a process (itself or a child that has not exec'd… we do not track exec
/// for that rule) into a process group of its session.
pub fn sys_setpgid(ctx: &mut Ctx<'_>) -> SysResult {
    let (pid, pgid) = (ctx.int(0), ctx.int(1));
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid == 0 || pid == ctx.p.pid { ctx.p.clone() } else { guest(pid)? };
    let is_child = target.user().parent.lock().upgrade().is_some_and(|pp| pp.pid == ctx.p.pid);
    if target.pid != ctx.p.pid && !is_child {
        return Err(Errno::ESRCH);
    }
    let sid = ctx.p.rec.sid.load(Ordering::Relaxed);
    if target.rec.sid.load(Ordering::Relaxed) != sid {
        return Err(Errno::EPERM);
    }
    if target.rec.sid.load(Ordering::Relaxed) == target.pid {
        return Err(Errno::EPERM); // a session leader stays put
    }
    let pgid = if pgid == 0 { target.pid } else { pgid };
    if pgid != target.pid {
        let exists = crate::kern::proc::all().iter().any(|p| {
            p.is_user() && p.rec.pgid.load(Ordering::Relaxed) == pgid && p.rec.sid.load(Ordering::Relaxed) == sid
        });
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.rec.pgid.store(pgid, Ordering::Relaxed);
    crate::kern::tty::ctty::update_foreground(&target);
    Ok(0)
}

pub fn sys_setsid(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.p.pid;
    let leader = crate::kern::proc::all().iter().any(|p| p.is_user() && p.rec.pgid.load(Ordering::Relaxed) == pid);
    if leader {
        return Err(Errno::EPERM);
    }
    ctx.p.rec.sid.store(pid, Ordering::Relaxed);
    ctx.p.rec.pgid.store(pid, Ordering::Relaxed);
    ctx.p.rec.tty.store(0, Ordering::Relaxed);
    ctx.p.rec.flags.fetch_or(kvm_mem::abi::pflags::SESSION_LEADER, Ordering::Relaxed);
    crate::kern::tty::ctty::update_foreground(ctx.p);
    Ok(pid as usize)
}

pub fn sys_getgroups(ctx: &mut Ctx<'_>) -> SysResult {
    let groups = ctx.p.user().cred.lock().groups.clone();
    let size = ctx.int(0);
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len());
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let b: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    ctx.copyout(ctx.arg(1), &b)?;
    Ok(groups.len())
}

pub fn sys_setgroups(ctx: &mut Ctx<'_>) -> SysResult {
    let n = ctx.size(0);
    if n > 65536 {
        return Err(Errno::EINVAL);
    }
    if ctx.p.user().cred.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut b = vec![0u8; n * 4];
    ctx.copyin(ctx.arg(1), &mut b)?;
    ctx.p.user().cred.lock().groups = b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(0)
}

/// setresuid(2)'s rules: root may set anything; others only to one of their three ids.
fn set_ids(ctx: &Ctx<'_>, r: u32, e: u32, s: u32, gid: bool) -> SysResult {
    let mut c = ctx.p.user().cred.lock();
    let (cur_r, cur_e, cur_s) = if gid { (c.gid, c.egid, c.sgid) } else { (c.uid, c.euid, c.suid) };
    let privileged = c.euid == 0;
    let ok = |x: u32| x == u32::MAX || privileged || x == cur_r || x == cur_e || x == cur_s;
    if !(ok(r) && ok(e) && ok(s)) {
        return Err(Errno::EPERM);
    }
    let pick = |x: u32, cur: u32| if x == u32::MAX { cur } else { x };
    let (nr, ne, ns) = (pick(r, cur_r), pick(e, cur_e), pick(s, cur_s));
    if gid {
        (c.gid, c.egid, c.sgid) = (nr, ne, ns);
    } else {
        (c.uid, c.euid, c.suid) = (nr, ne, ns);
    }
    let (uid, g) = (c.uid, c.gid);
    drop(c);
    ctx.p.rec.uid.store(uid, Ordering::Relaxed);
    ctx.p.rec.gid.store(g, Ordering::Relaxed);
    Ok(0)
}

pub fn sys_setuid(ctx: &mut Ctx<'_>) -> SysResult {
    let u = ctx.uint(0);
    let root = ctx.p.user().cred.lock().euid == 0;
    if root { set_ids(ctx, u, u, u, false) } else { set_ids(ctx, u32::MAX, u, u32::MAX, false) }
}

pub fn sys_setgid(ctx: &mut Ctx<'_>) -> SysResult {
    let g = ctx.uint(0);
    let root = ctx.p.user().cred.lock().euid == 0;
    if root { set_ids(ctx, g, g, g, true) } else { set_ids(ctx, u32::MAX, g, u32::MAX, true) }
}

pub fn sys_setreuid(ctx: &mut Ctx<'_>) -> SysResult {
    set_ids(ctx, ctx.uint(0), ctx.uint(1), u32::MAX, false)
}

pub fn sys_setregid(ctx: &mut Ctx<'_>) -> SysResult {
    set_ids(ctx, ctx.uint(0), ctx.uint(1), u32::MAX, true)
}

pub fn sys_setresuid(ctx: &mut Ctx<'_>) -> SysResult {
    set_ids(ctx, ctx.uint(0), ctx.uint(1), ctx.uint(2), false)
}

pub fn sys_setresgid(ctx: &mut Ctx<'_>) -> SysResult {
    set_ids(ctx, ctx.uint(0), ctx.uint(1), ctx.uint(2), true)
}

fn get_ids(ctx: &Ctx<'_>, gid: bool) -> SysResult {
    let c = ctx.p.user().cred.lock().clone();
    let ids = if gid { [c.gid, c.egid, c.sgid] } else { [c.uid, c.euid, c.suid] };
    for (i, v) in ids.iter().enumerate() {
        ctx.copyout(ctx.arg(i), &v.to_le_bytes())?;
    }
    Ok(0)
}

pub fn sys_getresuid(ctx: &mut Ctx<'_>) -> SysResult {
    get_ids(ctx, false)
}

pub fn sys_getresgid(ctx: &mut Ctx<'_>) -> SysResult {
    get_ids(ctx, true)
}

pub fn sys_sysinfo(ctx: &mut Ctx<'_>) -> SysResult {
    let mem = crate::vm::meminfo::MemInfo::now();
    let page = platform::PAGE_SIZE as u64;
    let mut b = [0u8; 112];
    let up = platform::time::uptime_ns() / 1_000_000_000;
    b[0..8].copy_from_slice(&up.to_le_bytes());
    // loads[3] at 8: fixed point with 16 fraction bits.
    for (i, l) in crate::kern::loadavg::loads_sysinfo().iter().enumerate() {
        b[8 + i * 8..16 + i * 8].copy_from_slice(&l.to_le_bytes());
    }
    // totalram, freeram, sharedram (tmpfs), bufferram: as /proc/meminfo says.
    b[32..40].copy_from_slice(&(mem.total * page).to_le_bytes());
    b[40..48].copy_from_slice(&(mem.free * page).to_le_bytes());
    b[48..56].copy_from_slice(&(mem.kernel * page).to_le_bytes());
    let nprocs = crate::kern::proc::nprocs() as u16;
    b[80..82].copy_from_slice(&nprocs.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    ctx.copyout(ctx.arg(0), &b)?;
    Ok(0)
}

pub fn sys_sched_getaffinity(ctx: &mut Ctx<'_>) -> SysResult {
    let size = ctx.size(1);
    let n = platform::cpu::ncpus() as usize;
    let bytes = n.div_ceil(64) * 8;
    if size < bytes || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; bytes];
    for c in 0..n {
        b[c / 8] |= 1 << (c % 8);
    }
    ctx.copyout(ctx.arg(2), &b)?;
    Ok(bytes)
}
