//! Where a woken thread runs, and how long an idle CPU polls before it sleeps in the host: the
//! scheduler's wake-up policy (the mechanics are in [`crate::kern::sched`]).
//!
//! vk's CPUs are host threads, and on a virtualised host waking one that sleeps costs far more
//! than a switch: ~2 µs for a futex round trip between two threads of one host CPU, 100–200 µs
//! when the other host CPU is idle (the hypervisor must wake its vCPU). Two measures keep that
//! off the paths where one thread wakes another:
//!
//! * **Sync wake-ups** (Linux's `WF_SYNC` and `wake_affine`): a waker that says it is about to
//!   sleep ([`crate::kern::sched::wake_sync`]: a child's exit waking its parent in wait4,
//!   a pipe's writer waking its reader and the other way round, as Linux's pipes do, a
//!   vfork child's exec releasing its parent — posix_spawn's child mostly exits soon: 442 →
//!   356 µs a posix_spawn+wait, paired; one that computes on holds its parent for the grace)
//!   queues the woken thread on its own CPU and wakes no other: the thread runs there as soon
//!   as the waker sleeps. A new process goes on its parent's CPU the same way
//!   (`sched.fork_local`, [`starts_local`]; not a new thread, which mostly runs beside its
//!   creator). The queue is protected from stealing for a grace period
//!   (`sched.sync_grace_us`); if the waker is still running by then, the thread is stolen by
//!   an idle CPU (one that went to sleep meanwhile wakes for it) or the waker's guest is
//!   preempted for it (its time slice ends at the grace's end).
//! * **Idle polling** (Linux's cpuidle-haltpoll): a CPU with nothing to run looks at the run
//!   queues and its IPIs for a while before it sleeps in the host, so work that comes soon
//!   costs no host wake-up. The budget adapts per CPU as haltpoll's does ([`PollBudget`]):
//!   it grows while idle periods are short enough for a poll to catch their end, shrinks to
//!   nothing when they are longer than the longest poll (`sched.idle_poll_us`; an idle kernel
//!   therefore sleeps at once). A poller holds a host CPU, so it polls only while the host
//!   threads vk knows want a CPU leave one free (`platform::stub::spin::spin_pays`, which
//!   counts a polling CPU as idle: hand-overs that spin take precedence and stop the poll).
//!
//! Tunables (`-e name=value`, read once): `sched.wake_sync` (1; 0: the exit of a child wakes
//! its parent as any wake-up), `sched.fork_local` (1; 0: a new process is queued on its
//! parent's CPU with an idle CPU woken to take it), `sched.sync_grace_us` (1000),
//! `sched.idle_poll_us` (the longest poll, 200; 0: never poll). `-e sched.stats=1` prints the
//! scheduler's and the hand-overs' event counts when the machine halts
//! ([`crate::kern::sched::stats_line`]).
//!
//! Why, measured on the 2-CPU development VM (session 6; counts from `sched.stats`, host
//! context switches from `perf stat`). Fork+exit+wait on `-n 2` took ~2.5× `-n 1`'s time and
//! ~27 host context switches per fork against ~15: the child was queued on the parent's CPU
//! and the other CPU woken (a host futex wake-up) to steal it, and at its exit the parent —
//! woken twice, once for nothing as the reaper of no orphans — was stolen back the same way:
//! two cross-CPU host wake-ups (30–200 µs each here) per fork, where `-n 1` has none. Sync
//! wake-ups had been built for that but measured no better: with a 100 µs grace the parent,
//! whose way to wait4 crosses two host hand-overs, missed it in about half the forks and
//! its guest was preempted, and the child's exit woke it non-sync first (the orphan
//! wake-up). With the reaper woken only for orphans, exits sync and new processes local by
//! default and a 1 ms grace, `-n 2` does per fork what `-n 1` does (~15 host context
//! switches, no steal, no idle CPU woken) and fork, fork+exec take `-n 1`'s time (paired
//! runs in the README). Pipes: a shell script on `-n 2` woke the other CPU ~1,000 times
//! (a command's output waking the shell, which the other CPU then stole: `notify_other`,
//! `steals` ~690) and took 0.92–1.04 s against 0.65–0.71 s on `-n 1`; with sync pipe
//! wake-ups 0.70–0.77 s (51 steals). A pipe round trip is unchanged by it without `chrt`
//! (33 µs on `-n 2` either way, against 25 on `-n 1`; the gap not understood further), but
//! under `chrt` it went from 23–30 µs to 58–74: there the reader's idle vCPU polled and took
//! the wake-up without a host wake-up, and with both ends on one vCPU the other never idles
//! briefly enough to poll again (sending such wake-ups to a polling CPU instead did not help
//! for that reason). `make bench` runs without `chrt`; `-e sched.wake_sync=0` restores the
//! plain wake-ups (of exits too). With one CPU a sync wake-up is skipped (it
//! queues where any does): it measured ~10 µs slower per pipe round trip there, for reasons
//! not found (no kick, no steal; more host CPU time per round trip). Idle polling: without `chrt` it hardly ever runs —
//! the host's runnable count it checks includes vk's own threads, the poller's too, so a
//! vCPU polls only while no other vk thread but one wants a CPU (no poll at all in a
//! 2000-round pipe run on the loaded host, 237 on a quieter one); under `chrt` the check is
//! skipped (3,329 polls caught their wake-up in the same run, a round trip 35 µs against
//! 65) and a poller competes with a spinning pair for the two host CPUs: the null system
//! call and fork lost (README, session 5). Fork no longer polls at all (its second CPU now
//! idles for long). So polling stays on: off the measured paths without `chrt`, a gain for
//! pipes with it when their wake-ups are plain.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kern::kenv;

