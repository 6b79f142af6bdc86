//! Memory-call flags: mmap(2)'s protection and flags, mprotect(2), mremap(2), msync(2) and
//! madvise(2)'s advice — each with what Linux refuses (mm/mmap.c, mm/mprotect.c,
//! mm/mremap.c, mm/msync.c, mm/madvise.c; checked against a 6.18 host).

use super::{c_int, linux};
use crate::kern::errno::Errno;

bitflags::bitflags! {
    /// Protection bits. mmap(2) ignores unknown bits (only read, write and execute reach the
    /// mapping); mprotect(2) refuses any bit but these (EINVAL), and both GROWSDOWN and
    /// GROWSUP at once.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Prot: u32 {
        const READ = linux::PROT_READ;
        const WRITE = linux::PROT_WRITE;
        const EXEC = linux::PROT_EXEC;
        const SEM = linux::PROT_SEM;
        const GROWSDOWN = linux::PROT_GROWSDOWN;
        const GROWSUP = linux::PROT_GROWSUP;
    }
}

impl Prot {
    /// Read, write and execute: what a mapping keeps.
    pub const RWX: Prot = Prot::READ.union(Prot::WRITE).union(Prot::EXEC);

    /// The mapping's protection as the address space stores it.
    pub fn vm_bits(self) -> u32 {
        self.intersection(Prot::RWX).bits()
    }
}

/// mmap(2)'s mapping type (the low four bits of its flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    Shared,
    /// MAP_SHARED_VALIDATE: shared, and unknown flags are refused (EOPNOTSUPP).
    SharedValidate,
    Private,
}

bitflags::bitflags! {
    /// mmap(2)'s flags besides the type. With MAP_SHARED or MAP_PRIVATE Linux ignores bits it
    /// does not know; with MAP_SHARED_VALIDATE of a file anything outside
    /// [`MapFlags::LEGACY`] is EOPNOTSUPP (vk's files have no `mmap_validate` extras such as
    /// DAX's MAP_SYNC), and an anonymous mapping cannot be MAP_SHARED_VALIDATE (EINVAL).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct MapFlags: u32 {
        const FIXED = linux::MAP_FIXED;
        const ANONYMOUS = linux::MAP_ANONYMOUS;
        const _32BIT = linux::MAP_32BIT;
        const GROWSDOWN = linux::MAP_GROWSDOWN;
        const DENYWRITE = linux::MAP_DENYWRITE;
        const EXECUTABLE = linux::MAP_EXECUTABLE;
        const LOCKED = linux::MAP_LOCKED;
        const NORESERVE = linux::MAP_NORESERVE;
        const POPULATE = linux::MAP_POPULATE;
        const NONBLOCK = linux::MAP_NONBLOCK;
        const STACK = linux::MAP_STACK;
        const HUGETLB = linux::MAP_HUGETLB;
        const SYNC = linux::MAP_SYNC;
        const FIXED_NOREPLACE = linux::MAP_FIXED_NOREPLACE;
        const UNINITIALIZED = linux::MAP_UNINITIALIZED;
        /// The huge page size field (bits 26..31).
        const HUGE_MASK = linux::MAP_HUGE_MASK << linux::MAP_HUGE_SHIFT;
    }
}

impl MapFlags {
    /// LEGACY_MAP_MASK (include/linux/mman.h) less the type bits: what every file takes
    /// under MAP_SHARED_VALIDATE. The huge-page field counts only as 2 MiB or 1 GiB.
    pub const LEGACY: MapFlags = MapFlags::FIXED
        .union(MapFlags::ANONYMOUS)
        .union(MapFlags::DENYWRITE)
        .union(MapFlags::EXECUTABLE)
        .union(MapFlags::UNINITIALIZED)
        .union(MapFlags::GROWSDOWN)
        .union(MapFlags::LOCKED)
        .union(MapFlags::NORESERVE)
        .union(MapFlags::POPULATE)
        .union(MapFlags::NONBLOCK)
        .union(MapFlags::STACK)
        .union(MapFlags::HUGETLB)
        .union(MapFlags::_32BIT)
        .union(MapFlags::from_bits_retain(linux::MAP_HUGE_2MB))
        .union(MapFlags::from_bits_retain(linux::MAP_HUGE_1GB));

    /// Decode mmap(2)'s flags argument: EINVAL for an unknown type; the flags besides it,
    /// unknown ones dropped.
    pub fn decode(raw: u32) -> Result<(MapType, MapFlags), Errno> {
        let ty = match raw & linux::MAP_TYPE {
            linux::MAP_SHARED => MapType::Shared,
            linux::MAP_SHARED_VALIDATE => MapType::SharedValidate,
            linux::MAP_PRIVATE => MapType::Private,
            _ => return Err(Errno::EINVAL),
        };
        Ok((ty, MapFlags::from_bits_truncate(raw & !linux::MAP_TYPE)))
    }

    /// MAP_SHARED_VALIDATE of a file: EOPNOTSUPP for a bit outside [`MapFlags::LEGACY`].
    pub fn validate(raw: u32) -> Result<(), Errno> {
        if raw & !linux::MAP_TYPE & !MapFlags::LEGACY.bits() != 0 { Err(Errno::EOPNOTSUPP) } else { Ok(()) }
    }
}

bitflags::bitflags! {
    /// mremap(2)'s flags: EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct MremapFlags: u32 {
        const MAYMOVE = linux::MREMAP_MAYMOVE;
        const FIXED = linux::MREMAP_FIXED;
        const DONTUNMAP = linux::MREMAP_DONTUNMAP;
    }
}

