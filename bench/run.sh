#!/usr/bin/env bash
# bench/run.sh — `make bench`: vk against the host.
#
# Builds bench/vkbench.c (static, musl) into run/bench/root, the whole guest root (the kernel
# needs nothing else there: init's descriptors are the console, and /dev, /proc, /tmp are only
# mounted when the root has them). Runs it natively, then as init under run/kernel, then builds
# and runs ../shared/bench/floor.c (what the host's own mechanisms cost) and bench/mtfloor.c
# (what a second host CPU gives system calls handed between host threads), and prints one table.
#
# Then the whole-command cases (bench/workload.py): bench/shell.sh, a busybox shell script,
# natively (chroot into the same root) and under vk with boot and shutdown included; and the
# time from starting the kernel on rootimg.01 to `login:` on its console.
#
# Then the threaded case: `vkbench --threads T /data` (T threads of one process, each looping
# on pread of /data, on getppid, on mmap+munmap). Natively with 1 and with 2 threads; under vk
# with 2 threads on a kernel with -n 1 and with -n 2, and with 1 thread on -n 2, its root an
# ext2 image of the same tree (so pread goes through ext2 and the buffer cache; `-R` keeps the
# image unchanged). The second table gives each side's speed-up: how much more work per second
# two threads get done with two CPUs than with one, and (vk) two threads than one on `-n 2`
# (2.00 would be perfect scaling).
#
# Environment: KERNEL (default run/kernel), FLOOR (default ../shared/bench/floor.c; skipped
# with a message when missing), BENCH_SCALE (iterations multiplier, default 1), BENCH_REPEAT
# (runs of the threaded case, the best kept: a busy host's noise only ever adds; default 1),
# BENCH_RUNS (runs of the shell-script and boot cases, the median kept; default 5),
# BENCH_TIMEOUT (seconds the vk run may take, default 120), VK_NCPU (default 2), VK_MEM
# (default 256m). Raw outputs are kept in run/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${RUN:-run}
KERNEL=${KERNEL:-$RUN/kernel}
FLOOR=${FLOOR:-../shared/bench/floor.c}
SCALE=${BENCH_SCALE:-1}
REPEAT=${BENCH_REPEAT:-1}
RUNS=${BENCH_RUNS:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
NCPU=${VK_NCPU:-2}
MEM=${VK_MEM:-256m}
OUT=$RUN/bench
NAMES=(null_syscall null_syscall_trap null_syscall_site clock_gettime pagefault fork forkexec spawn pipe_rtt pipe_rtt_site unix_mib tcp_mib tcp_rtt)
MT_NAMES=(mt_pread mt_getppid mt_mmap)

[ -x "$KERNEL" ] || { echo "bench: $KERNEL is missing (make build)" >&2; exit 1; }
command -v musl-gcc >/dev/null || { echo "bench: musl-gcc is missing (make deps)" >&2; exit 1; }

# vk hands a system call over between host threads by spinning, so a busy host inflates its
# numbers far more than the native ones: say how busy the host is.
ncpu=$(nproc)
read -r load1 _ </proc/loadavg
busy=""
if awk -v l="$load1" -v n="$ncpu" 'BEGIN { exit !(l > n / 2) }'; then
    busy=" (busy: vk's numbers may be inflated)"
fi
echo "bench: host: $ncpu CPUs, load average $load1$busy"

rm -rf "$OUT"
mkdir -p "$OUT/root"
musl-gcc -static -O2 -Wall -Wextra -o "$OUT/root/vkbench" bench/vkbench.c -lpthread
head -c 65536 /dev/zero | tr '\0' 'v' >"$OUT/root/data"

# Natively. argv[0] is a path, so forkexec execs this same binary.
echo "bench: native: $OUT/root/vkbench $SCALE"
"$OUT/root/vkbench" "$SCALE" >"$OUT/native.txt"

# vk_run TAG NCPU "NAMES" KERNEL-ROOT-OPTION ROOT -- INIT-ARGS...: run /vkbench as init under
# a kernel with NCPU CPUs; keep its bench lines in $OUT/TAG.txt, insisting on every one of NAMES.
vk_run() {
    local tag=$1 ncpu=$2 names=$3 ropt=$4 root=$5
    shift 6
    local status=0 missing="" n
    timeout -k 5 "$TIMEOUT" "$KERNEL" -m "$MEM" -n "$ncpu" "$ropt" "$root" -e init=/vkbench -- "$@" \
        </dev/null >"$OUT/$tag.log" 2>&1 || status=$?
    grep '^bench: ' "$OUT/$tag.log" >"$OUT/$tag.txt" || true
    for n in $names; do
        grep -q "^bench: $n " "$OUT/$tag.txt" || missing="$missing $n"
    done
    if [ "$status" -ne 0 ] || [ -n "$missing" ]; then
        [ "$status" -eq 124 ] && echo "bench: vk ($tag): timed out after ${TIMEOUT}s" >&2
        echo "bench: vk ($tag): kernel exit status $status; missing results:${missing:- none}" >&2
        echo "bench: last lines of $OUT/$tag.log:" >&2
        tail -n 40 "$OUT/$tag.log" >&2
        exit 1
    fi
}

# Under vk: the same binary as init (the guest's lines are mixed with the kernel's banner;
# `timeout` stops the kernel, its own child, if it hangs, with SIGKILL 5 s after SIGTERM).
echo "bench: vk: $KERNEL -m $MEM -n $NCPU -r $OUT/root -e init=/vkbench -- $SCALE"
vk_run vk "$NCPU" "${NAMES[*]}" -r "$OUT/root" -- "$SCALE"

# The threaded case, natively (1 and 2 threads) and under vk (2 threads on -n 1 and -n 2; 1
# thread on -n 2), BENCH_REPEAT times in turn; the table takes each configuration's best run.
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)
"$mke2fs" -q -F -t ext2 -E root_owner=0:0 -d "$OUT/root" "$OUT/root.img" 16M
: >"$OUT/mt-native.txt"
: >"$OUT/mt-vk1.txt.all"
: >"$OUT/mt-vk2.txt.all"
: >"$OUT/mt-vk2t1.txt.all"
for r in $(seq 1 "$REPEAT"); do
    echo "bench: threaded ($r/$REPEAT): native: $OUT/root/vkbench --threads 1|2 $OUT/root/data $SCALE"
    for t in 1 2; do
        "$OUT/root/vkbench" --threads "$t" "$OUT/root/data" "$SCALE" >>"$OUT/mt-native.txt"
    done
    for n in 1 2; do
        echo "bench: threaded ($r/$REPEAT): vk: $KERNEL -m $MEM -n $n -R $OUT/root.img -e init=/vkbench -- --threads 2 /data $SCALE"
        vk_run "mt-vk$n" "$n" "mt_pread_2 mt_getppid_2 mt_mmap_2" -R "$OUT/root.img" -- --threads 2 /data "$SCALE"
        cat "$OUT/mt-vk$n.txt" >>"$OUT/mt-vk$n.txt.all"
    done
    # One thread on -n 2: the speed-up from one thread to two on the same kernel, as natively
    # (issue 11 states its target so).
    echo "bench: threaded ($r/$REPEAT): vk: $KERNEL -m $MEM -n 2 -R $OUT/root.img -e init=/vkbench -- --threads 1 /data $SCALE"
    vk_run "mt-vk2t1" 2 "mt_pread_1 mt_getppid_1 mt_mmap_1" -R "$OUT/root.img" -- --threads 1 /data "$SCALE"
    cat "$OUT/mt-vk2t1.txt" >>"$OUT/mt-vk2t1.txt.all"