/// The first poll a CPU that polled none gets once its idle periods turn short.
pub const POLL_START_NS: u64 = 10_000;
/// The longest poll, by default (`sched.idle_poll_us`).
pub const POLL_MAX_US: u64 = 200;
/// How long a sync wake-up's thread waits for its waker to sleep, by default. The waker's way
/// to its sleep crosses host hand-overs (its stub woken, the guest's next trap), tens of µs
/// each on a virtualised host and more under load: at 100 µs a forking parent missed the
/// grace in about half the forks, and its child went to the other CPU after all.
pub const SYNC_GRACE_US: u64 = 1_000;

/// The wake-up tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// Whether sync wake-ups queue on the waker's CPU.
    pub sync: bool,
    /// Whether a new guest thread or process is queued on its creator's CPU as a sync
    /// wake-up (else on the same CPU, but with an idle CPU woken to take it).
    pub fork_local: bool,
    pub grace_ns: u64,
    pub poll_max_ns: u64,
}

fn num(name: &str, default: u64) -> u64 {
    kenv::get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The tunables, read from the kernel environment the first time.
pub fn tunables() -> &'static Tunables {
    static T: OnceLock<Tunables> = OnceLock::new();
    T.get_or_init(|| Tunables {
        sync: num("sched.wake_sync", 1) != 0,
        fork_local: num("sched.fork_local", 1) != 0,
        grace_ns: num("sched.sync_grace_us", SYNC_GRACE_US).saturating_mul(1_000),
        poll_max_ns: num("sched.idle_poll_us", POLL_MAX_US).saturating_mul(1_000),
    })
}

/// Whether a thread made runnable starts on its creator's CPU as a sync wake-up: the first
/// run of a new process's only thread (`fork_local`; a forking parent mostly waits for its
/// child, or execs or exits, soon) — not a new thread of a running process, which mostly runs
/// beside its creator.
pub fn starts_local(fork_local: bool, user: bool, never_ran: bool, threads_in_proc: usize) -> bool {
    fork_local && user && never_ran && threads_in_proc == 1
}

/// How many graces a CPU's wake-ups stay plain after one of its sync wake-ups missed its
/// grace.
pub const SYNC_BACKOFF_GRACES: u64 = 10;

/// Until when a CPU whose sync wake-up missed its grace at `now_ns` makes plain wake-ups
/// (Linux's `wake_wide` in spirit): a waker that keeps running after its wake-ups — a pipe's
/// writer streaming into a CPU-bound reader — would otherwise hold each woken thread back for
/// a whole grace (in `dd | gzip | gzip` on `-n 2`, 628 of 637 sync wake-ups expired). The
/// woken then go to the other CPU as plain wake-ups do; one grace in
/// [`SYNC_BACKOFF_GRACES`] at most is lost, and a serial workload, whose wakers sleep,
/// never backs off.
pub fn sync_backoff_end(now_ns: u64, grace_ns: u64) -> u64 {
    now_ns.saturating_add(grace_ns.saturating_mul(SYNC_BACKOFF_GRACES))
}

/// Whether a thread queued on a busy CPU needs an idle CPU woken to steal it: yes when the
/// queue is another CPU's, or the waker's own and the waker stays on it (runs on); no when
/// the waker is leaving its CPU (its idle thread, or a thread going to sleep or exit): the
/// woken thread runs there next, and waking another CPU would only have it stolen away
/// (a shell script on `-n 2` woke the other CPU ~470 times so, once per disk read that
/// completed in an idle CPU's cross-CPU call).
pub fn needs_thief(own_queue: bool, waker_stays: bool) -> bool {
    !own_queue || waker_stays
}

