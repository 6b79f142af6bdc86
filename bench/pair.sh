#!/usr/bin/env bash
# bench/pair.sh — paired, alternating runs of two (or more) kernels on the same cases, for a
# before/after on a shared, loaded host: each round runs every kernel once, in turn, so host
# load drifts hit them alike; the medians over the rounds are printed with the load average.
#
# Usage: bench/pair.sh ROUNDS KERNEL... (environment: CASES, default null_syscall,pipe_rtt;
# NCPU, default 2, the -n of the main cases; THREADED=1 adds `--threads 2` on -n 1 and -n 2; SCALE, default 1;
# SHELLSCRIPT=1 adds the shell-script workload, bench/shell.sh as init on run/bench/shell.img (from
# `make bench`), boot included, as `shell_script`).
# Needs run/bench/root (from `make bench`) or builds the guest root itself under $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=$1
shift
CASES=${CASES:-null_syscall,pipe_rtt}
SCALE=${SCALE:-1}
# NCPU: the guest CPUs of the main cases (-n), default 2.
NCPU=${NCPU:-2}
OUT=${OUT:-run/pair}
# PRIO: a command prefix for every kernel run, e.g. "chrt -f 1" to keep other host work off
# the measured runs (vk then sees a nearly idle host).
PRIO=${PRIO:-}
mkdir -p "$OUT/root"
musl-gcc -static -O2 -Wall -Wextra -o "$OUT/root/vkbench" bench/vkbench.c -lpthread
head -c 65536 /dev/zero | tr '\0' 'v' >"$OUT/root/data"
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)
"$mke2fs" -q -F -t ext2 -E root_owner=0:0 -d "$OUT/root" "$OUT/root.img" 16M
: >"$OUT/results"
for r in $(seq "$ROUNDS"); do
    k=0
    for kernel in "$@"; do
        k=$((k + 1))
        read -r load _ </proc/loadavg
        echo "load $load" >>"$OUT/results"
        $PRIO timeout -k 5 120 "$kernel" -m 256m -n "$NCPU" -r "$OUT/root" -e init=/vkbench -- --only "$CASES" "$SCALE" </dev/null 2>&1 |
            sed -n "s/^bench: \([a-z_0-9]*\) \([0-9]*\) ns/k$k \1 \2/p" >>"$OUT/results" || true
        if [ "${SHELLSCRIPT:-0}" = 1 ] && [ -f run/bench/shell.img ]; then
            t0=$(date +%s%N)
            $PRIO timeout -k 5 120 "$kernel" -m 64m -n "$NCPU" -R run/bench/shell.img -e init=/bin/sh -- /shell.sh </dev/null >/dev/null 2>&1 || true
            echo "k$k shell_script $(( $(date +%s%N) - t0 ))" >>"$OUT/results"
        fi
        if [ "${THREADED:-0}" = 1 ]; then
            for n in 1 2; do
                $PRIO timeout -k 5 120 "$kernel" -m 256m -n $n -R "$OUT/root.img" -e init=/vkbench -- --threads 2 /data "$SCALE" </dev/null 2>&1 |
                    sed -n "s/^bench: \([a-z_0-9]*\) \([0-9]*\) ns/k$k n$n-\1 \2/p" >>"$OUT/results" || true
            done
        fi
    done
done
k=0
for kernel in "$@"; do
    k=$((k + 1))
    echo "k$k = $kernel"
done
python3 - "$OUT/results" <<'PY'
import statistics, sys
vals, loads = {}, []
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "load":
        loads.append(float(f[1]))
    else:
        vals.setdefault((f[1], f[0]), []).append(int(f[2]))
for (case, k), v in sorted(vals.items()):
    print(f"{case:<22} {k}  median {statistics.median(v):>9.0f} ns   runs: {' '.join(map(str, v))}")
if loads:
    print(f"load average over the runs: {min(loads)} .. {max(loads)} (median {statistics.median(loads)})")
PY
