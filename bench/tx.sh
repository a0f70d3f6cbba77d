#!/usr/bin/env bash
# bench/tx.sh: what a small transaction costs, btd against libpmemobj (issue 8).
#
#   bench/tx.sh [--runs N] [--build DIR] [--dir DIR] [--seconds S]
#               [--no-force] [--no-count]
#
# Builds what is missing (meson setup + ninja in --build, default build).
#
# TIME.  bench/tx_bench.c, built twice: tx_bench_btd (btd_tx_begin,
# btd_tx_add, btd_tx_commit of libbtd) and tx_bench_pmemobj (TX_BEGIN,
# pmemobj_tx_add_range, TX_END).  Workloads: 1, 4 and 16 ranges of 64 B in
# one object (every other cache line), 4 and 16 in as many objects, and
# one 4 KiB range; each transaction adds its ranges, increments every word
# of them and commits.  ns per transaction over >= --seconds (default
# 0.3) of them, N runs (--runs, default 5), medians; both programs run
# interleaved, the order rotated from run to run, pools on the same file
# system (--dir, default /dev/shm; a fresh 64 MiB pool per run): without
# PMEM_IS_PMEM_FORCE both persist with msync(2), with PMEM_IS_PMEM_FORCE=1
# (--no-force skips it) both flush cache lines and fence with libpmem.
# Target: btd's time <= 0.5 x libpmemobj's.
#
# COUNTS (--no-count skips them), per transaction: each program runs 50
# and then 150 transactions, and the difference of the two counts / 100 is
# what one transaction costs, whatever opening and closing the pool cost:
#   msync    strace -f -c -e trace=msync: on the msync path every flush is
#            an msync, which writes back and waits -- a fence
#   sfence   uprobes on every sfence instruction of libpmem, libpmemobj
#            and libbtd (both flush and fence through libpmem), traced in
#            a tracefs instance of their own for the program's process
#            only (set_event_pid): the fences of the cache-line path.
#            Needs root, objdump and tracefs (mount -t tracefs nodev
#            /sys/kernel/tracing); without them the column says n/a
#   BTD_STATS  btd only: tx_bench_btd under libbtd_preload.so
#            (BTD_POLICY=none, the same btd_* calls) with BTD_STATS=<file>:
#            btd's own count of its flushes and drains, for transactions
#            and in all, beside the model of btd.h (K ranges: K + 2 fences)
#
# Prints markdown tables and writes them to bench/results/tx.md, every run
# to tx.tsv and every count to tx-counts.tsv (bench/results/ is
# git-ignored).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")

runs=5
build=build
dir=/dev/shm
seconds=0.3
force=1
count=1
workloads=(1x64 4x64 16x64 4x64-spread 16x64-spread 1x4096)
count_n1=50
count_n2=150

usage() {
	cat >&2 <<'EOF'
usage: bench/tx.sh [--runs N] [--build DIR] [--dir DIR] [--seconds S]
                   [--no-force] [--no-count]
  --runs N       timed runs per workload, mode and program (default 5)
  --build DIR    meson build dir, relative to the repo root unless absolute
                 (default build; set up and built if needed)
  --dir DIR      where the pools go (default /dev/shm); an ext4 directory
                 measures msync to a disk
  --seconds S    timed seconds per run (default 0.3)
  --no-force     skip the PMEM_IS_PMEM_FORCE=1 runs
  --no-count     skip counting msyncs, fences and btd's own counts
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || { usage; exit 2; }; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--build) [ $# -ge 2 ] || { usage; exit 2; }; build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	--dir) [ $# -ge 2 ] || { usage; exit 2; }; dir=$2; shift 2 ;;
	--dir=*) dir=${1#--dir=}; shift ;;
	--seconds) [ $# -ge 2 ] || { usage; exit 2; }; seconds=$2; shift 2 ;;
	--seconds=*) seconds=${1#--seconds=}; shift ;;
	--no-force) force=0; shift ;;
	--no-count) count=0; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "tx.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
	echo "tx.sh: --runs wants a positive integer, got '$runs'" >&2
	exit 2
