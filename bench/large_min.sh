#!/bin/bash
# bench/large_min.sh [--build DIR]: what a persistent large block costs
# against jemalloc, by size, for a block written once between malloc and
# free -- the data behind the default BTD_LARGE_MIN.  Median of 5 runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${2:-build}
prog=$build/bench/large_min
lib=$build/interpose/libbtd_preload.so
. "$root/bench/lib.sh"
je=$(find_jemalloc)
[ -n "$je" ] || { echo "large_min.sh: libjemalloc.so.2 not found: install libjemalloc2" >&2; exit 1; }
[ -x "$prog" ] && [ -f "$lib" ] || { echo "large_min.sh: run: meson setup build && ninja -C build" >&2; exit 1; }
tmp=$(mktemp -d /dev/shm/btd-large-min.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| size | jemalloc ns | btd persistent ns | ratio |"
echo "|---:|---:|---:|---:|"
for size in 16384 32768 65536 131072 262144 524288 1048576 4194304; do
	iters=$((4000000000 / (size + 4096)))
	j=$(for r in 1 2 3 4 5; do LD_PRELOAD=$je "$prog" $size $iters | sed 's/.*ns_per_round=\([0-9.]*\).*/\1/'; done | median)
	b=$(for r in 1 2 3 4 5; do rm -f "$tmp/p.pool"; env LD_PRELOAD="$lib" BTD_POLICY=large \
		BTD_LARGE_MIN=$size BTD_POOL="$tmp/p.pool" "$prog" $size $iters |
		sed 's/.*ns_per_round=\([0-9.]*\).*/\1/'; done | median)
	echo "| $size | $j | $b | $(awk -v a="$b" -v b="$j" 'BEGIN {printf "%.2f", a / b}') |"
done
