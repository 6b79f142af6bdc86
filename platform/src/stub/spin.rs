//! How long each side of a hand-over spins before it sleeps on the futex.
//!
//! A spinning hand-over costs well under a microsecond; a futex wake-up several. But a spinner
//! holds a host CPU, and when the thread it waits for has none (more vk threads want a CPU
//! than the host has, or other host work keeps it busy) the spin only delays what it waits
//! for. So a side spins only when both hold:
//!
//! * **the other side has a CPU** ([`spin_pays`]): the host threads that want a CPU, as vk
//!   sees them — guests running (resumed, trap not yet seen), CPUs neither idle nor asleep
//!   waiting for their guest — are no more than the host CPUs this process may use, and so
//!   are all the host's runnable threads (`crate::cpu::host_cpu_spare`: /proc/loadavg,
//!   sampled every 2 ms; skipped under `chrt`, `-e sched.spin_hostload=0` to ignore). The
//!   second rule is for a busy host: there the two sides of a hand-over share one host CPU
//!   (the host wakes a thread on its waker's CPU when the other is taken), and a spinner
//!   then holds the CPU the side it waits for is queued on until its budget runs out. Seen
//!   with `perf sched` on the development VM with other work on one CPU: stubs spinning
//!   60–90 µs after waking their vCPU on their own host CPU, four times per fork; counting
//!   the host's load, a null system call took 4.4 µs instead of 11.6, a pipe round trip on
//!   `-n 1` 24 µs instead of 225, a fork 335 µs instead of 900 (paired runs, load 7–8);
//! * **the wait is short** ([`Tuning`]): per guest thread, moving averages of how long its
//!   guest runs from a resume to its next trap (the CPU's wait) and of how long the kernel
//!   takes from a trap to the resume (the stub's wait). A side spins only when its average is
//!   under [`SPIN_MAX_NS`], and for at most twice that average. The averages keep measuring
//!   while sleeping (a wake-up included), so a side that stopped spinning under load starts
//!   again once the waits are short again.
//!
//! Besides, the stub stops spinning as soon as the kernel thread it waits for leaves its CPU
//! (`msg::NAP`, set by the scheduler): it cannot be resumed before that thread runs again.
//!
//! **Co-location** ([`Tuning::resumed`]): when a spin does not pay, both sides sleep on the
//! futex — and a futex wake-up of a thread on another host CPU costs tens of µs on a
//! virtualised host (an idle CPU is woken by an IPI through the hypervisor: 33 µs per
//! hand-over measured by floor.c, 100–200 µs when the host is busy; ~20 µs of IPI latency
//! even when the other CPU is busy, seen with `perf sched` under `chrt`), against ~1.4 µs
//! for a switch between two threads of one CPU. So a guest thread whose hand-overs sleep
//! has its stub thread pinned to its vCPU's *home* host CPU, and the vCPU's host thread is
//! pinned there too (`pin_vcpu`: vCPU N on the host's N-th CPU, modulo their number): the
//! two take turns there, and the host cannot pull the vCPU away to an idle CPU at the
//! stub's next wake-up, which it otherwise does (CFS prefers an idle CPU for a woken
//! thread, the real-time scheduler one where it runs at once). When spinning pays again the
//! stub may run anywhere and so may the vCPU. Affinities change only when the decision or
//! the home CPU does. Co-located, a side first yields the host CPU ([`Wait::Yield`]) for a
//! budget like a spin's, then sleeps: the other side runs at once on the same CPU, and its
//! hand-over back needs no futex wake. A forked child starts from its parent's measures
//! ([`Tuning::inherit`]).
//!
//! **Apart** ([`SPIN_APART`]): when both sides spin, the vCPU is pinned to its home host CPU
//! and the stub thread may run anywhere but there. Left anywhere, the host's wake-affinity
//! put the two on one CPU after a wake-up and kept them there, each spinning out its budget
//! while the other waited to run.
//!
//! **Call-bound threads** ([`Tuning::call_bound`]): the kernel asks which threads' hand-overs
//! are most of their time, to have them take turns on one vCPU when the host has too few
//! CPUs for a spinning pair each (`kern::sched_huddle`).
//!
//! A spin does not pay either for a thread whose kernel thread often leaves its CPU between
//! a trap and the resume ([`Tuning::sleepy`]: a pipe's ping-pong, a parent in wait4, at
//! least `-e sched.colocate_wakes` percent of its resumes, 10 by default, until the share
//! falls under a quarter of that — hysteresis): its stub then sleeps (`NAP`) and must be
//! woken, which from another host CPU costs more than all the spinning saves (the two ends of
//! a pipe round trip, each resumed asleep every second time: under `chrt`, where spins pay,
//! 63 µs spinning against 48 µs co-located). A shell, which blocks in about one call of five
//! (the read of a command's output, wait4), runs its script faster co-located too
//! (bench/shell.sh, 5 alternating runs: 354 → 315 ms at 10 % with hysteresis); without
//! hysteresis a threshold near its share made it flip between the modes, each flip moving
//! threads between host CPUs (430 ms at 10 %).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest wait worth a spin: above it the spinner would mostly burn the CPU. A futex
/// hand-over costs a few µs on some idle hosts and 34 µs on the development machine (floor.c's
/// seccomp_trap_futex_ns), tens more on a busy one: a page fault's ~9 µs must still spin.
pub const SPIN_MAX_NS: u64 = 50_000;
/// The spin of a side whose average wait is long. A wait that ends in a sleep includes the
/// futex wake-up, which costs more than [`SPIN_MAX_NS`] on some hosts (34 µs on the
/// development machine, idle): without a probe, an average once above the limit would only
/// ever be fed such waits and never come back under it, and every hand-over would sleep
/// (a null system call at 58 µs instead of 3). A short wait the probe catches is measured
/// as it is and brings the average down.
const PROBE_NS: u64 = 3_000;
/// One sample counts at most this much in an average (a system call that slept for a second
/// must not stop spinning for the next hundred waits).
const SAMPLE_MAX_NS: u64 = 4 * SPIN_MAX_NS;