fi
if ! [[ $seconds =~ ^[0-9]*\.?[0-9]+$ ]]; then
	echo "tx.sh: --seconds wants a positive number, got '$seconds'" >&2
	exit 2
fi
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
	echo "tx.sh: --dir $dir is not a writable directory" >&2
	exit 2
fi
dir=$(cd "$dir" && pwd)
command -v python3 >/dev/null 2>&1 || { echo "tx.sh: python3 is needed for the medians" >&2; exit 1; }

case $build in
/*) ;;
*) build=$root/$build ;;
esac

# ---- build ----------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
	echo "tx.sh: setting up $build" >&2
	meson setup "$build" "$root" >/dev/null
fi
if ! ninja -C "$build" >"$build/tx-bench-ninja.log" 2>&1; then
	tail -20 "$build/tx-bench-ninja.log" >&2
	echo "tx.sh: the build failed (the log: $build/tx-bench-ninja.log)" >&2
	exit 1
fi
btd_bench=$build/bench/tx_bench_btd
obj_bench=$build/bench/tx_bench_pmemobj
preload=$build/interpose/libbtd_preload.so
impls=()
if [ -x "$btd_bench" ]; then
	impls+=(btd)
else
	echo "tx.sh: $btd_bench not built: the btd columns say n/a" >&2
fi
if [ -x "$obj_bench" ]; then
	impls+=(pmemobj)
else
	echo "tx.sh: $obj_bench not built (libpmemobj-dev missing when meson configured?" \
		"scripts/setup.sh --bench): the libpmemobj columns say n/a" >&2
fi
[ ${#impls[@]} -gt 0 ] || { echo "tx.sh: nothing to measure" >&2; exit 1; }
modes=(msync)
[ $force -eq 1 ] && modes+=(force)

# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"

# Settings inherited from the caller's environment would change what is
# measured: start from none.
while read -r v; do
	unset "$v"
done < <(compgen -e | grep -E '^(BTD_|PMEM_|PMEMOBJ_)' || true)
unset LD_PRELOAD

tmp=$(mktemp -d "$dir/btd-tx-bench.XXXXXX")
tracefs=
probe_group=btdtx_$$
inst=
probes_added=0
cleanup() {
	if [ -n "$inst" ] && [ -d "$inst" ]; then
		echo 0 >"$inst/events/$probe_group/enable" 2>/dev/null || true
		rmdir "$inst" 2>/dev/null || true
	fi
	if [ $probes_added -eq 1 ] && [ -n "$tracefs" ]; then
		sed -n "s|^p:\($probe_group/[^ ]*\) .*|-:\1|p" "$tracefs/uprobe_events" >"$tmp/unprobe" 2>/dev/null || true
		cat "$tmp/unprobe" >>"$tracefs/uprobe_events" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fstype=$(stat -f -c %T "$dir" 2>/dev/null || echo unknown)

# cmd_for IMPL MODE: the command line prefix of a run, in the array cmd.
cmd_for() {
	local pool=$tmp/pool
	cmd=(env)
	[ "$2" = force ] && cmd+=(PMEM_IS_PMEM_FORCE=1)
	case $1 in
	btd) cmd+=(BTD_POOL="$pool" BTD_POOL_SIZE=64M "$btd_bench") ;;
	pmemobj) cmd+=(PMEMOBJ_BENCH_POOL="$pool" PMEMOBJ_BENCH_POOL_SIZE=64 "$obj_bench") ;;
	esac
}

failures=$tmp/failures.txt
: >"$failures"

# ---- time -----------------------------------------------------------------
results=$tmp/tx.tsv
printf 'run\tmode\tworkload\timpl\ttx\tseconds\tns_per_tx\tstatus\n' >"$results"

run_one() {
	local impl=$1 mode=$2 w=$3 r=$4 rc=0 line
	local -a cmd
	cmd_for "$impl" "$mode"
	rm -f "$tmp/pool"
	timeout 300 "${cmd[@]}" "$w" --seconds "$seconds" >"$tmp/out" 2>"$tmp/err" || rc=$?
	rm -f "$tmp/pool"
	line=$(grep '^impl=' "$tmp/out" || true)
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		{
			echo "$impl $mode $w (run $r): exit status $rc"
			sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
		} >>"$failures"
		echo "tx.sh: FAILED: $impl $mode $w (exit $rc); see the report" >&2
		printf '%s\t%s\t%s\t%s\tNA\tNA\tNA\tfail(%s)\n' "$r" "$mode" "$w" "$impl" "$rc" >>"$results"
		return
	fi
	if [ -s "$tmp/err" ]; then
		{
			echo "$impl $mode $w (run $r): succeeded but wrote to stderr:"
			sed 's/^/    /' "$tmp/err" | head -10
		} >>"$failures"
	fi
	local tx secs ns
	tx=$(sed -n 's/.* tx=\([^ ]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* seconds=\([^ ]*\).*/\1/p' <<<"$line")
	ns=$(sed -n 's/.* ns_per_tx=\([^ ]*\).*/\1/p' <<<"$line")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$r" "$mode" "$w" "$impl" "$tx" "$secs" "$ns" >>"$results"
}