/// The CPU a woken thread may go on without anyone else being woken: the waker's, when the
/// wake-up is sync, the waker runs on a CPU the thread's affinity allows (`affinity`, bit N:
/// CPU N), and nothing else waits there (else it would wait behind that too).
pub fn sync_target(sync: bool, waker_cpu: Option<u32>, affinity: u64, waker_queue_len: usize) -> Option<u32> {
    let c = waker_cpu.filter(|_| sync)?;
    (c < 64 && affinity & (1u64 << c) != 0 && waker_queue_len == 0).then_some(c)
}

/// Whether a run queue of `len` threads, sync-protected until `until_ns`, may be stolen from
/// at `now_ns`: a protected queue holds exactly the thread a sync wake-up put there (any later
/// one may be taken).
pub fn stealable(len: usize, until_ns: u64, now_ns: u64) -> bool {
    len > 1 || (len == 1 && until_ns <= now_ns)
}

/// A CPU's adaptive poll budget, in ns (haltpoll's rule).
#[derive(Debug, Default)]
pub struct PollBudget(AtomicU64);

impl PollBudget {
    pub const fn new() -> PollBudget {
        PollBudget(AtomicU64::new(0))
    }

    /// How long to poll now (never more than `max_ns`).
    pub fn get(&self, max_ns: u64) -> u64 {
        self.0.load(Ordering::Relaxed).min(max_ns)
    }

    /// An idle period that ended in a host sleep lasted `idle_ns` (poll included): had it
    /// been no longer than the longest poll, a longer poll would have caught its end — grow
    /// (from [`POLL_START_NS`], doubling); else the poll was wasted — halve, down to none.
    pub fn slept(&self, idle_ns: u64, max_ns: u64) {
        let cur = self.0.load(Ordering::Relaxed);
        let new = if idle_ns <= max_ns {
            if cur == 0 { POLL_START_NS } else { cur.saturating_mul(2) }.min(max_ns)
        } else if cur / 2 < POLL_START_NS {
            0
        } else {
            cur / 2
        };
        self.0.store(new, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_wake_up_stays_on_the_wakers_cpu_when_it_may() {
        assert_eq!(sync_target(true, Some(1), 0b11, 0), Some(1));
        assert_eq!(sync_target(false, Some(1), 0b11, 0), None, "not sync");
        assert_eq!(sync_target(true, None, 0b11, 0), None, "the waker is not a CPU");
        assert_eq!(sync_target(true, Some(1), 0b01, 0), None, "affinity forbids it");
        assert_eq!(sync_target(true, Some(0), 0b01, 1), None, "another thread waits there");
        assert_eq!(sync_target(true, Some(70), u64::MAX, 0), None);
    }

    #[test]
    fn a_missed_grace_makes_wake_ups_plain_for_ten_graces() {
        assert_eq!(sync_backoff_end(5_000, 1_000), 15_000);
        assert_eq!(sync_backoff_end(u64::MAX - 1, 1_000), u64::MAX, "saturates");
        assert_eq!(sync_backoff_end(5_000, 0), 5_000, "no grace, no back-off");
    }

    #[test]
    fn an_idle_cpu_is_woken_to_steal_only_from_a_cpu_that_stays_busy() {
        assert!(needs_thief(false, false), "another CPU's queue: its owner may be busy");
        assert!(needs_thief(true, true), "the waker runs on: the woken would wait");
        assert!(!needs_thief(true, false), "the waker leaves: the woken runs here next");
    }

    #[test]
    fn only_a_new_process_starts_on_its_parents_cpu() {
        assert!(starts_local(true, true, true, 1));
        assert!(!starts_local(false, true, true, 1), "fork_local off");
        assert!(!starts_local(true, false, true, 1), "a kernel thread");
        assert!(!starts_local(true, true, false, 1), "it ran before: an ordinary wake-up");
        assert!(!starts_local(true, true, true, 2), "a new thread of a running process");
    }

    #[test]
    fn only_the_sync_thread_is_protected_and_only_for_its_grace() {
        assert!(!stealable(0, 0, 10));
        assert!(!stealable(1, 20, 10), "within the grace");
        assert!(stealable(1, 10, 10), "the grace is over");
        assert!(stealable(2, 20, 10), "a later thread may be taken");
    }

    #[test]
    fn the_poll_grows_on_short_idle_periods_and_dies_on_long_ones() {
        let max = 200_000;
        let b = PollBudget::new();
        assert_eq!(b.get(max), 0);
        b.slept(50_000, max);
        assert_eq!(b.get(max), POLL_START_NS);
        for _ in 0..10 {
            b.slept(50_000, max);
        }
        assert_eq!(b.get(max), max, "capped");
        assert_eq!(b.get(max / 2), max / 2, "a smaller maximum caps it too");
        b.slept(5_000_000, max);
        assert_eq!(b.get(max), max / 2);
        for _ in 0..5 {
            b.slept(5_000_000, max);
        }
        assert_eq!(b.get(max), 0, "an idle CPU stops polling");
    }
}
