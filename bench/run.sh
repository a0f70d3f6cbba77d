#!/usr/bin/env bash
# bench/run.sh: run bench/malloc_bench under glibc, jemalloc and btd.
#
#   bench/run.sh [--runs N] [--build DIR]
#
# Every workload runs N times under each of three allocators:
#   glibc     no preload
#   jemalloc  LD_PRELOAD=libjemalloc.so.2 (from ldconfig -p, or the multiarch
#             lib dir; JEMALLOC=/path/to/libjemalloc.so.2 overrides)
#   btd       LD_PRELOAD=<build>/interpose/libbtd_preload.so BTD_POLICY=none:
#             the interposer over jemalloc, what this benchmark measures
#             (the persistent heap has its own: bench/heap_run.sh)
# The allocators are interleaved round-robin within each run, with the order
# rotated from run to run, so slow drifts of the machine hit them alike.
# Wall time is the workload's own CLOCK_MONOTONIC figure; user and sys CPU
# time and peak RSS come from /usr/bin/time (or bash's `time` if absent).
# Prints markdown tables of the medians and writes them to
# bench/results/latest.md, and every run to bench/results/latest.tsv
# (bench/results/ is git-ignored).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")

runs=5
build=build
workloads=(churn larson realloc aligned calls calls2)
allocs=(glibc jemalloc btd)

usage() {
	echo "usage: bench/run.sh [--runs N] [--build DIR]" >&2
	echo "  --runs N     runs per workload and allocator (default 5)" >&2
	echo "  --build DIR  meson build dir, relative to the repo root unless" >&2
	echo "               absolute (default build)" >&2
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs)
		[ $# -ge 2 ] || { usage; exit 2; }
		runs=$2; shift 2 ;;
	--runs=*)
		runs=${1#--runs=}; shift ;;
	--build)
		[ $# -ge 2 ] || { usage; exit 2; }
		build=$2; shift 2 ;;
	--build=*)
		build=${1#--build=}; shift ;;
	-h|--help)
		usage; exit 0 ;;
	*)
		echo "run.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done

if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: --runs wants a positive integer, got '$runs'" >&2
	exit 2
fi

