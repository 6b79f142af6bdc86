//! Boot: from `main` to the first kernel threads (FreeBSD's `mi_startup`).
//!
//! The host's main thread parses the command line, creates physical memory, installs the trap
//! handlers and the debugger, prints the banner and starts cpu0 with the boot thread (proc0's
//! "swapper") queued. The boot thread starts the other CPUs one by one, the syncer, takes the
//! `debug.trap` / `debug.panic` tests if asked, and mounts root. The main thread then only
//! turns host signals into kernel events.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use platform::cpu;

use crate::kern::args::{self, BootArgs, Command};
use crate::kern::thread::{Thread, pri};
use crate::kern::uproc::tid_of;
use crate::kern::{kdb, kenv, printf, proc, sched, sleep, syncer, vfs_mountroot};
use crate::kprintf;

static BOOT_ARGS: OnceLock<BootArgs> = OnceLock::new();
static THREAD0: Mutex<Option<Arc<Thread>>> = Mutex::new(None);
/// Work the layers above `kern` ask the boot thread to do once the scheduler and the syncer
/// run (FreeBSD's SYSINIT, in miniature): `debug`'s control socket.
static STARTUP: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// Run `f` on the boot thread, after the CPUs and the syncer start and before root is mounted.
pub fn at_startup(f: fn()) {
    if let Ok(mut s) = STARTUP.lock() {
        s.push(f);
    }
}

/// The command line the kernel booted with.
pub fn boot_args() -> &'static BootArgs {
    BOOT_ARGS.get().expect("boot arguments not set")
}

/// Exit status for command-line and set-up errors.
pub const EXIT_USAGE: i32 = 2;

fn die(msg: &str) -> ! {
    platform::console::write_fd(2, format!("kernel: {msg}\n").as_bytes());
    platform::host::exit(EXIT_USAGE);
}

/// The `kernel` binary's main.
pub fn main() -> ! {
    platform::hostmem::tune_malloc();
    platform::host::block_async_signals();
    platform::host::save_args();
    let argv: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let a = match args::parse(&argv) {
        Ok(Command::Boot(a)) => a,
        Ok(Command::Help) => {
            platform::console::write(args::usage().as_bytes());
            platform::host::exit(0);
        }
        Err(e) => die(&e.to_string()),
    };
    boot(a)
}

fn boot(a: BootArgs) -> ! {
    platform::time::mark_boot();
    crate::kern::clock::mark_boot();
    platform::console::save_terminal();
    printf::init_logging(a.verbose);
    kenv::init(a.env.clone());
    let pm = match platform::physmem::init(a.mem_bytes, a.mem_image.as_deref()) {
        Ok(pm) => pm,
        Err(e) => die(&e.to_string()),
    };
    if let Some(p) = &a.pidfile
        && let Err(e) = platform::host::write_pidfile(p)
    {
        die(&format!("-p {}: {}", p.display(), platform::host::os_message(&e)));
    }
    let _ = BOOT_ARGS.set(a);
    let a = boot_args();
    platform::host::allow_any_ptracer();
    if let Err(e) = platform::trap::install_handlers() {
        die(&format!("cannot install trap handlers: {e}"));
    }
    kdb::install_hooks();

    crate::vm::meminfo::publish_physmem(pm);
    // Pages only the page cache holds are freed when memory runs out.
    pm.set_reclaim(crate::vm::pagecache::reclaim);

    banner(a, pm);
    let p0 = proc::proc0_init();
    kdb::init();
    crate::kern::tty::init();

    cpu::set_ncpus(a.ncpus);
    crate::kern::pcpu::set_ncpus(a.ncpus);
    let thread0 = Thread::new_kthread(&p0, "swapper", 0, pri::SWAPPER, mi_startup)
        .unwrap_or_else(|e| die(&format!("cannot create the boot thread: {e}")));
    thread0.rec.cpu.store(0, Ordering::Relaxed);
    if let Ok(mut t) = THREAD0.lock() {
        *t = Some(thread0);
    }
    if let Err(e) = cpu::start_cpu(0, cpu0_main) {
        die(&format!("cannot start cpu0: {e}"));
    }
    host_signal_loop()
}

