//! The data calls of sockets: sendto(2), recvfrom(2), sendmsg(2), recvmsg(2), sendmmsg(2),
//! recvmmsg(2). A message header's buffers (iovecs), name and control messages
//! (cmsg(3): SCM_RIGHTS, SCM_CREDENTIALS) are read and written here; the socket sees plain
//! bytes, an address, open files and credentials.

use std::sync::Arc;

use zerocopy::IntoBytes;

use crate::abi::fs::Iovec;
use crate::abi::net::{CMSG_HDR_LEN, Cmsghdr, Mmsghdr, MsgFlags, Msghdr, Ucred, cmsg_align, lnet};
use crate::fs::file::File;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::net::{Received, SendArgs, SockType, SocketRef};
use crate::sys::socket::{nonblocking, read_addr, sock_arg, with_caller, write_addr};
use crate::vm::uaccess::{UserPtr, UserSlice};

/// Most iovecs in one message (UIO_MAXIOV), and messages in one sendmmsg/recvmmsg.
const UIO_MAXIOV: usize = 1024;
/// Most bytes one call moves (a stream sends the rest in the next call).
const MSG_MAX: usize = 4 << 20;
/// Most control bytes a send takes (net.core.optmem_max).
const OPTMEM_MAX: usize = 20480;
/// Most descriptors in one SCM_RIGHTS message (SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;

/// A message header's buffers, checked: EINVAL past UIO_MAXIOV or a total past ssize_t.
fn iovecs(ctx: &Ctx<'_>, iov: u64, n: u64) -> Result<Vec<UserSlice<u8>>, Errno> {
    let n = usize::try_from(n).map_err(|_| Errno::EMSGSIZE)?;
    if n > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    let raw = if n == 0 { vec![] } else { ctx.read_slice(UserSlice::<Iovec>::new(iov, n), UIO_MAXIOV)? };
    let mut total: usize = 0;
    let mut out = Vec::with_capacity(raw.len());
    for v in raw {
        let len = usize::try_from(v.iov_len).map_err(|_| Errno::EINVAL)?;
        total = total.checked_add(len).filter(|t| isize::try_from(*t).is_ok()).ok_or(Errno::EINVAL)?;
        out.push(UserSlice::new(v.iov_base, len));
    }
    Ok(out)
}

fn gather(ctx: &Ctx<'_>, iov: &[UserSlice<u8>]) -> Result<Vec<u8>, Errno> {
    let mut data = Vec::new();
    for part in iov {
        let part = part.prefix(MSG_MAX.saturating_sub(data.len()));
        let at = data.len();
        data.resize(at + part.len, 0);
        ctx.copyin(part, &mut data[at..])?;
    }
    Ok(data)
}

