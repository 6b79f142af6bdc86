//! Socket system calls (socket(2) and its family): creating sockets as descriptors, names
//! (bind, connect, getsockname, getpeername), listen/accept, shutdown and options. The data
//! calls (send*, recv*, with their message headers and control messages) are in
//! socket_msg.rs. What a socket does is in `crate::net`; this layer decodes arguments, moves
//! addresses and option values in and out of guest memory, and makes the descriptors.

use std::sync::Arc;

use crate::abi::net::{SockFlags, lnet};
use crate::fs::file::{self, File};
use crate::fs::namei::NamePath;
use crate::fs::perm;
use crate::fs::vfs::S_IFSOCK;
use crate::fs::vnops;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::net::addr::SOCKADDR_MAX;
use crate::net::file::{SocketFile, socket_of};
use crate::net::{Caller, PathOps, SockAddr, SockType, SocketRef};
use crate::sys::fs::{AT_FDCWD, cred, lookup_at};
use crate::vm::uaccess::UserPtr;

/// The caller's path operations: bind makes a socket inode, connect finds one.
struct CtxPaths<'a, 'b>(&'a Ctx<'b>);

impl PathOps for CtxPaths<'_, '_> {
    fn bind_path(&self, path: &[u8], mode: u32) -> Result<NamePath, Errno> {
        let ctx = self.0;
        let (parent, name) = crate::sys::fsops::lookup_parent(ctx, AT_FDCWD, path)?;
        let umask = ctx.p.user().fs.lock().umask;
        match vnops::mknod(&cred(ctx), &parent, &name, S_IFSOCK | (mode & !umask & 0o777)) {
            Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
            r => r?,
        };
        lookup_at(ctx, AT_FDCWD, path, false)
    }

    fn connect_path(&self, path: &[u8]) -> Result<crate::fs::vfs::VnodeRef, Errno> {
        let ctx = self.0;
        let np = lookup_at(ctx, AT_FDCWD, path, true)?;
        perm::permission(&cred(ctx), &np.vnode().attr()?, perm::MAY_WRITE)?;
        Ok(np.vnode().clone())
    }

    fn unbind_path(&self, path: &[u8]) {
        let ctx = self.0;
        if let Ok((parent, name)) = crate::sys::fsops::lookup_parent(ctx, AT_FDCWD, path) {
            let _ = vnops::unlink(&cred(ctx), &parent, &name, false);
        }
    }
}

/// Run `f` with the calling process as a socket's [`Caller`].
pub(super) fn with_caller<R>(ctx: &Ctx<'_>, f: impl FnOnce(&Caller<'_>) -> R) -> R {
    let cred = cred(ctx);
    let paths = CtxPaths(ctx);
    let c = Caller { pid: ctx.p.pid, uid: cred.euid, gid: cred.egid, cred: Arc::clone(&cred), paths: &paths };
    f(&c)
}

/// The socket descriptor argument `i` names: EBADF, or ENOTSOCK for another file. With the
/// open file (its O_NONBLOCK).
pub(super) fn sock_arg(ctx: &Ctx<'_>, i: usize) -> Result<(SocketRef, Arc<File>), Errno> {
    let f = crate::sys::fs::file_not_path(ctx, ctx.fd(i))?;
    Ok((socket_of(&f)?, f))
}

pub(super) fn nonblocking(f: &File) -> bool {
    f.flags() & file::O_NONBLOCK != 0
}

/// A socket address argument: a pointer and a `socklen_t` (EINVAL when negative or longer
/// than any address).
pub(super) fn read_addr(ctx: &Ctx<'_>, ptr: UserPtr<u8>, len: u32) -> Result<SockAddr, Errno> {
    let len = usize::try_from(i32::from_ne_bytes(len.to_ne_bytes())).map_err(|_| Errno::EINVAL)?;
    if len > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let b = ctx.read_slice(ptr.slice(len), SOCKADDR_MAX)?;
    SockAddr::parse(&b)
}

