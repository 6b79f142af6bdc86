#!/bin/sh
# Run every guest test program (files named t_*) in DIR, print each one's last line, and an
# overall result. A failing program's FAIL lines are shown too.
# Usage: run-all.sh DIR      Exit status: 0 if every program passed, 1 otherwise.
# Works with busybox sh; each program gets at most 120 s when `timeout` exists.
dir=${1:?usage: run-all.sh DIR}
limit=""
if command -v timeout >/dev/null 2>&1; then
    limit="timeout 120"
fi
total=0
failed=0
for prog in "$dir"/t_*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    case $prog in
        *.tmp | *.c) continue ;;
    esac
    name=$(basename "$prog")
    total=$((total + 1))
    output=$($limit "$prog" 2>&1)
    status=$?
    last=$(printf '%s\n' "$output" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        echo "ok   $name: $last"
    else
        failed=$((failed + 1))
        printf '%s\n' "$output" | grep -e '^FAIL' -e '^     ' | sed 's/^/     /'
        echo "FAIL $name (exit status $status): $last"
    fi
done
if [ "$total" -eq 0 ]; then
    echo "run-all: no test programs in $dir"
    exit 1
fi
if [ "$failed" -eq 0 ]; then
    echo "run-all: all $total programs passed"
    exit 0
fi
echo "run-all: $failed of $total programs FAILED"
exit 1
