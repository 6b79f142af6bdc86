//! The syncer: a kernel thread that wakes every second to flush what file systems registered
//! (dirty buffers, inode updates). Until disk file systems exist nothing registers, and it
//! just keeps its schedule — asleep on its timer, as ps shows it ("syncer").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use platform::sync::SpinLock;

use crate::kern::sleep::{SleepOpts, tsleep, wakeup, wchan_of};

/// Seconds between sync passes.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

static SYNCER_CHAN: u8 = 0;
static ROUNDS: AtomicU64 = AtomicU64::new(0);
static HOOKS: SpinLock<Vec<fn()>> = SpinLock::new("sync_hooks", Vec::new());

/// Add a function the syncer calls on every pass (a file system's flush).
pub fn register(f: fn()) {
    HOOKS.lock().push(f);
}

/// Wake the syncer now (sync(2), shutdown).
pub fn speedup() {
    wakeup(wchan_of(&SYNCER_CHAN));
}

/// Passes made so far.
pub fn rounds() -> u64 {
    ROUNDS.load(Ordering::Relaxed)
}

/// Run every registered flush once. Skipped (false) when the hook list is locked: at halt from
/// the debugger a stopped CPU may hold it.
pub fn sync_pass() -> bool {
    let Some(hooks) = HOOKS.try_lock().map(|h| h.clone()) else {
        return false;
    };
    for h in hooks {
        h();
    }
    ROUNDS.fetch_add(1, Ordering::Relaxed);
    true
}

/// The syncer thread's body.
pub fn syncer_main() {
    loop {
        tsleep(wchan_of(&SYNCER_CHAN), "syncer", SleepOpts::timeout(SYNC_INTERVAL));
        sync_pass();
    }
}
