//! How long each side of a hand-over spins before it sleeps on the futex.
//!
//! A spinning hand-over costs well under a microsecond; a futex wake-up several. But a spinner
//! holds a host CPU, and when the thread it waits for has none (more vk threads want a CPU
//! than the host has, or other host work keeps it busy) the spin only delays what it waits
//! for. So a side spins only when both hold:
//!
//! * **the other side has a CPU** ([`spin_pays`]): the host threads that want a CPU, as vk
//!   sees them — guests running (resumed, trap not yet seen), CPUs neither idle nor asleep
//!   waiting for their guest — are no more than the host CPUs this process may use;
//! * **the wait is short** ([`Tuning`]): per guest thread, moving averages of how long its
//!   guest runs from a resume to its next trap (the CPU's wait) and of how long the kernel
//!   takes from a trap to the resume (the stub's wait). A side spins only when its average is
//!   under [`SPIN_MAX_NS`], and for at most twice that average. The averages keep measuring
//!   while sleeping (a wake-up included), so a side that stopped spinning under load starts
//!   again once the waits are short again.
//!
//! Besides, the stub stops spinning as soon as the kernel thread it waits for leaves its CPU
//! (`msg::NAP`, set by the scheduler): it cannot be resumed before that thread runs again.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest wait worth a spin: above it (a futex hand-over costs a few µs on an idle
/// host, tens on a busy one) the spinner would mostly burn the CPU.
pub const SPIN_MAX_NS: u64 = 20_000;
/// One sample counts at most this much in an average (a system call that slept for a second
/// must not stop spinning for the next hundred waits).
const SAMPLE_MAX_NS: u64 = 4 * SPIN_MAX_NS;

/// Guests running now: resumed, their trap not yet seen by the CPU waiting for it.
pub(super) static RUNNING: AtomicU32 = AtomicU32::new(0);
/// CPUs asleep waiting for their guest's trap (their host thread wants no CPU).
pub(super) static WAITING: AtomicU32 = AtomicU32::new(0);

/// The host CPUs this process may run on (its affinity), read once.
pub fn host_cpus() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| {
        // SAFETY: sched_getaffinity fills the set we pass, of the size we pass.
        let n = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                libc::CPU_COUNT(&set) as u32
            } else {
                0
            }
        };
        if n > 0 { n } else { std::thread::available_parallelism().map_or(1, |n| n.get() as u32) }
    })
}

/// Whether a spin can pay now: the host threads vk knows want a CPU (the guests running, the
/// CPUs neither idle nor asleep waiting for a guest — the caller among them — and `extra`
/// about to) fit on the host's CPUs. With two host CPUs, two vCPUs and their two guests do
/// not: each spinner would take the CPU the side it waits for needs.
pub fn spin_pays(extra: u32) -> bool {
    let n = crate::cpu::ncpus();
    let idle = (0..n).filter(|&c| crate::cpu::pcpu(c).is_idle()).count() as u32;
    let busy_cpus = n.saturating_sub(idle).saturating_sub(WAITING.load(Ordering::Relaxed));
    RUNNING.load(Ordering::Relaxed) + busy_cpus + extra <= host_cpus()
}

/// Nanoseconds one `pause` takes on this host (the stub's spin is counted in them), measured
/// once: from ~10 on older cores to ~40 on newer ones.
pub fn pause_ns() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| {
        const N: u32 = 20_000;
        let t = Instant::now();
        for _ in 0..N {
            std::hint::spin_loop();
        }
        (t.elapsed().as_nanos() as u64 / u64::from(N)).clamp(1, 1_000)
    })
}

/// A moving average of waits, in ns (each sample weighs 1/8).
#[derive(Debug)]
struct Average(AtomicU64);

impl Average {
    fn add(&self, ns: u64) {
        let old = self.0.load(Ordering::Relaxed);
        let ns = ns.min(SAMPLE_MAX_NS);
        self.0.store((old * 7 + ns) / 8, Ordering::Relaxed);
    }

    /// How long to spin: up to twice the average, none when it is too long to be worth it.
    fn budget(&self) -> Option<Duration> {
        let avg = self.0.load(Ordering::Relaxed);
        (avg <= SPIN_MAX_NS).then(|| Duration::from_nanos((2 * avg).clamp(1_000, SPIN_MAX_NS)))
    }
}

/// One guest thread's hand-over timings.
#[derive(Debug)]
pub struct Tuning {
    /// From a resume to the trap seen: the CPU's wait.
    guest: Average,
    /// From a trap seen to the resume: the stub's wait.
    kernel: Average,
    /// When the current trap was seen (uptime ns, 0: none yet).
    trapped_at: AtomicU64,
    /// When the guest was last resumed.
    resumed_at: AtomicU64,
}

fn now_ns() -> u64 {
    crate::time::uptime_ns()
}

impl Tuning {
    pub fn new() -> Tuning {
        // Start out spinning, as a short first wait is the common case.
        Tuning {
            guest: Average(AtomicU64::new(SPIN_MAX_NS / 4)),
            kernel: Average(AtomicU64::new(SPIN_MAX_NS / 4)),
            trapped_at: AtomicU64::new(0),
            resumed_at: AtomicU64::new(0),
        }
    }

    /// The guest is resumed now: the stub's wait that ends here is measured, and the spin the
    /// stub may do after its next trap is returned (pause iterations; 0: sleep at once).
    pub fn resumed(&self) -> u32 {
        let now = now_ns();
        let t = self.trapped_at.swap(0, Ordering::Relaxed);
        if t != 0 {
            self.kernel.add(now.saturating_sub(t));
        }
        self.resumed_at.store(now, Ordering::Relaxed);
        match self.kernel.budget() {
            Some(d) if spin_pays(1) => u32::try_from(d.as_nanos() as u64 / pause_ns()).unwrap_or(u32::MAX),
            _ => 0,
        }
    }

    /// How long the CPU may spin for the trap now (None: sleep at once).
    pub fn cpu_spin(&self) -> Option<Duration> {
        self.guest.budget().filter(|_| spin_pays(0))
    }

    /// The trap after a resume is seen now.
    pub fn trapped(&self) {
        let now = now_ns();
        self.guest.add(now.saturating_sub(self.resumed_at.load(Ordering::Relaxed)));
        self.trapped_at.store(now, Ordering::Relaxed);
    }
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning::new()
    }
}
