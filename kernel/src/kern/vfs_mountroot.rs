//! Mounting the root file system (`vfs_mountroot`).
//!
//! The disks given with `-r`/`-R` are vkd0, vkd1, …; the first is the root. No file system
//! type is compiled in yet (hostfs, tmpfs and ext2 come next), so every attempt fails and the
//! boot ends in `panic: no root file system` — unless `-e rootwait=1` asks to keep waiting
//! for a root device, like Linux's `rootwait`, which leaves a live system to inspect.

use std::time::Duration;

use crate::kern::init_main::boot_args;
use crate::kern::{kenv, sleep};
use crate::kprintf;

/// Why a root could not be mounted.
fn try_mount() -> Result<(), String> {
    let disks = &boot_args().disks;
    let Some(root) = disks.first() else {
        return Err("no root device (boot with -r image or -r directory)".to_string());
    };
    let kind = if root.is_dir { "directory" } else if root.cow { "image, copy-on-write" } else { "image" };
    kprintf!("Trying to mount root from vkd0 ({}, {kind})...\n", root.path.display());
    Err(format!("vkd0: no file system type is configured to mount {}", root.path.display()))
}

/// Mount root or panic.
pub fn vfs_mountroot() {
    let Err(why) = try_mount() else { return };
    kprintf!("vfs_mountroot: {why}\n");
    if !kenv::get_bool("rootwait") {
        panic!("no root file system");
    }
    // Nothing can make a root device appear yet: wait for ever, a live system to inspect.
    kprintf!("vfs_mountroot: rootwait: waiting for a root device\n");
    loop {
        sleep::pause("rootwait", Duration::from_secs(5));
    }
}
