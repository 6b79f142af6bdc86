//! Capability structures: capget(2) and capset(2)'s header and data words.

use super::{linux, linux_struct};

linux_struct! {
    /// `struct __user_cap_header_struct`: the ABI version and the process.
    pub struct CapHeader = linux::__user_cap_header_struct {
        pub version: u32,
        pub pid: i32,
    }
}

linux_struct! {
    /// `struct __user_cap_data_struct`: 32 capabilities of each set (versions 2 and 3 pass
    /// two of these, for capabilities 0–31 and 32–63).
    pub struct CapData = linux::__user_cap_data_struct {
        pub effective: u32,
        pub permitted: u32,
        pub inheritable: u32,
    }
}
