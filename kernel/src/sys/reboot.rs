//! reboot(2): halt, power off or restart the machine — for vk, leave the host process with
//! status 0 or re-execute the kernel. The kernel syncs first, as BSD's reboot does (Linux leaves
//! that to the caller; busybox's init syncs and unmounts before it calls this anyway).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::shutdown::{Howto, kern_reboot};
use crate::kprintf;

const LINUX_REBOOT_MAGIC1: u32 = 0xfee1_dead;
/// The second magic: Linus's and his daughters' birthdays.
const LINUX_REBOOT_MAGIC2: [u32; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];

const CMD_RESTART: u32 = 0x0123_4567;
const CMD_HALT: u32 = 0xcdef_0123;
const CMD_CAD_ON: u32 = 0x89ab_cdef;
const CMD_CAD_OFF: u32 = 0x0000_0000;
const CMD_POWER_OFF: u32 = 0x4321_fedc;
const CMD_RESTART2: u32 = 0xa1b2_c3d4;
const CMD_SW_SUSPEND: u32 = 0xd000_fce2;
const CMD_KEXEC: u32 = 0x4558_4543;

/// Ctrl-Alt-Del reboots at once (CAD_ON) or signals init (CAD_OFF, the default). vk has no
/// such key; the setting is kept for the guest to read back in spirit.
static CAD_REBOOTS: AtomicBool = AtomicBool::new(false);

/// reboot(magic1, magic2, cmd, arg).
pub fn sys_reboot(ctx: &mut Ctx<'_>) -> SysResult {
    // Linux checks CAP_SYS_BOOT before the magic numbers.
    if ctx.p.user().cred.lock().euid != 0 {
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
            ctx.copyin_str(ctx.arg(3), 256)?;
            Howto::Reboot
        }
        CMD_SW_SUSPEND => return Err(Errno::ENOSYS), // no hibernation, as a kernel without it
        CMD_KEXEC => return Err(Errno::EINVAL),      // no kexec image can be loaded
        _ => return Err(Errno::EINVAL),
    };
    kprintf!("\nreboot: {} by pid {} ({})\n", if howto == Howto::Halt { "halt" } else { "restart" }, ctx.p.pid, ctx.p.comm());
    kern_reboot(howto)
}