fn banner(a: &BootArgs, pm: &platform::physmem::PhysMem) {
    let mb = |b: u64| b >> 20;
    kprintf!("Copyright (c) 2026 The vk Project.\n");
    kprintf!("vk {} #0: a virtual kernel for Linux x86-64 programs\n", env!("CARGO_PKG_VERSION"));
    kprintf!("    host pid {}, {} virtual CPU{}\n", std::process::id(), a.ncpus, if a.ncpus == 1 { "" } else { "s" });
    kprintf!("real memory  = {} ({} MB)\n", pm.size(), mb(pm.size()));
    let avail = pm.free_pages() * platform::PAGE_SIZE as u64;
    kprintf!("avail memory = {} ({} MB)\n", avail, mb(avail));
    let backing = pm.image().map_or_else(|| "memfd".to_string(), |p| format!("file {}", p.display()));
    kprintf!(
        "physmem: {} pages in {}, direct map at {:#x}\n",
        pm.npages(),
        backing,
        platform::physmem::DMAP_BASE
    );
    for (i, d) in a.disks.iter().enumerate() {
        let mode = if d.is_dir { "host directory, read-only" } else if d.cow { "copy-on-write" } else { "read/write" };
        kprintf!("vkd{i}: {} ({mode})\n", d.path.display());
    }
    for (n, v) in kenv::all() {
        log::debug!("kenv: {n}={v}");
    }
}

fn cpu0_main(c: u32) -> ! {
    let first = THREAD0.lock().ok().and_then(|mut t| t.take());
    kprintf!("cpu{c} (BSP): host thread {}\n", cpu::pcpu(c).host_tid.load(Ordering::Relaxed));
    sched::cpu_main(c, first)
}

fn ap_main(c: u32) -> ! {
    sched::cpu_main(c, None)
}

