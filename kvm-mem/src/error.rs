//! Errors of the reader: lowercase and specific, naming the file, address or symbol at fault.
//!
//! Errors about a file say its path first (`/proc/123/mem: no such process`). Errors about what
//! was found in the target's memory (a bad record, an unreadable address) carry no path, because
//! the reader does not know what its memory source is called; a tool prefixes them with the
//! `-M` argument ([`KvmError::path`] says which errors already name a file).

/// What went wrong opening or reading a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    /// A file could not be opened or read (`path` says which).
    #[error("{path}: {msg}")]
    Open { path: String, msg: String },
    /// A path given as `-M` that is not a memory source the reader knows.
    #[error("{path}: neither a /proc/PID/mem path nor a vmcore")]
    NotProcMem { path: String },
    /// Target memory could not be read (unmapped address, the process exited, ...).
    #[error("cannot read {len} bytes at {addr:#x}: {msg}")]
    Read { addr: u64, len: usize, msg: String },
    /// The process's own executable has no vk roots: it is some other program.
    #[error("{path}: not a vk kernel (its executable {exe} has no symbol {symbol})")]
    NotVk { path: String, exe: String, symbol: String },
    /// A namelist given with `-N` lacks a root symbol.
    #[error("{path}: no symbol {symbol}: not a vk kernel")]
    NoSymbol { path: String, symbol: String },
    /// The namelist is not an ELF file or cannot be read.
    #[error("{path}: {msg}")]
    Namelist { path: String, msg: String },
    /// The executable's first page is not in the process's maps.
    #[error("{maps}: no mapping of {exe} at file offset 0")]
    NoMapping { exe: String, maps: String },
    /// `vk_layout` does not hold the layout magic: wrong namelist, or a corrupt kernel.
    #[error("no vk layout at {addr:#x} (bad magic {magic:#x}): is the namelist the kernel this process runs?")]
    BadLayout { addr: u64, magic: u64 },
    #[error("vk layout version {found} at {addr:#x}; this reader knows version {known}")]
    Version { addr: u64, found: u32, known: u32 },
    /// The layout descriptor or a record disagrees with itself.
    #[error("vk layout at {addr:#x} is inconsistent: {what}")]
    Inconsistent { addr: u64, what: String },
    /// A record's field lies outside the record (the layout's offsets are wrong for it).
    #[error("{what} record at {addr:#x}: field at offset {off}+{len} is beyond its {size} bytes")]
    Field { what: &'static str, addr: u64, off: u32, len: usize, size: usize },
    /// A record without its magic word: freed, torn, or not a record at all.
    #[error("bad {what} record at {addr:#x} (magic {magic:#x})")]
    BadRecord { what: &'static str, addr: u64, magic: u64 },
    /// A list that loops back on itself or is longer than any real one.
    #[error("{what} list loops or is longer than {limit} entries (at {addr:#x})")]
    Loop { what: &'static str, addr: u64, limit: usize },
    /// A list walk failed every time it was tried (a live kernel changing, or corruption).
    #[error("{what} list changed or was unreadable on {tries} tries; last: {last}")]
    Unstable { what: &'static str, tries: u32, last: Box<KvmError> },
}

impl KvmError {
    /// The file the message already names, if any; errors without one are about the memory
    /// source as a whole and read best after its name.
    pub fn path(&self) -> Option<&str> {
        match self {
            KvmError::Open { path, .. }
            | KvmError::NotProcMem { path }
            | KvmError::NotVk { path, .. }
            | KvmError::NoSymbol { path, .. }
            | KvmError::Namelist { path, .. } => Some(path),
            KvmError::NoMapping { maps, .. } => Some(maps),
            _ => None,
        }
    }

    /// Whether the error can come from a live kernel changing under the reader, so that
    /// reading again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, KvmError::BadRecord { .. } | KvmError::Read { .. } | KvmError::Loop { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_is_at_fault() {
        let e =
            KvmError::NotVk { path: "/proc/9/mem".into(), exe: "/usr/bin/sleep".into(), symbol: "vk_layout".into() };
        assert_eq!(
            e.to_string(),
            "/proc/9/mem: not a vk kernel (its executable /usr/bin/sleep has no symbol vk_layout)"
        );
        assert_eq!(e.path(), Some("/proc/9/mem"));
        let e = KvmError::Read { addr: 0x1000, len: 8, msg: "address not mapped".into() };
        assert_eq!(e.to_string(), "cannot read 8 bytes at 0x1000: address not mapped");
        assert_eq!(e.path(), None);
        assert!(e.is_transient());
    }
}