case $build in
/*) ;;
*) build=$root/$build ;;
esac

bench=$build/bench/malloc_bench
btd=$build/interpose/libbtd_preload.so
missing=0
for f in "$bench" "$btd"; do
	if [ ! -e "$f" ]; then
		echo "run.sh: missing build product: $f" >&2
		missing=1
	fi
done
if [ $missing -ne 0 ]; then
	echo "run.sh: build first; from the repo root run: meson setup build && ninja -C build" >&2
	exit 1
fi

if ! command -v python3 >/dev/null 2>&1; then
	echo "run.sh: python3 is needed to compute the medians" >&2
	exit 1
fi

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jemalloc=$(find_jemalloc)
if [ -z "$jemalloc" ] || [ ! -e "$jemalloc" ]; then
	echo "run.sh: libjemalloc.so.2 not found (ldconfig -p, multiarch lib dir);" \
		"install libjemalloc2 or set JEMALLOC=/path/to/libjemalloc.so.2" >&2
	exit 1
fi

have_time=0
if [ -x /usr/bin/time ] && /usr/bin/time -f '%e' -o /dev/null true 2>/dev/null; then
	have_time=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.tsv
printf 'run\tworkload\talloc\tseconds\tmaxrss_kib\tchecksum\tuser\tsys\n' >"$results"

# run_one ALLOC WORKLOAD RUN: appends one line to $results.
run_one() {
	local alloc=$1 w=$2 r=$3 out line user sys
	local -a cmd
	case $alloc in
	glibc) cmd=(env -u LD_PRELOAD "$bench" "$w") ;;
	jemalloc) cmd=(env LD_PRELOAD="$jemalloc" "$bench" "$w") ;;
	btd) cmd=(env LD_PRELOAD="$btd" BTD_POLICY=none "$bench" "$w") ;;
	esac
	out=$tmp/out
	if [ $have_time -eq 1 ]; then
		if ! /usr/bin/time -f '%U %S %M' -o "$tmp/time" \
			"${cmd[@]}" >"$out" 2>"$tmp/err"; then
			echo "run.sh: $alloc $w failed:" >&2
			cat "$tmp/err" "$tmp/time" >&2
			exit 1
		fi
		read -r user sys _ <"$tmp/time"
	else
		local TIMEFORMAT='%U %S' rc=0
		{ time "${cmd[@]}" >"$out" 2>"$tmp/err" || rc=$?; } 2>"$tmp/time"
		if [ $rc -ne 0 ]; then
			echo "run.sh: $alloc $w failed (exit $rc):" >&2
			cat "$tmp/err" >&2
			exit 1
		fi
		read -r user sys <"$tmp/time"
	fi
	line=$(grep '^workload=' "$out" || true)
	if [ -z "$line" ]; then
		echo "run.sh: $alloc $w printed no result line:" >&2
		cat "$out" "$tmp/err" >&2
		exit 1
	fi
	# workload=W seconds=S maxrss_kib=K checksum=C
	# shellcheck disable=SC2086
	set -- $line
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$alloc" \
		"${2#seconds=}" "${3#maxrss_kib=}" "${4#checksum=}" \
		"$user" "$sys" >>"$results"
}

echo "bench: $runs runs x ${#workloads[@]} workloads x ${#allocs[@]} allocators" >&2
echo "bench: jemalloc = $jemalloc" >&2
start=$SECONDS
for ((r = 1; r <= runs; r++)); do
	for w in "${workloads[@]}"; do
		for ((k = 0; k < ${#allocs[@]}; k++)); do
			a=${allocs[$(((k + r - 1) % ${#allocs[@]}))]}
			run_one "$a" "$w" "$r"
		done
	done
	echo "bench: run $r/$runs done ($((SECONDS - start)) s)" >&2
done

mkdir -p "$script_dir/results"
commit=$(bench_commit "$root")

python3 - "$results" "$runs" "$commit" "$(uname -srm)" "$(nproc)" \
	"$(basename "$jemalloc")" >"$tmp/table.md" <<'EOF'
import csv, statistics, sys

path, runs, commit, uname, ncpu, jename = sys.argv[1:7]
rows = list(csv.DictReader(open(path), delimiter='\t'))
workloads = list(dict.fromkeys(r['workload'] for r in rows))
allocs = ['glibc', 'jemalloc', 'btd']

def med(w, a, key):
    return statistics.median(float(r[key]) for r in rows
                             if r['workload'] == w and r['alloc'] == a)

def cpu(w, a):
    return statistics.median(float(r['user']) + float(r['sys']) for r in rows
                             if r['workload'] == w and r['alloc'] == a)

def ratio(x, y):
    return '%.3f' % (x / y) if y > 0 else 'n/a'

out = []
out.append('# malloc_bench: medians of %s runs' % runs)
out.append('')
out.append('commit %s; %s; %s CPUs; jemalloc = %s' % (commit, uname, ncpu, jename))
out.append('')
out.append('| workload | glibc s | jemalloc s | btd s | btd/jemalloc time '
           '| btd/jemalloc peak RSS | btd/glibc time |')
out.append('|---|---:|---:|---:|---:|---:|---:|')
for w in workloads:
    s = {a: med(w, a, 'seconds') for a in allocs}
    m = {a: med(w, a, 'maxrss_kib') for a in allocs}
    out.append('| %s | %.3f | %.3f | %.3f | %s | %s | %s |' % (
        w, s['glibc'], s['jemalloc'], s['btd'],
        ratio(s['btd'], s['jemalloc']), ratio(m['btd'], m['jemalloc']),
        ratio(s['btd'], s['glibc'])))
out.append('')
out.append('CPU time (user+sys, whole process) and peak RSS, medians:')
out.append('')
out.append('| workload | glibc cpu s | jemalloc cpu s | btd cpu s '
           '| glibc sys s | jemalloc sys s | btd sys s '
           '| glibc RSS KiB | jemalloc RSS KiB | btd RSS KiB | btd/jemalloc cpu |')
out.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for w in workloads:
    c = {a: cpu(w, a) for a in allocs}
    y = {a: med(w, a, 'sys') for a in allocs}
    m = {a: med(w, a, 'maxrss_kib') for a in allocs}
    out.append('| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d | %d | %s |' % (
        w, c['glibc'], c['jemalloc'], c['btd'],
        y['glibc'], y['jemalloc'], y['btd'],
        m['glibc'], m['jemalloc'], m['btd'], ratio(c['btd'], c['jemalloc'])))

# The checksum does not depend on addresses: a mismatch means an allocator
# returned memory that did not hold what was written.
bad = []
for w in workloads:
    sums = {r['checksum'] for r in rows if r['workload'] == w}
    if len(sums) != 1:
        bad.append('%s: checksums differ across runs/allocators: %s'
                   % (w, ', '.join(sorted(sums))))
if bad:
    out.append('')
    out.extend('WARNING: ' + b for b in bad)
print('\n'.join(out))
EOF

cp "$tmp/table.md" "$script_dir/results/latest.md"
cp "$results" "$script_dir/results/latest.tsv"
cat "$tmp/table.md"
echo >&2
echo "bench: total $((SECONDS - start)) s; table written to bench/results/latest.md," \
	"raw runs to bench/results/latest.tsv" >&2