done
mv "$OUT/mt-vk2t1.txt.all" "$OUT/mt-vk2t1.txt"
mv "$OUT/mt-vk1.txt.all" "$OUT/mt-vk1.txt"
mv "$OUT/mt-vk2.txt.all" "$OUT/mt-vk2.txt"

# The whole-command cases: the shell-script workload (natively and under vk, boot included)
# and boot to login: (bench/workload.py; BENCH_RUNS runs each, the median kept).
python3 bench/workload.py "$KERNEL" "$RUN/root" "$RUN/rootimg.01" "$OUT" "$RUNS"

# The host's floor.
if [ -f "$FLOOR" ]; then
    echo "bench: floor: $FLOOR"
    cc -O2 -o "$OUT/floor" "$FLOOR"
    "$OUT/floor" "$SCALE" >"$OUT/floor.txt"
else
    echo "bench: floor: $FLOOR not found: floor columns skipped (set FLOOR=path/to/floor.c)"
    : >"$OUT/floor.txt"
fi
# The host's ceiling for the threaded case (bench/mtfloor.c): system calls one host thread
# hands to another, one pair and two at once.
echo "bench: mtfloor: bench/mtfloor.c"
cc -O2 -o "$OUT/mtfloor" bench/mtfloor.c -lpthread
"$OUT/mtfloor" $((20000 * SCALE)) >"$OUT/mtfloor.txt" || : >"$OUT/mtfloor.txt"

echo
python3 - "$OUT/native.txt" "$OUT/vk.txt" "$OUT/floor.txt" "$FLOOR" \
    "$OUT/mt-native.txt" "$OUT/mt-vk1.txt" "$OUT/mt-vk2.txt" "$REPEAT" "$OUT/mt-vk2t1.txt" "$OUT/mtfloor.txt" <<'EOF'
import sys

def bench(path):
    """Each result of a file of bench lines; the best (least) when one is there repeatedly."""
    r = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 3 and f[0] == "bench:":
            r[f[1]] = min(float(f[2]), r.get(f[1], float("inf")))
    return r

def floor(path):
    r, raw = {}, []
    for line in open(path):
        f = line.split()
        if len(f) >= 2:
            raw.append(line.rstrip())
            r[f[0]] = float(f[1])
    return r, raw

