//! Memory sources: where the reader gets the kernel's bytes.
//!
//! | source    | what it reads                                                                  |
//! |-----------|--------------------------------------------------------------------------------|
//! | `ProcMem` | `/proc/PID/mem` of a live (or ddb-stopped) kernel; `/proc/self/mem` for ddb     |
//! | `BufMem`  | byte buffers at given addresses (tests, a flat dump)                            |
//!
//! `/proc/PID/mem` is read with pread (proc(5)): an unmapped address is an error (EIO), never a
//! fault — which is why the kernel's own debugger reads its memory through `/proc/self/mem`
//! rather than through pointers. A vmcore (the ELF core `db> dump` writes) is one more
//! implementation of [`MemSource`] (`core::CoreMem`), mapping addresses to file offsets by its
//! PT_LOAD headers; nothing else in the reader changes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::KvmError;

/// Somewhere kernel memory can be read. Shared between threads (ddb reads from any CPU).
pub trait MemSource: Send + Sync {
    /// Read exactly `buf.len()` bytes at `addr`, or fail naming the address.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError>;
}

/// `/proc/PID/mem` of a process.
#[derive(Debug)]
pub struct ProcMem {
    file: File,
    path: PathBuf,
}

/// What an error opening a `/proc` file means for the user.
pub(crate) fn open_msg(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such process".to_string(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (reading another process's memory needs ptrace access to it)".to_string()
        }
        _ => e.to_string(),
    }
}

/// What an error reading `/proc/PID/mem` at an address means.
fn read_msg(e: &io::Error) -> String {
    match (e.kind(), e.raw_os_error()) {
        (_, Some(libc::EIO)) => "address not mapped".to_string(),
        // pread returns 0 once the process has exited (its mm is gone), or at a mapping's end.
        (io::ErrorKind::UnexpectedEof, _) => "short read (not mapped, or the process exited)".to_string(),
        (_, Some(libc::ESRCH)) => "the process exited".to_string(),
        _ => e.to_string(),
    }
}

impl ProcMem {
    /// Open `/proc/PID/mem` (or any file laid out like it: offset = address).
    pub fn open(path: &Path) -> Result<ProcMem, KvmError> {
        let file =
            File::open(path).map_err(|e| KvmError::Open { path: path.display().to_string(), msg: open_msg(&e) })?;
        Ok(ProcMem { file, path: path.to_path_buf() })
    }

    /// The calling process's own memory (the kernel's debugger reading the kernel).
    pub fn open_self() -> Result<ProcMem, KvmError> {
        ProcMem::open(Path::new("/proc/self/mem"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MemSource for ProcMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        if buf.is_empty() {
            return Ok(());
        }
        // File offsets are signed: an address with the top bit set is never user memory.
        if addr > i64::MAX as u64 || addr.checked_add(buf.len() as u64).is_none() {
            return Err(KvmError::Read { addr, len: buf.len(), msg: "address out of range".to_string() });
        }
        self.file.read_exact_at(buf, addr).map_err(|e| KvmError::Read { addr, len: buf.len(), msg: read_msg(&e) })
    }
}

/// A memory image held in buffers at given addresses (tests; a flat dump).
#[derive(Debug, Default)]
pub struct BufMem {
    regions: Vec<(u64, Vec<u8>)>,
}

impl BufMem {
    pub fn new() -> BufMem {
        BufMem::default()
    }

    /// Add bytes at an address. A read must fall inside one region; a region added later
    /// shadows earlier ones (tests replace a record by adding it again).
    pub fn add(&mut self, addr: u64, bytes: Vec<u8>) {
        self.regions.push((addr, bytes));
    }
}

impl MemSource for BufMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        for (base, bytes) in self.regions.iter().rev() {
            let Some(off) = addr.checked_sub(*base).and_then(|o| usize::try_from(o).ok()) else { continue };
            if let Some(src) = off.checked_add(buf.len()).and_then(|end| bytes.get(off..end)) {
                buf.copy_from_slice(src);
                return Ok(());
            }
        }
        Err(KvmError::Read { addr, len: buf.len(), msg: "not in the image".to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_mem_reads_our_memory_and_rejects_bad_addresses() {
        let mem = ProcMem::open_self().unwrap();
        let value: u64 = 0x1122_3344_5566_7788;
        let mut buf = [0u8; 8];
        mem.read(&raw const value as u64, &mut buf).unwrap();
        assert_eq!(u64::from_ne_bytes(buf), value);
        let e = mem.read(8, &mut buf).unwrap_err();
        assert_eq!(e.to_string(), "cannot read 8 bytes at 0x8: address not mapped");
        let e = mem.read(u64::MAX - 3, &mut buf).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        mem.read(8, &mut []).unwrap();
    }

    #[test]
    fn opening_a_missing_process_says_so() {
        let e = ProcMem::open(Path::new("/proc/999999999/mem")).unwrap_err();
        assert_eq!(e.to_string(), "/proc/999999999/mem: no such process");
    }

    #[test]
    fn buffers_read_only_inside_a_region() {
        let mut m = BufMem::new();
        m.add(0x1000, vec![1, 2, 3, 4]);
        let mut b = [0u8; 2];
        m.read(0x1002, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(m.read(0x1003, &mut b).is_err());
        assert!(m.read(0xfff, &mut b).is_err());
        assert!(m.read(u64::MAX, &mut b).is_err());
    }
}
