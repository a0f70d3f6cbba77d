#!/usr/bin/env bash
# bench/heap_run.sh: the persistent-heap benchmarks -- allocation throughput
# against jemalloc and libpmemobj, reopen/recovery time, flush counts.
#
#   bench/heap_run.sh [--runs N] [--build DIR] [--scale F] [--no-force]
#                     [--recovery-runs N] [--sizes "64 256 1024"]
#
# Builds nothing: run `ninja -C build` first.
#
# THROUGHPUT.  bench/heap_bench.c (workloads in bench/heap_workloads.h):
# threadtest T=1 and T=2, larson T=1 and T=2, prodcon T=2 (one producer/consumer
# pair) and publish, each N times (--runs, default 5) under every allocator,
# interleaved round-robin with the order rotated from run to run:
#   jemalloc       heap_bench, LD_PRELOAD=libjemalloc.so.2 (JEMALLOC=path
#                  overrides the search)
#   btd-none       heap_bench, LD_PRELOAD=libbtd_preload.so BTD_POLICY=none
#                  (everything through the interposer to jemalloc)
#   btd-all        heap_bench, LD_PRELOAD=libbtd_preload.so BTD_POLICY=all:
#                  every malloc from the persistent heap, in a fresh pool
#                  (BTD_POOL_SIZE=4G) under /dev/shm per run
#   btd-linked     heap_bench_btd: btd_malloc/btd_free of libbtd, no
#                  interposer, fresh pool per run
#   pmemobj        pmemobj_bench: pmemobj_alloc/pmemobj_free, fresh 2 GiB
#                  pool under /dev/shm per run (skipped if not built)
#   btd-all-force, pmemobj-force
#                  the same with PMEM_IS_PMEM_FORCE=1 (--no-force skips them)
# All pools are on /dev/shm (tmpfs).  Without PMEM_IS_PMEM_FORCE both btd
# and libpmemobj persist with msync(2) there; with it both flush cache lines
# (clwb/clflushopt + sfence) as on real persistent memory.
# N (ops per thread) is smaller for libpmemobj, which is ~100x slower; Mops/s
# are per second of wall time, so they compare across N.  --scale F
# multiplies every N.
#
# RECOVERY.  bench/recovery_bench.c: for each size (--sizes, MiB of live
# 64-byte list nodes) a clean pool is built once and opened --recovery-runs
# times (default 3; each open closes cleanly again), and --recovery-runs
# times a pool is built and left dirty (_exit without close) and reopened,
# which runs the recovery GC; every open checks the whole list.  The last
# recovered pool is checked with `btd check`.
#
# FLUSHES.  One threadtest and one larson (T=2) under btd-all with
# BTD_STATS=<file>: the "persists for ..." lines of the report, per small
# malloc/free.
#
# Writes bench/results/heap.md (tables), heap.tsv (every throughput run),
# recovery.tsv (every open), heap.png and recovery.png (gnuplot, if
# installed), and copies the two PNGs to bench/heap.png and
# bench/recovery.png.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")

runs=5
rec_runs=3
build=build
scale=1
force=1
sizes="64 256 1024"
pmemobj_pool_mb=2048

