#!/usr/bin/env bash
# bench/run.sh — `make bench`: vk against the host.
#
# Builds bench/vkbench.c (static, musl) into run/bench/root, the whole guest root (the kernel
# needs nothing else there: init's descriptors are the console, and /dev, /proc, /tmp are only
# mounted when the root has them). Runs it natively, then as init under run/kernel, then builds
# and runs ../shared/bench/floor.c (what the host's own mechanisms cost), and prints one table.
#
# Environment: KERNEL (default run/kernel), FLOOR (default ../shared/bench/floor.c; skipped
# with a message when missing), BENCH_SCALE (iterations multiplier, default 1),
# BENCH_TIMEOUT (seconds the vk run may take, default 120), VK_NCPU (default 2), VK_MEM
# (default 256m). Raw outputs are kept in run/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${RUN:-run}
KERNEL=${KERNEL:-$RUN/kernel}
FLOOR=${FLOOR:-../shared/bench/floor.c}
SCALE=${BENCH_SCALE:-1}
TIMEOUT=${BENCH_TIMEOUT:-120}
NCPU=${VK_NCPU:-2}
MEM=${VK_MEM:-256m}
OUT=$RUN/bench
NAMES=(null_syscall pagefault fork forkexec pipe_rtt)

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
musl-gcc -static -O2 -Wall -Wextra -o "$OUT/root/vkbench" bench/vkbench.c

# Natively. argv[0] is a path, so forkexec execs this same binary.
echo "bench: native: $OUT/root/vkbench $SCALE"
"$OUT/root/vkbench" "$SCALE" >"$OUT/native.txt"

# Under vk: the same binary as init. The guest's lines are mixed with the kernel's banner;
# `timeout` stops the kernel (its own child) if it hangs, with SIGKILL 5 s after SIGTERM.
echo "bench: vk: $KERNEL -m $MEM -n $NCPU -r $OUT/root -e init=/vkbench -- $SCALE"
status=0
timeout -k 5 "$TIMEOUT" "$KERNEL" -m "$MEM" -n "$NCPU" -r "$OUT/root" -e init=/vkbench -- "$SCALE" \
    </dev/null >"$OUT/vk.log" 2>&1 || status=$?
grep '^bench: ' "$OUT/vk.log" >"$OUT/vk.txt" || true
missing=""
for n in "${NAMES[@]}"; do
    grep -q "^bench: $n " "$OUT/vk.txt" || missing="$missing $n"
done
if [ "$status" -ne 0 ] || [ -n "$missing" ]; then
    [ "$status" -eq 124 ] && echo "bench: vk: timed out after ${TIMEOUT}s" >&2
    echo "bench: vk: kernel exit status $status; missing results:${missing:- none}" >&2
    echo "bench: last lines of $OUT/vk.log:" >&2
    tail -n 40 "$OUT/vk.log" >&2
    exit 1
fi

# The host's floor.
if [ -f "$FLOOR" ]; then
    echo "bench: floor: $FLOOR"
    cc -O2 -o "$OUT/floor" "$FLOOR"
    "$OUT/floor" "$SCALE" >"$OUT/floor.txt"
else
    echo "bench: floor: $FLOOR not found: floor columns skipped (set FLOOR=path/to/floor.c)"
    : >"$OUT/floor.txt"
fi

echo
python3 - "$OUT/native.txt" "$OUT/vk.txt" "$OUT/floor.txt" "$FLOOR" <<'EOF'
import sys

def bench(path):
    r = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 3 and f[0] == "bench:":
            r[f[1]] = float(f[2])
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
    ("null_syscall", "null syscall", "seccomp_trap_spin_ns"),
    ("pagefault", "page fault", "native_pagefault_ns"),
    ("fork", "fork", "native_fork_ns"),
    ("forkexec", "fork+exec", "native_forkexec_ns"),
    ("pipe_rtt", "pipe round trip", None),
]
table = [("benchmark", "native", "vk", "vk/native", "floor (name)", "vk/floor")]
for key, label, fk in rows:
    n, v = native.get(key), vk.get(key)
    f = fl.get(fk) if fk else None
    table.append((label, ns(n), ns(v), ratio(v, n),
                  f"{ns(f)} ({fk})" if f is not None else "-", ratio(v, f)))
w = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
right = {1, 2, 3, 5}
def fmt(r):
    return " | ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r))
print(fmt(table[0]))
print("-+-".join("-" * x for x in w))
for r in table[1:]:
    print(fmt(r))
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
