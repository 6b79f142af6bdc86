//! Process system calls: exit, ids, credentials, uname(2), limits, TLS, randomness.

use std::sync::atomic::Ordering;

use crate::abi::proc::{
    GrndFlags, IdType, NR_OPEN, NewUtsname, RLIM_NLIMITS, RLIMIT_NOFILE, Rlimit64, Rusage, Sysinfo, Wait4Options,
    WaitidOptions, uts_field,
};
use crate::abi::signal::Siginfo;
use crate::abi::{c_int, linux};
use crate::kern::ctx::{Ctx, Exit};
use crate::abi::exec::{PER_LINUX32, PER_MASK, PERSONALITY_QUERY, Persona};
use crate::kern::errno::{Errno, SysResult};
use crate::kern::proc::UProc;
use crate::vm::uaccess::UserPtr;

/// A process, group or session id as a system call's result.
fn id_result(id: i32) -> SysResult {
    usize::try_from(id).map_err(|_| Errno::ESRCH)
}

pub fn sys_exit(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Thread(ctx.int(0) & 0xff));
    Ok(0)
}

pub fn sys_exit_group(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.exit = Some(Exit::Group((ctx.int(0) & 0xff) << 8));
    Ok(0)
}

pub fn sys_getpid(ctx: &mut Ctx<'_>) -> SysResult {
    id_result(ctx.p.pid)
}

pub fn sys_gettid(ctx: &mut Ctx<'_>) -> SysResult {
    usize::try_from(ctx.td.tid()).map_err(|_| Errno::ESRCH)
}

pub fn sys_getppid(ctx: &mut Ctx<'_>) -> SysResult {
    id_result(ctx.p.rec.ppid.load(Ordering::Relaxed).max(0))
}

pub fn sys_sched_yield(_ctx: &mut Ctx<'_>) -> SysResult {
    crate::kern::sched::yield_cpu();
    Ok(0)
}

pub fn sys_set_tid_address(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.td.user().clear_child_tid.store(ctx.arg(0), Ordering::Relaxed);
    sys_gettid(ctx)
}

/// uname(2), with the persona's say (kernel/sys.c): PER_LINUX32 reports machine `i686`
/// (override_architecture), UNAME26 a 2.6 release (override_release).
pub fn sys_uname(ctx: &mut Ctx<'_>) -> SysResult {
    use crate::kern::utsname;
    let persona = Persona::from_bits_retain(ctx.p.user().persona.load(Ordering::Relaxed));
    let machine: &[u8] = if persona.bits() & PER_MASK == PER_LINUX32 { b"i686" } else { utsname::MACHINE.as_bytes() };
    let release = if persona.contains(Persona::UNAME26) { uname26(utsname::RELEASE) } else { utsname::RELEASE.to_string() };
    let u = NewUtsname {
        sysname: uts_field(utsname::SYSNAME.as_bytes()),
        nodename: uts_field(&utsname::hostname()),
        release: uts_field(release.as_bytes()),
        version: uts_field(utsname::version().as_bytes()),
        machine: uts_field(machine),
        domainname: uts_field(&utsname::domainname()),
    };
    ctx.write(ctx.ptr::<NewUtsname>(0), &u)?;
    Ok(0)
}

/// The release UNAME26 reports: "2.6.(60 + the minor version)" and what follows the version
/// numbers ("6.1.0-vk" is "2.6.61-vk"), as Linux's override_release.
fn uname26(release: &str) -> String {
    let mut dots = 0;
    let rest = release
        .char_indices()
        .find(|&(_, c)| {
            if c == '.' {
                dots += 1;
            }
            (c == '.' && dots >= 3) || !(c.is_ascii_digit() || c == '.')
        })
        .map_or("", |(i, _)| &release[i..]);
    let minor: u32 = release.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    format!("2.6.{}{rest}", minor + 60)
}

/// sethostname(2): CAP_SYS_ADMIN only (EPERM), at most 64 bytes (EINVAL).
/// sethostname(2) and setdomainname(2): CAP_SYS_ADMIN, then the name `set` takes.
fn set_uts_name(ctx: &Ctx<'_>, set: fn(&[u8]) -> Result<(), Errno>) -> SysResult {
    if !ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let name = ctx.read_slice(ctx.slice::<u8>(0, 1), crate::kern::utsname::HOST_NAME_MAX)?;
    set(&name)?;
    Ok(0)
}

