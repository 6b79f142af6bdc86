//! The debugger: fatal traps, panics, scripted `db>` sessions, break-ins.

use vk_tests::Kernel;

/// The `CPUn stopping CPUs: mask` line names the entering CPU and every other one.
fn check_stop_line(banner: &str, ncpus: u32) -> u32 {
    let line = banner.lines().find(|l| l.contains(" stopping CPUs: ")).unwrap_or_else(|| panic!("no stop line:\n{banner}"));
    let cpu: u32 = line.trim_start_matches("CPU").split_whitespace().next().unwrap().parse().unwrap();
    let mask = u64::from_str_radix(line.rsplit("0x").next().unwrap().trim(), 16).unwrap();
    let all = (1u64 << ncpus) - 1;
    assert_eq!(mask, all & !(1 << cpu), "{line}");
    assert!(line.contains(&format!("{:#010x}", mask)), "mask printed as 0x%08x: {line}");
    cpu
}

/// Boot with a kernel page fault and script ddb through stdin, as the issue's example does.
#[test]
fn debug_trap_prints_the_banner_and_trace_names_the_faulting_function() {
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-e", "debug.trap=1"]);
    let banner = k.expect("db> ");
    for line in [
        "Fatal trap 12: page fault while in kernel mode",
        "cpuid = ",
        "fault virtual address = 0x0",
        "fault code = supervisor read data, page not present",
        "instruction pointer = 0x",
        "stack pointer = 0x",
        "frame pointer = 0x",
        "current process = 0 (swapper)",
        "current thread = 100000 (swapper)",
        " stopped",
        "Stopped at",
    ] {
        assert!(banner.contains(line), "missing {line:?} in:\n{banner}");
    }
    let cpu = check_stop_line(&banner, 2);
    assert!(banner.contains(&format!("cpuid = {cpu}\n")), "{banner}");
    let stopped = banner.lines().find(|l| l.starts_with("Stopped at")).unwrap();
    assert!(stopped.contains("kdb_sysctl_trap+0x"), "{stopped}");
    assert!(stopped.contains("mov"), "the faulting instruction is a load: {stopped}");
    k.send("trace");
    let trace = k.expect("db> ");
    let first = trace.lines().find(|l| l.contains(") at 0x")).expect("a frame line");
    assert!(first.contains("kdb_sysctl_trap("), "first frame: {first}\n{trace}");
    assert!(trace.contains("mi_startup("), "the boot thread's caller: {trace}");
    k.send("show registers");
    let regs = k.expect("db> ");
    assert!(regs.contains("rip") && regs.contains("kdb_sysctl_trap+0x"), "{regs}");
    assert!(regs.lines().any(|l| l.trim_start().starts_with("rsp")), "{regs}");
    k.send("halt");
    let st = k.wait();
    assert_eq!(st.code(), Some(0), "halt exits 0:\n{}", k.output());
}

#[test]
fn debug_panic_prints_panic_and_ps_lists_every_idle_thread() {
    let mut k = Kernel::start(&["-m", "64m", "-n", "3", "-e", "debug.panic=1"]);
    let banner = k.expect("db> ");
    assert!(banner.contains("panic: kdb_sysctl_panic"), "{banner}");
    check_stop_line(&banner, 3);
    k.send("ps");
    let ps = k.expect("db> ");
    for name in ["swapper", "idle: cpu0", "idle: cpu1", "idle: cpu2", "syncer"] {
        assert!(ps.contains(name), "ps lacks {name}:\n{ps}");
    }
    // End of input at db> halts with status 3, so a scripted run never hangs.
    k.close_stdin();
    let st = k.wait();
    assert_eq!(st.code(), Some(3), "{}", k.output());
}

#[test]
fn scripted_session_over_a_pipe() {
    // The issue's one-liner: printf 'trace\nps\nshow registers\nhalt\n' | kernel -e debug.trap=1
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-e", "debug.trap=1"]);
    for l in ["trace", "ps", "show registers", "halt"] {
        k.send(l);
    }
    let st = k.wait();
    assert_eq!(st.code(), Some(0));
    let out = k.output();
    assert!(out.contains("kdb_sysctl_trap("), "{out}");
    assert!(out.contains("idle: cpu1"), "{out}");
}