bitflags::bitflags! {
    /// msync(2)'s flags: EINVAL for any other bit, and for MS_ASYNC with MS_SYNC.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct MsyncFlags: u32 {
        const ASYNC = linux::MS_ASYNC;
        const INVALIDATE = linux::MS_INVALIDATE;
        const SYNC = linux::MS_SYNC;
    }
}

/// madvise(2)'s advice, as vk acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// MADV_DONTNEED (and MADV_DONTNEED_LOCKED): drop the pages; private ones read back as
    /// zeros or the file.
    DontNeed,
    /// MADV_DONTFORK, MADV_DOFORK: the range is left out of a forked child, or not.
    DontFork,
    DoFork,
    /// MADV_WIPEONFORK, MADV_KEEPONFORK: a forked child gets the range zero-filled, or a copy.
    WipeOnFork,
    KeepOnFork,
    /// MADV_NOHUGEPAGE, MADV_HUGEPAGE: the range is faulted in page by page, as without
    /// transparent huge pages, or may be faulted in runs again (vk's fault-around of
    /// anonymous memory, [`crate::vm::faultaround`], stands in for huge pages).
    NoHugePage,
    HugePage,
    /// Advice Linux takes that changes nothing a program can see here (access patterns,
    /// dump behaviour, huge pages, KSM, reclaim hints, populate, MADV_FREE, which may keep
    /// the data).
    Hint,
}

impl TryFrom<i32> for Advice {
    type Error = Errno;

    /// EINVAL for advice Linux does not know (madvise_behavior_valid), and for what a kernel
    /// without memory-failure injection or guard regions refuses: MADV_HWPOISON,
    /// MADV_SOFT_OFFLINE, MADV_GUARD_INSTALL, MADV_GUARD_REMOVE.
    fn try_from(advice: i32) -> Result<Advice, Errno> {
        const DONTNEED: i32 = c_int(linux::MADV_DONTNEED);
        const DONTNEED_LOCKED: i32 = c_int(linux::MADV_DONTNEED_LOCKED);
        const DONTFORK: i32 = c_int(linux::MADV_DONTFORK);
        const DOFORK: i32 = c_int(linux::MADV_DOFORK);
        const WIPEONFORK: i32 = c_int(linux::MADV_WIPEONFORK);
        const KEEPONFORK: i32 = c_int(linux::MADV_KEEPONFORK);
        const NOHUGEPAGE: i32 = c_int(linux::MADV_NOHUGEPAGE);
        const HUGEPAGE: i32 = c_int(linux::MADV_HUGEPAGE);
        const HINTS: [u32; 14] = [
            linux::MADV_NORMAL,
            linux::MADV_RANDOM,
            linux::MADV_SEQUENTIAL,
            linux::MADV_WILLNEED,
            linux::MADV_FREE,
            linux::MADV_REMOVE,
            linux::MADV_MERGEABLE,
            linux::MADV_UNMERGEABLE,
            linux::MADV_DONTDUMP,
            linux::MADV_DODUMP,
            linux::MADV_COLD,
            linux::MADV_PAGEOUT,
            linux::MADV_POPULATE_READ,
            linux::MADV_POPULATE_WRITE,
        ];
        match advice {
            DONTNEED | DONTNEED_LOCKED => Ok(Advice::DontNeed),
            DONTFORK => Ok(Advice::DontFork),
            DOFORK => Ok(Advice::DoFork),
            WIPEONFORK => Ok(Advice::WipeOnFork),
            KEEPONFORK => Ok(Advice::KeepOnFork),
            NOHUGEPAGE => Ok(Advice::NoHugePage),
            HUGEPAGE => Ok(Advice::HugePage),
            a if u32::try_from(a).is_ok_and(|a| HINTS.contains(&a) || a == linux::MADV_COLLAPSE) => Ok(Advice::Hint),
            _ => Err(Errno::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_flags_as_linux_takes_them() {
        let unknown = 0x80_0000;
        assert!(MapFlags::decode(linux::MAP_PRIVATE | unknown).is_ok());
        assert!(MapFlags::decode(linux::MAP_SHARED | unknown).is_ok());
        assert_eq!(MapFlags::validate(linux::MAP_SHARED_VALIDATE | unknown), Err(Errno::EOPNOTSUPP));
        assert_eq!(MapFlags::validate(linux::MAP_SHARED_VALIDATE | linux::MAP_FIXED_NOREPLACE), Err(Errno::EOPNOTSUPP));
        assert_eq!(MapFlags::validate(linux::MAP_SHARED_VALIDATE | linux::MAP_SYNC), Err(Errno::EOPNOTSUPP));
        assert!(MapFlags::validate(linux::MAP_SHARED_VALIDATE | linux::MAP_HUGE_2MB | linux::MAP_POPULATE).is_ok());
        assert_eq!(MapFlags::decode(0x0f), Err(Errno::EINVAL));
        let (t, f) = MapFlags::decode(linux::MAP_PRIVATE | linux::MAP_ANONYMOUS | linux::MAP_FIXED).unwrap();
        assert_eq!((t, f), (MapType::Private, MapFlags::ANONYMOUS | MapFlags::FIXED));
        assert_eq!((Prot::READ | Prot::SEM | Prot::GROWSDOWN).vm_bits(), linux::PROT_READ);
    }

    #[test]
    fn advice() {
        assert_eq!(Advice::try_from(4), Ok(Advice::DontNeed));
        assert_eq!(Advice::try_from(0), Ok(Advice::Hint));
        assert_eq!(Advice::try_from(25), Ok(Advice::Hint));
        assert_eq!(Advice::try_from(999), Err(Errno::EINVAL));
        assert_eq!(Advice::try_from(-1), Err(Errno::EINVAL));
        assert_eq!(Advice::try_from(102), Err(Errno::EINVAL));
    }
}