/// The longest short hand-over cycle (a trap's kernel wait and the guest's run after the
/// resume) of a call-bound thread, measured spinning ([`Tuning::call_bound`]). Two such
/// threads on two host CPUs either take turns on one spinning pair (a cycle of c each, one
/// at a time) or run co-located, each pair on its own host CPU (c plus two switches between
/// host processes, both pairs at once; ~1.8 µs a switch on the development machine when it
/// is quick, twice that when it is slow): taking turns pays while 2·c < c + 3.6 µs (7.2
/// slow). A getppid loop's cycle is 0.4–1 µs spinning. The limit errs towards taking turns,
/// which costs at most a fifth where it is wrong (a guest that computes 3.5–5 µs between
/// its calls on a quick host) and saves three quarters where it is right.
pub const HUDDLE_SPIN_NS: u64 = 5_000;
/// The same limit for a cycle measured co-located, which includes the two switches: a
/// getppid loop's is 4.4 µs on the quick host.
pub const HUDDLE_COLOC_NS: u64 = 10_000;
/// The share of short cycles (in 1/1024, each cycle weighing 1/16) from which a thread is
/// call-bound, and under which it stops being so: from 1024, 22 long cycles in a row. A
/// thread switched back in after its turn on a vCPU has a burst of long cycles while the
/// host moves its stub thread off the vCPU's host CPU, where it was woken; that must not
/// end the turns.
const BOUND_ENTER: u32 = 768;
const BOUND_LEAVE: u32 = 256;

/// Guests running now: resumed, their trap not yet seen by the CPU waiting for it.
pub(super) static RUNNING: AtomicU32 = AtomicU32::new(0);
/// CPUs asleep waiting for their guest's trap (their host thread wants no CPU).
pub(super) static WAITING: AtomicU32 = AtomicU32::new(0);

/// Whether events are counted (`-e sched.stats=1`): off, the counters' cache lines are never
/// written, so CPUs do not bounce them between host CPUs on their hot paths.
pub static STATS_ON: AtomicBool = AtomicBool::new(false);

/// Count one event in `c` if counting is on.
pub fn count(c: &AtomicU64) {
    if STATS_ON.load(Ordering::Relaxed) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hand-over events, counted for `-e sched.stats=1`.
#[derive(Debug)]
pub struct HandoverStats {
    /// Resumes that had to wake a stub asleep on its futex.
    pub stub_wakes: AtomicU64,
    /// Waits for a trap that ended in a futex sleep (the stub then wakes the CPU).
    pub cpu_sleeps: AtomicU64,
    /// Traps seen while the CPU spun.
    pub cpu_spin_hits: AtomicU64,
    /// Traps seen while the CPU yielded to its co-located stub.
    pub cpu_yield_hits: AtomicU64,
    /// Affinity changes of stub threads (co-location).
    pub places: AtomicU64,
    /// Guests kicked back to the kernel (time slice, IPI).
    pub kicks: AtomicU64,
    /// System calls that came by the fast path (a patched site: `fast`), not by a signal.
    pub fast_calls: AtomicU64,
}

pub static STATS: HandoverStats = HandoverStats {
    stub_wakes: AtomicU64::new(0),
    cpu_sleeps: AtomicU64::new(0),
    cpu_spin_hits: AtomicU64::new(0),
    cpu_yield_hits: AtomicU64::new(0),
    places: AtomicU64::new(0),
    kicks: AtomicU64::new(0),
    fast_calls: AtomicU64::new(0),
};

/// Whether sleeping hand-overs co-locate their two sides on one host CPU (`-e
/// sched.colocate=0` turns it off).
pub static COLOCATE: AtomicBool = AtomicBool::new(true);

/// Whether the two co-located sides of a hand-over wait for each other by yielding the host
/// CPU (`sched_yield`) before they sleep on the futex (`-e sched.colocate_yield=0`: they sleep
/// at once). See [`Wait::Yield`].
pub static COLOCATE_YIELD: AtomicBool = AtomicBool::new(true);

/// In the stub's spin word (`msg::SPIN`): the low bits count `sched_yield` calls, not pauses.
pub const SPIN_YIELD: u32 = 1 << 31;

/// What one `sched_yield` costs when no other thread wants the CPU (a system call): a yield
/// budget in ns is counted in these.
const YIELD_NS: u64 = 250;

/// How the side of a hand-over that waits does so before it sleeps on the futex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Sleep at once.
    Sleep,
    /// Spin on the state word with `pause` for this long: the other side runs on another
    /// host CPU.
    Spin(Duration),
    /// Co-located: yield the host CPU for up to this long. The other side is queued on the
    /// same host CPU, so a yield switches to it at once, and the hand-over back finds this
    /// side runnable rather than asleep: one `sched_yield` and a switch instead of a futex
    /// wake, a futex wait and the switch (floor, two processes on one host CPU of the
    /// development machine: 1.5 µs a hand-over against 2.4).
    Yield(Duration),
}