#[test]
fn boot_without_root_panics_and_the_debugger_works() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2"]);
    let boot = k.expect("db> ");
    assert!(boot.contains("real memory  = 33554432 (32 MB)"), "{boot}");
    assert!(boot.contains("cpu0 (BSP)") && boot.contains("cpu1 (AP)"), "{boot}");
    assert!(boot.contains("panic: no root file system"), "{boot}");
    // A thread off CPU is unwound from the context cpu_switch saved: the entering CPU's idle
    // thread was switched out for the boot thread.
    let me = check_stop_line(&boot, 2);
    k.send("ps");
    let ps = k.expect("db> ");
    let idle_tid = tid_of(&ps, &format!("idle: cpu{me}"));
    k.send(&format!("trace {idle_tid}"));
    let t = k.expect("db> ");
    assert!(t.contains("idle_loop("), "trace of the idle thread:\n{t}");
    assert!(t.contains("mi_switch("), "it switched away in mi_switch:\n{t}");
    k.send("show thread");
    let st = k.expect("db> ");
    assert!(st.contains("thread 100000 (swapper)"), "the panicking thread is the boot thread:\n{st}");
    k.send("show allpcpu");
    let pc = k.expect("db> ");
    assert!(pc.contains("cpuid        = 1") && pc.contains("idle: cpu1"), "{pc}");
    k.send("print 0x10+0t10");
    let p = k.expect("db> ");
    assert!(p.contains("0x1a"), "{p}");
    k.send("x/i $rip");
    let x = k.expect("db> ");
    assert!(x.contains("kdb_enter+0x"), "{x}");
    // The other CPU was stopped in its idle loop.
    let other = 1 - me;
    k.send(&format!("cpu {other}"));
    k.expect("db> ");
    k.send("trace");
    let t1 = k.expect("db> ");
    assert!(t1.contains("idle_loop("), "cpu{other} was stopped in its idle loop:\n{t1}");
    k.send("dmesg");
    let d = k.expect("db> ");
    assert!(d.contains("panic: no root file system"), "{d}");
    k.send("bogus");
    let e = k.expect("db> ");
    assert!(e.contains("No such command"), "{e}");
    k.send("continue");
    // Continuing a panic halts the machine with status 1.
    let st = k.wait();
    assert_eq!(st.code(), Some(1), "{}", k.output());
}

/// The tid on the ddb `ps` line naming `name`.
fn tid_of(ps: &str, name: &str) -> String {
    ps.lines()
        .find(|l| l.trim_end().ends_with(name) || l.trim_end().ends_with(&format!("[{name}]")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {name} in:\n{ps}"))
        .to_string()
}

#[test]
fn sigquit_breaks_in_and_continue_resumes() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "rootwait=1"]);
    k.expect("waiting for a root device");
    // Wait until the syncer has gone to sleep on its timer (vps reads that from outside).
    vk_tests::vps_until(k.pid(), "the syncer never slept", |vps| vps.lines().any(|l| l.ends_with("(syncer)") && l.contains(" syncer ")));
    k.signal(libc::SIGQUIT);
    let b = k.expect("db> ");
    assert!(b.contains("KDB: enter: break-in"), "{b}");
    check_stop_line(&b, 2);
    k.send("ps");
    let ps = k.expect("db> ");
    k.send(&format!("trace {}", tid_of(&ps, "syncer")));
    let t = k.expect("db> ");
    assert!(t.contains("syncer_main("), "trace of the syncer:\n{t}");
    k.send("continue");
    // The kernel runs again: a second break-in gets a second db>.
    std::thread::sleep(std::time::Duration::from_millis(200));
    k.signal(libc::SIGQUIT);
    let b2 = k.expect("db> ");
    assert!(b2.contains("KDB: enter: break-in"), "{b2}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn sigterm_is_a_clean_shutdown() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "rootwait=1"]);
    k.expect("waiting for a root device");
    k.signal(libc::SIGTERM);
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn reboot_starts_the_kernel_again() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "1", "-e", "debug.panic=1"]);
    k.expect("db> ");
    k.send("reboot");
    k.expect("Rebooting...");
    k.expect("Copyright (c) 2026 The vk Project.");
    k.expect("db> ");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn one_cpu_and_sixteen_cpus_boot() {
    for n in ["1", "16"] {
        let mut k = Kernel::start(&["-m", "32m", "-n", n, "-e", "debug.panic=1"]);
        let b = k.expect("db> ");
        check_stop_line(&b, n.parse().unwrap());
        k.send("halt");
        assert_eq!(k.wait().code(), Some(0));
    }
}