/// The boot thread (proc0's swapper): bring up the machine, then mount root and start init.
// Never inlined: traces (ddb's, and the tests' that read them) show the boot thread as
// started from mi_startup, whatever the optimiser decides about a function called once.
#[inline(never)]
fn mi_startup() {
    for c in 1..cpu::ncpus() {
        if let Err(e) = cpu::start_cpu(c, ap_main) {
            panic!("cannot start cpu{c}: {e}");
        }
        while crate::kern::pcpu::pcpu(c).idlethread.load(Ordering::Acquire) == 0 {
            sleep::pause("cpustart", Duration::from_millis(1));
        }
        // The AP announces itself, from itself: a cross-CPU call on every boot.
        sched::smp_call_wait(c, "smpcall", move || {
            let me = cpu::curcpu();
            kprintf!("cpu{me} (AP): host thread {}\n", cpu::pcpu(me).host_tid.load(Ordering::Relaxed));
        });
    }
    if cpu::ncpus() > 1 {
        kprintf!("SMP: {} CPUs online\n", cpu::ncpus());
    }
    syncer::register(proc::publish_vm_figures);
    if let Err(e) = sched::kthread_start("syncer", 0, syncer::syncer_main) {
        panic!("cannot start the syncer: {e}");
    }
    crate::kern::loadavg::start();
    let startup = STARTUP.lock().map(|s| s.clone()).unwrap_or_default();
    for f in startup {
        f();
    }
    if kenv::get_bool("debug.ktrace") {
        crate::kern::ktrace::set_enabled(true);
    }
    if kenv::get_bool("debug.trap") {
        kdb::kdb_sysctl_trap();
    }
    if kenv::get_bool("debug.panic") {
        kdb::kdb_sysctl_panic();
    }
    if kenv::get_bool("debug.stack_overflow") {
        kdb::kdb_sysctl_stack_overflow();
    }
    if kenv::get_bool("debug.spin") {
        kprintf!("debug.spin: cpu{} spins in kernel code\n", cpu::curcpu());
        kdb::kdb_sysctl_spin();
    }
    start_stub_pool();
    // Scheduler and hand-over event counts, printed when the machine halts (`-e sched.stats=1`).
    if kenv::get("sched.stats").is_some_and(|v| v != "0") {
        platform::stub::spin::STATS_ON.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // Spins count the host's other runnable threads too; `-e sched.spin_hostload=0`: not.
    if kenv::get("sched.spin_hostload").is_some_and(|v| v == "0") {
        platform::stub::spin::RESPECT_HOST_LOAD.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // Free pages a first-touch stream takes next are backed by the host ahead of it
    // (platform::prefill); `-e vm.prefill=0`: not.
    if kenv::get("vm.prefill").is_some_and(|v| v == "0") {
        platform::prefill::ENABLED.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // A spinning hand-over's two sides run on different host CPUs; `-e sched.spin_apart=0`: anywhere.
    if kenv::get("sched.spin_apart").is_some_and(|v| v == "0") {
        platform::stub::spin::SPIN_APART.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // Call-bound threads share a vCPU on a crowded host (kern::sched_huddle); `-e sched.huddle=0`: not.
    if kenv::get("sched.huddle").is_some_and(|v| v == "0") {
        crate::kern::sched_huddle::ENABLED.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // Sleeping stub hand-overs share a host CPU (platform::stub::spin); `-e sched.colocate=0`: not.
    if kenv::get("sched.colocate").is_some_and(|v| v == "0") {
        platform::stub::spin::COLOCATE.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // Co-located hand-overs yield the host CPU before they sleep; `-e sched.colocate_yield=0`: not.
    if kenv::get("sched.colocate_yield").is_some_and(|v| v == "0") {
        platform::stub::spin::COLOCATE_YIELD.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    // Threads whose kernel threads keep blocking co-locate with their vCPU (platform::stub::spin).
    if let Some(pct) = kenv::get("sched.colocate_wakes").and_then(|v| v.parse().ok()) {
        platform::stub::spin::SLEEPY_PCT.store(pct, std::sync::atomic::Ordering::Relaxed);
    }
    vfs_mountroot::vfs_mountroot();
    let init = kenv::get("init").unwrap_or("/sbin/init");
    // -s: single user, as BSD's boot -s — init gets "-s" (busybox init then starts a root shell
    // on the console instead of reading inittab).
    let mut init_args = boot_args().init_args.clone();
    if boot_args().single_user {
        init_args.insert(0, "-s".to_string());
    }
    if let Err(e) = start_init(init, &init_args) {
        kprintf!("init: {e}\n");
        panic!("no init");
    }
    // proc0's work is done: it sleeps, as BSD's swapper does.
    loop {
        sleep::pause("nowork", Duration::from_secs(60));
    }
}

/// Stubs kept started for fork and exec (`-e vm.stubpool=N`, 0: none, each started when
/// needed).
const STUB_POOL: usize = 4;

/// Start the pool of ready stubs (platform::stub::pool): it fills while root is mounted.
fn start_stub_pool() {
    let n = kenv::get("vm.stubpool").and_then(|v| v.parse::<usize>().ok()).unwrap_or(STUB_POOL).min(64);
    if let Some(pm) = platform::physmem::get()
        && let Err(e) = platform::stub::pool::start(pm.fd(), n)
    {
        kprintf!("stub pool: cannot start: {e}\n");
    }
}

/// Create process 1 running `path` with `args`, its stdin, stdout and stderr on the console.
fn start_init(path: &str, args: &[String]) -> Result<(), String> {
    use crate::fs::file::{FdTable, File, O_RDWR};
    use crate::fs::namei::NamePath;
    use crate::kern::exec;
    use crate::kern::uproc::{Cred, FsState, UserProc, UserThread, alloc_pid};
    let pid = alloc_pid().ok_or("no free pid")?;
    let mut argv = vec![path.as_bytes().to_vec()];
    argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    let term = std::env::var("TERM").ok().filter(|_| platform::console::stdout_is_terminal()).unwrap_or_else(|| "linux".into());
    let envp: Vec<Vec<u8>> = ["HOME=/".to_string(), "PATH=/sbin:/bin:/usr/sbin:/usr/bin".to_string(), format!("TERM={term}")]
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let cred = Cred::default();
    let mut image =
        exec::load(exec::Request {
            cwd: &NamePath::root(),
            path: path.as_bytes(),
            argv,
            envp,
            cred,
            owner: tid_of(pid),
            persona: Default::default(),
            no_setid: false,
            stack_rlimit: crate::vm::space::STACK_SIZE,
        })
        .map_err(|e| {
            match e.why {
                Some(w) => w,
                None => format!("{path}: {}", e.errno.text()),
            }
        })?;
    let pm = platform::physmem::get().ok_or("no physical memory")?;
    let (space, t0) = platform::stub::pool::get(pm.fd()).map_err(|e| e.to_string())?;
    image.vm.stub = Some(space);
    let mut files = FdTable::new();
    let console = File::new(crate::fs::devfs::console(), None, O_RDWR);
    for fd in 0..3 {
        files.install(fd, std::sync::Arc::clone(&console), false).map_err(|e| e.to_string())?;
    }
    let fs = FsState { cwd: NamePath::root(), root: NamePath::root(), umask: 0o022 };
    let user = UserProc::new(image.vm, files, fs, image.cred, std::sync::Arc::downgrade(&proc::proc0()));
    let p = proc::Proc::new_user(pid, 0, &image.comm, user);
    p.set_comm(&image.comm);
    p.rec.flags.fetch_or(kvm_mem::abi::pflags::SESSION_LEADER, Ordering::Relaxed);
    *p.user().exe.lock() = Some(image.path);
    *p.user().exe_deny.lock() = Some(image.deny);
    *p.user().argv.lock() = image.argv;
    *p.user().auxv.lock() = image.auxv;
    *p.user().environ.lock() = image.environ;
    let regs = platform::stub::UserRegs::start(image.entry, image.sp);
    let ut = UserThread::new(std::sync::Arc::new(t0), regs);
    let td = Thread::new_user(&p, tid_of(pid), &image.comm, ut, crate::kern::usertrap::user_main).map_err(|e| e.to_string())?;
    td.rec.cpu.store(cpu::curcpu(), Ordering::Relaxed);
    proc::insert(std::sync::Arc::clone(p.arc()));
    if kenv::get("init").is_some() {
        crate::kern::tty::ctty::boot(&p);
    }
    sched::setrunnable(td.into_arc());
    log::debug!("init: pid {pid}: {path}");
    Ok(())
}

/// The main thread after boot: host signals become kernel events. During a reboot it gives
/// back what it takes and stops (see kern/shutdown.rs), so that the new kernel gets it.
fn host_signal_loop() -> ! {
    use crate::kern::shutdown;
    use platform::host::HostSignal;
    loop {
        let sig = platform::host::wait_signal(shutdown::HOST_SIGNAL_POLL);
        if shutdown::rebooting() {
            if let Some(s) = sig {
                platform::host::repost(s);
            }
            shutdown::park_main();
        }
        match sig {
            None => {}
            Some(HostSignal::Quit) => kdb::request_breakin(),
            Some(s @ (HostSignal::Term | HostSignal::Int | HostSignal::Hup)) => {
                if kdb::active() {
                    platform::console::write(b"\nhost signal at db>: halting\n");
                    platform::host::exit(crate::kern::shutdown::EXIT_HALT);
                }
                if shutdown::host_asked_to_stop() {
                    platform::host::repost(s);
                    shutdown::park_main();
                }
                cpu::send_ipi(0, cpu::IPI_SHUTDOWN);
            }
            Some(HostSignal::Winch) => crate::kern::tty::host_winch(),
        }
    }
}
