//! openat2(2): openat(2) with its arguments in an extensible `struct open_how` and the
//! RESOLVE_* restrictions on the lookup (carried out by fs/namei.rs's `Resolve`).

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// The first `struct open_how` (flags, mode, resolve: three u64s).
const OPEN_HOW_SIZE_VER0: usize = 24;
/// Largest struct accepted (copy_struct_from_user's bound: a page).
const OPEN_HOW_SIZE_MAX: usize = 4096;
/// Every open flag Linux knows (VALID_OPEN_FLAGS).
const VALID_OPEN_FLAGS: u64 = 0o3 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o4000 | 0o4010000 | 0o10000 | 0o20000
    | 0o40000 | 0o100000 | 0o200000 | 0o400000 | 0o1000000 | 0o2000000 | 0o10000000 | 0o20000000;
/// What O_PATH may come with (O_PATH_FLAGS).
const O_PATH_FLAGS: u64 = 0o200000 | 0o400000 | 0o2000000 | 0o10000000;
/// RESOLVE_NO_XDEV, _NO_MAGICLINKS, _NO_SYMLINKS, _BENEATH, _IN_ROOT, _CACHED.
const VALID_RESOLVE: u64 = 0x3f;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
/// RESOLVE_CACHED: only what the caches hold; vk's lookups never block on I/O it could avoid
/// this way, so it is refused (EAGAIN), as Linux does for an open that would need to.
const RESOLVE_CACHED: u64 = 0x20;
const O_CREAT: u64 = 0o100;
const O_TMPFILE: u64 = 0o20000000;
const O_PATH: u64 = 0o10000000;
const S_IALLUGO: u64 = 0o7777;

/// openat2(dirfd, path, how, size): `size` at least the first version of the struct
/// (EINVAL), at most a page (E2BIG), any bytes past what vk knows zero (E2BIG); unknown
/// flags or resolve bits, a mode without O_CREAT or O_TMPFILE, a mode past 07777,
/// RESOLVE_BENEATH with RESOLVE_IN_ROOT, O_PATH with flags it does not take: EINVAL.
pub fn sys_openat2(ctx: &mut Ctx<'_>) -> SysResult {
    let size = ctx.size(3);
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > OPEN_HOW_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let raw = ctx.read_slice(ctx.slice::<u8>(2, 3), OPEN_HOW_SIZE_MAX)?;
    if raw[OPEN_HOW_SIZE_VER0..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let field = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, mode, resolve) = (field(0), field(1), field(2));
    if flags & !VALID_OPEN_FLAGS != 0 || resolve & !VALID_RESOLVE != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (O_CREAT | O_TMPFILE) != 0 {
        if mode & !S_IALLUGO != 0 {
            return Err(Errno::EINVAL);
        }
    } else if mode != 0 {
        return Err(Errno::EINVAL);
    }
    if resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_PATH != 0 && flags & !O_PATH_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    if resolve & RESOLVE_CACHED != 0 && flags & (O_CREAT | O_TMPFILE | 0o1000) != 0 {
        return Err(Errno::EAGAIN);
    }
    let path = ctx.path(1)?;
    let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
    let mode = u32::try_from(mode).map_err(|_| Errno::EINVAL)?;
    crate::sys::fs::open_how(ctx, ctx.fd(0), &path, flags, mode, Some(resolve & !RESOLVE_CACHED))
}
