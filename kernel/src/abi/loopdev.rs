//! Loop devices' structures (linux/loop.h): `struct loop_info64` (LOOP_SET_STATUS64 and
//! LOOP_GET_STATUS64), the old `struct loop_info` (LOOP_SET_STATUS, LOOP_GET_STATUS) and `struct loop_config` (LOOP_CONFIGURE), mirrored from
//! `linux_raw_sys::loop_device`; the ioctl numbers and LO_FLAGS_ bits as `u32`s.

use linux_raw_sys::loop_device as lo;

use super::linux_struct;

linux_struct! {
    /// `struct loop_info64`: the backing file's device and inode, where the device's data
    /// starts in it and how much of it (0: to the end), the loop's number, flags and names.
    pub struct LoopInfo64 = lo::loop_info64 {
        pub lo_device: u64,
        pub lo_inode: u64,
        pub lo_rdevice: u64,
        pub lo_offset: u64,
        pub lo_sizelimit: u64,
        pub lo_number: u32,
        pub lo_encrypt_type: u32,
        pub lo_encrypt_key_size: u32,
        pub lo_flags: u32,
        pub lo_file_name: [u8; 64],
        pub lo_crypt_name: [u8; 64],
        pub lo_encrypt_key: [u8; 32],
        pub lo_init: [u64; 2],
    }
}

linux_struct! {
    /// `struct loop_info`: the old LOOP_SET_STATUS/LOOP_GET_STATUS form (an `int` offset, no
    /// size limit, one name), which LTP's device set-up still uses.
    pub struct LoopInfo = lo::loop_info {
        pub lo_number: i32,
        pad __pad0: u32,
        pub lo_device: u64,
        pub lo_inode: u64,
        pub lo_rdevice: u64,
        pub lo_offset: i32,
        pub lo_encrypt_type: i32,
        pub lo_encrypt_key_size: i32,
        pub lo_flags: i32,
        pub lo_name: [u8; 64],
        pub lo_encrypt_key: [u8; 32],
        pub lo_init: [u64; 2],
        pub reserved: [u8; 4],
        pad __pad1: u32,
    }
}

linux_struct! {
    /// `struct loop_config`: LOOP_CONFIGURE's descriptor, logical block size and status.
    pub struct LoopConfig = lo::loop_config {
        pub fd: u32,
        pub block_size: u32,
        pub info: LoopInfo64,
        pub __reserved: [u64; 8],
    }
}

pub use lo::{
    LOOP_CHANGE_FD, LOOP_CLR_FD, LOOP_CONFIGURE, LOOP_CTL_ADD, LOOP_CTL_GET_FREE, LOOP_CTL_REMOVE, LOOP_GET_STATUS, LOOP_GET_STATUS64,
    LOOP_SET_BLOCK_SIZE, LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_FD, LOOP_SET_STATUS, LOOP_SET_STATUS64,
};

pub const LO_FLAGS_READ_ONLY: u32 = lo::LO_FLAGS_READ_ONLY as u32;
pub const LO_FLAGS_AUTOCLEAR: u32 = lo::LO_FLAGS_AUTOCLEAR as u32;
pub const LO_FLAGS_PARTSCAN: u32 = lo::LO_FLAGS_PARTSCAN as u32;
pub const LO_FLAGS_DIRECT_IO: u32 = lo::LO_FLAGS_DIRECT_IO as u32;
/// What LOOP_CONFIGURE may set (Linux's LOOP_CONFIGURE_SETTABLE_FLAGS).
pub const LOOP_CONFIGURE_SETTABLE_FLAGS: u32 =
    LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO;
/// What LOOP_SET_STATUS64 may set and clear (LOOP_SET_STATUS_SETTABLE_FLAGS, _CLEARABLE_).
pub const LOOP_SET_STATUS_SETTABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
pub const LOOP_SET_STATUS_CLEARABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR;
/// Bytes of a name in loop_info64.
pub const LO_NAME_SIZE: usize = lo::LO_NAME_SIZE as usize;