/// Write an address out (getsockname, accept, recvfrom): as much as `*lenp` allows, and its
/// full length back in `*lenp`. A null `ptr` writes nothing.
pub(super) fn write_addr(ctx: &Ctx<'_>, ptr: UserPtr<u8>, lenp: UserPtr<u32>, a: &SockAddr) -> Result<(), Errno> {
    if ptr.is_null() {
        return Ok(());
    }
    let room = ctx.read(lenp)?;
    let room = usize::try_from(i32::from_ne_bytes(room.to_ne_bytes())).map_err(|_| Errno::EINVAL)?;
    let bytes = a.to_bytes();
    let n = room.min(bytes.len());
    ctx.write_slice(ptr.slice(n), &bytes[..n])?;
    ctx.write(lenp, &u32::try_from(bytes.len()).unwrap_or(u32::MAX))
}

/// A new descriptor for `sock` (SOCK_NONBLOCK, SOCK_CLOEXEC as `flags` say).
pub(super) fn install(ctx: &Ctx<'_>, sock: SocketRef, flags: SockFlags) -> Result<i32, Errno> {
    let c = cred(ctx);
    let v = SocketFile::vnode(sock, c.fsuid, c.fsgid);
    let status = if flags.contains(SockFlags::NONBLOCK) { file::O_NONBLOCK } else { 0 };
    let f = File::new(v, None, file::O_RDWR | status);
    ctx.p.user().files().lock().alloc(f, flags.contains(SockFlags::CLOEXEC), 0)
}

fn fd_ret(fd: i32) -> SysResult {
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

/// socket(2)'s type argument: the type, and SOCK_NONBLOCK/SOCK_CLOEXEC (EINVAL for other
/// bits).
fn type_and_flags(raw: u32) -> Result<(SockType, SockFlags), Errno> {
    let flags = SockFlags::from_bits(raw & !0xf).ok_or(Errno::EINVAL)?;
    Ok((SockType::from_raw(raw & 0xf)?, flags))
}

pub fn sys_socket(ctx: &mut Ctx<'_>) -> SysResult {
    let (ty, flags) = type_and_flags(ctx.uint(1))?;
    let sock = crate::net::create(ctx.uint(0), ty, ctx.uint(2))?;
    fd_ret(install(ctx, sock, flags)?)
}

pub fn sys_socketpair(ctx: &mut Ctx<'_>) -> SysResult {
    let (ty, flags) = type_and_flags(ctx.uint(1))?;
    let out = ctx.ptr::<[i32; 2]>(3);
    let (a, b) = with_caller(ctx, |c| crate::net::pair(c, ctx.uint(0), ty, ctx.uint(2)))?;
    let fa = install(ctx, a, flags)?;
    let fb = match install(ctx, b, flags) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = crate::fs::file::close_fd(&ctx.p.user().files(), fa);
            return Err(e);
        }
    };
    if let Err(e) = ctx.write(out, &[fa, fb]) {
        // The files are dropped with the table unlocked (a last close may sleep).
        let files = ctx.p.user().files();
        let _ = crate::fs::file::close_fd(&files, fa);
        let _ = crate::fs::file::close_fd(&files, fb);
        return Err(e);
    }
    Ok(0)
}

/// The shortest IPv6 address (sockaddr_in6 without the scope id).
const SIN6_LEN_RFC2133: u32 = 24;

pub fn sys_bind(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    let addr = read_addr(ctx, ctx.ptr(1), ctx.uint(2))?;
    // AF_UNIX checks the family; inet_bind and inet6_bind the length (EINVAL), then the
    // family (EAFNOSUPPORT; AF_UNSPEC passes for IPv4, the host taking it as INADDR_ANY or
    // refusing it).
    let len = ctx.uint(2);
    match s.family() {
        lnet::AF_UNIX if addr.family() != lnet::AF_UNIX => return Err(Errno::EINVAL),
        lnet::AF_INET if addr.family() != lnet::AF_INET && addr.family() != lnet::AF_UNSPEC => {
            return Err(if (len as usize) < size_of::<lnet::sockaddr_in>() { Errno::EINVAL } else { Errno::EAFNOSUPPORT });
        }
        lnet::AF_INET6 if addr.family() != lnet::AF_INET6 => {
            return Err(if len < SIN6_LEN_RFC2133 { Errno::EINVAL } else { Errno::EAFNOSUPPORT });
        }
        _ => {}
    }
    with_caller(ctx, |c| s.bind(c, &addr))?;
    Ok(0)
}

