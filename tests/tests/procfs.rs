//! procfs under the everyday tools: busybox `ps`, `free`, `uptime`, `mount`, `df` and `top`
//! print real, consistent values; `/proc/sys/kernel/hostname` is uname's node name; the
//! `/proc/sys/debug/kdb/*` files enter the debugger, panic or fault, for root only; hostile
//! writes and reads of vanishing processes get errors, never a crash.

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, kernel_args, root_dir, run_guest};

/// Run a shell script as init; its output (asserting it exits 0).
fn sh(script: &str) -> String {
    let (code, out, console) = run_guest("/bin/sh", &["-c", script], PROGRAM_TIMEOUT);
    assert_eq!(code, Some(0), "script failed:\n{script}\nconsole:\n{console}");
    out
}

/// The lines between `@name` and the next `@` marker.
fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("@{name}");
    out.lines().skip_while(|l| *l != start).skip(1).take_while(|l| !l.starts_with('@')).collect()
}

fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace().filter_map(|w| w.trim_end_matches(['%', ',']).parse().ok()).collect()
}

/// A kernel whose init runs `script` (the console stays open for ddb).
fn start_sh(script: &str) -> Kernel {
    let root = root_dir();
    let root_s = root.to_string_lossy().into_owned();
    let argv = kernel_args(&root_s, "/bin/sh", &["-c", script]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Kernel::start(&argv)
}

#[test]
fn ps_lists_the_shell_its_child_and_itself() {
    // Wait until the background sleep has exec'd and is asleep before listing.
    let out = sh("sleep 60 & echo \"bg=$!\"
until [ \"$(cat /proc/$!/comm)\" = sleep ] && grep -q '^State:.S' /proc/$!/status; do :; done
echo @ps; ps; echo @ps-o; ps -o pid,ppid,pgid,stat,comm,args; echo @end
kill $!");
    let bg: u32 = out.lines().find_map(|l| l.strip_prefix("bg=")).and_then(|v| v.parse().ok()).expect("bg pid");
    let ps = section(&out, "ps");
    assert!(ps[0].split_whitespace().eq(["PID", "USER", "COMMAND"].into_iter()), "{ps:?}");
    let row = |pid: u32| ps.iter().find(|l| numbers(l).first() == Some(&(pid as u64))).copied();
    assert!(row(1).is_some_and(|l| l.contains("root") && l.contains("/bin/sh -c sleep 60")), "{ps:?}");
    assert!(row(bg).is_some_and(|l| l.ends_with("sleep 60")), "{ps:?}");
    // ps itself: a child of the shell, newer than the sleep.
    assert!(ps.iter().any(|l| numbers(l).first().is_some_and(|&p| p > bg as u64) && l.contains("ps")), "{ps:?}");
    let pso = section(&out, "ps-o");
    assert!(pso[0].split_whitespace().eq(["PID", "PPID", "PGID", "STAT", "COMMAND", "COMMAND"].into_iter()), "{pso:?}");
    let sleep = pso.iter().find(|l| numbers(l).first() == Some(&(bg as u64))).unwrap_or_else(|| panic!("{pso:?}"));
    let f: Vec<&str> = sleep.split_whitespace().collect();
    assert_eq!((f[1], f[2]), ("1", "1"), "the sleep's parent and group are the shell's: {sleep}");
    assert!(f[3].starts_with('S'), "a sleeping sleep: {sleep}");
    // ps itself, a forked shell running the applet: comm "ps", running.
    let me = pso.iter().find(|l| l.split_whitespace().nth(4) == Some("ps")).unwrap_or_else(|| panic!("{pso:?}"));
    let f: Vec<&str> = me.split_whitespace().collect();
    assert!(f[0].parse::<u32>().unwrap() > bg && f[1] == "1" && f[3].starts_with('R'), "ps runs: {me}");
}

#[test]
fn free_and_meminfo_agree_with_the_memory_size() {
    let out = sh("echo @meminfo; cat /proc/meminfo; echo @free; free; echo @end");
    let kb = |key: &str| -> u64 {
        let l = section(&out, "meminfo").into_iter().find(|l| l.starts_with(&format!("{key}:"))).unwrap_or_else(|| panic!("no {key}:\n{out}"));
        numbers(l)[0]
    };
    let total = kb("MemTotal");
    // 256 MiB (kernel_args' -m) less the kernel's reserve: a page.
    assert_eq!(total, 256 * 1024 - 4, "{out}");
    assert!(kb("MemFree") > 0 && kb("MemFree") <= total);
    assert!(kb("MemAvailable") >= kb("MemFree"));
    let free = section(&out, "free");
    assert!(free[0].split_whitespace().eq(["total", "used", "free", "shared", "buff/cache", "available"].into_iter()), "{free:?}");
    let mem = free.iter().find(|l| l.starts_with("Mem:")).unwrap_or_else(|| panic!("{free:?}"));
    let n = numbers(mem);
    assert_eq!(n[0], total, "free's total is MemTotal: {mem}");
    assert_eq!(n[0], n[1] + n[2] + n[4], "total = used + free + buff/cache: {mem}");
    assert!(n[5] > 0 && n[5] <= n[0], "{mem}");
}

#[test]
fn uptime_mount_df_and_top() {
    let out = sh("echo @uptime; uptime; cat /proc/uptime; echo @mount; mount; echo @df; df; echo @top; top -n 1 -b; echo @end");
    let up = section(&out, "uptime");
    assert!(up[0].contains(" up ") && up[0].contains("load average: "), "{up:?}");
    let loads = up[0].rsplit("load average: ").next().unwrap();
    assert_eq!(loads.split(", ").filter(|x| x.parse::<f64>().is_ok()).count(), 3, "{up:?}");
    let secs: Vec<f64> = up[1].split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(secs.len(), 2, "{up:?}");

    let mount = section(&out, "mount");
    for (dir, fs) in [("/", ""), ("/proc", "proc"), ("/dev", ""), ("/tmp", "tmpfs")] {
        let want = format!(" on {dir} type {fs}");
        assert!(mount.iter().any(|l| l.contains(&want)), "no {want:?} in {mount:?}");
    }

    let df = section(&out, "df");
    assert!(df[0].starts_with("Filesystem") && df[0].ends_with("Mounted on"), "{df:?}");
    let tmp = df.iter().find(|l| l.ends_with(" /tmp")).unwrap_or_else(|| panic!("no /tmp in {df:?}"));
    let n = numbers(tmp);
    assert!(n[0] > 0 && n[0] == n[1] + n[2], "blocks = used + available: {tmp}");

    let top = section(&out, "top");
    let mem = top.iter().find(|l| l.starts_with("Mem: ")).unwrap_or_else(|| panic!("{top:?}"));
    let n: Vec<u64> = mem.split_whitespace().filter_map(|w| w.strip_suffix('K')?.parse().ok()).collect();
    assert_eq!(n[0] + n[1], 256 * 1024 - 4, "used + free is MemTotal: {mem}");
    let cpu = top.iter().find(|l| l.starts_with("CPU:")).unwrap_or_else(|| panic!("{top:?}"));
    let pct: u64 = numbers(cpu).iter().sum();
    assert!((95..=105).contains(&pct), "CPU percentages add up (each rounded): {cpu}");
    assert!(top.iter().any(|l| l.starts_with("Load average: ")), "{top:?}");
    let head = top.iter().position(|l| l.trim_start().starts_with("PID")).unwrap_or_else(|| panic!("{top:?}"));
    assert!(top[head + 1..].iter().any(|l| numbers(l).first() == Some(&1)), "top lists init: {top:?}");
    assert!(top[head + 1..].iter().any(|l| l.contains("top -n 1 -b")), "top lists itself: {top:?}");
}

#[test]
fn hostname_is_one_value() {
    let out = sh("echo guest1 > /proc/sys/kernel/hostname; echo @a; hostname; uname -n; cat /proc/sys/kernel/hostname
hostname other; echo @b; cat /proc/sys/kernel/hostname; uname -n
printf 'x%.0s' $(seq 65) > /proc/sys/kernel/hostname; echo @c; cat /proc/sys/kernel/hostname | wc -c
echo @end");
    assert_eq!(section(&out, "a"), ["guest1", "guest1", "guest1"], "{out}");
    assert_eq!(section(&out, "b"), ["other", "other"], "{out}");
    // 65 bytes: kept to 64, plus the newline.
    assert_eq!(section(&out, "c"), ["65"], "{out}");
}

#[test]
fn kdb_enter_breaks_in_and_continue_resumes() {
    let mut k = start_sh("echo 1 > /proc/sys/debug/kdb/enter; echo resumed=$?");
    let banner = k.expect("db> ");
    assert!(banner.contains("KDB: enter: sysctl debug.kdb.enter"), "{banner}");
    assert!(banner.contains("[ thread pid 1 tid 1 ]"), "{banner}");
    k.send("continue");
    k.expect("resumed=0");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

#[test]
fn kdb_panic_panics() {
    let mut k = start_sh("echo 1 > /proc/sys/debug/kdb/panic; echo survived");
    let banner = k.expect("db> ");
    assert!(banner.contains("panic: kdb_sysctl_panic"), "{banner}");
    k.send("trace");
    let t = k.expect("db> ");
    assert!(t.contains("kdb_sysctl_panic("), "{t}");
    k.send("halt");
    k.wait();
    assert!(!k.output().contains("survived"), "{}", k.output());
}

#[test]
fn kdb_trap_faults_in_kernel_mode() {
    let mut k = start_sh("echo 1 > /proc/sys/debug/kdb/trap; echo survived");
    let banner = k.expect("db> ");
    for want in ["Fatal trap 12: page fault while in kernel mode", "fault virtual address = 0x0", "current process = 1 (sh)"] {
        assert!(banner.contains(want), "no {want:?} in:\n{banner}");
    }
    let stopped = banner.lines().find(|l| l.starts_with("Stopped at")).unwrap_or_else(|| panic!("{banner}"));
    assert!(stopped.contains("kdb_sysctl_trap+0x"), "{stopped}");
    k.send("halt");
    k.wait();
    assert!(!k.output().contains("survived"), "{}", k.output());
}

#[test]
fn only_root_writes_settings() {
    let out = sh("su -s /bin/sh nobody -c '
id -u
echo 1 > /proc/sys/debug/kdb/enter; echo enter=$?
echo 1 > /proc/sys/debug/kdb/panic; echo panic=$?
echo 1 > /proc/sys/debug/kdb/trap; echo trap=$?
echo evil > /proc/sys/kernel/hostname; echo hostname=$?
printf 1 >> /proc/sys/debug/kdb/enter; echo append=$?
cat /proc/sys/kernel/hostname
' 2>&1
echo @end");
    for want in ["65534", "enter=1", "panic=1", "trap=1", "hostname=1", "append=1", "vk"] {
        assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    }
    // Every open for writing fails: the files are root's, mode 0644, as on Linux.
    assert_eq!(out.matches("Permission denied").count(), 5, "{out}");
    assert!(!out.contains("db>") && !out.contains("evil"), "{out}");
}

#[test]
fn hostile_writes_and_reads() {
    let out = sh("yes garbage | head -c 300000 > /proc/sys/debug/kdb/enter; echo big=$?
printf '' > /proc/sys/debug/kdb/trap; echo empty=$?
printf ' 0 \\n' > /proc/sys/debug/kdb/panic; echo zero=$?
printf '1x' > /proc/sys/debug/kdb/trap; echo junk=$?
echo hi > /proc/meminfo; echo ro=$?
echo hi > /proc/self/stat; echo ro2=$?
cat /proc/sys/debug/kdb/enter; echo rd=$?
dd if=/proc/self/stat bs=1 skip=100000 2>/dev/null | wc -c
dd if=/proc/cpuinfo bs=7 skip=3 count=2 2>/dev/null | wc -c
i=0; while [ $i -lt 30 ]; do
  sh -c 'exit 0' & p=$!
  cat /proc/$p/stat /proc/$p/status /proc/$p/maps /proc/$p/cmdline >/dev/null 2>&1
  ls -l /proc/$p/fd /proc/$p/task >/dev/null 2>&1
  wait $p; i=$((i + 1))
done
echo loop done
echo @end");
    for want in ["big=1", "empty=0", "zero=0", "junk=1", "ro=1", "ro2=1", "rd=1", "0", "14", "loop done"] {
        assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    }
}

#[test]
fn loadavg_rises_with_busy_threads() {
    // Two spinning threads for a little over two sampling periods (5 s each).
    let out = sh("/usr/tests/h_spin 2 > /dev/null & p=$!
sleep 11; cat /proc/loadavg; kill $p; wait; echo @end");
    let line = out.lines().find(|l| l.split_whitespace().count() == 5).unwrap_or_else(|| panic!("{out}"));
    let one: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
    assert!(one > 0.0, "the 1-minute load average counts the spinners: {line}");
}

/// /proc/cmdline holds the kernel's boot parameters (its `-e` environment), one line.
#[test]
fn cmdline_is_the_kernel_environment() {
    let out = sh("echo @cmdline; cat /proc/cmdline; echo @end");
    let lines = section(&out, "cmdline");
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].split(' ').any(|w| w == "init=/bin/sh"), "{out}");
}
