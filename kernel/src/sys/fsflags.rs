//! The flag arguments of the file system calls, one `bitflags` set per call holding exactly
//! the bits Linux accepts there, so that `Ctx::flags` refuses any other bit with EINVAL as
//! Linux does (open(2)'s flags are the exception: Linux ignores unknown ones, and so does
//! openat). The bits come from linux-raw-sys.

use bitflags::bitflags;
use linux_raw_sys::general as linux;

bitflags! {
    /// newfstatat(2) and statx(2) (vfs_statx's check).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct StatFlags: u32 {
        const SYMLINK_NOFOLLOW = linux::AT_SYMLINK_NOFOLLOW;
        const NO_AUTOMOUNT = linux::AT_NO_AUTOMOUNT;
        const EMPTY_PATH = linux::AT_EMPTY_PATH;
        const STATX_FORCE_SYNC = linux::AT_STATX_FORCE_SYNC;
        const STATX_DONT_SYNC = linux::AT_STATX_DONT_SYNC;
    }
}

bitflags! {
    /// faccessat2(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AccessFlags: u32 {
        const EACCESS = linux::AT_EACCESS;
        const SYMLINK_NOFOLLOW = linux::AT_SYMLINK_NOFOLLOW;
        const EMPTY_PATH = linux::AT_EMPTY_PATH;
    }
}

bitflags! {
    /// fchownat(2) and utimensat(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AttrFlags: u32 {
        const SYMLINK_NOFOLLOW = linux::AT_SYMLINK_NOFOLLOW;
        const EMPTY_PATH = linux::AT_EMPTY_PATH;
    }
}

bitflags! {
    /// linkat(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LinkFlags: u32 {
        const SYMLINK_FOLLOW = linux::AT_SYMLINK_FOLLOW;
        const EMPTY_PATH = linux::AT_EMPTY_PATH;
    }
}

bitflags! {
    /// unlinkat(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct UnlinkFlags: u32 {
        const REMOVEDIR = linux::AT_REMOVEDIR;
    }
}

bitflags! {
    /// renameat2(2) (the VFS also refuses EXCHANGE with another flag, and what the file
    /// system cannot do).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RenameFlags: u32 {
        const NOREPLACE = linux::RENAME_NOREPLACE;
        const EXCHANGE = linux::RENAME_EXCHANGE;
        const WHITEOUT = linux::RENAME_WHITEOUT;
    }
}

bitflags! {
    /// umount2(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct UmountFlags: u32 {
        const FORCE = linux::MNT_FORCE;
        const DETACH = linux::MNT_DETACH;
        const EXPIRE = linux::MNT_EXPIRE;
        const NOFOLLOW = linux::UMOUNT_NOFOLLOW;
    }
}

bitflags! {
    /// pipe2(2) (O_DIRECT's packet mode is taken and not kept).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Pipe2Flags: u32 {
        const CLOEXEC = linux::O_CLOEXEC;
        const NONBLOCK = linux::O_NONBLOCK;
        const DIRECT = linux::O_DIRECT;
    }
}

bitflags! {
    /// dup3(2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Dup3Flags: u32 {
        const CLOEXEC = linux::O_CLOEXEC;
    }
}
