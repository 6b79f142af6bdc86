//! Starting a stub process: a slot memfd mapped in the kernel, then posix_spawn (vfork + exec)
//! of the stub image with physical memory as fd 3, the slots as fd 4 and the image as fd 5,
//! every other descriptor closed, default signal dispositions, and its own process group (so
//! a terminal's ^C never reaches it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::StubSpace;
use super::image;
use super::layout::{FD_ELF, FD_PHYSMEM, FD_SLOTS, MAX_SLOTS, SLOTS_SIZE, msg};
use crate::sync::SpinLock;

/// Why a stub could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("stub: {what}: {source}")]
    Host { what: &'static str, source: io::Error },
    #[error("stub: {0}")]
    Start(String),
}

fn host(what: &'static str) -> impl FnOnce(io::Error) -> StubError {
    move |source| StubError::Host { what, source }
}

fn check(what: &'static str, r: libc::c_int) -> Result<(), StubError> {
    if r == 0 { Ok(()) } else { Err(StubError::Host { what, source: io::Error::from_raw_os_error(r) }) }
}

/// A descriptor duplicated above the low numbers (close-on-exec), so the spawn's dup2 into
/// 3, 4 and 5 can never collide with a source.
fn high_dup(fd: i32) -> Result<OwnedFd, StubError> {
    // SAFETY: fcntl F_DUPFD_CLOEXEC on a descriptor we hold; the result is a new fd we own.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    if r < 0 {
        return Err(host("dup")(io::Error::last_os_error()));
    }
    // SAFETY: `r` is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

pub(super) fn spawn(physmem: BorrowedFd<'_>) -> Result<StubSpace, StubError> {
    let image = image::fd().map_err(host("image"))?;
    // SAFETY: NUL-terminated name; the fd is ours.
    let raw = unsafe { libc::memfd_create(c"vk-slots".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(host("memfd_create")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    let slots_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    std::fs::File::from(slots_fd.try_clone().map_err(host("dup"))?).set_len(SLOTS_SIZE).map_err(host("ftruncate"))?;
    // SAFETY: a new shared mapping of our memfd at an address of the host's choosing.
    let k = unsafe {
        libc::mmap(std::ptr::null_mut(), SLOTS_SIZE as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, slots_fd.as_raw_fd(), 0)
    };
    if k == libc::MAP_FAILED {
        return Err(host("mmap slots")(io::Error::last_os_error()));
    }
    let mut space = StubSpace {
        pid: 0,
        // Replaced below; a placeholder that owns nothing useful until then.
        pidfd: slots_fd.try_clone().map_err(host("dup"))?,
        kslots: k as u64,
        _slots_fd: slots_fd,
        used: SpinLock::new("stub_slots", vec![0u64; (MAX_SLOTS / 64) as usize]),
        slots_hwm: std::sync::atomic::AtomicU32::new(1),
        residue: crate::sync::SpinLock::new("stub_residue", Vec::new()),
    };
    space.used.lock()[0] = 1; // slot 0: the first thread
    // The stub checks its parent is still us once its parent-death signal is set.
    space.word(0, msg::KPID).store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
    let sources = [
        (high_dup(physmem.as_raw_fd())?, FD_PHYSMEM),
        (high_dup(space._slots_fd.as_raw_fd())?, FD_SLOTS),
        (high_dup(image.as_raw_fd())?, FD_ELF),
    ];
    let path = CString::new(format!("/proc/self/fd/{FD_ELF}")).map_err(|e| StubError::Start(e.to_string()))?;
    let arg0 = c"vk-stub";
    let argv = [arg0.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
    let envp = [std::ptr::null_mut::<libc::c_char>()];
    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions and attributes are initialised, used and destroyed here; every
    // pointer passed (path, argv, envp, the sigsets) outlives the posix_spawn call.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut at: libc::posix_spawnattr_t = std::mem::zeroed();
        check("file actions", libc::posix_spawn_file_actions_init(&mut fa))?;
        check("attributes", libc::posix_spawnattr_init(&mut at))?;
        let result = (|| {
            for (src, dst) in &sources {
                check("adddup2", libc::posix_spawn_file_actions_adddup2(&mut fa, src.as_raw_fd(), *dst))?;
            }
            check("addclosefrom", libc::posix_spawn_file_actions_addclosefrom_np(&mut fa, FD_ELF + 1))?;
            for fd in 0..3 {
                check("addclose", libc::posix_spawn_file_actions_addclose(&mut fa, fd))?;
            }
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            check("sigdefault", libc::posix_spawnattr_setsigdefault(&mut at, &all))?;
            // The stub sets its own mask; start it with everything blocked.
            check("sigmask", libc::posix_spawnattr_setsigmask(&mut at, &all))?;
            check("pgroup", libc::posix_spawnattr_setpgroup(&mut at, 0))?;
            let flags = libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETPGROUP;
            check("flags", libc::posix_spawnattr_setflags(&mut at, flags as libc::c_short))?;
            check("posix_spawn", libc::posix_spawn(&mut pid, path.as_ptr(), &fa, &at, argv.as_ptr(), envp.as_ptr()))
        })();
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut at);
        result?;
    }
    drop(sources);
    space.pid = pid;
    // SAFETY: pidfd_open on our child's pid returns a new fd we own.
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pfd < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: killing our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(host("pidfd_open")(e));
    }
    // SAFETY: a fresh descriptor.
    space.pidfd = unsafe { OwnedFd::from_raw_fd(pfd as i32) };
    Ok(space)
}
