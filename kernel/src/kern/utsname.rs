//! The system's names (uname(2)'s `struct utsname`): the node name that sethostname(2) and
//! `/proc/sys/kernel/hostname` change, the NIS domain name that setdomainname(2) and
//! `/proc/sys/kernel/domainname` change, and the fixed system name, release and version.

use platform::sync::SpinLock;

use crate::kern::errno::Errno;

/// The node name's longest length (__NEW_UTS_LEN).
pub const HOST_NAME_MAX: usize = 64;
pub const SYSNAME: &str = "Linux";
pub const RELEASE: &str = "6.1.0-vk";
pub const MACHINE: &str = "x86_64";

/// The node name once set (None: the boot default, `-e hostname=` or "vk").
static HOSTNAME: SpinLock<Option<Vec<u8>>> = SpinLock::new("hostname", None);

/// The NIS domain name once set (None: Linux's default, "(none)").
static DOMAINNAME: SpinLock<Option<Vec<u8>>> = SpinLock::new("domainname", None);

/// uname's version field.
pub fn version() -> String {
    format!("#1 SMP vk {}", env!("CARGO_PKG_VERSION"))
}

/// The node name.
pub fn hostname() -> Vec<u8> {
    if let Some(h) = HOSTNAME.lock().clone() {
        return h;
    }
    let boot = crate::kern::kenv::get("hostname").unwrap_or("vk").as_bytes();
    boot[..boot.len().min(HOST_NAME_MAX)].to_vec()
}

/// Set the node name (sethostname(2): EINVAL past [`HOST_NAME_MAX`] bytes).
pub fn set_hostname(name: &[u8]) -> Result<(), Errno> {
    set_name(&HOSTNAME, name)
}

/// Keep `name` in `slot` (EINVAL past [`HOST_NAME_MAX`] bytes).
fn set_name(slot: &SpinLock<Option<Vec<u8>>>, name: &[u8]) -> Result<(), Errno> {
    if name.len() > HOST_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    *slot.lock() = Some(name.to_vec());
    Ok(())
}

/// The NIS domain name (uname's `domainname`).
pub fn domainname() -> Vec<u8> {
    DOMAINNAME.lock().clone().unwrap_or_else(|| b"(none)".to_vec())
}

/// Set the NIS domain name (setdomainname(2): EINVAL past [`HOST_NAME_MAX`] bytes).
pub fn set_domainname(name: &[u8]) -> Result<(), Errno> {
    set_name(&DOMAINNAME, name)
}
