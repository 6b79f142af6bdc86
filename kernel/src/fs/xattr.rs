//! Extended attributes kept in memory, for the file systems that store them (tmpfs): one
//! map per inode from name (`namespace.rest`, bytes) to value, and the operations with
//! Linux's answers (EEXIST/ENODATA for XATTR_CREATE/XATTR_REPLACE, ERANGE for a buffer too
//! small, the size when the buffer is empty). Which names a caller may see or change is
//! decided by sys/xattr.rs before it gets here.

use std::collections::BTreeMap;

/// setxattr's XATTR_CREATE and XATTR_REPLACE.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

use crate::kern::errno::Errno;

/// One inode's attributes.
#[derive(Debug, Default)]
pub struct XattrMap {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl XattrMap {
    pub fn set(&mut self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        let exists = self.map.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        self.map.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    pub fn get(&self, name: &[u8]) -> Result<&[u8], Errno> {
        self.map.get(name).map(Vec::as_slice).ok_or(Errno::ENODATA)
    }

    pub fn remove(&mut self, name: &[u8]) -> Result<(), Errno> {
        self.map.remove(name).map(|_| ()).ok_or(Errno::ENODATA)
    }

    /// The names `visible` lets through, each followed by its NUL (listxattr's buffer).
    pub fn list(&self, visible: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for name in self.map.keys().filter(|n| visible(n)) {
            out.extend_from_slice(name);
            out.push(0);
        }
        out
    }
}

/// What a get or list call answers for `data` and a buffer of `size` bytes: the length when
/// `size` is 0, ERANGE when it is too small, else the bytes to copy out.
pub fn fit(data: &[u8], size: usize) -> Result<Option<&[u8]>, Errno> {
    if size == 0 {
        return Ok(None);
    }
    if data.len() > size {
        return Err(Errno::ERANGE);
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_replace_remove() {
        let mut m = XattrMap::default();
        assert_eq!(m.set(b"user.a", b"1", XATTR_REPLACE), Err(Errno::ENODATA));
        m.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(m.set(b"user.a", b"2", XATTR_CREATE), Err(Errno::EEXIST));
        m.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        assert_eq!(m.get(b"user.a"), Ok(&b"22"[..]));
        m.set(b"trusted.b", b"", 0).unwrap();
        assert_eq!(m.list(|_| true), b"trusted.b\0user.a\0");
        assert_eq!(m.list(|n| n.starts_with(b"user.")), b"user.a\0");
        m.remove(b"user.a").unwrap();
        assert_eq!(m.remove(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(fit(b"abc", 0), Ok(None));
        assert_eq!(fit(b"abc", 2), Err(Errno::ERANGE));
        assert_eq!(fit(b"abc", 3), Ok(Some(&b"abc"[..])));
    }
}
