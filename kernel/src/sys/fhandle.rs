//! name_to_handle_at(2) and open_by_handle_at(2): a file named by a handle its file system
//! makes (ext2: inode number and generation; tmpfs: inode number), and opened by it again.
//! Only file systems with handles ([`FileSystem::encode_handle`]) take part: EOPNOTSUPP for
//! the rest (procfs, devfs, sysfs, hostfs, sockets' and pipes' file systems), as Linux's
//! without export operations. The path an opened handle gets is fs/fhandle.rs's.
//!
//! [`FileSystem::encode_handle`]: crate::fs::mount::FileSystem::encode_handle

use linux_raw_sys::general as linux;

use crate::abi::fs::{FILEID_INVALID, FileHandleHead, MAX_HANDLE_SZ};
use crate::fs::file::{O_CREAT, O_EXCL, O_PATH};
use crate::fs::namei::NamePath;
use crate::fs::vfs::VType;
use crate::kern::cred::CAP_DAC_READ_SEARCH;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, cred, file, open_found};
use crate::sys::fsflags::StatFlags;
use crate::sys::fsinfo::stat_target;
use crate::vm::uaccess::UserPtr;

/// The variable part of a `struct file_handle` at `head`.
fn bytes_ptr(head: UserPtr<FileHandleHead>) -> Result<UserPtr<u8>, Errno> {
    let at = head.addr().checked_add(size_of::<FileHandleHead>() as u64).ok_or(Errno::EFAULT)?;
    Ok(UserPtr::new(at))
}

/// name_to_handle_at(dirfd, path, handle, mount_id, flags): EINVAL for flags other than
/// AT_SYMLINK_FOLLOW and AT_EMPTY_PATH (6.1 has no AT_HANDLE_FID); the lookup's errors;
/// EOPNOTSUPP for a file system without handles; EFAULT, EINVAL past MAX_HANDLE_SZ; with
/// too small a buffer EOVERFLOW, the size needed in `handle_bytes` (and the mount's number
/// written all the same, as Linux does).
pub fn sys_name_to_handle_at(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.uint(4);
    if flags & !(linux::AT_SYMLINK_FOLLOW | linux::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    // The file as newfstatat names it: no link followed unless AT_SYMLINK_FOLLOW.
    let mut how = StatFlags::from_bits_truncate(flags & linux::AT_EMPTY_PATH);
    if flags & linux::AT_SYMLINK_FOLLOW == 0 {
        how |= StatFlags::SYMLINK_NOFOLLOW;
    }
    let (v, mnt) = stat_target(ctx, ctx.fd(0), how)?;
    let (ty, bytes) = v.fs().encode_handle(&v).ok_or(Errno::EOPNOTSUPP)?;
    let head_ptr = ctx.ptr::<FileHandleHead>(2);
    let head = ctx.read(head_ptr)?;
    if head.handle_bytes > MAX_HANDLE_SZ {
        return Err(Errno::EINVAL);
    }
    let need = u32::try_from(bytes.len()).map_err(|_| Errno::EOVERFLOW)?;
    let fits = need <= head.handle_bytes;
    let mount_id = mnt.map_or(0, |m| m.id);
    ctx.write(ctx.ptr::<u32>(3), &mount_id)?;
    ctx.write(head_ptr, &FileHandleHead { handle_bytes: need, handle_type: if fits { ty } else { FILEID_INVALID } })?;
    if !fits {
        return Err(Errno::EOVERFLOW);
    }
    ctx.write_slice(bytes_ptr(head_ptr)?.slice(bytes.len()), &bytes)?;
    Ok(0)
}

/// open_by_handle_at(mount_fd, handle, flags): EPERM without CAP_DAC_READ_SEARCH; EBADF;
/// EFAULT; EINVAL for a size of 0 or past MAX_HANDLE_SZ; ESTALE when the file system of
/// `mount_fd` has no such file (any more); then open(2)'s checks on the file found (a
/// symbolic link: ELOOP unless O_PATH).
pub fn sys_open_by_handle_at(ctx: &mut Ctx<'_>) -> SysResult {
    if !cred(ctx).capable(CAP_DAC_READ_SEARCH) {
        return Err(Errno::EPERM);
    }
    let mount_fd = ctx.fd(0);
    let base: NamePath = if mount_fd == AT_FDCWD {
        ctx.p.user().fs.lock().cwd.clone()
    } else {
        let f = file(ctx, mount_fd)?;
        f.path.clone().ok_or(Errno::ESTALE)?
    };
    let head_ptr = ctx.ptr::<FileHandleHead>(1);
    let head = ctx.read(head_ptr)?;
    if head.handle_bytes == 0 || head.handle_bytes > MAX_HANDLE_SZ {
        return Err(Errno::EINVAL);
    }
    let n = head.handle_bytes as usize;
    let bytes = ctx.read_slice(bytes_ptr(head_ptr)?.slice(n), n)?;
    let v = base.vnode().fs().decode_handle(head.handle_type, &bytes)?;
    let flags = ctx.uint(2) & !(O_CREAT | O_EXCL);
    if v.vtype() == VType::Lnk && flags & O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    let np = crate::fs::fhandle::path_of(&base, &v);
    open_found(ctx, np, flags, false)
}