#[test]
fn a_kernel_stack_overflow_still_reaches_the_debugger() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "debug.stack_overflow=1"]);
    let b = k.expect("db> ");
    assert!(b.contains("Fatal trap 12: page fault while in kernel mode"), "{b}");
    assert!(b.contains("kernel stack overflow: the fault is in the guard page of thread 100000"), "{b}");
    k.send("trace");
    let t = k.expect("db> ");
    assert!(t.contains("kernel::kern::kdb::recurse("), "{t}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn sigquit_breaks_into_a_cpu_stuck_in_a_loop() {
    // One CPU, spinning in kernel code: it never reaches a safe point, so the break-in is
    // forced from the IPI handler, where the CPU is.
    let mut k = Kernel::start(&["-m", "32m", "-n", "1", "-e", "debug.spin=1"]);
    k.expect("spins in kernel code");
    k.signal(libc::SIGQUIT);
    let b = k.expect("db> ");
    assert!(b.contains("KDB: enter: break-in"), "{b}");
    assert!(b.contains("Stopped at") && b.contains("kdb_sysctl_spin+0x"), "{b}");
    k.send("trace");
    let t = k.expect("db> ");
    assert!(t.contains("kdb_sysctl_spin(") && t.contains("mi_startup("), "{t}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

/// `show callsites`: a shell that wrote in a loop (glibc's wrappers, busybox-static) had its
/// write's site patched (kern/callsite), which ddb lists with the call's name.
#[test]
fn ddb_lists_a_processs_patched_system_call_sites() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    // `read` reads a byte at a time, through glibc's `xor %eax, %eax; syscall`: a hop.
    let script = "i=0; while [ $i -lt 200 ]; do echo x >/dev/null; read l </etc/passwd; i=$((i+1)); done; sleep 60; echo done";
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", script]);
    k.expect("Mounting root from ");
    vk_tests::vps_until(k.pid(), "the loop never ended in sleep", |vps| vps.contains(" nanslp "));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send("show callsites 1");
    let c = k.expect("db> ");
    assert!(c.contains("pid 1 (sh): ") && c.contains(" system call sites patched"), "{c}");
    let write = c.lines().find(|l| l.split_whitespace().nth(2) == Some("write")).unwrap_or_else(|| panic!("no write site:\n{c}"));
    assert!(write.ends_with("patched"), "{write}");
    let hop = c.lines().find(|l| l.contains("(hop to ")).unwrap_or_else(|| panic!("no hop:\n{c}"));
    assert!(hop.split_whitespace().nth(1) == Some("rax") && hop.contains(" patched "), "{hop}");
    assert!(c.contains("all processes: "), "{c}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

/// The pid on the ddb `ps` line of a process sleeping on `wmesg`.
fn pid_sleeping_on(ps: &str, wmesg: &str) -> String {
    ps.lines()
        .find(|l| l.split_whitespace().nth(5) == Some(wmesg))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no process on {wmesg} in:\n{ps}"))
        .to_string()
}

#[test]
fn ddb_shows_guest_processes_their_threads_and_maps() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", "sleep 60 | cat"]);
    k.expect("Mounting root from ");
    // Wait until sleep and cat are asleep (vps reads that from outside).
    vk_tests::vps_until(k.pid(), "sleep | cat never slept", |vps| vps.contains(" nanslp ") && vps.contains(" piperd "));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send("ps");
    let ps = k.expect("db> ");
    assert!(ps.lines().any(|l| l.ends_with(" sleep")) && ps.lines().any(|l| l.ends_with(" cat")), "processes are named after what was run:\n{ps}");
    let sleep = pid_sleeping_on(&ps, "nanslp");
    let cat = pid_sleeping_on(&ps, "piperd");

    k.send(&format!("trace {sleep}"));
    let t = k.expect("db> ");
    assert!(t.contains(&format!("Tracing pid {sleep}")) && t.contains("nanosleep("), "{t}"); // sys_nanosleep or sys_clock_nanosleep

    k.send(&format!("show proc {sleep}"));
    let p = k.expect("db> ");
    for want in [
        &format!("Process {sleep} (sleep) at 0x"),
        " ppid 1  pgrp 1  session 1",
        "uid 0/0/0",
        "exe: /bin/busybox",
        "arguments: sleep 60",
        "descriptors: 3 open: 0 1 2",
        "stub host pid ",
        "threads: 1",
        &format!("tid {sleep} at 0x"),
        "sleeping on \"nanslp\"",
        "stub thread: host tid ",
        "user rip 0x",
    ] {
        assert!(p.contains(want), "show proc: no {want:?} in:\n{p}");
    }

    k.send(&format!("show map {cat}"));
    let m = k.expect("db> ");
    assert!(m.contains(&format!("pid {cat} (cat) vmspace ")), "{m}");
    let text = m.lines().find(|l| l.contains(" r-xp ")).unwrap_or_else(|| panic!("no text mapping:\n{m}"));
    assert!(text.contains("file") && text.ends_with("/bin/busybox"), "{text}");
    let resident: u64 = text.split_whitespace().nth(5).unwrap().parse().unwrap();
    assert!(resident > 0, "busybox's text is resident in a running process: {text}");
    assert!(m.lines().any(|l| l.contains(" rw-p ") && l.ends_with("[stack]")), "{m}");

    k.send("show proc 9999");
    assert!(k.expect("db> ").contains("no process 9999"));
    k.send("show map 0");
    assert!(k.expect("db> ").contains("the kernel's own process"));
    k.send("show syscalls");
    let s = k.expect("db> ");
    assert!(s.contains("unimplemented system calls called (ENOSYS):") && s.contains("prlimit64"), "{s}");
    // The guests run on after `continue`, and a second break-in finds them again.
    k.send("continue");
    std::thread::sleep(std::time::Duration::from_millis(100));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send(&format!("show proc {cat}"));
    assert!(k.expect("db> ").contains("sleeping on \"piperd\""));
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

/// A process in a ptrace stop: `show proc` names its tracer, the options and the stop.
#[test]
fn ddb_shows_a_ptrace_stop() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", &root, "-e", "init=/usr/tests/h_ptrace"]);
    k.expect("traced ");
    let pid = k.expect("\n").trim().to_string();
    vk_tests::vps_until(k.pid(), "h_ptrace never slept", |vps| vps.contains(" nanslp "));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send(&format!("show proc {pid}"));
    let p = k.expect("db> ");
    for want in [&format!("tid {pid} at 0x"), "stopped", "ptrace: traced by 1, options 0x1, ptrace stop code 0x13 (reported)"] {
        assert!(p.contains(want), "show proc: no {want:?} in:\n{p}");
    }
    k.send("show proc 1");
    let p = k.expect("db> ");
    assert!(!p.contains("ptrace:"), "init is not traced:\n{p}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

/// Two threads of one process spinning in user mode, without system calls, on a two-CPU
/// kernel: stopped at any moment, each CPU is running one of them.
#[test]
fn threads_of_one_process_run_on_both_cpus_at_once() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let mut k = Kernel::start(&["-m", "64m", "-n", "2", "-r", &root, "-e", "init=/usr/tests/h_spin", "--", "2"]);
    k.expect("spinning 2");
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send("show allpcpu");
    let pc = k.expect("db> ");
    let running: Vec<&str> = pc
        .lines()
        .filter(|l| l.starts_with("curthread"))
        .filter_map(|l| l.split_once(": pid 1 tid ").map(|(_, t)| t))
        .collect();
    assert_eq!(running.len(), 2, "both CPUs run a thread of pid 1:\n{pc}");
    assert_ne!(running[0], running[1], "two different threads:\n{pc}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn the_watchdog_breaks_into_a_stuck_cpu_with_its_trace() {
    // cpu0 spins in kernel code and never passes a safe point; nobody sends SIGQUIT.
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "debug.spin=1", "-e", "debug.watchdog=2"]);
    k.expect("spins in kernel code");
    let b = k.expect("db> ");
    // The boot thread spins on whichever CPU it ran on last.
    let line = b.lines().find(|l| l.starts_with("watchdog: cpu")).unwrap_or_else(|| panic!("{b}"));
    let cpu = line.trim_start_matches("watchdog: cpu").split_whitespace().next().unwrap();
    assert_eq!(line, format!("watchdog: cpu{cpu} stuck for 2 s"), "{b}");
    assert!(b.contains("KDB: enter: watchdog"), "{b}");
    assert!(b.contains(&format!("CPU{cpu} stopping CPUs")), "the stuck CPU entered: {b}");
    assert!(b.contains("Stopped at") && b.contains("kdb_sysctl_spin+0x"), "{b}");
    // The trace comes before the prompt, from the stuck CPU.
    assert!(b.contains("Tracing pid 0 tid 100000") && b.contains("kdb_sysctl_spin(") && b.contains("mi_startup("), "{b}");
    // The other, idle CPU is not stuck.
    assert_eq!(b.matches("watchdog: cpu").count(), 1, "{b}");
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn an_idle_machine_does_not_wake_the_watchdog() {
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-e", "rootwait=1", "-e", "debug.watchdog=1"]);
    k.expect("waiting for a root device");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!k.output().contains("watchdog:"), "{}", k.output());
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait().code(), Some(0));
}

#[test]
fn show_locks_show_page_ktrace_and_gdb_style_x() {
    let root = vk_tests::guest::root_dir();
    let root = root.to_string_lossy();
    let script = "while true; do echo tick >/dev/null; sleep 1; done";
    let mut k = Kernel::start(&["-m", "32m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", script]);
    k.expect("Mounting root from ");
    vk_tests::vps_until(k.pid(), "sleep never slept", |vps| vps.contains(" nanslp "));
    k.signal(libc::SIGQUIT);
    k.expect("db> ");

    // The debugger's own state is a spinlock its CPU holds while it runs.
    k.send("show locks");
    let l = k.expect("db> ");
    let spin = l.split("sleep locks held:").next().unwrap();
    assert!(spin.starts_with("spin locks held:\n"), "{l}");
    assert!(spin.contains("\"ddb\" at 0x") && spin.contains("held"), "{l}");
    assert!(l.contains("sleep locks held:\n"), "{l}");

    // Page 0 is reserved; a direct-map address names its physical page.
    k.send("show page 0");
    let p = k.expect("db> ");
    assert!(p.contains("physical page 0x0 (direct map 0x400000000000)") && p.contains("<RESERVED>"), "{p}");
    k.send("show page 0x400000003008");
    let p = k.expect("db> ");
    assert!(p.contains("physical page 0x3000 "), "{p}");
    k.send("show page 0x7fffffffffff");
    assert!(k.expect("db> ").contains("not physical memory"));

    // Host memory by what holds it; the shell's stub is counted.
    k.send("show memory");
    let m = k.expect("db> ");
    assert!(m.contains(&format!("kernel process (host pid {}): VmRSS ", k.pid())), "{m}");
    for part in ["guest physical memory", "vm_page array", "kernel thread stacks", "kernel binary", "beyond the guest's pages"] {
        assert!(m.contains(part), "no {part}: {m}");
    }
    let stubs = m.lines().find_map(|l| l.strip_prefix("stubs: ")).unwrap_or_else(|| panic!("{m}"));
    let n: u32 = stubs.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or(0);
    assert!(n >= 1, "the shell has a stub: {m}");
    assert!(m.contains("total beyond the guest's pages: "), "{m}");

    // gdb's x/Ni is x/i with a count.
    k.send("x/i $rip,3");
    let a = k.expect("db> ");
    k.send("x/3i $rip");
    let b = k.expect("db> ");
    let body = |s: &str| s.lines().filter(|l| !l.starts_with("db>")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(body(&a).len(), 3, "{a}");
    assert_eq!(body(&a), body(&b), "{a}\n{b}");

    // ktrace one process: the shell's system calls appear once the system runs on.
    k.send("ktrace 1");
    assert!(k.expect("db> ").contains("ktrace: pid 1 (sh) traced"));
    k.send("ktrace");
    assert!(k.expect("db> ").contains("ktrace: tracing pid 1"));
    k.send("continue");
    let t = k.expect("ktrace: 1/1 ");
    assert!(!t.contains("ktrace: 2/"), "only pid 1 is traced: {t}");
    k.signal(libc::SIGQUIT);
    k.expect("db> ");
    k.send("ktrace 1 off");
    assert!(k.expect("db> ").contains("ktrace: pid 1 (sh) no longer traced"));
    k.send("ktrace 4242");
    assert!(k.expect("db> ").contains("ktrace: no process 4242"));
    k.send("halt");
    assert_eq!(k.wait().code(), Some(0));
}