fn scatter(ctx: &Ctx<'_>, iov: &[UserSlice<u8>], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    for part in iov {
        if done >= data.len() {
            break;
        }
        let n = part.len.min(data.len() - done);
        ctx.write_slice(part.prefix(n), &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// The control messages of a send: SCM_RIGHTS (descriptors → open files, EBADF for a bad
/// one) and SCM_CREDENTIALS; EINVAL for a malformed header or another SOL_SOCKET type.
fn parse_control(ctx: &Ctx<'_>, hdr: &Msghdr) -> Result<(Vec<Arc<File>>, Option<Ucred>), Errno> {
    let len = usize::try_from(hdr.msg_controllen).map_err(|_| Errno::ENOBUFS)?;
    if hdr.msg_control == 0 || len < CMSG_HDR_LEN {
        return Ok((vec![], None));
    }
    if len > OPTMEM_MAX {
        return Err(Errno::ENOBUFS);
    }
    let buf = ctx.read_slice(UserSlice::<u8>::new(hdr.msg_control, len), OPTMEM_MAX)?;
    let (mut rights, mut creds) = (vec![], None);
    let mut off = 0;
    while off + CMSG_HDR_LEN <= buf.len() {
        let (h, _) = <Cmsghdr as zerocopy::FromBytes>::read_from_prefix(&buf[off..]).map_err(|_| Errno::EINVAL)?;
        let clen = usize::try_from(h.cmsg_len).map_err(|_| Errno::EINVAL)?;
        if clen < CMSG_HDR_LEN || clen > buf.len() - off {
            return Err(Errno::EINVAL);
        }
        let body = &buf[off + CMSG_HDR_LEN..off + clen];
        if h.cmsg_level == crate::abi::c_int(lnet::SOL_SOCKET) {
            match u32::try_from(h.cmsg_type) {
                Ok(lnet::SCM_RIGHTS) => {
                    let n = body.len() / 4;
                    if n > SCM_MAX_FD || rights.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    let files_ = ctx.p.user().files();
                    let t = files_.lock();
                    for c in body.chunks_exact(4) {
                        let fd = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                        rights.push(t.get(fd)?);
                    }
                }
                Ok(lnet::SCM_CREDENTIALS) => {
                    let (u, _) = <Ucred as zerocopy::FromBytes>::read_from_prefix(body).map_err(|_| Errno::EINVAL)?;
                    if body.len() != size_of::<Ucred>() {
                        return Err(Errno::EINVAL);
                    }
                    creds = Some(u);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += cmsg_align(clen);
    }
    Ok((rights, creds))
}

/// Send one message header's data.
fn send_one(ctx: &Ctx<'_>, s: &SocketRef, f: &File, hdr: &Msghdr, flags: MsgFlags) -> SysResult {
    let to = if hdr.msg_name != 0 && hdr.msg_namelen != 0 {
        Some(read_addr(ctx, UserPtr::new(hdr.msg_name), hdr.msg_namelen.cast_unsigned())?)
    } else {
        None
    };
    let iov = iovecs(ctx, hdr.msg_iov, hdr.msg_iovlen)?;
    let data = gather(ctx, &iov)?;
    let (rights, creds) = parse_control(ctx, hdr)?;
    send_data(ctx, s, f, &data, to, rights, creds, flags)
}

#[expect(clippy::too_many_arguments, reason = "a send's parts, decoded by its two callers")]
fn send_data(
    ctx: &Ctx<'_>,
    s: &SocketRef,
    f: &File,
    data: &[u8],
    to: Option<crate::net::SockAddr>,
    rights: Vec<Arc<File>>,
    creds: Option<Ucred>,
    flags: MsgFlags,
) -> SysResult {
    let args = SendArgs { data, to, rights, creds, flags, nonblock: nonblocking(f) };
    let r = with_caller(ctx, |c| s.send(c, args));
    if r == Err(Errno::EPIPE) && !flags.contains(MsgFlags::NOSIGNAL) {
        let uid = ctx.p.user().cred.lock().uid;
        crate::kern::signal::send_to_thread(ctx.td, crate::kern::signal::SigInfo::user(crate::kern::signal::SIGPIPE, 0, ctx.p.pid, uid));
    }
    r
}

/// A receive's buffer must be writable before anything is consumed into it.
fn check_dest(ctx: &Ctx<'_>, iov: &[UserSlice<u8>]) -> Result<(), Errno> {
    let vm = ctx.p.user().vm();
    let g = vm.read();
    for part in iov.iter().filter(|p| p.len > 0) {
        let len = u64::try_from(part.len.min(MSG_MAX)).map_err(|_| Errno::EFAULT)?;
        if !g.accessible(part.addr(), len, crate::vm::space::PROT_WRITE) {
            return Err(Errno::EFAULT);
        }
    }
    Ok(())
}

/// Control messages of a receive, into a buffer of `room` bytes: SCM_CREDENTIALS, then
/// SCM_RIGHTS with the passed files installed as new descriptors (as many as fit: MSG_CTRUNC
/// and the rest closed).
fn build_control(ctx: &Ctx<'_>, r: &mut Received, room: usize, cloexec: bool) -> Result<(Vec<u8>, bool), Errno> {
    let mut out = Vec::new();
    let mut ctrunc = false;
    let sol = crate::abi::c_int(lnet::SOL_SOCKET);
    let head = |len: usize, ty: u32| Cmsghdr { cmsg_len: u64::try_from(len).unwrap_or(0), cmsg_level: sol, cmsg_type: crate::abi::c_int(ty) };
    if let Some(u) = r.creds {
        let len = CMSG_HDR_LEN + size_of::<Ucred>();
        if out.len() + len <= room {
            out.extend_from_slice(head(len, lnet::SCM_CREDENTIALS).as_bytes());
            out.extend_from_slice(u.as_bytes());
            out.resize(cmsg_align(out.len()).min(room), 0);
        } else {
            ctrunc = true;
        }
    }
    let files = std::mem::take(&mut r.rights);
    if !files.is_empty() {
        let space = room.saturating_sub(out.len());
        let fit = space.saturating_sub(CMSG_HDR_LEN) / 4;
        let n = fit.min(files.len());
        if n < files.len() {
            ctrunc = true;
        }
        if n > 0 {
            let mut fds = Vec::with_capacity(n);
            {
                let files_ = ctx.p.user().files();
        let mut t = files_.lock();
                for f in files.iter().take(n) {
                    match t.alloc(Arc::clone(f), cloexec, 0) {
                        Ok(fd) => fds.push(fd),
                        Err(_) => {
                            ctrunc = true;
                            break;
                        }
                    }
                }
            }
            let len = CMSG_HDR_LEN + 4 * fds.len();
            out.extend_from_slice(head(len, lnet::SCM_RIGHTS).as_bytes());
            for fd in fds {
                out.extend_from_slice(&fd.to_ne_bytes());
            }
            out.resize(cmsg_align(out.len()).min(room), 0);
        }
    }
    // Files that found no descriptor are closed here.
    drop(files);
    Ok((out, ctrunc))
}

/// Receive into one message header (updated in place: name length, control length, flags).
fn recv_one(ctx: &Ctx<'_>, s: &SocketRef, f: &File, hdr: &mut Msghdr, flags: MsgFlags) -> SysResult {
    // copy_msghdr_from_user: a name buffer with a negative length is EINVAL, before receiving.
    if hdr.msg_name != 0 && hdr.msg_namelen < 0 {
        return Err(Errno::EINVAL);
    }
    let iov = iovecs(ctx, hdr.msg_iov, hdr.msg_iovlen)?;
    check_dest(ctx, &iov)?;
    let total = iov.iter().map(|p| p.len).sum::<usize>().min(MSG_MAX);
    let mut r = s.recv(total, flags, nonblocking(f))?;
    scatter(ctx, &iov, &r.data)?;
    if hdr.msg_name != 0 {
        match &r.from {
            Some(a) if s.sock_type() != SockType::Stream => {
                let bytes = a.to_bytes();
                let room = usize::try_from(hdr.msg_namelen).unwrap_or(0);
                let n = room.min(bytes.len());
                ctx.write_slice(UserSlice::new(hdr.msg_name, n), &bytes[..n])?;
                hdr.msg_namelen = i32::try_from(bytes.len()).unwrap_or(0);
            }
            _ => hdr.msg_namelen = 0,
        }
    }
    let room = if hdr.msg_control == 0 { 0 } else { usize::try_from(hdr.msg_controllen).unwrap_or(0) };
    let (control, ctrunc) = build_control(ctx, &mut r, room, flags.contains(MsgFlags::CMSG_CLOEXEC))?;
    if !control.is_empty() {
        ctx.write_slice(UserSlice::new(hdr.msg_control, control.len()), &control)?;
    }
    hdr.msg_controllen = u64::try_from(control.len()).unwrap_or(0);
    let mut out_flags = r.flags;
    if ctrunc {
        out_flags |= MsgFlags::CTRUNC;
    }
    hdr.msg_flags = out_flags.bits();
    Ok(if flags.contains(MsgFlags::TRUNC) && s.sock_type() != SockType::Stream { r.full_len } else { r.data.len() })
}

pub fn sys_sendto(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let src = ctx.slice::<u8>(1, 2).prefix(MSG_MAX);
    let flags = MsgFlags::from_bits_truncate(ctx.uint(3));
    let to = if ctx.arg(4) != 0 && ctx.uint(5) != 0 { Some(read_addr(ctx, ctx.ptr(4), ctx.uint(5))?) } else { None };
    let mut data = vec![0u8; src.len];
    ctx.copyin(src, &mut data)?;
    send_data(ctx, &s, &f, &data, to, vec![], None, flags)
}

pub fn sys_recvfrom(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let buf = ctx.slice::<u8>(1, 2);
    let flags = MsgFlags::from_bits_truncate(ctx.uint(3));
    check_dest(ctx, &[buf])?;
    let r = s.recv(buf.len.min(MSG_MAX), flags, nonblocking(&f))?;
    ctx.write_slice(buf.prefix(r.data.len()), &r.data)?;
    if let Some(a) = &r.from
        && s.sock_type() != SockType::Stream
    {
        write_addr(ctx, ctx.ptr(4), ctx.ptr(5), a)?;
    } else if ctx.arg(4) != 0 {
        // No address (a stream socket's): still, a negative length is EINVAL (move_addr_to_user).
        let room: i32 = ctx.read(ctx.ptr::<i32>(5))?;
        if room < 0 {
            return Err(Errno::EINVAL);
        }
        ctx.write(ctx.ptr::<u32>(5), &0)?;
    }
    Ok(if flags.contains(MsgFlags::TRUNC) && s.sock_type() != SockType::Stream { r.full_len } else { r.data.len() })
}

pub fn sys_sendmsg(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let hdr = ctx.read(ctx.ptr::<Msghdr>(1))?;
    send_one(ctx, &s, &f, &hdr, MsgFlags::from_bits_truncate(ctx.uint(2)))
}

pub fn sys_recvmsg(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let p = ctx.ptr::<Msghdr>(1);
    let mut hdr = ctx.read(p)?;
    let n = recv_one(ctx, &s, &f, &mut hdr, MsgFlags::from_bits_truncate(ctx.uint(2)))?;
    ctx.write(p, &hdr)?;
    Ok(n)
}

/// The message vector of sendmmsg/recvmmsg (at most UIO_MAXIOV entries are used).
fn mmsgs(ctx: &Ctx<'_>) -> UserSlice<Mmsghdr> {
    ctx.ptr::<Mmsghdr>(1).slice(usize::try_from(ctx.uint(2)).unwrap_or(0).min(UIO_MAXIOV))
}

pub fn sys_sendmmsg(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let v = mmsgs(ctx);
    let flags = MsgFlags::from_bits_truncate(ctx.uint(3));
    let mut done = 0;
    while done < v.len {
        let p = v.ptr.elem(done)?;
        let mut m = ctx.read(p)?;
        match send_one(ctx, &s, &f, &m.msg_hdr, flags) {
            Ok(n) => {
                m.msg_len = u32::try_from(n).unwrap_or(u32::MAX);
                ctx.write(p, &m)?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

pub fn sys_recvmmsg(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let v = mmsgs(ctx);
    let mut flags = MsgFlags::from_bits_truncate(ctx.uint(3));
    let deadline = ctx.timeout_ns(4)?.map(|ns| platform::time::uptime_ns().saturating_add(ns));
    let mut done = 0;
    while done < v.len {
        let p = v.ptr.elem(done)?;
        let mut m = ctx.read(p)?;
        match recv_one(ctx, &s, &f, &mut m.msg_hdr, flags) {
            Ok(n) => {
                m.msg_len = u32::try_from(n).unwrap_or(u32::MAX);
                ctx.write(p, &m)?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if flags.contains(MsgFlags::WAITFORONE) {
            flags |= MsgFlags::DONTWAIT;
        }
        if deadline.is_some_and(|d| platform::time::uptime_ns() >= d) {
            break;
        }
    }
    Ok(done)
}
