#!/bin/sh
# bench/shell.sh — the shell-script workload of `make bench`: what a busybox shell script
# does all day (a loop with expr, sed|sort|head pipelines, cp, tar, gzip, find|xargs). Run
# by bench/workload.py natively (chrooted into the bench root, the same static busybox) and
# under vk (as init, boot included). It prints a digest of its results: both runs must print
# the same, so the table compares equal work.
set -e
W=/tmp/vkbench-shell
rm -rf "$W"
mkdir -p "$W"
cd "$W"
i=0
while [ "$i" -lt 150 ]; do
    i=$(expr "$i" + 1)
    echo "line $i $(expr "$i" \* 7 % 13) $(expr "$i" % 5)" >>data
done
for n in 1 2 3 4 5 6 7 8; do
    sed -n "s/line/L$n/p" data | sort -k3,3n -k2,2n | head -5 >"out.$n"
done
for d in a b c d e f; do
    mkdir -p "tree/$d"
    for f in 1 2 3 4; do
        cp data "tree/$d/f$f"
    done
done
tar cf t.tar tree
gzip -9 t.tar
entries=$(gunzip -c t.tar.gz | tar tf - | wc -l)
bytes=$(find tree -type f | xargs cat | wc -c)
lines=$(cat out.* | wc -l)
sum=$(cat out.* | md5sum | cut -c1-12)
echo "shell: entries=$entries bytes=$bytes lines=$lines md5=$sum"
cd /
rm -rf "$W"
