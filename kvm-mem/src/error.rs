//! Errors of the reader, lowercase and specific: they name the file, address or symbol.

/// What went wrong reading a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("{path}: {msg}")]
    Open { path: String, msg: String },
    #[error("cannot read {len} bytes at {addr:#x}: {msg}")]
    Read { addr: u64, len: usize, msg: String },
    #[error("{path}: not a vk kernel (no symbol {symbol})")]
    NotVk { path: String, symbol: String },
    #[error("{path}: {msg}")]
    Namelist { path: String, msg: String },
    #[error("no vk layout at {addr:#x} (bad magic): is the namelist the kernel this process runs?")]
    BadLayout { addr: u64 },
    #[error("vk layout version {found} at {addr:#x}; this reader knows version {known}")]
    Version { addr: u64, found: u32, known: u32 },
    #[error("vk layout at {addr:#x} is inconsistent: {what}")]
    Inconsistent { addr: u64, what: String },
    #[error("bad {what} record at {addr:#x} (magic {magic:#x})")]
    BadRecord { what: &'static str, addr: u64, magic: u64 },
    #[error("{what} list is longer than {limit} entries or loops (at {addr:#x})")]
    Loop { what: &'static str, addr: u64, limit: usize },
    #[error("cannot find the load address of {exe} in {maps}")]
    NoMapping { exe: String, maps: String },
}

/// An I/O error as a short lowercase message, without Rust's "(os error N)".
pub fn io_msg(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or process".to_string(),
        PermissionDenied => "permission denied (reading another process needs the same user and ptrace access)".to_string(),
        UnexpectedEof => "short read (address not mapped)".to_string(),
        _ => match e.raw_os_error() {
            Some(libc::EIO) | Some(libc::EFAULT) => "address not mapped".to_string(),
            Some(libc::ESRCH) => "no such process".to_string(),
            _ => {
                let s = e.to_string();
                s.split(" (os error").next().unwrap_or(&s).to_lowercase()
            }
        },
    }
}