pub fn sys_listen(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    s.listen(ctx.int(1))?;
    Ok(0)
}

fn accept_common(ctx: &mut Ctx<'_>, flags: SockFlags) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let (addrp, lenp) = (ctx.ptr::<u8>(1), ctx.ptr::<u32>(2));
    // The length must be readable before a connection is taken.
    if !addrp.is_null() {
        let room = ctx.read(lenp)?;
        if i32::from_ne_bytes(room.to_ne_bytes()) < 0 {
            return Err(Errno::EINVAL);
        }
    }
    let (ns, peer) = s.accept(nonblocking(&f))?;
    let fd = install(ctx, ns, flags)?;
    if let Err(e) = write_addr(ctx, addrp, lenp, &peer) {
        let _ = crate::fs::file::close_fd(&ctx.p.user().files(), fd);
        return Err(e);
    }
    fd_ret(fd)
}

pub fn sys_accept(ctx: &mut Ctx<'_>) -> SysResult {
    accept_common(ctx, SockFlags::empty())
}

pub fn sys_accept4(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<SockFlags>(3)?;
    accept_common(ctx, flags)
}

pub fn sys_connect(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, f) = sock_arg(ctx, 0)?;
    let addr = read_addr(ctx, ctx.ptr(1), ctx.uint(2))?;
    with_caller(ctx, |c| s.connect(c, &addr, nonblocking(&f)))?;
    Ok(0)
}

pub fn sys_shutdown(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    s.shutdown(crate::net::Shutdown::from_raw(ctx.int(1))?)?;
    Ok(0)
}

/// getsockname's and getpeername's result: unlike accept's, the address pointer is not
/// optional (a null one is EFAULT when the length has room, as move_addr_to_user).
fn name_out(ctx: &Ctx<'_>, a: &SockAddr) -> Result<(), Errno> {
    let (ptr, lenp) = (ctx.ptr::<u8>(1), ctx.ptr::<u32>(2));
    if ptr.is_null() {
        let room = i32::from_ne_bytes(ctx.read(lenp)?.to_ne_bytes());
        return match room {
            r if r < 0 => Err(Errno::EINVAL),
            0 => ctx.write(lenp, &u32::try_from(a.to_bytes().len()).unwrap_or(u32::MAX)),
            _ => Err(Errno::EFAULT),
        };
    }
    write_addr(ctx, ptr, lenp, a)
}

pub fn sys_getsockname(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    let a = s.local_addr()?;
    name_out(ctx, &a)?;
    Ok(0)
}

pub fn sys_getpeername(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    let a = s.peer_addr()?;
    name_out(ctx, &a)?;
    Ok(0)
}

/// The longest option value taken.
const OPT_MAX: usize = 1024;

pub fn sys_setsockopt(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    let (level, name) = (ctx.uint(1), ctx.uint(2));
    let len = usize::try_from(ctx.int(4)).map_err(|_| Errno::EINVAL)?;
    let val = ctx.read_slice(ctx.ptr::<u8>(3).slice(len.min(OPT_MAX)), OPT_MAX)?;
    s.setsockopt(level, name, &val)?;
    Ok(0)
}

