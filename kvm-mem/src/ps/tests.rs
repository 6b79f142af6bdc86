//! Formatting tests on constructed processes.

use super::*;

const NOW: u64 = 100_000_000_000;

fn thread(tid: u64, name: &str, state: u32, flags: u32, wmesg: &str) -> Thread {
    Thread {
        tid,
        name: name.into(),
        state,
        flags,
        wmesg: wmesg.into(),
        wchan: if state == tstate::SLEEPING { 0xffff_8000_0000_1000 } else { 0 },
        slptime_ns: NOW - 1_000_000_000,
        cpu: 1,
        pri: 20,
        ..Default::default()
    }
}

fn swapper() -> Proc {
    Proc {
        pid: 0,
        comm: "swapper".into(),
        flags: pflags::SYSTEM,
        state: pstate::ACTIVE,
        threads: vec![
            Thread { cpu: 0, pri: 84, ..thread(100_000, "swapper", tstate::SLEEPING, 0, "nowork") },
            Thread { pri: 255, ..thread(100_001, "idle: cpu0", tstate::RUNNING, tflags::IDLE | tflags::KTHREAD, "") },
            Thread {
                runtime_ns: 61_230_000_000,
                ..thread(100_002, "syncer", tstate::SLEEPING, tflags::SINTR, "syncer")
            },
        ],
        ..Default::default()
    }
}

fn sh() -> Proc {
    Proc {
        pid: 7,
        ppid: 1,
        pgid: 7,
        uid: 1000,
        comm: "sh".into(),
        state: pstate::ACTIVE,
        flags: pflags::SESSION_LEADER | pflags::FOREGROUND,
        tty: 0x500,
        vsz_bytes: 4 << 20,
        rss_pages: 10,
        threads: vec![Thread {
            slptime_ns: 0,
            runtime_ns: 10_000_000,
            ..thread(7, "sh", tstate::SLEEPING, tflags::SINTR, "wait")
        }],
        ..Default::default()
    }
}

/// A two-threaded user process: one thread asleep (first), one runnable on CPU 3.
fn threaded() -> Proc {
    Proc {
        pid: 42,
        ppid: 7,
        pgid: 7,
        comm: "worker".into(),
        state: pstate::ACTIVE,
        nice: 5,
        threads: vec![
            Thread {
                runtime_ns: 1_500_000_000,
                cpu: 2,
                ..thread(42, "worker", tstate::SLEEPING, tflags::SINTR, "futex")
            },
            Thread { runtime_ns: 2_000_000_000, cpu: 3, ..thread(43, "worker", tstate::RUNNABLE, 0, "") },
        ],
        ..Default::default()
    }
}

#[test]
fn axl_header_and_a_line_per_kernel_thread() {
    let out = format_axl(&[swapper(), sh()], NOW);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "  UID   PID  PPID CPU PRI NI   VSZ   RSS WCHAN   STAT TT       TIME COMMAND");
    assert_eq!(lines[1], "    0     0     0   0  84  0     0     0 nowork  DL   ??    0:00.00 (swapper)");
    assert_eq!(lines[2], "    0     0     0   1 255  0     0     0 -       RL   ??    0:00.00 (idle: cpu0)");
    assert_eq!(lines[3], "    0     0     0   1  20  0     0     0 syncer  SL   ??    1:01.23 (syncer)");
    assert_eq!(lines[4], " 1000     7     1   1  20  0  4096    40 wait    Is+  con   0:00.01 (sh)");
    assert_eq!(lines.len(), 5);
}

#[test]
fn axl_multithreaded_process_is_one_line() {
    let out = format_axl(&[threaded()], NOW);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    // CPU from the first thread, state from the most active (R), TIME the sum, N for nice 5.
    assert_eq!(lines[1], "    0    42     7   2  20  5     0     0 -       RN   ??    0:03.50 (worker)");
}

#[test]
fn axl_columns_grow_for_wide_values() {
    let mut p = sh();
    p.vsz_bytes = 1_053_376 * 1024;
    p.nice = -20;
    p.threads[0].wmesg = "a_long_wmesg16ch".into();
    let out = format_axl(&[p, swapper()], NOW);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "  UID   PID  PPID CPU PRI  NI     VSZ   RSS WCHAN            STAT TT       TIME COMMAND");
    assert_eq!(lines[1], " 1000     7     1   1  20 -20 1053376    40 a_long_wmesg16ch I<s+ con   0:00.01 (sh)");
    // Every line has COMMAND in the same column.
    let col = lines[0].find("COMMAND").unwrap();
    assert!(lines[1..].iter().all(|l| l.as_bytes()[col] == b'('), "{out}");
}

