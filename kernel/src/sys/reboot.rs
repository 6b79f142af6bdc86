//! reboot(2): halt, power off or restart the machine — for vk, leave the host process with
//! status 0 or re-execute the kernel. The kernel syncs first, as BSD's reboot does (Linux leaves
//! that to the caller; busybox's init syncs and unmounts before it calls this anyway).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::shutdown::{Howto, kern_reboot};
use crate::kprintf;

use crate::abi::linux;

const LINUX_REBOOT_MAGIC1: u32 = linux::LINUX_REBOOT_MAGIC1;
/// The second magic: Linus's and his daughters' birthdays.
const LINUX_REBOOT_MAGIC2: [u32; 4] =
    [linux::LINUX_REBOOT_MAGIC2, linux::LINUX_REBOOT_MAGIC2A, linux::LINUX_REBOOT_MAGIC2B, linux::LINUX_REBOOT_MAGIC2C];

const CMD_RESTART: u32 = linux::LINUX_REBOOT_CMD_RESTART;
const CMD_HALT: u32 = linux::LINUX_REBOOT_CMD_HALT;
const CMD_CAD_ON: u32 = linux::LINUX_REBOOT_CMD_CAD_ON;
const CMD_CAD_OFF: u32 = linux::LINUX_REBOOT_CMD_CAD_OFF;
const CMD_POWER_OFF: u32 = linux::LINUX_REBOOT_CMD_POWER_OFF;
const CMD_RESTART2: u32 = linux::LINUX_REBOOT_CMD_RESTART2;
const CMD_SW_SUSPEND: u32 = linux::LINUX_REBOOT_CMD_SW_SUSPEND;
const CMD_KEXEC: u32 = linux::LINUX_REBOOT_CMD_KEXEC;
/// RESTART2's command string: at most this many bytes are read.
const RESTART2_CMD_MAX: usize = 256;

/// Ctrl-Alt-Del reboots at once (CAD_ON) or signals init (CAD_OFF, the default). vk has no
/// such key; the setting is kept for the guest to read back in spirit.
static CAD_REBOOTS: AtomicBool = AtomicBool::new(false);

/// reboot(magic1, magic2, cmd, arg).
pub fn sys_reboot(ctx: &mut Ctx<'_>) -> SysResult {
    // Linux checks CAP_SYS_BOOT before the magic numbers.
    if !ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_BOOT) {
        return Err(Errno::EPERM);
    }
    if ctx.uint(0) != LINUX_REBOOT_MAGIC1 || !LINUX_REBOOT_MAGIC2.contains(&ctx.uint(1)) {
        return Err(Errno::EINVAL);
    }
    let howto = match ctx.uint(2) {
        CMD_CAD_ON | CMD_CAD_OFF => {
            CAD_REBOOTS.store(ctx.uint(2) == CMD_CAD_ON, Ordering::Relaxed);
            return Ok(0);
        }
        CMD_HALT | CMD_POWER_OFF => Howto::Halt,
        CMD_RESTART => Howto::Reboot,
        CMD_RESTART2 => {
            // The argument is a command string for the firmware; it must still be readable.
            ctx.read_cstr(ctx.ptr(3), RESTART2_CMD_MAX)?;
            Howto::Reboot
        }
        CMD_SW_SUSPEND => return Err(Errno::ENOSYS), // no hibernation, as a kernel without it
        CMD_KEXEC => return Err(Errno::EINVAL),      // no kexec image can be loaded
        _ => return Err(Errno::EINVAL),
    };
    kprintf!(
        "\nreboot: {} by pid {} ({})\n",
        if howto == Howto::Halt { "halt" } else { "restart" },
        ctx.p.pid,
        ctx.p.comm()
    );
    kern_reboot(howto)
}