usage() {
	cat >&2 <<'EOF'
usage: bench/heap_run.sh [--runs N] [--build DIR] [--scale F] [--no-force]
                         [--recovery-runs N] [--sizes "MiB ..."]
  --runs N           throughput runs per workload and allocator (default 5)
  --build DIR        meson build dir, relative to the repo root unless
                     absolute (default build)
  --scale F          multiply the op counts by F (default 1)
  --no-force         skip the PMEM_IS_PMEM_FORCE=1 variants
  --recovery-runs N  opens per size and kind (default 3)
  --sizes "..."      live heap sizes of the recovery benchmark in MiB
                     (default "64 256 1024")
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || { usage; exit 2; }; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--build) [ $# -ge 2 ] || { usage; exit 2; }; build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	--scale) [ $# -ge 2 ] || { usage; exit 2; }; scale=$2; shift 2 ;;
	--scale=*) scale=${1#--scale=}; shift ;;
	--no-force) force=0; shift ;;
	--recovery-runs) [ $# -ge 2 ] || { usage; exit 2; }; rec_runs=$2; shift 2 ;;
	--recovery-runs=*) rec_runs=${1#--recovery-runs=}; shift ;;
	--sizes) [ $# -ge 2 ] || { usage; exit 2; }; sizes=$2; shift 2 ;;
	--sizes=*) sizes=${1#--sizes=}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "heap_run.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done

for v in "$runs" "$rec_runs"; do
	if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
		echo "heap_run.sh: --runs and --recovery-runs want a positive integer, got '$v'" >&2
		exit 2
	fi
done
if ! [[ $scale =~ ^[0-9]*\.?[0-9]+$ ]]; then
	echo "heap_run.sh: --scale wants a positive number, got '$scale'" >&2
	exit 2
fi
for s in $sizes; do
	if ! [[ $s =~ ^[1-9][0-9]*$ ]]; then
		echo "heap_run.sh: --sizes wants MiB as positive integers, got '$s'" >&2
		exit 2
	fi
done

case $build in
/*) ;;
*) build=$root/$build ;;
esac

heap_bench=$build/bench/heap_bench
heap_bench_btd=$build/bench/heap_bench_btd
pmemobj_bench=$build/bench/pmemobj_bench
recovery_bench=$build/bench/recovery_bench
preload=$build/interpose/libbtd_preload.so
btd_tool=$build/tools/btd
missing=0
for f in "$heap_bench" "$heap_bench_btd" "$recovery_bench" "$preload" "$btd_tool"; do
	if [ ! -x "$f" ] && [ ! -e "$f" ]; then
		echo "heap_run.sh: missing build product: $f" >&2
		missing=1
	fi
done
if [ $missing -ne 0 ]; then
	echo "heap_run.sh: build first; from the repo root run: meson setup build && ninja -C build" >&2
	exit 1
fi
have_pmemobj=1
if [ ! -x "$pmemobj_bench" ]; then
	echo "heap_run.sh: $pmemobj_bench not built (libpmemobj-dev missing when meson" \
		"configured?): skipping the libpmemobj columns" >&2
	have_pmemobj=0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "heap_run.sh: python3 is needed to compute the medians" >&2
	exit 1
fi
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
	echo "heap_run.sh: needs a writable /dev/shm (tmpfs) for the pools" >&2
	exit 1
fi

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jemalloc=$(find_jemalloc)
if [ -z "$jemalloc" ] || [ ! -e "$jemalloc" ]; then
	echo "heap_run.sh: libjemalloc.so.2 not found (ldconfig -p, multiarch lib dir);" \
		"install libjemalloc2 or set JEMALLOC=/path/to/libjemalloc.so.2" >&2
	exit 1
fi

# Settings inherited from the caller's environment would change what is
# measured: start from none.
while read -r v; do
	unset "$v"
done < <(compgen -e | grep -E '^(BTD_|PMEM_|PMEMOBJ_)' || true)
unset LD_PRELOAD

tmp=$(mktemp -d /dev/shm/btd-heap-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# workload:threads:N (jemalloc, btd):N (pmemobj)
configs=(
	"threadtest:1:20000000:1000000"
	"threadtest:2:20000000:1000000"
	"larson:1:20000000:1000000"
	"larson:2:20000000:1000000"
	"prodcon:2:5000000:250000"
	"publish:1:300000:300000"
)
allocs=(jemalloc btd-none btd-all btd-linked)
[ $have_pmemobj -eq 1 ] && allocs+=(pmemobj)
if [ $force -eq 1 ]; then
	allocs+=(btd-all-force)
	[ $have_pmemobj -eq 1 ] && allocs+=(pmemobj-force)
fi

scaled() {
	python3 -c 'import sys; print(max(1, int(float(sys.argv[1]) * float(sys.argv[2]))))' "$1" "$scale"
}

results=$tmp/heap.tsv
printf 'run\tworkload\tthreads\talloc\tn_per_thread\tops\tseconds\tmops\tpersist\tstatus\tloadavg\n' >"$results"
failures=$tmp/failures.txt
: >"$failures"

# run_one ALLOC WORKLOAD T N RUN: one line to $results.
run_one() {
	local alloc=$1 w=$2 t=$3 n=$4 r=$5 line rc=0 load
	local -a cmd args
	local pool=$tmp/pool

	if [ "$w" = publish ]; then
		args=("$w" "$n")
	else
		args=("$w" "$t" "$n")
	fi
	rm -f "$pool"
	case $alloc in
	jemalloc) cmd=(env LD_PRELOAD="$jemalloc" "$heap_bench") ;;
	btd-none) cmd=(env LD_PRELOAD="$preload" BTD_POLICY=none "$heap_bench") ;;
	btd-all) cmd=(env LD_PRELOAD="$preload" BTD_POLICY=all BTD_POOL="$pool"
		BTD_POOL_SIZE=4G "$heap_bench") ;;
	btd-all-force) cmd=(env LD_PRELOAD="$preload" BTD_POLICY=all BTD_POOL="$pool"
		BTD_POOL_SIZE=4G PMEM_IS_PMEM_FORCE=1 "$heap_bench") ;;
	btd-linked) cmd=(env BTD_POOL="$pool" BTD_POOL_SIZE=4G "$heap_bench_btd") ;;
	pmemobj) cmd=(env PMEMOBJ_BENCH_POOL="$pool" PMEMOBJ_BENCH_POOL_SIZE=$pmemobj_pool_mb
		"$pmemobj_bench") ;;
	pmemobj-force) cmd=(env PMEMOBJ_BENCH_POOL="$pool" PMEMOBJ_BENCH_POOL_SIZE=$pmemobj_pool_mb
		PMEM_IS_PMEM_FORCE=1 "$pmemobj_bench") ;;
	esac
	load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo NA)
	timeout 300 "${cmd[@]}" "${args[@]}" >"$tmp/out" 2>"$tmp/err" || rc=$?
	rm -f "$pool"
	line=$(grep '^workload=' "$tmp/out" || true)
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		{
			echo "$alloc ${args[*]} (run $r): exit status $rc"
			sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
		} >>"$failures"
		echo "heap_run.sh: FAILED: $alloc ${args[*]} (exit $rc); see the report" >&2
		printf '%s\t%s\t%s\t%s\t%s\tNA\tNA\tNA\tNA\tfail(%s)\t%s\n' "$r" "$w" "$t" "$alloc" \
			"$n" "$rc" "$load" >>"$results"
		return
	fi
	if [ -s "$tmp/err" ]; then
		{
			echo "$alloc ${args[*]} (run $r): succeeded but wrote to stderr:"
			sed 's/^/    /' "$tmp/err" | head -10
		} >>"$failures"
	fi
	# workload=W threads=T ops=O seconds=S mops=M [persist=P]
	local ops secs mops persist=-
	ops=$(sed -n 's/.* ops=\([^ ]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* seconds=\([^ ]*\).*/\1/p' <<<"$line")
	mops=$(sed -n 's/.* mops=\([^ ]*\).*/\1/p' <<<"$line")
	if [[ $line == *persist=* ]]; then
		persist=${line##*persist=}
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\t%s\n' "$r" "$w" "$t" "$alloc" "$n" \
		"$ops" "$secs" "$mops" "$persist" "$load" >>"$results"
}

start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)
echo "heap_run: $runs runs x ${#configs[@]} workloads x ${#allocs[@]} allocators" \
	"(${allocs[*]})" >&2
