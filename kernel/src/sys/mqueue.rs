//! POSIX message queue calls: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
//! mq_getsetattr (the queues are `fs::mqueue`'s). The C library strips the name's leading
//! '/'; the kernel sees the rest, one path component.

use std::sync::Arc;

use crate::abi::time::{Sigevent, Timespec};
use crate::abi::{c_int, linux};
use crate::fs::file::{self, File};
use crate::fs::mqueue::{self, HARD_MSG_MAX, HARD_MSGSIZE_MAX, MQ_PRIO_MAX, MSG_MAX, MSGSIZE_MAX, MsgQueue, Notify};
use crate::fs::perm::{self, MAY_READ, MAY_WRITE};
use crate::kern::cred::{CAP_FOWNER, CAP_SYS_RESOURCE};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::signal::{self, SigInfo};

/// `struct mq_attr`.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
)]
pub struct MqAttr {
    pub mq_flags: i64,
    pub mq_maxmsg: i64,
    pub mq_msgsize: i64,
    pub mq_curmsgs: i64,
    pub reserved: [i64; 4],
}

const NAME_MAX: usize = 255;
const SIGEV_SIGNAL: i32 = c_int(linux::SIGEV_SIGNAL);
const SIGEV_NONE: i32 = c_int(linux::SIGEV_NONE);
const SIGEV_THREAD: i32 = c_int(linux::SIGEV_THREAD);

/// The queue name of argument 0: ENAMETOOLONG past NAME_MAX, ENOENT for none, EACCES for a
/// name with a '/' (no such component in the queues' directory).
fn name(ctx: &Ctx<'_>) -> Result<Vec<u8>, Errno> {
    let n = ctx.read_cstr(ctx.ptr(0), NAME_MAX + 1)?;
    if n.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if n.is_empty() {
        return Err(Errno::ENOENT);
    }
    if n.contains(&b'/') || n == b"." || n == b".." {
        return Err(Errno::EACCES);
    }
    Ok(n)
}

fn queue_attr(q: &MsgQueue) -> crate::fs::vfs::Attr {
    let mut a =
        crate::fs::vfs::Attr { mode: crate::fs::vfs::S_IFREG | q.mode, uid: q.uid, gid: q.gid, ..Default::default() };
    a.nlink = 1;
    a
}