pub fn sys_sethostname(ctx: &mut Ctx<'_>) -> SysResult {
    set_uts_name(ctx, crate::kern::utsname::set_hostname)
}

pub fn sys_setdomainname(ctx: &mut Ctx<'_>) -> SysResult {
    set_uts_name(ctx, crate::kern::utsname::set_domainname)
}

const ARCH_SET_FS: i32 = c_int(linux::ARCH_SET_FS);
/// arch/x86/include/uapi/asm/prctl.h (linux-raw-sys carries only ARCH_SET_FS).
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
            u.queue_ops(|o| o.set_fs(base));
            Ok(0)
        }
        ARCH_GET_FS => {
            ctx.write(ctx.ptr::<u64>(1), &u.fs_base.load(Ordering::Relaxed))?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// prlimit64(2) on the caller (pid 0 or its own): EINVAL for a resource past RLIM_NLIMITS
/// or a soft limit above the hard one; EPERM for raising a hard limit without root, and for
/// an RLIMIT_NOFILE past fs.nr_open.
pub fn sys_prlimit64(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let (new, old) = (ctx.ptr::<Rlimit64>(2), ctx.ptr::<Rlimit64>(3));
    let want = if new.is_null() { None } else { Some(ctx.read(new)?) };
    if pid != 0 && pid != ctx.p.pid {
        return Err(Errno::ESRCH);
    }
    let prev = rlimit(ctx, ctx.uint(1), want)?;
    if !old.is_null() {
        ctx.write(old, &Rlimit64 { rlim_cur: prev.0, rlim_max: prev.1 })?;
    }
    Ok(0)
}

/// getrlimit(2): prlimit64 reading the caller's limit (`struct rlimit` is `rlimit64`'s
/// layout on x86-64).
pub fn sys_getrlimit(ctx: &mut Ctx<'_>) -> SysResult {
    let prev = rlimit(ctx, ctx.uint(0), None)?;
    ctx.write(ctx.ptr::<Rlimit64>(1), &Rlimit64 { rlim_cur: prev.0, rlim_max: prev.1 })?;
    Ok(0)
}

/// setrlimit(2): prlimit64 setting the caller's limit.
pub fn sys_setrlimit(ctx: &mut Ctx<'_>) -> SysResult {
    let want = ctx.read(ctx.ptr::<Rlimit64>(1))?;
    rlimit(ctx, ctx.uint(0), Some(want))?;
    Ok(0)
}

/// The caller's limit of `resource` (soft, hard) before `want` (if any) replaces it.
fn rlimit(ctx: &Ctx<'_>, resource: u32, want: Option<Rlimit64>) -> Result<(u64, u64), Errno> {
    let res = usize::try_from(resource).ok().filter(|_| resource < RLIM_NLIMITS).ok_or(Errno::EINVAL)?;
    let prev = ctx.p.user().rlimits.lock().get(res).copied().ok_or(Errno::EINVAL)?;
    if let Some(w) = want {
        if w.rlim_cur > w.rlim_max {
            return Err(Errno::EINVAL);
        }
        if resource == RLIMIT_NOFILE && w.rlim_max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        if w.rlim_max > prev.1 && !ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        ctx.p.user().rlimits.lock()[res] = (w.rlim_cur, w.rlim_max);
        if resource == RLIMIT_NOFILE {
            // RLIMIT_NOFILE bounds new descriptors.
            ctx.p.user().files().lock().limit = usize::try_from(w.rlim_cur).unwrap_or(usize::MAX);
        }
    }
    Ok(prev)
}

/// getcpu(2): the CPU the caller runs on now and its NUMA node (always 0); either pointer
/// may be NULL, the third (a cache) is ignored as Linux does.
pub fn sys_getcpu(ctx: &mut Ctx<'_>) -> SysResult {
    let (cpu, node) = (ctx.ptr::<u32>(0), ctx.ptr::<u32>(1));
    if !cpu.is_null() {
        ctx.write(cpu, &platform::cpu::curcpu())?;
    }
    if !node.is_null() {
        ctx.write(node, &0u32)?;
    }
    Ok(0)
}

/// getrandom(2): EINVAL for an unknown flag and for GRND_RANDOM with GRND_INSECURE. At most
/// 1 MiB a call (a short read, which the caller must expect).
pub fn sys_getrandom(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<GrndFlags>(2)?;
    if flags.contains(GrndFlags::RANDOM | GrndFlags::INSECURE) {
        return Err(Errno::EINVAL);
    }
    // As Linux, up to the first byte that cannot be written (EFAULT only for none).
    let buf = crate::sys::fs::writable_prefix(ctx, ctx.slice::<u8>(0, 1).prefix(1 << 20))?;
    let mut b = vec![0u8; buf.len];
    platform::io::random_bytes(&mut b);
    ctx.write_slice(buf, &b)?;
    Ok(b.len())
}

use crate::abi::lower_32_bits;
use crate::abi::proc::{
    CLONE_ARGS_SIZE_VER0, CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_NEWTIME, CSIGNAL, Clone3Args, CloneFlags,
    MAX_PID_NS_LEVEL,
};
use crate::kern::fork::{self, CloneArgs};
use zerocopy::FromBytes;
use crate::kern::jobctl::Report;
use crate::kern::signal::{CLD_CONTINUED, CLD_STOPPED, SIGCONT};
use crate::kern::wait::{self, Which};

pub fn sys_clone(ctx: &mut Ctx<'_>) -> SysResult {
    // clone(flags, stack, parent_tid, child_tid, tls): x86-64 argument order. The flags are
    // an unsigned long, of which Linux reads the low 32 bits.
    let (flags, exit_signal) = CloneFlags::split(ctx.uint(0));
    let a = CloneArgs {
        flags,
        exit_signal,
        stack: ctx.arg(1),
        parent_tid: ctx.ptr(2),
        child_tid: ctx.ptr(3),
        tls: ctx.arg(4),
        clear_sighand: false,
    };
    fork::do_clone(ctx, a)
}

/// clone3(2): clone with its arguments in a `struct clone_args` of `size` bytes, checked as
/// kernel/fork.c checks them (copy_clone_args_from_user, clone3_args_valid): E2BIG for a
/// size past a page or non-zero bytes past the known structure, EINVAL for one smaller than
/// VER0, an exit signal in the flags or past 64, a stack without a size (or the reverse),
/// CLONE_SIGHAND with CLONE_CLEAR_SIGHAND, an exit signal for a thread. The new stack
/// pointer is `stack + stack_size`. vk has no pid namespaces or cgroups: `set_tid` and
/// CLONE_INTO_CGROUP are refused (EINVAL), as are the namespaces clone(2) refuses.
pub fn sys_clone3(ctx: &mut Ctx<'_>) -> SysResult {
    let size = ctx.size(1);
    if size > platform::PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    let bytes = ctx.read_slice(ctx.slice::<u8>(0, 1), size)?;
    let known = size_of::<Clone3Args>();
    if bytes.get(known..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
        return Err(Errno::E2BIG);
    }
    let mut raw = [0u8; size_of::<Clone3Args>()];
    let n = bytes.len().min(known);
    raw[..n].copy_from_slice(&bytes[..n]);
    let args = Clone3Args::read_from_bytes(&raw).map_err(|_| Errno::EINVAL)?;
    if args.set_tid_size > MAX_PID_NS_LEVEL || (args.set_tid == 0) != (args.set_tid_size == 0) {
        return Err(Errno::EINVAL);
    }
    let exit_signal = u32::try_from(args.exit_signal).ok().filter(|&s| s & !CSIGNAL == 0 && s <= 64).ok_or(Errno::EINVAL)?;
    let upper = args.flags >> 32;
    let legacy = lower_32_bits(args.flags);
    let known_upper = (CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) >> 32;
    let (flags, in_signal_bits) = CloneFlags::split(legacy);
    let clear_sighand = args.flags & CLONE_CLEAR_SIGHAND != 0;
    if upper & !known_upper != 0
        || flags.contains(CloneFlags::DETACHED)
        || u64::from(in_signal_bits) & !CLONE_NEWTIME != 0
        || (clear_sighand && flags.contains(CloneFlags::SIGHAND))
        || (flags.intersects(CloneFlags::THREAD | CloneFlags::PARENT) && exit_signal != 0)
        || (args.stack == 0) != (args.stack_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    // No pid namespaces to place the child in, no time namespaces, no cgroups.
    if args.set_tid != 0 || u64::from(in_signal_bits) & CLONE_NEWTIME != 0 || args.flags & CLONE_INTO_CGROUP != 0 {
        return Err(Errno::EINVAL);
    }
    let stack = if args.stack == 0 {
        0
    } else {
        let top = args.stack.checked_add(args.stack_size).ok_or(Errno::EINVAL)?;
        if top > platform::stub::layout::USER_END {
            return Err(Errno::EINVAL); // clone3_stack_valid's access_ok
        }
        top
    };
    let a = CloneArgs {
        flags,
        exit_signal,
        stack,
        parent_tid: UserPtr::new(args.parent_tid),
        child_tid: UserPtr::new(args.child_tid),
        tls: args.tls,
        clear_sighand,
    };
    fork::do_clone(ctx, a)
}

/// The exit signal of fork(2) and vfork(2).
const SIGCHLD: u32 = crate::kern::signal::SIGCHLD.unsigned_abs();

pub fn sys_fork(ctx: &mut Ctx<'_>) -> SysResult {
    fork::do_clone(ctx, CloneArgs { exit_signal: SIGCHLD, ..Default::default() })
}

pub fn sys_vfork(ctx: &mut Ctx<'_>) -> SysResult {
    fork::do_clone(
        ctx,
        CloneArgs { flags: CloneFlags::VM | CloneFlags::VFORK, exit_signal: SIGCHLD, ..Default::default() },
    )
}

/// wait4(2): EINVAL for an unknown option, ESRCH for the process group -INT_MIN.
pub fn sys_wait4(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let opts = ctx.flags::<Wait4Options>(2)?;
    let which = match pid {
        i32::MIN => return Err(Errno::ESRCH),
        -1 => Which::Any,
        0 => Which::Pgid(ctx.p.rec.pgid.load(Ordering::Relaxed)),
        p if p < -1 => Which::Pgid(p.saturating_neg()),
        p => Which::Pid(p),
    };
    let o = wait::WaitOpts {
        exited: true,
        stopped: opts.contains(Wait4Options::UNTRACED),
        continued: opts.contains(Wait4Options::CONTINUED),
        nohang: opts.contains(Wait4Options::NOHANG),
        nowait: false,
    };
    match wait::wait_child(ctx.p, which, o)? {
        None => Ok(0),
        Some(r) => {
            let (status, ru) = (ctx.ptr::<i32>(1), ctx.ptr::<Rusage>(3));
            if !status.is_null() {
                ctx.write(status, &r.status)?;
            }
            if !ru.is_null() {
                ctx.write(ru, &crate::sys::time::child_rusage(r.times))?;
            }
            id_result(r.pid)
        }
    }
}

/// waitid(2): EINVAL for an unknown option or none of WEXITED, WSTOPPED and WCONTINUED,
/// an unknown id type, a pid that is not positive, a negative process group; P_PIDFD is
/// EINVAL too (vk has no pidfds).
pub fn sys_waitid(ctx: &mut Ctx<'_>) -> SysResult {
    let (id, infop) = (ctx.int(1), ctx.ptr::<Siginfo>(2));
    let opts = ctx.flags::<WaitidOptions>(3)?;
    if !opts.intersects(WaitidOptions::EXITED | WaitidOptions::STOPPED | WaitidOptions::CONTINUED) {
        return Err(Errno::EINVAL);
    }
    // P_PIDFD: the process of a process descriptor; one opened PIDFD_NONBLOCK makes the
    // wait WNOHANG, and nothing to report is EAGAIN then.
    let mut pidfd_nonblock = false;
    let which = match IdType::try_from(ctx.int(0))? {
        IdType::All => Which::Any,
        IdType::Pid if id > 0 => Which::Pid(id),
        IdType::Pgid if id == 0 => Which::Pgid(ctx.p.rec.pgid.load(Ordering::Relaxed)),
        IdType::Pgid if id > 0 => Which::Pgid(id),
        IdType::Pidfd if id >= 0 => {
            let f = crate::sys::fs::file_not_path(ctx, id)?;
            let pf = f.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::pidfd::PidFd>()).ok_or(Errno::EBADF)?;
            pidfd_nonblock = f.flags() & crate::fs::file::O_NONBLOCK != 0;
            // A reaped process is no child any more.
            Which::Pid(pf.live().ok_or(Errno::ECHILD)?.pid)
        }
        IdType::Pid | IdType::Pgid | IdType::Pidfd => return Err(Errno::EINVAL),
    };
    let o = wait::WaitOpts {
        exited: opts.contains(WaitidOptions::EXITED),
        stopped: opts.contains(WaitidOptions::STOPPED),
        continued: opts.contains(WaitidOptions::CONTINUED),
        nohang: opts.contains(WaitidOptions::NOHANG) || pidfd_nonblock,
        nowait: opts.contains(WaitidOptions::NOWAIT),
    };
    let r = wait::wait_child(ctx.p, which, o)?;
    if r.is_none() && pidfd_nonblock && !opts.contains(WaitidOptions::NOHANG) {
        return Err(Errno::EAGAIN);
    }
    if !infop.is_null() {
        // Nothing to report (WNOHANG): a zeroed siginfo, as Linux leaves si_pid 0.
        let info = match r {
            None => Siginfo::default(),
            Some(r) => match r.event {
                Some(Report::Stopped(sig)) => Siginfo::child_event(r.pid, r.uid, CLD_STOPPED, sig),
                Some(Report::Continued) => Siginfo::child_event(r.pid, r.uid, CLD_CONTINUED, SIGCONT),
                Some(Report::Trapped(code)) => {
                    Siginfo::child_event(r.pid, r.uid, crate::kern::ptrace::CLD_TRAPPED, code)
                }
                None => Siginfo::child(r.pid, r.uid, r.status),
            },
        };
        ctx.write(infop, &info)?;
    }
    // The raw system call's fifth argument: the child's rusage.
    let ru = ctx.ptr::<Rusage>(4);
    if !ru.is_null() {
        let t = r.map(|r| r.times).unwrap_or_default();
        ctx.write(ru, &crate::sys::time::child_rusage(t))?;
    }
    Ok(0)
}

/// A NULL-terminated array of string pointers (argv, envp), within ARG_MAX in all.
fn str_array(ctx: &Ctx<'_>, array: UserPtr<u64>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if array.is_null() {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0.. {
        let p = ctx.read(array.elem(i)?)?;
        if p == 0 {
            break;
        }
        // Each string is at most MAX_ARG_STRLEN bytes with its NUL, as in Linux.
        let s = ctx
            .read_cstr(UserPtr::new(p), crate::kern::exec::MAX_ARG_STRLEN - 1)
            .map_err(|e| if e == Errno::ENAMETOOLONG { Errno::E2BIG } else { e })?;
        total = total.saturating_add(s.len() + 1 + size_of::<u64>());
        if total > crate::kern::exec::ARG_MAX {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

pub fn sys_execve(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let argv = str_array(ctx, ctx.ptr(1))?;
    let envp = str_array(ctx, ctx.ptr(2))?;
    let old_tid = ctx.td.tid();
    let r = crate::kern::execve::execve(ctx, &path, argv, envp)?;
    crate::kern::ptrace::exec_done(ctx.td, ctx.p, ctx.regs, old_tid);
    Ok(r)
}

/// execveat(2): execve of `path` relative to a directory descriptor; with AT_EMPTY_PATH and
/// an empty path, of the descriptor's own file (through /dev/fd/N, as Linux 6.1 does: the
/// number becomes the command name); AT_SYMLINK_NOFOLLOW refuses a symbolic link (ELOOP).
pub fn sys_execveat(ctx: &mut Ctx<'_>) -> SysResult {
    const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    const AT_EMPTY_PATH: u32 = 0x1000;
    let dirfd = ctx.fd(0);
    let flags = ctx.uint(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_cstr(ctx.ptr(1), crate::fs::namei::PATH_MAX)?;
    let argv = str_array(ctx, ctx.ptr(2))?;
    let envp = str_array(ctx, ctx.ptr(3))?;
    let (start, path) = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        crate::sys::fs::file(ctx, dirfd)?;
        (crate::fs::namei::NamePath::root(), format!("/dev/fd/{dirfd}").into_bytes())
    } else {
        (crate::sys::fs::start_dir(ctx, dirfd, &path)?, path)
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        let np = crate::fs::namei::lookup(&ctx.p.user().cred(), &start, &path, false)?;
        if np.vnode().vtype() == crate::fs::vfs::VType::Lnk {
            return Err(Errno::ELOOP);
        }
    }
    let old_tid = ctx.td.tid();
    let r = crate::kern::execve::execve_from(ctx, &start, &path, argv, envp)?;
    crate::kern::ptrace::exec_done(ctx.td, ctx.p, ctx.regs, old_tid);
    Ok(r)
}

/// personality(2): return the persona, and set it unless the argument is 0xffffffff. Any
/// value is taken, as Linux takes it; ADDR_NO_RANDOMIZE takes effect at the next exec, and
/// uname(2) answers PER_LINUX32 and UNAME26.
pub fn sys_personality(ctx: &mut Ctx<'_>) -> SysResult {
    let new = ctx.uint(0);
    let u = ctx.p.user();
    let old = if new == PERSONALITY_QUERY {
        u.persona.load(Ordering::Relaxed)
    } else {
        u.persona.swap(Persona::from_bits_retain(new).bits(), Ordering::Relaxed)
    };
    Ok(usize::try_from(old).unwrap_or(usize::MAX))
}

/// A process by pid, if it is a guest process.
fn guest(pid: i32) -> Result<UProc, Errno> {
    crate::kern::proc::find_user(pid).ok_or(Errno::ESRCH)
}

pub fn sys_getpgid(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let p = if pid == 0 { ctx.p.clone() } else { guest(pid)? };
    id_result(p.rec.pgid.load(Ordering::Relaxed))
}

pub fn sys_getpgrp(ctx: &mut Ctx<'_>) -> SysResult {
    id_result(ctx.p.rec.pgid.load(Ordering::Relaxed))
}

pub fn sys_getsid(ctx: &mut Ctx<'_>) -> SysResult {
    let pid = ctx.int(0);
    let p = if pid == 0 { ctx.p.clone() } else { guest(pid)? };
    id_result(p.rec.sid.load(Ordering::Relaxed))
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
    // A child that has exec'd is no longer the parent's to move (EACCES).
    if is_child && target.user().execed.load(Ordering::Relaxed) {
        return Err(Errno::EACCES);
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
    id_result(pid)
}

pub fn sys_sysinfo(ctx: &mut Ctx<'_>) -> SysResult {
    let mem = crate::vm::meminfo::MemInfo::now();
    let page = crate::vm::space::PAGE;
    let info = Sysinfo {
        uptime: i64::try_from(platform::time::uptime_ns() / 1_000_000_000).unwrap_or(i64::MAX),
        // Fixed point with 16 fraction bits (SI_LOAD_SHIFT).
        loads: crate::kern::loadavg::loads_sysinfo(),
        // totalram, freeram, sharedram (tmpfs): as /proc/meminfo says; in bytes (mem_unit 1).
        totalram: mem.total.saturating_mul(page),
        freeram: mem.free.saturating_mul(page),
        sharedram: mem.kernel.saturating_mul(page),
        procs: u16::try_from(crate::kern::proc::nprocs()).unwrap_or(u16::MAX),
        mem_unit: 1,
        ..Sysinfo::default()
    };
    ctx.write(ctx.ptr::<Sysinfo>(0), &info)?;
    Ok(0)
}

/// sched_getaffinity(2): every CPU. EINVAL for a mask shorter than the CPUs or not a
/// multiple of a long; returns the bytes written.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname26_releases() {
        assert_eq!(uname26("6.1.0-vk"), "2.6.61-vk");
        assert_eq!(uname26("6.18.44-fc-v1272"), "2.6.78-fc-v1272");
        assert_eq!(uname26("3.2"), "2.6.62");
    }
}
