//! File-system structures: `struct stat`, `struct statx`, `struct statfs`, `struct iovec`,
//! the head of `struct linux_dirent64`.

use super::{linux, linux_struct};

linux_struct! {
    /// `struct stat` (x86-64: stat, fstat, lstat, newfstatat).
    pub struct Stat = linux::stat {
        pub st_dev: u64,
        pub st_ino: u64,
        pub st_nlink: u64,
        pub st_mode: u32,
        pub st_uid: u32,
        pub st_gid: u32,
        pub __pad0: u32,
        pub st_rdev: u64,
        pub st_size: i64,
        pub st_blksize: i64,
        pub st_blocks: i64,
        pub st_atime: u64,
        pub st_atime_nsec: u64,
        pub st_mtime: u64,
        pub st_mtime_nsec: u64,
        pub st_ctime: u64,
        pub st_ctime_nsec: u64,
        pub __unused: [i64; 3],
    }
}

linux_struct! {
    /// `struct statx_timestamp`.
    pub struct StatxTimestamp = linux::statx_timestamp {
        pub tv_sec: i64,
        pub tv_nsec: u32,
        pub __reserved: i32,
    }
}

linux_struct! {
    /// `struct statx` (statx(2)).
    pub struct Statx = linux::statx {
        pub stx_mask: u32,
        pub stx_blksize: u32,
        pub stx_attributes: u64,
        pub stx_nlink: u32,
        pub stx_uid: u32,
        pub stx_gid: u32,
        pub stx_mode: u16,
        pub __spare0: [u16; 1],
        pub stx_ino: u64,
        pub stx_size: u64,
        pub stx_blocks: u64,
        pub stx_attributes_mask: u64,
        pub stx_atime: StatxTimestamp,
        pub stx_btime: StatxTimestamp,
        pub stx_ctime: StatxTimestamp,
        pub stx_mtime: StatxTimestamp,
        pub stx_rdev_major: u32,
        pub stx_rdev_minor: u32,
        pub stx_dev_major: u32,
        pub stx_dev_minor: u32,
        pub stx_mnt_id: u64,
        pub stx_dio_mem_align: u32,
        pub stx_dio_offset_align: u32,
        pub stx_subvol: u64,
        pub stx_atomic_write_unit_min: u32,
        pub stx_atomic_write_unit_max: u32,
        pub stx_atomic_write_segments_max: u32,
        pub stx_dio_read_offset_align: u32,
        pub stx_atomic_write_unit_max_opt: u32,
        pub __spare2: [u32; 1],
        pub __spare3: [u64; 8],
    }
}

linux_struct! {
    /// `__kernel_fsid_t`.
    pub struct Fsid = linux::__kernel_fsid_t {
        pub val: [i32; 2],
    }
}

linux_struct! {
    /// `struct statfs` (x86-64: statfs, fstatfs).
    pub struct Statfs = linux::statfs {
        pub f_type: i64,
        pub f_bsize: i64,
        pub f_blocks: i64,
        pub f_bfree: i64,
        pub f_bavail: i64,
        pub f_files: i64,
        pub f_ffree: i64,
        pub f_fsid: Fsid,
        pub f_namelen: i64,
        pub f_frsize: i64,
        pub f_flags: i64,
        pub f_spare: [i64; 4],
    }
}

linux_struct! {
    /// `struct iovec` (readv, writev, preadv, pwritev, sendmsg): the base is a guest address.
    pub struct Iovec = linux::iovec {
        pub iov_base: u64,
        pub iov_len: u64,
    }
}

/// The fixed head of a `struct linux_dirent64` (getdents64(2)): `d_name` (NUL-terminated)
/// follows at byte 19, and `d_reclen` rounds the record up to 8 bytes. Packed, because the
/// name starts right after `d_type` (the C struct's size, 24, counts padding the record does
/// not have); the offsets are checked against linux-raw-sys below.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
pub struct Dirent64Head {
    pub d_ino: u64,
    pub d_off: i64,
    pub d_reclen: u16,
    pub d_type: u8,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Dirent64Head, d_ino) == offset_of!(linux::linux_dirent64, d_ino));
    assert!(offset_of!(Dirent64Head, d_off) == offset_of!(linux::linux_dirent64, d_off));
    assert!(offset_of!(Dirent64Head, d_reclen) == offset_of!(linux::linux_dirent64, d_reclen));
    assert!(offset_of!(Dirent64Head, d_type) == offset_of!(linux::linux_dirent64, d_type));
    assert!(size_of::<Dirent64Head>() == offset_of!(linux::linux_dirent64, d_name));
};

/// `struct ustat` (ustat(2); linux/types.h, not in linux-raw-sys): free blocks and inodes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
pub struct Ustat {
    pub f_tfree: i32,
    pub _pad0: u32,
    pub f_tinode: u64,
    pub f_fname: [u8; 6],
    pub f_fpack: [u8; 6],
    pub _pad1: u32,
}

const _: () = assert!(std::mem::size_of::<Ustat>() == 32);

/// name_to_handle_at(2)'s handles: the largest a file system may make (include/linux/exportfs.h's
/// MAX_HANDLE_SZ; linux-raw-sys does not carry it).
pub const MAX_HANDLE_SZ: u32 = 128;
/// The handle type "32-bit inode number and generation" (enum fid_type's FILEID_INO32_GEN).
pub const FILEID_INO32_GEN: i32 = 1;
/// What an encoder returns when the caller's buffer is too small (FILEID_INVALID).
pub const FILEID_INVALID: i32 = 255;

/// struct file_handle without its variable part (`f_handle`, `handle_bytes` bytes).
#[derive(Debug, Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
pub struct FileHandleHead {
    pub handle_bytes: u32,
    pub handle_type: i32,
}
