//! Mounting the root file system (`vfs_mountroot`) and the kernel's own file systems.
//!
//! The disks given with `-r`/`-R` are vkd0, vkd1, …; the first is the root. A host directory
//! is mounted read-only as hostfs (UML's hostfs); a disk image as ext2, read/write (`-R`:
//! the writes stay in memory). An image that is not ext2 or is damaged is refused with the
//! reason, and the boot ends in `panic: cannot mount root`; no root at all ends in
//! `panic: no root file system` — unless `-e rootwait=1` asks to keep waiting for a root
//! device, like Linux's `rootwait`, which leaves a live system to inspect. Once root is up,
//! devfs, procfs and tmpfs are mounted on /dev, /proc and /tmp when the root has them, and
//! devpts and a tmpfs on devfs's /dev/pts and /dev/shm, sysfs on /sys.

use std::time::Duration;

use std::os::unix::ffi::OsStrExt;

use crate::fs::mount::{self, MountFlags};
use crate::fs::namei::{self, NamePath};
use crate::fs::vfs::VType;
use crate::fs::bcache::BlockDev;
use crate::fs::{devfs, ext2, hostfs, procfs, tmpfs};
use crate::kern::init_main::boot_args;
use crate::kern::{kenv, sleep};
use crate::kprintf;

/// Mount the root, or say why not (and what to panic with).
fn try_mount() -> Result<(), (String, &'static str)> {
    let disks = &boot_args().disks;
    let Some(root) = disks.first() else {
        return Err(("no root device (boot with -r image or -r directory)".to_string(), "no root file system"));
    };
    if root.is_dir {
        kprintf!("Mounting root from hostfs:{} (read-only)\n", root.path.display());
        let v = hostfs::HostNode::root(root.path.clone()).map_err(|e| (format!("hostfs:{}: {e}", root.path.display()), "no root file system"))?;
        mount::mount_root(v, root.path.as_os_str().as_bytes(), MountFlags::from_mount_flags(0));
        return Ok(());
    }
    let kind = if root.cow { "image, copy-on-write" } else { "image" };
    kprintf!("Mounting root from ext2:vkd0 ({}, {kind})...\n", root.path.display());
    let fail = |why: String| (format!("vkd0: {why}"), "cannot mount root");
    let dev = BlockDev::open(0, &root.path, root.cow).map_err(|e| (e, "cannot mount root"))?;
    let v = ext2::mount(dev, false).map_err(fail)?;
    mount::mount_root(v, b"/dev/vkd0", MountFlags::from_mount_flags(0));
    Ok(())
}

/// Mount a kernel file system on `dir` if the root has that directory.
fn mount_if_present(dir: &str, v: crate::fs::vfs::VnodeRef, source: &str) {
    match namei::namei(&NamePath::root(), dir.as_bytes(), true) {
        Ok(np) if np.vnode().vtype() == VType::Dir => {
            if let Err(e) = mount::mount(&np, v, source.as_bytes(), MountFlags::from_mount_flags(0)) {
                kprintf!("mount {source} on {dir}: {e}\n");
            }
        }
        _ => log::debug!("no {dir} on the root: {source} not mounted"),
    }
}

/// Mount root or panic; then the kernel's file systems.
pub fn vfs_mountroot() {
    let Err((why, panic_msg)) = try_mount() else {
        mount_if_present("/dev", devfs::new(), "devfs");
        mount_if_present("/dev/pts", crate::fs::devpts::new(), "devpts");
        mount_if_present("/dev/shm", tmpfs::new(), "tmpfs");
        mount_if_present("/proc", procfs::new(), "proc");
        mount_if_present("/sys", crate::fs::sysfs::new(), "sysfs");
        mount_if_present("/tmp", tmpfs::new(), "tmpfs");
        return;
    };
    kprintf!("vfs_mountroot: {why}\n");
    if !kenv::get_bool("rootwait") {
        panic!("{panic_msg}");
    }
    // Nothing can make a root device appear yet: wait for ever, a live system to inspect.
    kprintf!("vfs_mountroot: rootwait: waiting for a root device\n");
    loop {
        sleep::pause("rootwait", Duration::from_secs(5));
    }
}