def ns(v):
    if v is None or v < 0:
        return "-"
    if v < 1e3:
        return f"{v:.0f} ns"
    if v < 1e6:
        return f"{v / 1e3:.{2 if v < 1e4 else 1}f} us"
    return f"{v / 1e6:.2f} ms"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b and b > 0 and a >= 0 else "-"

native, vk = bench(sys.argv[1]), bench(sys.argv[2])
fl, raw = floor(sys.argv[3])
rows = [  # name, label, floor.c line
    ("null_syscall", "null syscall (musl's syscall())", "seccomp_trap_spin_ns"),
    ("null_syscall_trap", "null syscall, a site never patched", "seccomp_trap_spin_ns"),
    ("null_syscall_site", "null syscall, glibc-style site", "seccomp_trap_spin_ns"),
    ("clock_gettime", "clock_gettime (vDSO)", None),
    ("pagefault", "page fault", "native_pagefault_ns"),
    ("fork", "fork", "native_fork_ns"),
    ("forkexec", "fork+exec", "native_forkexec_ns"),
    ("spawn", "posix_spawn (vfork+exec)", None),
    ("pipe_rtt", "pipe round trip", None),
    ("pipe_rtt_site", "pipe round trip, glibc-style sites", None),
    ("unix_mib", "AF_UNIX stream, per MiB", None),
    ("tcp_mib", "TCP 127.0.0.1, per MiB", None),
    ("tcp_rtt", "TCP 127.0.0.1 round trip", None),
    ("shell_script", "shell script (boot incl.)", None),
    ("boot_login", "boot to login: (rootimg.01)", None),
]
table = [("benchmark", "native", "vk", "vk/native", "floor (name)", "vk/floor")]
for key, label, fk in rows:
    n, v = native.get(key), vk.get(key)
    f = fl.get(fk) if fk else None
    table.append((label, ns(n), ns(v), ratio(v, n),
                  f"{ns(f)} ({fk})" if f is not None else "-", ratio(v, f)))
def show(table, right):
    w = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    def fmt(r):
        return " | ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r))
    print(fmt(table[0]))
    print("-+-".join("-" * x for x in w))
    for r in table[1:]:
        print(fmt(r))
    print()
show(table, {1, 2, 3, 5})

# The threaded case: wall time per operation (all threads' operations together).
mt_native, vk1, vk2 = bench(sys.argv[5]), bench(sys.argv[6]), bench(sys.argv[7])
vk2t1 = bench(sys.argv[9])
print("threaded: 2 threads of one process, each looping on one operation; time = wall time per")
print("operation of both threads together. speed-up = operations per second with 2 CPUs / with 1:")
print("native: 2 threads / 1 thread on the host; vk: 2 threads on `-n 2` / the same on `-n 1`")
print("(CPUs), and 2 threads / 1 thread, both on `-n 2` (threads, as natively). 2.00 is perfect")
print("scaling; 1.00 means the second CPU (thread) bought nothing.", end="")
print(f" Best of {sys.argv[8]} runs each." if sys.argv[8] != "1" else "")
print()
mt = [("benchmark", "native 1 thr", "native 2 thr", "native speed-up", "vk -n 1", "vk -n 2",
       "vk speed-up", "vk -n 2 1 thr", "vk speed-up (thr)")]
for key, label in [("pread", "pread 512 B"), ("getppid", "getppid"), ("mmap", "mmap+munmap 64 KiB")]:
    n1, n2 = mt_native.get(f"mt_{key}_1"), mt_native.get(f"mt_{key}_2")
    v1, v2 = vk1.get(f"mt_{key}_2"), vk2.get(f"mt_{key}_2")
    t1 = vk2t1.get(f"mt_{key}_1")
    mt.append((label, ns(n1), ns(n2), ratio(n1, n2), ns(v1), ns(v2), ratio(v1, v2), ns(t1), ratio(t1, v2)))
show(mt, {1, 2, 3, 4, 5, 6, 7, 8})
# The host's ceiling: what a second CPU gives system calls handed between host threads.
mtf = [l.strip() for l in open(sys.argv[10]) if l.startswith("mtfloor:")]
if mtf:
    print("the host's ceiling for the threaded case (bench/mtfloor.c): a getppid trapped by seccomp")
    print("into a SIGSYS handler and answered by a thread of another process over shared memory, as")
    print("vk's stubs hand calls to its vCPUs; one such pair, and two at once (time per call over both):")
    for l in mtf:
        print("  " + l)
    print()
if raw:
    p = fl.get("ptrace_sysemu_ns")
    if p is not None:
        print(f"note: ptrace_sysemu_ns {ns(p)}: vk null syscall / ptrace floor = {ratio(vk.get('null_syscall'), p)}")
    print("note: floor's fork and fork+exec are a glibc process exec'ing /bin/true; vkbench's are a"
          " static musl process exec'ing itself")
    print()
    print(f"floor.c ({sys.argv[4]}):")
    for line in raw:
        print("  " + line)
else:
    print(f"floor: {sys.argv[4]} not found: floor columns skipped")
EOF
