#!/usr/bin/env bash
# bench/repl.sh: what replication to memory nodes costs (issue 9).
#
#   bench/repl.sh [--runs N] [--build DIR] [--dir DIR] [--seconds S]
#
# Two `btd memd` on 127.0.0.1 (tcp provider), their node pools and the
# client pools in --dir (default /dev/shm).  Per run, interleaved:
#
# RAW.  bench/net_raw msync: net_write of N bytes + a 16-byte persist
#   message + the node's msync of the range (its file in --dir too) + an
#   ack: the round trip replication cannot beat; and bulk write bandwidth
#   (256 KiB transfers).
# COMMIT.  bench/repl_bench commit SIZE: the median latency of btd_persist
#   of SIZE bytes and of a transaction over SIZE bytes (btd_tx_add +
#   commit, up to 32 KiB), with 0, 1 and 2 replicas, SIZE 64 B, 4 KiB and
#   64 KiB.  Target: 1 replica <= 1.5 x RAW of the same size.
# BULK.  bench/repl_bench fill 128: a 128 MiB heap, then btd_sync (the
#   whole image to the replica); MiB/s against RAW's bulk bandwidth.
#   Target >= 80%.
# RESTORE.  A heap of 16, 64 and 256 MiB replicated at exit, the pool
#   deleted, `btd restore` timed.
#
# Medians of N runs (--runs, default 5); markdown tables on stdout and in
# bench/results/repl.md, every sample in repl.tsv, and bench/repl.png when
# gnuplot is installed.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")
runs=5
build=build
dir=/dev/shm
seconds=1