/// The host CPU set this process may run on (its affinity at start), read once.
fn host_cpu_set() -> &'static libc::cpu_set_t {
    static SET: OnceLock<libc::cpu_set_t> = OnceLock::new();
    SET.get_or_init(|| {
        // SAFETY: a zeroed cpu_set_t is the empty set; sched_getaffinity fills the set we
        // pass, of the size we pass.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                set = std::mem::zeroed();
            }
            set
        }
    })
}

/// The host CPUs this process may run on (its affinity), read once.
pub fn host_cpus() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| {
        // SAFETY: CPU_COUNT reads the set, a valid cpu_set_t.
        let n = unsafe { libc::CPU_COUNT(host_cpu_set()) } as u32;
        if n > 0 { n } else { std::thread::available_parallelism().map_or(1, |n| n.get() as u32) }
    })
}

/// The host CPU the calling thread runs on (-1 if unknown).
fn host_cpu_now() -> i32 {
    // SAFETY: sched_getcpu takes no arguments (the vDSO's getcpu).
    unsafe { libc::sched_getcpu() }
}

/// Set host thread `tid`'s affinity (0: the caller's): host CPU `cpu` only, or (`cpu` < 0)
/// every CPU this process may use. False if the host refused.
fn set_affinity(tid: u32, cpu: i32) -> bool {
    let mut set = *host_cpu_set();
    if cpu <= away_from(0) {
        // SAFETY: CPU_CLR clears one bit of a valid set (a CPU number below CPU_SETSIZE).
        unsafe { libc::CPU_CLR((-3 - cpu) as usize, &mut set) };
    } else if cpu >= 0 {
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET sets one bit of it (the host
        // reports CPU numbers below CPU_SETSIZE).
        unsafe {
            set = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
        }
    }
    // SAFETY: sched_setaffinity reads the set we pass, of the size we pass; a tid of another
    // process of ours (the stub) or 0 (the calling thread) is only given a CPU set.
    unsafe { libc::sched_setaffinity(tid as libc::pid_t, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// The host CPUs this process may run on, in order (from its affinity at start).
fn host_cpu_list() -> &'static [i32] {
    static LIST: OnceLock<Vec<i32>> = OnceLock::new();
    LIST.get_or_init(|| {
        // SAFETY: CPU_ISSET reads a valid set.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, host_cpu_set()) }).map(|c| c as i32).collect()
    })
}

/// Where each vCPU's host thread is pinned: a host CPU, or [`ANYWHERE`].
static VCPU_PINNED: [AtomicI32; crate::MAXCPU] = [const { AtomicI32::new(ANYWHERE) }; crate::MAXCPU];

/// Pin the calling vCPU's host thread to its home host CPU (vCPU N on the host's N-th CPU,
/// modulo their number: two vCPUs on two host CPUs get one each) and return it, or (`pin`
/// false, or no home known) let it run anywhere again and return [`ANYWHERE`]. A host call only when that changes. Co-location needs
/// it: a stub pinned to the CPU its vCPU ran on last is no help once the host moves the
/// vCPU — which it does at the next wake-up the stub makes (CFS puts the woken vCPU on an
/// idle CPU, the real-time scheduler on one where it runs at once), and then every
/// hand-over crosses CPUs and the stub is moved after it (seen under `chrt`: an affinity
/// change per resume, the pipe round trip at 140 µs).
fn pin_vcpu(pin: bool) -> i32 {
    let vcpu = crate::cpu::curcpu();
    let Some(slot) = VCPU_PINNED.get(vcpu as usize) else { return ANYWHERE };
    let list = host_cpu_list();
    let home = if pin && !list.is_empty() { list[vcpu as usize % list.len()] } else { ANYWHERE };
    if slot.load(Ordering::Relaxed) != home {
        count(&STATS.places);
        if set_affinity(0, home) {
            slot.store(home, Ordering::Relaxed);
        }
    }
    home
}

/// Where a stub thread was last placed: [`ANYWHERE`], a host CPU, or [`UNPLACED`], or any
/// host CPU but one ([`away_from`]).
const ANYWHERE: i32 = -1;
const UNPLACED: i32 = -2;

/// A placement on any host CPU but `cpu` (encoded below [`UNPLACED`]).
fn away_from(cpu: i32) -> i32 {
    -3 - cpu
}

/// Whether a spinning hand-over keeps its two sides on different host CPUs: the vCPU pinned
/// to its home, the stub thread anywhere else (`-e sched.spin_apart=0`: both anywhere).
pub static SPIN_APART: AtomicBool = AtomicBool::new(true);

/// Whether a spin can pay now: the host threads vk knows want a CPU (the guests running, the
/// CPUs neither idle nor asleep waiting for a guest — the caller among them — and `extra`
/// about to) fit on the host's CPUs. With two host CPUs, two vCPUs and their two guests do
/// not: each spinner would take the CPU the side it waits for needs.
pub fn spin_pays(extra: u32) -> bool {
    let n = crate::cpu::ncpus();
    let idle = (0..n).filter(|&c| crate::cpu::pcpu(c).is_idle()).count() as u32;
    let busy_cpus = n.saturating_sub(idle).saturating_sub(WAITING.load(Ordering::Relaxed));
    RUNNING.load(Ordering::Relaxed) + busy_cpus + extra <= host_cpus()
        && (!RESPECT_HOST_LOAD.load(Ordering::Relaxed) || crate::cpu::host_cpu_spare(host_cpus()))
}

/// Whether spins also need the host to have a CPU to spare, other processes' threads counted
/// (`crate::cpu::host_cpu_spare`; `-e sched.spin_hostload=0` turns it off).
pub static RESPECT_HOST_LOAD: AtomicBool = AtomicBool::new(true);

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

    /// How long to spin: up to twice the average; a short probe ([`PROBE_NS`]) when the
    /// average is too long to be worth more.
    fn budget(&self) -> Option<Duration> {
        let avg = self.0.load(Ordering::Relaxed);
        Some(Duration::from_nanos(if avg <= SPIN_MAX_NS { (2 * avg).clamp(1_000, SPIN_MAX_NS) } else { PROBE_NS }))
    }

    /// How long a co-located side may yield for the other ([`Wait::Yield`]): up to twice the
    /// average, when that is short (`COLOCATE_YIELD`); else it sleeps at once. No probe: a
    /// yield that finds the other side blocked only delays the sleep.
    fn yield_budget(&self) -> Option<Duration> {
        let avg = self.0.load(Ordering::Relaxed);
        (COLOCATE_YIELD.load(Ordering::Relaxed) && avg <= SPIN_MAX_NS).then(|| Duration::from_nanos((2 * avg).clamp(2_000, SPIN_MAX_NS)))
    }
}

/// The share of a thread's resumes that had to wake its stub, in percent, from which its
/// hand-overs co-locate instead of spinning ([`Tuning::sleepy`]; `-e sched.colocate_wakes`;
/// 0: always co-locate, above 100: never for this reason).
pub static SLEEPY_PCT: AtomicU32 = AtomicU32::new(SLEEPY_PCT_DEFAULT);
/// A ping-pong over a pipe wakes its stub on every second resume, a shell's about one in five.
pub const SLEEPY_PCT_DEFAULT: u32 = 10;
/// Resumes a sleepy parent's forked child stays sleepy whatever it does: a short-lived child
/// (a shell's `$(…)`, an exec'd applet: 20–60 traps) co-locates to its exit instead of
/// switching to spinning near its end — two affinity changes and a cross-CPU wake-up.
const INHERITED_STICKY: u32 = 64;
/// A sleepy thread stops being so once its share of napping resumes is under the threshold
/// divided by this.
const SLEEPY_EXIT_DIV: u64 = 4;

/// Whether a guest thread's kernel thread left its CPU between a trap and the resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nap {
    /// It did not.
    None,
    /// It slept (a blocking system call).
    Blocked,
    /// It waited on a run queue (its slice ended, another thread's turn).
    Preempted,
}

/// One guest thread's hand-over timings.
#[derive(Debug)]
pub struct Tuning {
    /// The share of resumes that found the stub asleep (its kernel thread had blocked), a
    /// moving average in 1/1024 (each resume weighs 1/8).
    wakes: AtomicU32,
    /// From a resume to the trap seen: the CPU's wait.
    guest: Average,
    /// From a trap seen to the resume: the stub's wait.
    kernel: Average,
    /// When the current trap was seen (uptime ns, 0: none yet).
    trapped_at: AtomicU64,
    /// When the guest was last resumed.
    resumed_at: AtomicU64,
    /// Whether the current hand-over sleeps on both sides, co-located: the CPU must not spin.
    colocated: AtomicBool,
    /// Whether [`Tuning::sleepy`] said so last: it stays so until the share of napping
    /// resumes falls to a quarter of the threshold that made it so (hysteresis).
    sleepy: AtomicBool,
    /// Where the stub thread may run now: a host CPU, [`ANYWHERE`], or [`UNPLACED`].
    placed: AtomicI32,
    /// Resumes left during which the thread stays sleepy whatever its share (a sleepy
    /// parent's forked child: [`Tuning::inherit`]).
    sticky: AtomicU32,
    /// The share of hand-over cycles (the kernel's wait before a resume and the guest's
    /// after it) that were short for their mode ([`Tuning::call_bound`]), a moving average in
    /// 1/1024 (each weighs 1/16). A cycle a nap lengthened (its thread blocked or waited its
    /// turn; the guest's wait then includes waking the stub) is left out.
    short: AtomicU32,
    /// The kernel's wait before the current resume (the first part of the current cycle).
    cycle_kernel_ns: AtomicU64,
    /// The current resume followed a nap.
    napped: AtomicBool,
    /// The share of resumes after the thread blocked (not preempted), as `wakes`.
    blocks: AtomicU32,
    /// What [`Tuning::call_bound`] said last.
    bound: AtomicBool,
}

fn now_ns() -> u64 {
    crate::time::uptime_ns()
}

impl Tuning {
    pub fn new() -> Tuning {
        // Start out spinning, as a short first wait is the common case.
        Tuning {
            wakes: AtomicU32::new(0),
            guest: Average(AtomicU64::new(SPIN_MAX_NS / 4)),
            kernel: Average(AtomicU64::new(SPIN_MAX_NS / 4)),
            trapped_at: AtomicU64::new(0),
            resumed_at: AtomicU64::new(0),
            colocated: AtomicBool::new(false),
            sleepy: AtomicBool::new(false),
            placed: AtomicI32::new(UNPLACED),
            sticky: AtomicU32::new(0),
            short: AtomicU32::new(0),
            cycle_kernel_ns: AtomicU64::new(0),
            napped: AtomicBool::new(false),
            blocks: AtomicU32::new(0),
            bound: AtomicBool::new(false),
        }
    }

    /// Start from `parent`'s measures (a forked child): a child of a process whose
    /// hand-overs co-locate runs co-located from its first resume, on its parent's host CPU,
    /// instead of waking its stub on the other CPU (the pooled stub's first run and the
    /// child's exit, each a cross-CPU wake-up of 15–20 µs on the development machine, while
    /// the parent waits anyway). Its own resumes then move the measures as usual.
    ///
    /// A sleepy parent's child stays sleepy for its first [`INHERITED_STICKY`] resumes,
    /// whatever they do: a short-lived child then stays co-located to its exit; a long-lived
    /// one that never blocks spins after that.
    pub fn inherit(&self, parent: &Tuning) {
        let sleepy = parent.sleepy.load(Ordering::Relaxed);
        self.wakes.store(parent.wakes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.sleepy.store(sleepy, Ordering::Relaxed);
        self.sticky.store(if sleepy { INHERITED_STICKY } else { 0 }, Ordering::Relaxed);
        self.guest.0.store(parent.guest.0.load(Ordering::Relaxed), Ordering::Relaxed);
        self.kernel.0.store(parent.kernel.0.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The guest is resumed now: the stub's wait that ends here is measured, and the spin the
    /// stub may do after its next trap is returned (pause iterations; 0: sleep at once).
    /// When spinning does not pay, the stub thread (host thread `stub_tid` of the stub process
    /// `stub_pid`) is pinned to the host CPU of the caller (co-location), else it may run
    /// anywhere.
    pub fn resumed(&self, stub_pid: i32, stub_tid: u32) -> u32 {
        let now = now_ns();
        let t = self.trapped_at.swap(0, Ordering::Relaxed);
        let waited = if t != 0 { now.saturating_sub(t) } else { SPIN_MAX_NS };
        if t != 0 {
            self.kernel.add(waited);
        }
        self.cycle_kernel_ns.store(waited, Ordering::Relaxed);
        self.resumed_at.store(now, Ordering::Relaxed);
        let pays = !self.sleepy() && spin_pays(1);
        let colocate = !pays && COLOCATE.load(Ordering::Relaxed) && host_cpus() > 1;
        // Co-located, the stub goes where the vCPU is pinned (where it runs now if it has no
        // home); spinning apart, anywhere but there; otherwise anywhere, with no host call to
        // ask where that is. Apart only when the vCPU will spin for the trap too: a vCPU that sleeps while its
        // guest runs long (a page fault's run of first touches) is better woken where the
        // host puts it, often beside the stub, than across CPUs.
        let apart = pays && SPIN_APART.load(Ordering::Relaxed) && host_cpus() > 1 && self.guest.0.load(Ordering::Relaxed) <= SPIN_MAX_NS;
        let home = pin_vcpu(colocate || apart);
        let at = match (colocate, home) {
            (false, ANYWHERE) => ANYWHERE,
            (false, cpu) => away_from(cpu),
            (true, ANYWHERE) => host_cpu_now(),
            (true, cpu) => cpu,
        };
        self.place(stub_pid, stub_tid, at);
        self.colocated.store(colocate, Ordering::Relaxed);
        match self.kernel.budget() {
            Some(d) if pays => u32::try_from(d.as_nanos() as u64 / pause_ns()).unwrap_or(u32::MAX) & !SPIN_YIELD,
            _ if colocate => match self.kernel.yield_budget() {
                Some(d) => SPIN_YIELD | (d.as_nanos() as u64 / YIELD_NS).clamp(1, 1 << 16) as u32,
                None => 0,
            },
            _ => 0,
        }
    }

    /// This resume follows a trap whose kernel thread left its CPU
    /// (`napped`: it slept or was preempted, and its stub was told to sleep) or not.
    /// Counted before the resume's own decision ([`Tuning::resumed`]) — and not by whether
    /// the stub slept, which co-location itself makes it do.
    pub fn resume_after_nap(&self, nap: Nap) {
        let napped = nap != Nap::None;
        let sticky = self.sticky.load(Ordering::Relaxed);
        if sticky > 0 {
            self.sticky.store(sticky - 1, Ordering::Relaxed);
        }
        let old = self.wakes.load(Ordering::Relaxed);
        self.wakes.store((old * 7 + if napped { 1024 } else { 0 }) / 8, Ordering::Relaxed);
        if self.napped.load(Ordering::Relaxed) != napped {
            self.napped.store(napped, Ordering::Relaxed);
        }
        let old = self.blocks.load(Ordering::Relaxed);
        self.blocks.store((old * 7 + if nap == Nap::Blocked { 1024 } else { 0 }) / 8, Ordering::Relaxed);
    }

    /// Whether this thread's kernel thread often leaves its CPU between a trap and the
    /// resume — it blocks (a pipe's ping-pong, a parent in wait4) — so that its stub, which
    /// then sleeps, should share its vCPU's host CPU rather than spin on another one. Waking
    /// a stub asleep on another host CPU is
    /// a cross-CPU wake-up, 20–30 µs on a virtualised host even when that CPU is busy (the
    /// IPI's latency), against ~1.4 µs for a hand-over between two threads of one CPU; a
    /// spinning hand-over saves ~1.2 µs of that. So a few wake-ups in a hundred resumes
    /// already cost more than spinning saves.
    fn sleepy(&self) -> bool {
        let share = u64::from(self.wakes.load(Ordering::Relaxed)) * 100;
        let enter = u64::from(SLEEPY_PCT.load(Ordering::Relaxed)) * 1024;
        let was = self.sleepy.load(Ordering::Relaxed);
        let now = if was { share * SLEEPY_EXIT_DIV >= enter || self.sticky.load(Ordering::Relaxed) > 0 } else { share >= enter };
        self.sleepy.store(now, Ordering::Relaxed);
        now
    }

    /// Let the stub thread `tid` of process `pid` run on host CPU `cpu` only, or anywhere
    /// (`ANYWHERE`): host system calls only when that changes. The tid comes from the slot,
    /// which the guest can write: it is used only if it names a thread of the stub (a null
    /// signal to it through `tgkill`, which checks that, is delivered).
    fn place(&self, pid: i32, tid: u32, cpu: i32) {
        if tid == 0 || cpu == UNPLACED || self.placed.load(Ordering::Relaxed) == cpu {
            return;
        }
        // SAFETY: tgkill with signal 0 sends nothing; it only checks that thread `tid`
        // belongs to thread group `pid` (and that we may signal it).
        if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid as libc::pid_t, 0) } != 0 {
            return;
        }
        // A thread never placed here is placed too: it inherits the affinity of the stub
        // thread that cloned it, which may have been pinned.
        count(&STATS.places);
        if set_affinity(tid, cpu) {
            self.placed.store(cpu, Ordering::Relaxed);
        }
    }

    /// How the CPU waits for the trap now. It never spins when the stub was co-located with
    /// it (the spin would take the CPU the guest needs): it yields to it, when the guest's
    /// runs are short.
    pub fn cpu_wait(&self) -> Wait {
        if self.colocated.load(Ordering::Relaxed) {
            return self.guest.yield_budget().map_or(Wait::Sleep, Wait::Yield);
        }
        self.guest.budget().filter(|_| spin_pays(0)).map_or(Wait::Sleep, Wait::Spin)
    }

    /// Whether the thread is *call-bound*: it traps again so soon after each resume that its
    /// hand-overs are most of its time, so it runs best on a spinning pair of host threads
    /// (its stub and its vCPU) and badly co-located on one host CPU, where each hand-over is
    /// a switch between two host processes. The kernel then lets such threads share a vCPU
    /// when the host has too few CPUs for a spinning pair each (`kern::sched_huddle`). Its
    /// measure is the share of hand-over cycles (a trap's kernel wait and the guest's run
    /// after it) under the limit of the mode it was measured in ([`HUDDLE_SPIN_NS`],
    /// [`HUDDLE_COLOC_NS`]): at least three in four to become call-bound, a quarter to stay
    /// so. A thread that blocks in [`SLEEPY_PCT`] of its
    /// resumes or more is not call-bound; being preempted does not count (taking turns on a
    /// vCPU must not end the turns).
    pub fn call_bound(&self) -> bool {
        let blocks = u64::from(self.blocks.load(Ordering::Relaxed)) * 100 >= u64::from(SLEEPY_PCT.load(Ordering::Relaxed)) * 1024;
        let short = self.short.load(Ordering::Relaxed);
        let was = self.bound.load(Ordering::Relaxed);
        let now = !blocks && short >= if was { BOUND_LEAVE } else { BOUND_ENTER };
        if now != was {
            self.bound.store(now, Ordering::Relaxed);
        }
        now
    }

    /// When the guest was last resumed and when its trap was seen (uptime ns; 0: not yet).
    pub fn run_times_ns(&self) -> (u64, u64) {
        (self.resumed_at.load(Ordering::Relaxed), self.trapped_at.load(Ordering::Relaxed))
    }

    /// The trap after a resume is seen now.
    pub fn trapped(&self) {
        let now = now_ns();
        let waited = now.saturating_sub(self.resumed_at.load(Ordering::Relaxed));
        self.guest.add(waited);
        if !self.napped.load(Ordering::Relaxed) {
            let limit = if self.colocated.load(Ordering::Relaxed) { HUDDLE_COLOC_NS } else { HUDDLE_SPIN_NS };
            self.cycle(waited + self.cycle_kernel_ns.load(Ordering::Relaxed), limit);
        }
        self.trapped_at.store(now, Ordering::Relaxed);
    }

    /// A hand-over cycle of `ns` (no nap in it) ended: short if under `limit`, its mode's.
    fn cycle(&self, ns: u64, limit: u64) {
        let old = self.short.load(Ordering::Relaxed);
        self.short.store((old * 15 + if ns <= limit { 1024 } else { 0 }) / 16, Ordering::Relaxed);
    }
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity_of(tid: u32) -> libc::cpu_set_t {
        // SAFETY: a zeroed set is valid; sched_getaffinity fills the set we pass.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(tid as libc::pid_t, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
            set
        }
    }

    #[test]
    fn a_stub_thread_is_pinned_and_set_free_again() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid takes no arguments.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        // SAFETY: CPU_ISSET and CPU_COUNT only read valid sets, here and below.
        let cpu = (0..1024).find(|&c| unsafe { libc::CPU_ISSET(c, host_cpu_set()) }).unwrap() as i32;
        let tuning = Tuning::new();
        // SAFETY: getpid takes no arguments.
        let pid = unsafe { libc::getpid() };
        tuning.place(pid + 1_000_000, tid, cpu);
        assert_eq!(tuning.placed.load(Ordering::Relaxed), UNPLACED, "a tid not of that process is left alone");
        tuning.place(pid, tid, cpu);
        let set = affinity_of(tid);
        // SAFETY: as above.
        unsafe {
            assert_eq!(libc::CPU_COUNT(&set), 1);
            assert!(libc::CPU_ISSET(cpu as usize, &set));
        }
        assert_eq!(tuning.placed.load(Ordering::Relaxed), cpu);
        tuning.place(pid, tid, ANYWHERE);
        // SAFETY: as above.
        unsafe { assert_eq!(libc::CPU_COUNT(&affinity_of(tid)), libc::CPU_COUNT(host_cpu_set())) };
        assert_eq!(tuning.placed.load(Ordering::Relaxed), ANYWHERE);
        // Away from one CPU: every other this process may use (on a host with more than one).
        if host_cpus() > 1 {
            tuning.place(pid, tid, away_from(cpu));
            let set = affinity_of(tid);
            // SAFETY: as above.
            unsafe {
                assert!(!libc::CPU_ISSET(cpu as usize, &set));
                assert_eq!(libc::CPU_COUNT(&set), libc::CPU_COUNT(host_cpu_set()) - 1);
            }
            assert_eq!(tuning.placed.load(Ordering::Relaxed), away_from(cpu));
        }
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_thread_of_short_cycles_is_call_bound_and_stays_so_through_a_burst() {
        let t = Tuning::new();
        assert!(!t.call_bound(), "a new thread is not");
        for _ in 0..10 {
            t.cycle(500, HUDDLE_SPIN_NS);
        }
        assert!(!t.call_bound(), "ten short cycles are not enough");
        for _ in 0..20 {
            t.cycle(500, HUDDLE_SPIN_NS);
        }
        assert!(t.call_bound(), "thirty are");
        for _ in 0..15 {
            t.cycle(40_000, HUDDLE_COLOC_NS);
        }
        assert!(t.call_bound(), "a burst of long cycles (its stub moved) does not end it");
        for _ in 0..20 {
            t.cycle(40_000, HUDDLE_COLOC_NS);
        }
        assert!(!t.call_bound(), "a thread that now computes between its calls is not");
        for _ in 0..10 {
            t.cycle(500, HUDDLE_SPIN_NS);
        }
        assert!(!t.call_bound(), "hysteresis: a few short cycles do not make it so again");
    }

    #[test]
    fn blocking_ends_call_bound_and_preemption_does_not() {
        let t = Tuning::new();
        for _ in 0..40 {
            t.cycle(500, HUDDLE_SPIN_NS);
        }
        assert!(t.call_bound());
        for i in 0..40 {
            t.resume_after_nap(if i % 8 == 0 { Nap::Preempted } else { Nap::None });
        }
        assert!(t.call_bound(), "taking turns on a vCPU");
        for i in 0..40 {
            t.resume_after_nap(if i % 2 == 0 { Nap::Blocked } else { Nap::None });
        }
        assert!(!t.call_bound(), "a pipe's ping-pong");
    }

    #[test]
    fn a_thread_that_keeps_blocking_co_locates() {
        let t = Tuning::new();
        assert!(!t.sleepy(), "a new thread spins");
        for _ in 0..64 {
            t.resume_after_nap(Nap::None);
        }
        assert!(!t.sleepy(), "system calls that never block");
        for i in 0..64 {
            t.resume_after_nap(if i % 2 == 0 { Nap::Blocked } else { Nap::None });
        }
        assert!(t.sleepy(), "a pipe's ping-pong: every second resume after a sleep");
        for _ in 0..32 {
            t.resume_after_nap(Nap::None);
        }
        assert!(!t.sleepy(), "it spins again once it stops blocking");
    }

    #[test]
    fn the_decision_holds_between_the_two_thresholds() {
        let t = Tuning::new();
        let pct = u64::from(SLEEPY_PCT.load(Ordering::Relaxed));
        // A share between the exit threshold (a quarter) and the entry one: no change.
        let between = u32::try_from(pct * 1024 / 100 / 2).unwrap();
        t.wakes.store(between, Ordering::Relaxed);
        assert!(!t.sleepy(), "not sleepy yet: stays so");
        t.wakes.store(1024, Ordering::Relaxed);
        assert!(t.sleepy());
        t.wakes.store(between, Ordering::Relaxed);
        assert!(t.sleepy(), "sleepy: stays so until the share is under a quarter");
        t.wakes.store(between / 4, Ordering::Relaxed);
        assert!(!t.sleepy());
    }

    #[test]
    fn a_forked_child_starts_from_its_parents_measures() {
        let parent = Tuning::new();
        for i in 0..64 {
            parent.resume_after_nap(if i % 2 == 0 { Nap::Blocked } else { Nap::None });
        }
        assert!(parent.sleepy());
        let child = Tuning::new();
        child.inherit(&parent);
        assert!(child.sleepy(), "a sleepy parent's child co-locates from its first resume");
        // Sticky: it stays so through a short life, whatever its resumes do.
        for _ in 0..20 {
            child.resume_after_nap(Nap::None);
        }
        assert!(child.sleepy(), "20 resumes that never block");
        for _ in 0..(INHERITED_STICKY as usize) {
            child.resume_after_nap(Nap::None);
        }
        assert!(!child.sleepy(), "a long-lived child that never blocks spins again");
        let spinner = Tuning::new();
        let other = Tuning::new();
        other.inherit(&spinner);
        assert!(!other.sleepy(), "a spinning parent's child spins");
    }

    #[test]
    fn a_colocated_cpu_never_spins() {
        let tuning = Tuning::new();
        tuning.colocated.store(true, Ordering::Relaxed);
        assert!(matches!(tuning.cpu_wait(), Wait::Yield(_)), "short guest runs: it yields");
        for _ in 0..64 {
            tuning.guest.add(SAMPLE_MAX_NS);
        }
        assert_eq!(tuning.cpu_wait(), Wait::Sleep, "long guest runs: it sleeps at once");
    }

    #[test]
    fn the_budget_follows_the_average() {
        let a = Average(AtomicU64::new(0));
        for _ in 0..64 {
            a.add(4_000);
        }
        let b = a.budget().unwrap();
        assert!(b >= Duration::from_micros(7) && b <= Duration::from_micros(8), "{b:?}");
        for _ in 0..64 {
            a.add(1_000_000);
        }
        assert_eq!(a.budget(), Some(Duration::from_nanos(PROBE_NS)));
    }
}