pub fn sys_mq_open(ctx: &mut Ctx<'_>) -> SysResult {
    let name = name(ctx)?;
    let flags = ctx.uint(1);
    let acc = flags & file::O_ACCMODE;
    if acc == file::O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    let cred = ctx.p.user().cred();
    let mask = match acc {
        file::O_WRONLY => MAY_WRITE,
        file::O_RDWR => MAY_READ | MAY_WRITE,
        _ => MAY_READ,
    };
    let q = match mqueue::lookup(&name) {
        Some(_) if flags & file::O_CREAT != 0 && flags & file::O_EXCL != 0 => return Err(Errno::EEXIST),
        Some(q) => {
            perm::permission(&cred, &queue_attr(&q), mask)?;
            q
        }
        None if flags & file::O_CREAT == 0 => return Err(Errno::ENOENT),
        None => {
            let attrp = ctx.ptr::<MqAttr>(3);
            let (maxmsg, msgsize) = if attrp.is_null() {
                (MSG_MAX, MSGSIZE_MAX)
            } else {
                let a = ctx.read(attrp)?;
                let (Ok(m), Ok(s)) = (u64::try_from(a.mq_maxmsg), u64::try_from(a.mq_msgsize)) else {
                    return Err(Errno::EINVAL);
                };
                let (mmax, smax) = if cred.capable(CAP_SYS_RESOURCE) {
                    (HARD_MSG_MAX, HARD_MSGSIZE_MAX)
                } else {
                    (MSG_MAX, MSGSIZE_MAX)
                };
                if m == 0 || s == 0 || m > mmax || s > smax {
                    return Err(Errno::EINVAL);
                }
                (m, s)
            };
            let umask = ctx.p.user().fs.lock().umask;
            let mode = ctx.uint(2) & 0o777 & !umask;
            match mqueue::create(&name, maxmsg, msgsize, mode, cred.fsuid, cred.fsgid) {
                Ok(q) => q,
                // Made by another between the look-up and now.
                Err(Errno::EEXIST) if flags & file::O_EXCL == 0 => mqueue::lookup(&name).ok_or(Errno::ENOENT)?,
                Err(e) => return Err(e),
            }
        }
    };
    let status = acc | (flags & file::O_NONBLOCK);
    let f = File::new(q, None, status);
    let fd = ctx.p.user().files().lock().alloc(f, flags & file::O_CLOEXEC != 0, 0)?;
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

pub fn sys_mq_unlink(ctx: &mut Ctx<'_>) -> SysResult {
    let name = name(ctx)?;
    let q = mqueue::lookup(&name).ok_or(Errno::ENOENT)?;
    let cred = ctx.p.user().cred();
    // The queues' directory lets only a queue's owner (or CAP_FOWNER) remove it.
    if cred.fsuid != q.uid && !cred.capable(CAP_FOWNER) {
        return Err(Errno::EACCES);
    }
    mqueue::unlink(&name)?;
    Ok(0)
}

/// The descriptor of argument 0 as a queue (EBADF for another file).
fn queue_file(ctx: &Ctx<'_>) -> Result<Arc<File>, Errno> {
    let f = ctx.file(0)?;
    if mqueue::of(&f.vnode).is_none() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn queue(f: &File) -> &MsgQueue {
    mqueue::of(&f.vnode).expect("checked by queue_file")
}

/// The absolute CLOCK_REALTIME timeout of argument 4, in ns (EFAULT, EINVAL).
fn deadline(ctx: &Ctx<'_>) -> Result<Option<u64>, Errno> {
    let p = ctx.ptr::<Timespec>(4);
    if p.is_null() {
        return Ok(None);
    }
    Ok(Some(ctx.read(p)?.to_ns()?))
}

pub fn sys_mq_timedsend(ctx: &mut Ctx<'_>) -> SysResult {
    let deadline = deadline(ctx)?;
    let prio = ctx.uint(3);
    if u64::from(prio) >= u64::from(MQ_PRIO_MAX) || ctx.arg(3) > u64::from(u32::MAX) {
        return Err(Errno::EINVAL);
    }
    let f = queue_file(ctx)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let q = queue(&f);
    let len = ctx.size(2);
    if len as u64 > q.msgsize {
        return Err(Errno::EMSGSIZE);
    }
    let msg = ctx.read_slice(ctx.slice::<u8>(1, 2), len)?;
    let nonblock = f.flags() & file::O_NONBLOCK != 0;
    if let Some(n) = q.send(msg, prio, nonblock, deadline)? {
        notify(ctx, n);
    }
    Ok(0)
}

/// A message arrived at an empty queue: the registered process's signal.
fn notify(ctx: &Ctx<'_>, n: Notify) {
    let Some(signo) = n.signo else { return };
    let Some(p) = crate::kern::proc::find_user(n.pid) else { return };
    let uid = ctx.p.user().cred().uid;
    let info = SigInfo::new(signo, mqueue::SI_MESGQ).with(&crate::abi::signal::SiRt {
        _pid: ctx.p.pid,
        _uid: uid,
        _sigval: n.value,
    });
    signal::send_to_proc(&p, info);
}

pub fn sys_mq_timedreceive(ctx: &mut Ctx<'_>) -> SysResult {
    let deadline = deadline(ctx)?;
    let f = queue_file(ctx)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let q = queue(&f);
    if (ctx.size(2) as u64) < q.msgsize {
        return Err(Errno::EMSGSIZE);
    }
    let nonblock = f.flags() & file::O_NONBLOCK != 0;
    let (msg, prio) = q.receive(nonblock, deadline)?;
    ctx.write_slice(ctx.slice::<u8>(1, 2).prefix(msg.len()), &msg)?;
    let pp = ctx.ptr::<u32>(3);
    if !pp.is_null() {
        ctx.write(pp, &prio)?;
    }
    Ok(msg.len())
}

pub fn sys_mq_notify(ctx: &mut Ctx<'_>) -> SysResult {
    let evp = ctx.ptr::<Sigevent>(1);
    let how = if evp.is_null() {
        None
    } else {
        let ev = ctx.read(evp)?;
        Some(match ev.sigev_notify {
            SIGEV_NONE => Notify { pid: ctx.p.pid, signo: None, value: 0 },
            SIGEV_SIGNAL if signal::valid(ev.sigev_signo) => {
                Notify { pid: ctx.p.pid, signo: Some(ev.sigev_signo), value: ev.sigev_value }
            }
            SIGEV_THREAD => {
                // The notification goes through a netlink socket (sigev_signo): vk has none.
                let s = ctx.p.user().files().lock().get(ev.sigev_signo)?;
                return Err(if s.vnode.vtype() == crate::fs::vfs::VType::Sock {
                    Errno::EINVAL
                } else {
                    Errno::ENOTSOCK
                });
            }
            _ => return Err(Errno::EINVAL),
        })
    };
    let f = queue_file(ctx)?;
    queue(&f).set_notify(ctx.p.pid, how)?;
    Ok(0)
}

pub fn sys_mq_getsetattr(ctx: &mut Ctx<'_>) -> SysResult {
    let (newp, oldp) = (ctx.ptr::<MqAttr>(1), ctx.ptr::<MqAttr>(2));
    let new = if newp.is_null() { None } else { Some(ctx.read(newp)?) };
    if new.is_some_and(|n| n.mq_flags & !i64::from(file::O_NONBLOCK) != 0) {
        return Err(Errno::EINVAL);
    }
    let f = queue_file(ctx)?;
    let q = queue(&f);
    let old = MqAttr {
        mq_flags: i64::from(f.flags() & file::O_NONBLOCK),
        mq_maxmsg: i64::try_from(q.maxmsg).unwrap_or(i64::MAX),
        mq_msgsize: i64::try_from(q.msgsize).unwrap_or(i64::MAX),
        mq_curmsgs: i64::try_from(q.curmsgs()).unwrap_or(i64::MAX),
        reserved: [0; 4],
    };
    if let Some(n) = new {
        let keep = f.flags() & file::O_APPEND;
        f.set_status_flags(keep | u32::try_from(n.mq_flags).unwrap_or(0));
    }
    if !oldp.is_null() {
        ctx.write(oldp, &old)?;
    }
    Ok(0)
}