pub fn sys_getsockopt(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, _) = sock_arg(ctx, 0)?;
    let (level, name) = (ctx.uint(1), ctx.uint(2));
    let (valp, lenp) = (ctx.ptr::<u8>(3), ctx.ptr::<u32>(4));
    let room = usize::try_from(i32::from_ne_bytes(ctx.read(lenp)?.to_ne_bytes())).map_err(|_| Errno::EINVAL)?;
    let int = |v: u32| crate::net::int_opt(i32::try_from(v).unwrap_or(0));
    let v = match (level, name) {
        (lnet::SOL_SOCKET, lnet::SO_TYPE) => int(s.sock_type().raw()),
        (lnet::SOL_SOCKET, lnet::SO_DOMAIN) => int(s.family()),
        (lnet::SOL_SOCKET, lnet::SO_PROTOCOL) => int(s.protocol()),
        _ => s.getsockopt(level, name)?,
    };
    let n = room.min(v.len());
    ctx.write_slice(valp.slice(n), &v[..n])?;
    ctx.write(lenp, &u32::try_from(n).unwrap_or(0))?;
    Ok(0)
}

/// Interface queries netdevice(7) lists, which any socket answers (sock_ioctl → dev_ioctl):
/// the host's interfaces, as the guest's sockets are the host's.
const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOC_GET_IFREQ: [u32; 11] = [
    SIOCGIFNAME,
    0x8913, // SIOCGIFFLAGS
    0x8915, // SIOCGIFADDR
    0x8917, // SIOCGIFDSTADDR
    0x8919, // SIOCGIFBRDADDR
    0x891b, // SIOCGIFNETMASK
    0x891d, // SIOCGIFMETRIC
    0x8921, // SIOCGIFMTU
    0x8927, // SIOCGIFHWADDR
    0x8933, // SIOCGIFINDEX
    0x8942, // SIOCGIFTXQLEN
];
/// The interface changes (SIOCSIF*, SIOCADDRT …: 0x89xx that are not queries) are refused.
const SIOC_FIRST: u32 = 0x8900;
const SIOC_LAST: u32 = 0x89ff;
/// The most SIOCGIFCONF returns in one call.
const IFCONF_MAX: usize = 64 * 1024;

/// ioctl(2) on a socket for the interface requests: None for any other request (the caller
/// goes on with the requests every file takes).
pub fn ioctl(ctx: &Ctx<'_>, req: u32) -> Option<SysResult> {
    use crate::abi::net::{Ifconf, Ifreq};
    use platform::hostsock::{IFREQ_SIZE, if_conf, if_conf_len, if_ioctl};
    let host_err = |e: i32| Errno::from_num(e).unwrap_or(Errno::EIO);
    if SIOC_GET_IFREQ.contains(&req) {
        let p = ctx.ptr::<Ifreq>(2);
        return Some((|| {
            let ifr = ctx.read(p)?;
            let mut raw = [0u8; IFREQ_SIZE];
            raw.copy_from_slice(zerocopy::IntoBytes::as_bytes(&ifr));
            if_ioctl(u64::from(req), &mut raw).map_err(host_err)?;
            let (out, _) = <Ifreq as zerocopy::FromBytes>::read_from_prefix(&raw).map_err(|_| Errno::EIO)?;
            ctx.write(p, &out)?;
            Ok(0)
        })());
    }
    if req == SIOCGIFCONF {
        let p = ctx.ptr::<Ifconf>(2);
        return Some((|| {
            let mut conf = ctx.read(p)?;
            if conf.ifc_buf == 0 {
                conf.ifc_len = i32::try_from(if_conf_len().map_err(host_err)?).unwrap_or(i32::MAX);
            } else {
                let room = usize::try_from(conf.ifc_len).map_err(|_| Errno::EINVAL)?.min(IFCONF_MAX);
                let data = if_conf(room).map_err(host_err)?;
                ctx.write_slice(UserPtr::<u8>::new(conf.ifc_buf).slice(data.len()), &data)?;
                conf.ifc_len = i32::try_from(data.len()).unwrap_or(0);
            }
            ctx.write(p, &conf)?;
            Ok(0)
        })());
    }
    if (SIOC_FIRST..=SIOC_LAST).contains(&req) {
        // Changing the host's interfaces or routes: refused, after the request is read in
        // (a bad pointer is EFAULT first, as dev_ioctl's copy_from_user).
        return Some(ctx.read(ctx.ptr::<Ifreq>(2)).and(Err(Errno::EPERM)));
    }
    None
}
