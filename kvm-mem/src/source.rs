//! Memory sources. A live kernel's memory is read through `/proc/PID/mem` with pread: an
//! unmapped address is an error (EIO), never a fault — which is also why the kernel's own
//! debugger reads its memory through `/proc/self/mem`. A vmcore source (an ELF core written by
//! `db> dump`) will implement the same trait.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::KvmError;

/// Somewhere kernel memory can be read.
pub trait MemSource: Send + Sync {
    /// Read exactly `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError>;
}

/// `/proc/PID/mem` of a process.
#[derive(Debug)]
pub struct ProcMem {
    file: File,
    path: PathBuf,
}

use crate::error::io_msg as os_msg;

impl ProcMem {
    /// Open `/proc/PID/mem` (or any file laid out like it).
    pub fn open(path: &Path) -> Result<ProcMem, KvmError> {
        let file = File::open(path).map_err(|e| KvmError::Open { path: path.display().to_string(), msg: os_msg(&e) })?;
        Ok(ProcMem { file, path: path.to_path_buf() })
    }

    /// The calling process's own memory.
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
        // Offsets are i64 in the kernel: addresses with the top bit set cannot be read.
        if addr > i64::MAX as u64 {
            return Err(KvmError::Read { addr, len: buf.len(), msg: "address out of range".to_string() });
        }
        self.file.read_exact_at(buf, addr).map_err(|e| KvmError::Read { addr, len: buf.len(), msg: os_msg(&e) })
    }
}

/// A memory image held in a buffer (tests; a flat dump).
#[derive(Debug, Default)]
pub struct BufMem {
    regions: Vec<(u64, Vec<u8>)>,
}

impl BufMem {
    pub fn new() -> BufMem {
        BufMem::default()
    }

    /// Add bytes at an address.
    pub fn add(&mut self, addr: u64, bytes: Vec<u8>) {
        self.regions.push((addr, bytes));
    }
}

impl MemSource for BufMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        for (base, bytes) in &self.regions {
            let end = base + bytes.len() as u64;
            if addr >= *base && addr.checked_add(buf.len() as u64).is_some_and(|e| e <= end) {
                let off = (addr - base) as usize;
                buf.copy_from_slice(&bytes[off..off + buf.len()]);
                return Ok(());
            }
        }
        Err(KvmError::Read { addr, len: buf.len(), msg: "not in the image".to_string() })
    }
}