usage() {
	cat >&2 <<'EOF'
usage: bench/repl.sh [--runs N] [--build DIR] [--dir DIR] [--seconds S]
  --runs N      runs (default 5)
  --build DIR   meson build dir, relative to the repo root unless absolute
                (default build; set up and built if needed)
  --dir DIR     node and client pools (default /dev/shm)
  --seconds S   seconds per commit measurement (default 1)
EOF
}
while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || { usage; exit 2; }; runs=$2; shift 2 ;;
	--build) [ $# -ge 2 ] || { usage; exit 2; }; build=$2; shift 2 ;;
	--dir) [ $# -ge 2 ] || { usage; exit 2; }; dir=$2; shift 2 ;;
	--seconds) [ $# -ge 2 ] || { usage; exit 2; }; seconds=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "repl.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "repl.sh: --runs wants a positive integer" >&2; exit 2; }
[ -d "$dir" ] && [ -w "$dir" ] || { echo "repl.sh: --dir $dir is not a writable directory" >&2; exit 2; }
case $build in /*) ;; *) build=$root/$build ;; esac
[ -f "$build/build.ninja" ] || meson setup "$build" "$root" >/dev/null
ninja -C "$build" bench/repl_bench bench/net_raw tools/btd >/dev/null

btd=$build/tools/btd
bench=$build/bench/repl_bench
raw=$build/bench/net_raw
tmp=$(mktemp -d "$dir/btd-bench-repl.XXXXXX")
results=$root/bench/results
mkdir -p "$results"
tsv=$results/repl.tsv
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export FI_PROVIDER=tcp BTD_FABRIC_PROVIDER=tcp BTD_KEY_FILE=$tmp/key NET_RAW_DIR=$dir
unset BTD_REPLICAS BTD_MIN_REPLICAS BTD_POOL BTD_POLICY
head -c 32 /dev/urandom >"$tmp/key"
chmod 600 "$tmp/key"

# start_nodes: two fresh memory nodes (every run leases anew: the pools
# of a run are new ones, and leases stay until dropped).
ports=()
start_nodes() {
	local n
	ports=()
	for n in A B; do
		rm -f "$tmp/$n.node"
		"$btd" memd --pool "$tmp/$n.node" --listen 127.0.0.1:0 --key "$tmp/key" --size 2G \
			2>"$tmp/$n.log" &
		pids+=($!)
		for _ in $(seq 100); do grep -q listening "$tmp/$n.log" && break; sleep 0.1; done
		ports+=("$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$n.log")")
	done
}
stop_nodes() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
	rm -f "$tmp"/*.node
}
replicas_of() {
	case $1 in
	0) echo "" ;;
	1) echo "127.0.0.1:${ports[0]}" ;;
	2) echo "127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" ;;
	esac
}
# run_bench REPLICAS POOL ARGS...: repl_bench with that many replicas
run_bench() {
	local r=$1 pool=$2
	shift 2
	rm -f "$pool"
	if [ "$r" = 0 ]; then
		BTD_POOL=$pool "$bench" "$@"
	else
		BTD_POOL=$pool BTD_REPLICAS=$(replicas_of "$r") "$bench" "$@"
	fi
}

: >"$tsv"
sizes=(64 4096 65536)
for run in $(seq "$runs"); do
	echo "run $run of $runs" >&2
	start_nodes
	"$raw" msync | while read -r line; do
		case $line in
		write*) set -- $line
			echo -e "raw\t$2\t$(sed 's/.*median \([0-9.]*\) us.*/\1/' <<<"$line")" ;;
		bulk*) set -- $line
			echo -e "rawbulk$3\t-\t$(sed 's/.*: \([0-9.]*\) MiB\/s/\1/' <<<"$line")" ;;
		esac
	done >>"$tsv"
	order=(0 1 2)
	[ $((run % 2)) -eq 0 ] && order=(2 1 0)
	for r in "${order[@]}"; do
		for s in "${sizes[@]}"; do
			run_bench "$r" "$tmp/c-$run-$r-$s.pool" commit "$s" "$seconds" | while read -r k v; do
				case $k in
				persist|tx) echo -e "$k$r\t$s\t$(awk -v n="$v" 'BEGIN { print n / 1000 }')" ;;
				esac
			done >>"$tsv"
		done
	done
	run_bench 1 "$tmp/f-$run.pool" fill 128 | awk '$1 == "sync" { print "bulk\t-\t" $2 / 1048576 / ($3 / 1e9) }' >>"$tsv"
	for mib in 16 64 256; do
		pool=$tmp/r-$run-$mib.pool
		run_bench 1 "$pool" fill "$mib" >/dev/null
		rm -f "$pool"
		t0=$(date +%s.%N)
		"$btd" restore "$pool" --from "$(replicas_of 1)" >/dev/null
		t1=$(date +%s.%N)
		echo -e "restore\t$mib\t$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) * 1000 }')" >>"$tsv"
		rm -f "$pool"
	done
	rm -f "$tmp"/*.pool
	stop_nodes
done

python3 - "$tsv" "$results/repl.md" "$tmp/plot.dat" <<'EOF'
import sys, statistics
from collections import defaultdict
v = defaultdict(list)
for line in open(sys.argv[1]):
    k, s, x = line.split('\t')
    v[(k, s)].append(float(x))
med = {k: statistics.median(x) for k, x in v.items()}
out = []
out.append('| durable commit | raw write + persist + ack | btd_persist, 0 / 1 / 2 replicas | 1 replica / raw | tx commit, 0 / 1 / 2 replicas | 1 replica / raw |')
out.append('|---|---|---|---|---|---|')
plot = []
for s in ('64', '4096', '65536'):
    raw = med[('raw', s)]
    p = [med.get(('persist%d' % r, s)) for r in range(3)]
    t = [med.get(('tx%d' % r, s)) for r in range(3)]
    fmt = lambda a: ' / '.join('%.1f' % x if x is not None else '-' for x in a)
    ratio = lambda x: '%.2f' % (x / raw) if x is not None else '-'
    out.append('| %s B | %.1f us | %s us | %s | %s us | %s |' % (s, raw, fmt(p), ratio(p[1]), fmt(t), ratio(t[1])))
    plot.append('%s %.1f %s %s' % (s, raw, ' '.join('%.1f' % x for x in p), ' '.join('%.1f' % (x if x is not None else 0) for x in t)))
out.append('')
rb = max(med[(k, s)] for (k, s) in med if k.startswith('rawbulk'))
bb = med[('bulk', '-')]
out.append('| bulk replication (btd_sync of a 128 MiB heap, 1 replica) | raw RMA write bandwidth (the better of 256 KiB and 16 MiB writes) | ratio |')
out.append('|---|---|---|')
out.append('| %.0f MiB/s | %.0f MiB/s | %.2f |' % (bb, rb, bb / rb))
out.append('')
out.append('| heap | restore time |')
out.append('|---|---|')
for m in ('16', '64', '256'):
    out.append('| %s MiB | %.0f ms |' % (m, med[('restore', m)]))
text = '\n'.join(out) + '\n'
open(sys.argv[2], 'w').write(text)
open(sys.argv[3], 'w').write('\n'.join(plot) + '\n')
print(text)
EOF
if command -v gnuplot >/dev/null; then
	gnuplot <<EOF
set terminal pngcairo size 960,420 noenhanced
set output '$root/bench/repl.png'
set title 'durable commit latency, tcp on loopback (medians of $runs runs)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'microseconds'
set key outside right top
set grid ytics
plot '$tmp/plot.dat' using 2:xtic(sprintf("%d B", \$1)) title 'raw write + persist + ack', \
     '' using 4 title 'btd_persist, 1 replica', '' using 5 title 'btd_persist, 2 replicas', \
     '' using 7 title 'tx commit, 1 replica', '' using 3 title 'btd_persist, local only'
EOF
	echo "plot: bench/repl.png" >&2
fi