echo "heap_run: jemalloc = $jemalloc; pools under $tmp" >&2
pingpong=$tmp/pingpong.txt
: >"$pingpong"
for ((r = 1; r <= runs; r++)); do
	# The machine's cross-CPU cache-line round trip at this moment (see
	# pingpong in heap_workloads.h): remote frees pay it.
	"$heap_bench" pingpong 2 200000 2>/dev/null |
		sed -n "s/.*ns_per_roundtrip=\([0-9.]*\).*/$r \1/p" >>"$pingpong" || true
	for c in "${configs[@]}"; do
		IFS=: read -r w t n_fast n_slow <<<"$c"
		for ((k = 0; k < ${#allocs[@]}; k++)); do
			a=${allocs[$(((k + r - 1) % ${#allocs[@]}))]}
			case $a in
			pmemobj*) n=$(scaled "$n_slow") ;;
			*) n=$(scaled "$n_fast") ;;
			esac
			run_one "$a" "$w" "$t" "$n" "$r"
		done
	done
	echo "heap_run: throughput run $r/$runs done ($((SECONDS - start)) s)" >&2
done
throughput_s=$((SECONDS - start))

# ---- recovery ----------------------------------------------------------
rec=$tmp/recovery.tsv
printf 'size_mib\tkind\trun\topen_ms\tgbps\twalk_ms\tclose_ms\tok\tstatus\n' >"$rec"
rec_check=$tmp/recovery_check.txt
: >"$rec_check"

# rec_open SIZE KIND RUN POOL: one line to $rec.
rec_open() {
	local size=$1 kind=$2 r=$3 pool=$4 rc=0 line
	timeout 600 "$recovery_bench" open "$pool" >"$tmp/out" 2>"$tmp/err" || rc=$?
	line=$(grep '^open_ms=' "$tmp/out" || true)
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		{
			echo "recovery_bench open ($size MiB, $kind, run $r): exit status $rc"
			sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
		} >>"$failures"
		echo "heap_run.sh: FAILED: recovery_bench open $size MiB $kind (exit $rc)" >&2
		printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\t0\tfail(%s)\n' "$size" "$kind" "$r" "$rc" >>"$rec"
		return
	fi
	# open_ms=.. nodes=.. live_mib=.. gbps=.. walk_ms=.. close_ms=.. ok=..
	local f
	declare -A kv=()
	for f in $line; do
		kv[${f%%=*}]=${f#*=}
	done
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$size" "$kind" "$r" "${kv[open_ms]}" \
		"${kv[gbps]}" "${kv[walk_ms]}" "${kv[close_ms]}" "${kv[ok]}" >>"$rec"
}

rec_build() {
	local size=$1 pool=$2 mode=${3:-} rc=0
	rm -f "$pool"
	timeout 600 "$recovery_bench" build "$size" "$pool" $mode >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ $rc -ne 0 ]; then
		{
			echo "recovery_bench build $size $mode: exit status $rc"
			sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
		} >>"$failures"
		echo "heap_run.sh: FAILED: recovery_bench build $size $mode (exit $rc)" >&2
		return 1
	fi
}

start_rec=$SECONDS
for size in $sizes; do
	clean=$tmp/clean.pool
	dirty=$tmp/dirty.pool
	have_clean=1
	rec_build "$size" "$clean" || have_clean=0
	for ((r = 1; r <= rec_runs; r++)); do
		if [ $have_clean -eq 1 ]; then
			rec_open "$size" clean "$r" "$clean"
		fi
		if rec_build "$size" "$dirty" crash; then
			rec_open "$size" dirty "$r" "$dirty"
		fi
	done
	if [ -e "$dirty" ]; then
		if "$btd_tool" check "$dirty" >"$tmp/check" 2>&1; then
			echo "$size MiB: btd check after recovery: ok ($(head -1 "$tmp/check" | tr -s ' '))" \
				>>"$rec_check"
		else
			echo "$size MiB: btd check after recovery FAILED:" >>"$rec_check"
			sed 's/^/    /' "$tmp/check" >>"$rec_check"
			cat "$tmp/check" >>"$failures"
		fi
	fi
	rm -f "$clean" "$dirty"
	echo "heap_run: recovery $size MiB done ($((SECONDS - start_rec)) s)" >&2
done
recovery_s=$((SECONDS - start_rec))

# ---- flush counts -------------------------------------------------------
stats_txt=$tmp/stats.txt
: >"$stats_txt"
for c in "threadtest 2 $(scaled 10000000)" "larson 2 $(scaled 10000000)"; do
	# shellcheck disable=SC2086
	set -- $c
	rm -f "$tmp/pool" "$tmp/stats.one"
	rc=0
	env LD_PRELOAD="$preload" BTD_POLICY=all BTD_POOL="$tmp/pool" BTD_POOL_SIZE=4G \
		BTD_STATS="$tmp/stats.one" "$heap_bench" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	rm -f "$tmp/pool"
	if [ $rc -ne 0 ]; then
		echo "heap_run.sh: FAILED: BTD_STATS run of $c (exit $rc)" >&2
		{ echo "BTD_STATS run $c: exit $rc"; cat "$tmp/out" "$tmp/err"; } >>"$failures"
		continue
	fi
	{
		echo "### $c"
		cat "$tmp/out"
		cat "$tmp/stats.one" 2>/dev/null || echo "(no BTD_STATS report written)"
	} >>"$stats_txt"
done

# ---- report ----------------------------------------------------------------
mkdir -p "$script_dir/results"
commit=$(bench_commit "$root")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)

HB_RUNS=$runs HB_ALLOCS="${allocs[*]}" HB_CONFIGS="${configs[*]}" HB_COMMIT=$commit \
	HB_UNAME=$(uname -srm) HB_CPU=$cpu HB_NPROC=$(nproc) HB_JEMALLOC=$(basename "$jemalloc") \
	HB_LOAD_START=$load_start HB_LOAD_END=$load_end HB_TPUT_S=$throughput_s \
	HB_REC_S=$recovery_s \
	python3 - "$results" "$rec" "$stats_txt" "$failures" "$rec_check" "$tmp" "$pingpong" \
	<<'EOF' >"$tmp/heap.md"
import csv, os, re, statistics, sys

E = os.environ

res_path, rec_path, stats_path, fail_path, check_path, tmp = sys.argv[1:7]
runs = int(E['HB_RUNS'])
rows = list(csv.DictReader(open(res_path), delimiter='\t'))
rec = list(csv.DictReader(open(rec_path), delimiter='\t'))
allocs = E['HB_ALLOCS'].split()
configs = [tuple(c.split(':')[:2]) for c in E['HB_CONFIGS'].split()]

def med(w, t, a, key='mops'):
    v = [float(r[key]) for r in rows if r['workload'] == w and r['threads'] == t
         and r['alloc'] == a and r['status'] == 'ok']
    return (statistics.median(v), len(v), min(v), max(v)) if v else (None, 0, None, None)

def persist_of(w, t, a):
    p = {r['persist'] for r in rows if r['workload'] == w and r['threads'] == t
         and r['alloc'] == a and r['status'] == 'ok'}
    return ','.join(sorted(p))

def fmt(x, d=1):
    if x is None:
        return 'n/a'
    return ('%.' + str(d) + 'f') % x if x < 1000 else '%.0f' % x

out = []
P = out.append
P('# Persistent heap benchmarks (bench/heap_run.sh)')
P('')
P('commit %s; %s; %s, %s CPUs; jemalloc = %s; pools on /dev/shm (tmpfs)' % (
  E['HB_COMMIT'], E['HB_UNAME'], E['HB_CPU'], E['HB_NPROC'], E['HB_JEMALLOC']))
P('')
P('Load average at start: %s; at end: %s (other processes on the machine make the '
  'two-thread workloads, prodcon above all, noisy).  Time: throughput %s s, '
  'recovery %s s.' % (E['HB_LOAD_START'], E['HB_LOAD_END'], E['HB_TPUT_S'], E['HB_REC_S']))
P('')
pp = [l.split() for l in open(sys.argv[7]).read().splitlines() if l.strip()]
if pp:
    P('Cross-CPU cache-line round trip (heap_bench pingpong) at the start of each run: %s ns.  '
      'Every remote free pays such transfers; on a VM their price changes when the host '
      'moves the virtual CPUs, and the two-thread workloads (prodcon above all) follow it.' %
      ', '.join('%.0f' % float(x[1]) for x in pp))
    P('')
P('## Throughput: Mops/s, median of %d runs (interleaved)' % runs)
P('')
P('An op is one malloc or one free (publish: one whole publish iteration). '
  'Higher is better.  btd-all = LD_PRELOAD=libbtd_preload.so BTD_POLICY=all; '
  'btd-linked = btd_malloc/btd_free; *-force = PMEM_IS_PMEM_FORCE=1 (cache-line '
  'flushes instead of msync).')
P('')
hdr = '| workload | T |' + ''.join(' %s |' % a for a in allocs)
P(hdr)
P('|---|---:|' + '---:|' * len(allocs))
for w, t in configs:
    cells = []
    for a in allocs:
        m, n, lo, hi = med(w, t, a)
        c = fmt(m, 2 if (m is not None and m < 10) else 1)
        if n != runs:
            c += ' (%d/%d ok)' % (n, runs)
        if w == 'publish' and persist_of(w, t, a) == 'none':
            c += ' †'
        cells.append(c)
    P('| %s | %s |' % (w, t) + ''.join(' %s |' % c for c in cells))
P('')
P('† no durability at all: jemalloc (and btd-none, whose blocks are jemalloc\'s) has no '
  'persistent memory, so publish there is malloc + write + free with no persist.  '
  'Every other publish persists the 64-byte block and then the 8-byte slot '
  '(btd_persist / pmemobj_persist): two msyncs (or two flush+fence) per op.')
P('')
P('Spread: min - max Mops/s over the runs:')
P('')
P(hdr)
P('|---|---:|' + '---:|' * len(allocs))
for w, t in configs:
    cells = []
    for a in allocs:
        m, n, lo, hi = med(w, t, a)
        cells.append('%s - %s' % (fmt(lo, 2), fmt(hi, 2)) if m is not None else 'n/a')
    P('| %s | %s |' % (w, t) + ''.join(' %s |' % c for c in cells))
P('')

def ratio(num, den):
    return num / den if num and den else None

P('## Targets')
P('')
P('time ratio btd/jemalloc = jemalloc Mops / btd Mops (target <= 1.3 on threadtest, '
  'larson, prodcon); speedup over libpmemobj = btd Mops / pmemobj Mops (target >= 10 '
  'on the alloc/free workloads).')
P('')
cols = [('btd-all / jemalloc time', 'jemalloc', 'btd-all', 1.3, 'le'),
        ('btd-none / jemalloc time', 'jemalloc', 'btd-none', None, None),
        ('btd-linked / jemalloc time', 'jemalloc', 'btd-linked', None, None),
        ('btd-all vs pmemobj speedup', 'btd-all', 'pmemobj', 10, 'ge'),
        ('btd-all-force vs pmemobj-force speedup', 'btd-all-force', 'pmemobj-force', 10, 'ge')]
cols = [c for c in cols if c[1] in allocs and c[2] in allocs]
P('| workload | T |' + ''.join(' %s |' % c[0] for c in cols))
P('|---|---:|' + '---:|' * len(cols))
for w, t in configs:
    cells = []
    for name, a, b, target, how in cols:
        ma, mb = med(w, t, a)[0], med(w, t, b)[0]
        # jemalloc Mops / btd Mops = btd time / jemalloc time;
        # btd Mops / pmemobj Mops = how many times faster btd is
        r = ratio(ma, mb)
        if r is None:
            cells.append('n/a')
            continue
        c = '%.2f' % r if r < 100 else '%.0f' % r
        if w == 'publish' and 'jemalloc' in name:
            c += ' (jemalloc not durable)'
        elif w == 'publish':
            c += ' (no target: msync/flush bound)'
        elif target is not None:
            ok = r <= target if how == 'le' else r >= target
            c += ' %s' % ('met' if ok else '**MISSED**')
        cells.append(c)
    P('| %s | %s |' % (w, t) + ''.join(' %s |' % c for c in cells))
P('')

# ---- recovery
P('## Reopen and recovery: median of the opens per size')
P('')
P('Live heap = a linked list of 64-byte nodes (nodes x 64 B), one named root.  '
  'dirty = built, then _exit without close: btd_cluster_create runs the recovery GC; '
  'clean = closed with btd_cluster_destroy, then reopened.  GB/s = live bytes / '
  'dirty open time (1 GB = 1e9 B).  Targets: clean reopen < 10 ms at any size; '
  'recovery >= 1 GB/s of live heap.  Every open walked and checked the whole list.')
P('')
P('| live MiB | dirty reopen ms | recovery GB/s | clean reopen ms | dirty runs ok | '
  'clean runs ok | close ms (after clean open) | list walk ms after clean / dirty open '
  '| recovery >= 1 GB/s | clean < 10 ms |')
P('|---:|---:|---:|---:|---:|---:|---:|---:|---|---|')
sizes = list(dict.fromkeys(r['size_mib'] for r in rec))
recplot = []
for s in sizes:
    def rv(kind, key):
        v = [float(r[key]) for r in rec if r['size_mib'] == s and r['kind'] == kind
             and r['status'] == 'ok' and r['ok'] == '1']
        return (statistics.median(v), len(v)) if v else (None, 0)
    nd = len([r for r in rec if r['size_mib'] == s and r['kind'] == 'dirty'])
    nc = len([r for r in rec if r['size_mib'] == s and r['kind'] == 'clean'])
    d, dn = rv('dirty', 'open_ms')
    g, _ = rv('dirty', 'gbps')
    c, cn = rv('clean', 'open_ms')
    cl, _ = rv('clean', 'close_ms')
    wc, _ = rv('clean', 'walk_ms')
    wd, _ = rv('dirty', 'walk_ms')
    P('| %s | %s | %s | %s | %d/%d | %d/%d | %s | %s / %s | %s | %s |' % (
        s, fmt(d, 2), fmt(g, 2), fmt(c, 2), dn, nd, cn, nc, fmt(cl, 1), fmt(wc, 1),
        fmt(wd, 1),
        'n/a' if g is None else ('met' if g >= 1 else '**MISSED**'),
        'n/a' if c is None else ('met' if c < 10 else '**MISSED**')))
    recplot.append((s, d, c))
P('')
chk = open(check_path).read().strip()
if chk:
    P('btd check of the recovered pools:')
    P('')
    for l in chk.splitlines():
        P('    ' + l)
    P('')
with open(tmp + '/recovery_plot.dat', 'w') as f:
    for s, d, c in recplot:
        f.write('%s %s %s\n' % (s, d if d is not None else 'NaN', c if c is not None else 'NaN'))

# ---- flushes
P('## Flushes and fences under BTD_POLICY=all (BTD_STATS)')
P('')
txt = open(stats_path).read()
blocks = [b for b in txt.split('### ') if b.strip()]
if not blocks:
    P('(no stats run succeeded)')
P('"persists" are whole persist operations (msync on tmpfs; flush + fence on pmem); '
  'small ops = the malloc + free calls that btd served from the pool (BTD_STATS '
  '"total persistent"), which include the program\'s few own allocations.')
P('')
for b in blocks:
    lines = b.splitlines()
    name = lines[0].strip()
    m = re.search(r'total\s+persistent\s+(\d+)', b)
    small = int(m.group(1)) if m else None
    P('%s (%s small ops from the pool):' % (name, small if small is not None else '?'))
    P('')
    P('| persists for | count (a flush and a fence each) | per small op |')
    P('|---|---:|---:|')
    tot = 0
    for l in lines:
        m = re.search(r'persists for (\S+)\s+(\d+)', l)
        if m:
            k, n = m.group(1), int(m.group(2))
            tot += n
            P('| %s | %d | %s |' % (k, n, '%.2g' % (n / small) if small else 'n/a'))
    P('| all | %d | %s |' % (tot, '%.2g' % (tot / small) if small else 'n/a'))
    P('')
    P('Target: 0 per small malloc/free (persists only for the header, descriptors of '
      'new slabs, close): %s.' % ('met' if small and tot / small < 1e-3 else '**check**'))
    P('')
P('Raw reports:')
P('')
for l in txt.splitlines():
    P('    ' + l)
P('')

# ---- failures
f = open(fail_path).read().strip()
P('## Errors')
P('')
if f:
    P('Failed runs, or runs that wrote to stderr:')
    P('')
    for l in f.splitlines():
        P('    ' + l)
else:
    P('None: every run exited 0, printed its result line, wrote nothing to stderr, and '
      'every block held what was written to it.')
P('')

# ---- plot data: one row per workload, one column per allocator
with open(tmp + '/heap_plot.dat', 'w') as f:
    f.write('workload ' + ' '.join(allocs) + '\n')
    for w, t in configs:
        vals = []
        for a in allocs:
            m = med(w, t, a)[0]
            vals.append('%g' % m if m else 'NaN')
        f.write('%s/T%s ' % (w, t) + ' '.join(vals) + '\n')
print('\n'.join(out))
EOF

cp "$tmp/heap.md" "$script_dir/results/heap.md"
cp "$results" "$script_dir/results/heap.tsv"
cp "$rec" "$script_dir/results/recovery.tsv"

if command -v gnuplot >/dev/null 2>&1; then
	term="pngcairo size 1100,600 font 'sans,10'"
	if ! gnuplot -e "set terminal pngcairo" </dev/null >/dev/null 2>&1; then
		term="png size 1100,600"
	fi
	ncol=$((${#allocs[@]} + 1))
	xtics=""
	for s in $sizes; do
		xtics="$xtics${xtics:+, }\"$s\" $s"
	done
	read -r xmin xmax < <(python3 -c 'import sys; v=[int(x) for x in sys.argv[1:]]; print(min(v)/1.6, max(v)*1.6)' $sizes)
	gnuplot <<EOF 2>"$tmp/gnuplot.err" || echo "heap_run.sh: gnuplot failed: $(cat "$tmp/gnuplot.err")" >&2
set terminal $term
set output '$script_dir/results/heap.png'
set title "Allocation throughput, median of $runs runs ($(nproc) CPUs, pools on tmpfs)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.1:*]
set ylabel 'Mops/s (log scale)'
set key outside right top
set grid ytics
set xtics noenhanced
set key noenhanced
set label 1 'publish: jemalloc and btd-none persist nothing' at screen 0.5, screen 0.02 center noenhanced
set bmargin 4
plot for [i=2:$ncol] '$tmp/heap_plot.dat' using i:xtic(1) title columnheader(i)
EOF
	gnuplot <<EOF 2>"$tmp/gnuplot.err" || echo "heap_run.sh: gnuplot failed: $(cat "$tmp/gnuplot.err")" >&2
set terminal $term
set output '$script_dir/results/recovery.png'
set title "Pool reopen time vs live heap (64-byte list nodes), median of $rec_runs"
set termoption noenhanced
set logscale xy
set xrange [$xmin:$xmax]
set xlabel 'live heap (MiB)'
set ylabel 'btd_cluster_create time (ms)'
set key left top
set grid
set xtics ($xtics)
plot '$tmp/recovery_plot.dat' using 1:2 with linespoints lw 2 pt 7 title 'dirty (recovery GC)', \
     '' using 1:3 with linespoints lw 2 pt 5 title 'clean reopen', \
     10 with lines dt 2 lc rgb 'gray40' title 'target: clean < 10 ms', \
     x * 1.048576 with lines dt 3 lc rgb 'red' title 'target: GC at 1 GB/s'
EOF
	if [ -e "$script_dir/results/heap.png" ]; then
		cp "$script_dir/results/heap.png" "$script_dir/heap.png"
	fi
	if [ -e "$script_dir/results/recovery.png" ]; then
		cp "$script_dir/results/recovery.png" "$script_dir/recovery.png"
	fi
else
	echo "heap_run.sh: gnuplot not found: no plots (apt-get install gnuplot-nox)" >&2
fi

cat "$tmp/heap.md"
echo >&2
echo "heap_run: total $((SECONDS - start)) s; tables in bench/results/heap.md, runs in" \
	"bench/results/heap.tsv and recovery.tsv, plots in bench/results/*.png" \
	"(copied to bench/heap.png, bench/recovery.png)" >&2