start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)
echo "tx.sh: $runs runs x ${#workloads[@]} workloads x ${modes[*]} x ${impls[*]};" \
	"pools on $dir ($fstype)" >&2
for ((r = 1; r <= runs; r++)); do
	for mode in "${modes[@]}"; do
		for w in "${workloads[@]}"; do
			for ((k = 0; k < ${#impls[@]}; k++)); do
				run_one "${impls[$(((k + r) % ${#impls[@]}))]}" "$mode" "$w" "$r"
			done
		done
	done
	echo "tx.sh: run $r/$runs done ($((SECONDS - start)) s)" >&2
done
time_s=$((SECONDS - start))

# ---- counts ---------------------------------------------------------------
counts=$tmp/tx-counts.tsv
printf 'mode\tworkload\timpl\tmethod\tcounter\tper_tx\n' >"$counts"
count_notes=$tmp/count-notes.txt
: >"$count_notes"

# count_two IMPL MODE W TOOL: run the program with --tx N1 and --tx N2 under
# TOOL (a function that runs "$@" and prints "counter value" lines) and
# record (value2 - value1) / (N2 - N1) per counter.
count_two() {
	local impl=$1 mode=$2 w=$3 method=$4 n rc
	local -a cmd
	cmd_for "$impl" "$mode"
	for n in $count_n1 $count_n2; do
		rm -f "$tmp/pool" "$tmp/c.$n"
		rc=0
		"count_$method" "$tmp/c.$n" "${cmd[@]}" "$w" --tx "$n" >"$tmp/out" 2>"$tmp/err" || rc=$?
		rm -f "$tmp/pool"
		if [ $rc -ne 0 ] || ! grep -q '^impl=' "$tmp/out"; then
			{
				echo "counting $method: $impl $mode $w --tx $n: exit status $rc"
				sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
			} >>"$failures"
			echo "tx.sh: FAILED: counting $method for $impl $mode $w (exit $rc)" >&2
			return
		fi
	done
	python3 - "$tmp/c.$count_n1" "$tmp/c.$count_n2" $((count_n2 - count_n1)) \
		"$mode" "$w" "$impl" "$method" >>"$counts" <<'EOF'
import sys
a, b, n, mode, w, impl, method = sys.argv[1:]
def load(p):
    d = {}
    for l in open(p):
        k, v = l.split()
        d[k] = d.get(k, 0) + int(v)
    return d
x, y = load(a), load(b)
for k in sorted(set(x) | set(y)):
    print('%s\t%s\t%s\t%s\t%s\t%.2f' % (mode, w, impl, method, k,
                                         (y.get(k, 0) - x.get(k, 0)) / int(n)))
EOF
}

# count_msync OUT CMD...: msync calls, from strace's summary.
count_msync() {
	local out=$1
	shift
	strace -f -c -e trace=msync -o "$tmp/strace" "$@"
	awk '$NF == "msync" { n = $4 } END { print "msync", n + 0 }' "$tmp/strace" >"$out"
}

# count_sfence OUT CMD...: sfence instructions executed, from the uprobes
# traced for CMD's process (and any it forks) only.
count_sfence() {
	local out=$1 lost
	shift
	: >"$inst/trace"
	(
		echo "$BASHPID" >"$inst/set_event_pid"
		echo 1 >"$inst/tracing_on"
		exec "$@"
	)
	echo 0 >"$inst/tracing_on"
	: >"$inst/set_event_pid"
	lost=$(cat "$inst"/per_cpu/cpu*/stats | awk '/^overrun:/ { n += $2 } END { print n + 0 }')
	if [ "$lost" -ne 0 ]; then
		echo "tx.sh: the trace buffer lost $lost events" >&2
		return 1
	fi
	echo "sfence $(grep -vc '^#' "$inst/trace" || true)" >"$out"
}

# count_stats OUT CMD...: btd's own flushes and drains (BTD_STATS), under
# the preload.
count_stats() {
	local out=$1
	shift
	rm -f "$tmp/stats"
	env LD_PRELOAD="$preload" BTD_POLICY=none BTD_STATS="$tmp/stats" "$@"
	sed -n 's/.*flushes for \([^ ]*\) *\([0-9]*\), drains \([0-9]*\).*/\1 \2 \3/p' "$tmp/stats" |
		awk '{ print "flushes:" $1, $2; print "drains:" $1, $3
		       print "flushes:all", $2; print "drains:all", $3 }' >"$out"
	echo "flushes:all 0" >>"$out"
}

# Uprobes on every sfence of the libraries that flush: libpmem (both load
# it), libpmemobj and libbtd.
setup_probes() {
	local lib libs=() i=0 a off
	if ! command -v objdump >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
		echo "objdump or readelf missing (apt-get install binutils): no sfence counts" >>"$count_notes"
		return 1
	fi
	for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		if [ -w "$t/uprobe_events" ]; then
			tracefs=$t
			break
		fi
	done
	if [ -z "$tracefs" ]; then
		echo "no writable uprobe_events (root, and mount -t tracefs nodev /sys/kernel/tracing):" \
			"no sfence counts" >>"$count_notes"
		return 1
	fi
	for lib in libpmem.so.1 libpmemobj.so.1; do
		a=
		[ -x "$obj_bench" ] && a=$(ldd "$obj_bench" | awk -v l="$lib" '$1 == l { print $3 }')
		[ -n "$a" ] || a=$(PATH=$PATH:/sbin:/usr/sbin ldconfig -p 2>/dev/null |
			awk -v l="$lib" '$1 == l { print $NF; exit }')
		[ -n "$a" ] && libs+=("$(readlink -f "$a")")
	done
	a=
	[ -x "$btd_bench" ] && a=$(ldd "$btd_bench" | awk '$1 == "libbtd.so.0" { print $3 }')
	[ -n "$a" ] && libs+=("$(readlink -f "$a")")
	: >"$tmp/probes"
	for lib in "${libs[@]}"; do
		# file offset = address - segment address + segment offset
		while read -r off; do
			echo "p:$probe_group/s$i $lib:0x$off" >>"$tmp/probes"
			i=$((i + 1))
		done < <(objdump -d --no-show-raw-insn "$lib" | awk '$2 == "sfence" { sub(":", "", $1); print $1 }' |
			python3 -c '
import subprocess, sys
segs = []
for l in subprocess.run(["readelf", "-lW", sys.argv[1]], capture_output=True, text=True).stdout.splitlines():
    f = l.split()
    if f and f[0] == "LOAD":
        segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
for a in sys.stdin.read().split():
    a = int(a, 16)
    for va, off, sz in segs:
        if va <= a < va + sz:
            print("%x" % (a - va + off))
' "$lib")
		echo "sfence sites probed in $(basename "$lib"): $(grep -c " $lib:" "$tmp/probes" || true)" >>"$count_notes"
	done
	if [ "$i" -eq 0 ]; then
		echo "no sfence instruction found in ${libs[*]}: no sfence counts" >>"$count_notes"
		return 1
	fi
	probes_added=1
	if ! cat "$tmp/probes" >>"$tracefs/uprobe_events" 2>"$tmp/err"; then
		echo "adding uprobes failed ($(cat "$tmp/err")): no sfence counts" >>"$count_notes"
		return 1
	fi
	# A trace instance of our own: its buffer, its pid filter, its events.
	inst=$tracefs/instances/$probe_group
	# Recording stays off but while a counted program runs; the probes
	# stay registered (registering them takes seconds).
	if ! mkdir "$inst" 2>"$tmp/err" || ! echo 0 >"$inst/tracing_on" ||
		! echo 4096 >"$inst/buffer_size_kb" ||
		! echo 1 >"$inst/options/event-fork" ||
		! echo 1 >"$inst/events/$probe_group/enable" 2>"$tmp/err"; then
		echo "tracing the uprobes failed ($(cat "$tmp/err")): no sfence counts" >>"$count_notes"
		return 1
	fi
}

if [ $count -eq 1 ]; then
	start_count=$SECONDS
	methods=()
	if command -v strace >/dev/null 2>&1; then
		methods+=(msync)
	else
		echo "strace missing (scripts/setup.sh --bench): no msync counts" >>"$count_notes"
	fi
	setup_probes && methods+=(sfence)
	for mode in "${modes[@]}"; do
		for w in "${workloads[@]}"; do
			for impl in "${impls[@]}"; do
				for m in "${methods[@]}"; do
					count_two "$impl" "$mode" "$w" "$m"
				done
				if [ "$impl" = btd ] && [ -e "$preload" ]; then
					count_two btd "$mode" "$w" stats
				fi
			done
		done
	done
	echo "tx.sh: counts done ($((SECONDS - start_count)) s)" >&2
fi

# ---- report ---------------------------------------------------------------
mkdir -p "$script_dir/results"
commit=$(bench_commit "$root")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)
pmemobj_version=$(pkg-config --modversion libpmemobj 2>/dev/null || echo unknown)

TX_RUNS=$runs TX_MODES="${modes[*]}" TX_WORKLOADS="${workloads[*]}" TX_COMMIT=$commit \
	TX_UNAME=$(uname -srm) TX_CPU=$cpu TX_NPROC=$(nproc) TX_FS=$fstype \
	TX_SECONDS=$seconds TX_LOAD_START=$load_start TX_LOAD_END=$load_end TX_TIME_S=$time_s \
	TX_PMEMOBJ=$pmemobj_version TX_COUNT=$count TX_DIR_SHM=$([ "$dir" = /dev/shm ] && echo 1 || echo 0) \
	python3 - "$results" "$counts" "$failures" "$count_notes" <<'EOF' >"$tmp/tx.md"
import csv, os, statistics, sys

E = os.environ
res_path, counts_path, fail_path, notes_path = sys.argv[1:5]
runs = int(E['TX_RUNS'])
modes = E['TX_MODES'].split()
workloads = E['TX_WORKLOADS'].split()
rows = list(csv.DictReader(open(res_path), delimiter='\t'))
counts = list(csv.DictReader(open(counts_path), delimiter='\t'))

def med(mode, w, impl):
    v = [float(r['ns_per_tx']) for r in rows if r['mode'] == mode and r['workload'] == w
         and r['impl'] == impl and r['status'] == 'ok']
    return (statistics.median(v), len(v), min(v), max(v)) if v else (None, 0, None, None)

def paired(mode, w):
    # btd and pmemobj run back to back in every run: the median of the
    # runs' own ratios cancels what drifts between runs
    by = {}
    for r in rows:
        if r['mode'] == mode and r['workload'] == w and r['status'] == 'ok':
            by.setdefault(r['run'], {})[r['impl']] = float(r['ns_per_tx'])
    v = [x['btd'] / x['pmemobj'] for x in by.values() if 'btd' in x and 'pmemobj' in x]
    return statistics.median(v) if v else None

def cnt(mode, w, impl, method, counter):
    for c in counts:
        if (c['mode'], c['workload'], c['impl'], c['method'], c['counter']) == \
                (mode, w, impl, method, counter):
            return float(c['per_tx'])
    return None

def f(x, d=2):
    if x is None:
        return 'n/a'
    if d == 0 or x >= 1000:
        return '{:,.0f}'.format(x)
    return ('%.' + str(d) + 'f') % x

def ranges(w):
    return int(w.split('x')[0])

names = {
    '1x64': '1 x 64 B',
    '4x64': '4 x 64 B, one object',
    '16x64': '16 x 64 B, one object',
    '4x64-spread': '4 x 64 B, 4 objects',
    '16x64-spread': '16 x 64 B, 16 objects',
    '1x4096': '1 x 4 KiB',
}
mode_text = {
    'msync': 'without PMEM_IS_PMEM_FORCE: both persist with msync(2)',
    'force': 'PMEM_IS_PMEM_FORCE=1: both flush cache lines and fence (libpmem)',
}
fence = {'msync': 'msync', 'force': 'sfence'}

out = []
P = out.append
P('# Transaction cost, btd against libpmemobj (bench/tx.sh)')
P('')
P('commit %s; %s; %s, %s CPUs; libpmemobj %s; pools on %s (%s), 64 MiB, fresh per run.' % (
  E['TX_COMMIT'], E['TX_UNAME'], E['TX_CPU'], E['TX_NPROC'], E['TX_PMEMOBJ'],
  '/dev/shm' if E['TX_DIR_SHM'] == '1' else 'the --dir directory', E['TX_FS']))
P('Load average at start: %s; at end: %s.  Timed runs: %s s.' % (
  E['TX_LOAD_START'], E['TX_LOAD_END'], E['TX_TIME_S']))
P('')
P('A transaction: begin, add the ranges (btd_tx_add / pmemobj_tx_add_range), '
  'increment every word of them, commit.  ns per transaction, median of %d runs '
  '(>= %s s each, interleaved).  btd/pmemobj is the ratio of the medians; "per '
  'run" the median of each run\'s own ratio (the two ran back to back).  Target: '
  'btd/pmemobj <= 0.5 (by both; "borderline" when only one is).  Fences per '
  'transaction: msync calls (strace) without PMEM_IS_PMEM_FORCE, where every '
  'flush is an msync that writes back and waits; sfence instructions executed '
  '(uprobes) with it.  Counts are (count of 150 transactions - count of 50) '
  '/ 100.' % (runs, E['TX_SECONDS']))
P('')
for mode in modes:
    P('## %s' % mode_text[mode])
    P('')
    P('| workload | btd ns | pmemobj ns | btd/pmemobj | per run | <= 0.5 | btd fences/tx | '
      'pmemobj fences/tx |')
    P('|---|---:|---:|---:|---:|---|---:|---:|')
    for w in workloads:
        b, bn, _, _ = med(mode, w, 'btd')
        o, on, _, _ = med(mode, w, 'pmemobj')
        r = b / o if b and o else None
        pr = paired(mode, w)
        if r is None or pr is None:
            verdict = 'n/a'
        elif r <= 0.5 and pr <= 0.5:
            verdict = 'met'
        elif r > 0.5 and pr > 0.5:
            verdict = '**missed**'
        else:
            verdict = 'borderline'
        cells = [names.get(w, w), f(b, 0), f(o, 0), f(r), f(pr), verdict,
                 f(cnt(mode, w, 'btd', fence[mode], fence[mode])),
                 f(cnt(mode, w, 'pmemobj', fence[mode], fence[mode]))]
        for i, (n, impl) in ((1, (bn, 'btd')), (2, (on, 'pmemobj'))):
            if n and n != runs:
                cells[i] += ' (%d/%d ok)' % (n, runs)
        P('| ' + ' | '.join(cells) + ' |')
    P('')
    P('Spread, min - max ns: ' + '; '.join(
        '%s: btd %s - %s, pmemobj %s - %s' % ((w,) + tuple(
            f(x, 0) for x in med(mode, w, 'btd')[2:] + med(mode, w, 'pmemobj')[2:]))
        for w in workloads) + '.')
    P('')

if E['TX_COUNT'] == '1':
    P('## btd\'s own counts (BTD_STATS, under libbtd_preload.so)')
    P('')
    P('Per transaction.  "tx" = the persists btd counts for transactions, "all" = '
      'every kind (a transaction that takes nothing else should have all = tx).  '
      'On the msync path a flush is one msync and a drain costs nothing; on the '
      'cache-line path a flush is a range written back line by line and a drain '
      'is one sfence.  The model (btd.h): K added ranges cost K + 2 fences.')
    P('')
    P('| mode | workload | flushes tx | drains tx | flushes all | drains all | model K + 2 '
      '| msync (strace) | sfence (uprobes) |')
    P('|---|---|---:|---:|---:|---:|---:|---:|---:|')
    for mode in modes:
        for w in workloads:
            P('| %s | %s | %s | %s | %s | %s | %d | %s | %s |' % (
                mode, names.get(w, w),
                f(cnt(mode, w, 'btd', 'stats', 'flushes:transactions')),
                f(cnt(mode, w, 'btd', 'stats', 'drains:transactions')),
                f(cnt(mode, w, 'btd', 'stats', 'flushes:all')),
                f(cnt(mode, w, 'btd', 'stats', 'drains:all')),
                ranges(w) + 2,
                f(cnt(mode, w, 'btd', 'msync', 'msync')),
                f(cnt(mode, w, 'btd', 'sfence', 'sfence'))))
    P('')
    P('## Both, every count')
    P('')
    P('| mode | workload | btd msync | pmemobj msync | btd sfence | pmemobj sfence |')
    P('|---|---|---:|---:|---:|---:|')
    for mode in modes:
        for w in workloads:
            P('| %s | %s | %s | %s | %s | %s |' % (
                mode, names.get(w, w),
                f(cnt(mode, w, 'btd', 'msync', 'msync')),
                f(cnt(mode, w, 'pmemobj', 'msync', 'msync')),
                f(cnt(mode, w, 'btd', 'sfence', 'sfence')),
                f(cnt(mode, w, 'pmemobj', 'sfence', 'sfence'))))
    P('')
    notes = open(notes_path).read().strip()
    if notes:
        P('Counting: ' + '; '.join(notes.splitlines()) + '.')
        P('')

fl = open(fail_path).read().strip()
P('## Errors')
P('')
if fl:
    P('Failed runs, or runs that wrote to stderr:')
    P('')
    for l in fl.splitlines():
        P('    ' + l)
else:
    P('None: every run exited 0, printed its line, wrote nothing to stderr, and every '
      'word held the number of transactions run.')
P('')
print('\n'.join(out))
EOF

cp "$tmp/tx.md" "$script_dir/results/tx.md"
cp "$results" "$script_dir/results/tx.tsv"
cp "$counts" "$script_dir/results/tx-counts.tsv"
cat "$tmp/tx.md"
echo >&2
echo "tx.sh: total $((SECONDS - start)) s; tables in bench/results/tx.md, runs in" \
	"bench/results/tx.tsv, counts in bench/results/tx-counts.tsv" >&2