#[test]
fn state_letters() {
    let mut t = thread(1, "x", tstate::SLEEPING, tflags::SINTR, "w");
    t.slptime_ns = NOW - IDLE_AFTER_NS + 1;
    assert_eq!(state_letter(&t, NOW), 'S');
    t.slptime_ns = NOW - IDLE_AFTER_NS;
    assert_eq!(state_letter(&t, NOW), 'I');
    t.slptime_ns = NOW + 5; // a sleep stamped after "now" (clock skew) is recent, not idle
    assert_eq!(state_letter(&t, NOW), 'S');
    t.flags = 0;
    assert_eq!(state_letter(&t, NOW), 'D');
    for (state, c) in
        [(tstate::STOPPED, 'T'), (tstate::DEAD, 'Z'), (tstate::NEW, 'R'), (tstate::RUNNABLE, 'R'), (77, '?')]
    {
        t.state = state;
        assert_eq!(state_letter(&t, NOW), c);
    }
}

#[test]
fn process_state_is_its_most_active_thread() {
    let mut p = threaded();
    p.threads[1].state = tstate::STOPPED;
    assert_eq!(stat(&p, proc_letter(&p, NOW)), "SN");
    p.threads[1].state = tstate::SLEEPING; // uninterruptible beats interruptible
    assert_eq!(lead_thread(&p, NOW).unwrap().tid, 43);
    assert_eq!(stat(&p, proc_letter(&p, NOW)), "DN");
    p.state = pstate::ZOMBIE;
    assert_eq!(stat(&p, proc_letter(&p, NOW)), "ZN");
    p.threads.clear();
    p.nice = 0;
    p.flags = pflags::TRACED;
    assert_eq!(stat(&p, proc_letter(&p, NOW)), "ZX");
    p.state = pstate::NEW;
    assert_eq!(stat(&p, proc_letter(&p, NOW)), "RX");
}

#[test]
fn zombie_without_threads_prints() {
    let p = Proc { pid: 9, ppid: 1, comm: "gone".into(), state: pstate::ZOMBIE, ..Default::default() };
    let out = format_axl(&[p], NOW);
    assert!(out.lines().nth(1).unwrap().ends_with(" -       Z    ??    0:00.00 (gone)"), "{out}");
}

#[test]
fn ddb_ps_shape() {
    let out = format_ddb_ps(&[swapper(), sh(), threaded()], NOW);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], DDB_PS_HEADER);
    assert_eq!(lines[1], "    0     0     0     0  RL      (threaded)                   [swapper]");
    assert_eq!(lines[2], "100000                   D       nowork   0xffff800000001000  [swapper]");
    assert_eq!(lines[3], "100001                   Run     CPU 1                        [idle: cpu0]");
    assert_eq!(lines[4], "100002                   S       syncer   0xffff800000001000  [syncer]");
    assert_eq!(lines[5], "    7     1     7  1000  Is+     wait     0xffff800000001000  sh");
    assert_eq!(lines[6], "   42     7     7     0  RN      (threaded)                   worker");
    assert_eq!(lines[7], "    42                   S       futex    0xffff800000001000  worker");
    assert_eq!(lines[8], "    43                   RunQ                                 worker");
    assert_eq!(lines.len(), 9);
    // Columns line up with the header.
    for (title, line) in [("state", lines[2]), ("wmesg", lines[2]), ("wchan", lines[5])] {
        let col = DDB_PS_HEADER.find(title).unwrap();
        assert_ne!(line.as_bytes()[col], b' ', "{title} in {line:?}");
        assert_eq!(line.as_bytes()[col - 1], b' ', "{title} in {line:?}");
    }
}

#[test]
fn threads_listing_lists_single_threads_too() {
    let out = format_threads(&[sh()], NOW);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[2], "     7                   I       wait     0xffff800000001000  sh");
}

#[test]
fn times() {
    assert_eq!(format_time(0), "0:00.00");
    assert_eq!(format_time(9_999_999), "0:00.00");
    assert_eq!(format_time(61_230_000_000), "1:01.23");
    assert_eq!(format_time(3_600_000_000_000), "60:00.00");
    assert_eq!(format_time(u64::MAX), "307445734:33.70");
}

#[test]
fn an_idle_thread_off_cpu_can_run_but_is_not_queued() {
    let mut p = swapper();
    p.threads[1].state = tstate::RUNNABLE;
    p.threads.push(thread(100_003, "worker", tstate::RUNNABLE, tflags::KTHREAD, ""));
    let out = format_ddb_ps(&[p], NOW);
    let idle = out.lines().find(|l| l.contains("idle: cpu0")).unwrap();
    assert!(idle.contains("CanRun"), "{out}");
    let worker = out.lines().find(|l| l.contains("worker")).unwrap();
    assert!(worker.contains("RunQ") && !worker.contains("CanRun"), "{out}");
}
