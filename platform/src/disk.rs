//! The host side of a disk (vkd0, vkd1, …): an image file read and written with pread/pwrite,
//! or opened copy-on-write (`-R`), where writes go to an in-memory overlay of [`COW_CHUNK`]-byte
//! chunks and the image file is never written.
//!
//! Calls block the calling host thread: the kernel makes them on io threads (see `io`), or on
//! a CPU only at halt, when nothing else runs. Errors are raw errno numbers.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

/// Granularity of the copy-on-write overlay.
pub const COW_CHUNK: u64 = 4096;

/// An open disk image.
#[derive(Debug)]
pub struct Disk {
    file: File,
    size: u64,
    readonly: bool,
    /// Copy-on-write overlay: chunk index → chunk contents.
    cow: Option<Mutex<HashMap<u64, Vec<u8>>>>,
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Disk {
    /// Open `path` read/write, or read-only with a private overlay when `cow`. An image the
    /// host will not let us write (EACCES, EROFS) opens read-only: see [`Disk::is_readonly`].
    pub fn open(path: &Path, cow: bool) -> Result<Disk, i32> {
        let (file, readonly) = match OpenOptions::new().read(true).write(!cow).open(path) {
            Ok(f) => (f, false),
            Err(e) if !cow && matches!(e.raw_os_error(), Some(libc::EACCES | libc::EROFS)) => (File::open(path).map_err(errno)?, true),
            Err(e) => return Err(errno(e)),
        };
        let size = file.metadata().map_err(errno)?.len();
        Ok(Disk { file, size, readonly, cow: cow.then(|| Mutex::new(HashMap::new())) })
    }

    /// Whether writes are impossible (the host refused write access).
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether writes stay in memory.
    pub fn is_cow(&self) -> bool {
        self.cow.is_some()
    }

    fn pread_full(&self, off: u64, buf: &mut [u8]) -> Result<(), i32> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => {
                    buf[done..].fill(0);
                    return Ok(());
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        Ok(())
    }

    fn check(&self, off: u64, len: usize) -> Result<(), i32> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(libc::EIO),
        }
    }

    /// Read `buf.len()` bytes at `off` (all inside the disk).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), i32> {
        self.check(off, buf.len())?;
        self.pread_full(off, buf)?;
        if let Some(cow) = &self.cow {
            let map = cow.lock().map_err(|_| libc::EIO)?;
            if map.is_empty() {
                return Ok(());
            }
            let end = off + buf.len() as u64;
            let mut c = off / COW_CHUNK;
            while c * COW_CHUNK < end {
                if let Some(data) = map.get(&c) {
                    let lo = (c * COW_CHUNK).max(off);
                    let hi = ((c + 1) * COW_CHUNK).min(end);
                    buf[(lo - off) as usize..(hi - off) as usize].copy_from_slice(&data[(lo - c * COW_CHUNK) as usize..(hi - c * COW_CHUNK) as usize]);
                }
                c += 1;
            }
        }
        Ok(())
    }

    /// Write `buf` at `off` (all inside the disk).
    pub fn write_at(&self, off: u64, buf: &[u8]) -> Result<(), i32> {
        self.check(off, buf.len())?;
        if self.readonly {
            return Err(libc::EROFS);
        }
        let Some(cow) = &self.cow else {
            let mut done = 0;
            while done < buf.len() {
                match self.file.write_at(&buf[done..], off + done as u64) {
                    Ok(0) => return Err(libc::EIO),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            return Ok(());
        };
        let end = off + buf.len() as u64;
        let mut c = off / COW_CHUNK;
        while c * COW_CHUNK < end {
            let base = c * COW_CHUNK;
            let lo = base.max(off);
            let hi = (base + COW_CHUNK).min(end);
            let present = cow.lock().map_err(|_| libc::EIO)?.contains_key(&c);
            let mut chunk_fresh = None;
            if !present {
                let mut data = vec![0u8; COW_CHUNK.min(self.size - base) as usize];
                self.pread_full(base, &mut data)?;
                chunk_fresh = Some(data);
            }
            let mut map = cow.lock().map_err(|_| libc::EIO)?;
            let data = map.entry(c).or_insert_with(|| chunk_fresh.unwrap_or_default());
            data[(lo - base) as usize..(hi - base) as usize].copy_from_slice(&buf[(lo - off) as usize..(hi - off) as usize]);
            c += 1;
        }
        Ok(())
    }

    /// fdatasync(2) the image (nothing to do copy-on-write).
    pub fn flush(&self) -> Result<(), i32> {
        if self.cow.is_some() {
            return Ok(());
        }
        self.file.sync_data().map_err(errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cow_overlay_keeps_the_file() {
        let dir = std::env::temp_dir().join(format!("vk-disk-{}", std::process::id()));
        std::fs::write(&dir, vec![7u8; 10000]).unwrap();
        let d = Disk::open(&dir, true).unwrap();
        d.write_at(4000, &[1u8; 200]).unwrap();
        let mut b = vec![0u8; 300];
        d.read_at(3950, &mut b).unwrap();
        assert_eq!(&b[..50], &[7u8; 50][..]);
        assert_eq!(&b[50..250], &[1u8; 200][..]);
        assert_eq!(&b[250..], &[7u8; 50][..]);
        assert_eq!(d.read_at(9999, &mut b), Err(libc::EIO));
        assert_eq!(std::fs::read(&dir).unwrap(), vec![7u8; 10000]);
        let rw = Disk::open(&dir, false).unwrap();
        rw.write_at(0, b"ab").unwrap();
        assert_eq!(&std::fs::read(&dir).unwrap()[..3], b"ab\x07");
        std::fs::remove_file(&dir).unwrap();
    }
}
