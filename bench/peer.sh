#!/usr/bin/env bash
# bench/peer.sh: the peer suite -- other allocators' benchmarks against
# jemalloc, glibc and btd, the nvm_malloc benchmark against libpmemobj, and
# the syscalls btd makes in steady state.
#
#   bench/peer.sh [--runs N] [--build DIR] [--quick] [--only LIST]
#
# Builds nothing: run `ninja -C build` first.
#
# MALLOC WORKLOADS.  bench/peer_bench.c (glibc-thread, alloc-test, larson,
# prod-con, threadtest, sh6bench, xmalloc, cache-thrash, cache-scratch,
# churn; 1 and 2 threads where threads mean something), each N times
# (--runs, default 5) under every allocator, interleaved round-robin with
# the order rotated from run to run:
#   glibc          no preload
#   jemalloc       LD_PRELOAD=libjemalloc.so.2 (JEMALLOC=path overrides)
#   btd-none       LD_PRELOAD=libbtd_preload.so BTD_POLICY=none
#   btd-all        ... BTD_POLICY=all, a fresh pool (BTD_POOL_SIZE=4G) on
#                  /dev/shm (tmpfs) per run
#   btd-all-force  the same with PMEM_IS_PMEM_FORCE=1 (cache-line flushes
#                  instead of msync)
#   btd-all-tmp    BTD_POLICY=all with the pool on /tmp (a disk file system)
#
# NVM WORKLOADS.  bench/nvm_bench.c (alloc_free, alloc_free_alloc,
# fastalloc, linkedlist, recovery; 1 and 2 threads; 64 B and 64-4096 B
# payloads) as nvm_bench_btd (pool on /dev/shm), nvm_bench_pmemobj (pool on
# /dev/shm) and nvm_bench_jemalloc (under the jemalloc preload: persists
# nothing, no recovery).
#
# SYSCALLS.  Every malloc workload once short and once long (10x) under
# btd-all on /dev/shm and on /tmp, in strace -f -c: the msync, fallocate and
# madvise calls per million ops in steady state,
#   (calls_long - calls_short) / (ops_long - ops_short) * 1e6
# (what opening and closing the pool cost cancels), and mmap+munmap alike.
#
# --quick divides every count by 10 (the nvm workloads use 10,000 blocks per
# thread instead of 100,000): a smoke test, not a measurement.  --only LIST
# (comma-separated) keeps the workloads named: malloc or nvm workload names,
# "malloc" or "nvm" for all of one kind; "nosyscalls" skips the strace pass.
#
# Writes bench/results/peer.md (the markdown it also prints), peer.tsv
# (every run), peer-syscalls.tsv, peer.png (gnuplot) and copies the plot to
# bench/peer.png.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")

runs=5
build=build
quick=0
only=""

usage() {
	cat >&2 <<'EOF'
usage: bench/peer.sh [--runs N] [--build DIR] [--quick] [--only LIST]
  --runs N     runs per workload and allocator (default 5)
  --build DIR  meson build dir, relative to the repo root unless absolute
               (default build)
  --quick      a tenth of every count: a smoke test of the script
  --only LIST  comma-separated workloads to run, e.g. larson,churn,linkedlist;
               "nvm" = every nvm workload, "malloc" = every malloc workload,
               "nosyscalls" skips the strace pass
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || { usage; exit 2; }; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--build) [ $# -ge 2 ] || { usage; exit 2; }; build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	--quick) quick=1; shift ;;
	--only) [ $# -ge 2 ] || { usage; exit 2; }; only=$2; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "peer.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done

if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
	echo "peer.sh: --runs wants a positive integer, got '$runs'" >&2
	exit 2
fi
case $build in
/*) ;;
*) build=$root/$build ;;
esac

peer_bench=$build/bench/peer_bench
nvm_btd=$build/bench/nvm_bench_btd
nvm_pmemobj=$build/bench/nvm_bench_pmemobj
nvm_jemalloc=$build/bench/nvm_bench_jemalloc
preload=$build/interpose/libbtd_preload.so
missing=0
for f in "$peer_bench" "$nvm_btd" "$nvm_jemalloc" "$preload"; do
	if [ ! -e "$f" ]; then
		echo "peer.sh: missing build product: $f" >&2
		missing=1
	fi
done
if [ $missing -ne 0 ]; then
	echo "peer.sh: build first; from the repo root run: meson setup build && ninja -C build" >&2
	exit 1
fi
have_pmemobj=1
if [ ! -x "$nvm_pmemobj" ]; then
	echo "peer.sh: $nvm_pmemobj not built (no libpmemobj-dev when meson configured):" \
		"no libpmemobj column" >&2
	have_pmemobj=0
fi
for c in python3 strace; do
	if ! command -v $c >/dev/null 2>&1; then
		echo "peer.sh: needs $c" >&2
		exit 1
	fi
done
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ] || [ ! -w /tmp ]; then
	echo "peer.sh: needs a writable /dev/shm (tmpfs) and /tmp for the pools" >&2
	exit 1
fi

# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"

jemalloc=$(find_jemalloc)
if [ -z "$jemalloc" ] || [ ! -e "$jemalloc" ]; then
	echo "peer.sh: libjemalloc.so.2 not found (ldconfig -p, multiarch lib dir);" \
		"install libjemalloc2 or set JEMALLOC=/path/to/libjemalloc.so.2" >&2
	exit 1
fi

# Settings inherited from the caller's environment would change what is
# measured: start from none.
while read -r v; do
	unset "$v"
done < <(compgen -e | grep -E '^(BTD_|PMEM_|PMEMOBJ_|NVM_BENCH_)' || true)
unset LD_PRELOAD

shm=$(mktemp -d /dev/shm/btd-peer.XXXXXX)
disk=$(mktemp -d /tmp/btd-peer.XXXXXX)
tmp=$shm
trap 'rm -rf "$shm" "$disk"' EXIT
disk_fs=$(findmnt -n -o FSTYPE -T "$disk" 2>/dev/null || stat -f -c %T "$disk" 2>/dev/null || echo unknown)

# workload:threads:N per thread (sized for ~0.3-1.5 s under jemalloc here)
malloc_configs=(
	"glibc-thread:1:40000000" "glibc-thread:2:40000000"
	"alloc-test:1:25000000" "alloc-test:2:25000000"
	"larson:1:50000000" "larson:2:50000000"
	"prod-con:2:2500000"
	"threadtest:1:100000000" "threadtest:2:100000000"
	"sh6bench:1:50000000" "sh6bench:2:50000000"
	"xmalloc:2:8000000"
	"cache-thrash:2:150000" "cache-scratch:2:150000"
	"churn:1:80000000" "churn:2:80000000"
)
nvm_configs=()
for w in alloc_free alloc_free_alloc fastalloc linkedlist recovery; do
	for s in 64 64-4096; do
		for t in 1 2; do
			nvm_configs+=("$w:$t:$s")
		done
	done
done
nvm_blocks=100000
div=1
if [ $quick -eq 1 ]; then
	div=10
	nvm_blocks=10000
fi

want() {
	local w=$1 kind=$2 x
	[ -z "$only" ] && return 0
	IFS=, read -ra sel <<<"$only"
	for x in "${sel[@]}"; do
		[ "$x" = "$w" ] || [ "$x" = "$kind" ] && return 0
	done
	# a list of only flags selects everything
	for x in "${sel[@]}"; do
		[ "$x" = nosyscalls ] || return 1
	done
	return 0
}
syscalls=1
[[ ,$only, == *,nosyscalls,* ]] && syscalls=0

sel_malloc=()
for c in "${malloc_configs[@]}"; do
	want "${c%%:*}" malloc && sel_malloc+=("$c")
done
sel_nvm=()
for c in "${nvm_configs[@]}"; do
	want "${c%%:*}" nvm && sel_nvm+=("$c")
done

allocs=(glibc jemalloc btd-none btd-all btd-all-force btd-all-tmp)
impls=(nvm-jemalloc nvm-btd)
[ $have_pmemobj -eq 1 ] && impls+=(nvm-pmemobj)

results=$tmp/peer.tsv
printf 'run\tsuite\tworkload\tthreads\tsize\talloc\tops\tseconds\tmops\tstatus\n' >"$results"
failures=$tmp/failures.txt
: >"$failures"

# record RUN SUITE W T SIZE ALLOC RC "CMD": parses $tmp/out, one line to
# $results; a failure goes to $failures with the command to rerun it.
record() {
	local r=$1 suite=$2 w=$3 t=$4 size=$5 alloc=$6 rc=$7 cmd=$8 line ops secs mops
	line=$(grep -E '^(workload|impl)=' "$tmp/out" || true)
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		{
			echo "$alloc $w T=$t ${size} (run $r): exit status $rc"
			echo "    reproduce: $cmd"
			sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
		} >>"$failures"
		echo "peer.sh: FAILED: $alloc $w $t $size (exit $rc)" >&2
		printf '%s\t%s\t%s\t%s\t%s\t%s\tNA\tNA\tNA\tfail(%s)\n' "$r" "$suite" "$w" "$t" \
			"$size" "$alloc" "$rc" >>"$results"
		return
	fi
	if [ -s "$tmp/err" ]; then
		{
			echo "$alloc $w T=$t $size (run $r): succeeded but wrote to stderr:"
			sed 's/^/    /' "$tmp/err" | head -10
		} >>"$failures"
	fi
	ops=$(sed -n 's/.* ops=\([^ ]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* seconds=\([^ ]*\).*/\1/p' <<<"$line")
	mops=$(sed -n 's/.* mops=\([^ ]*\).*/\1/p' <<<"$line")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$r" "$suite" "$w" "$t" "$size" \
		"$alloc" "$ops" "$secs" "$mops" >>"$results"
}

# malloc_cmd ALLOC POOL: the environment prefix of a peer_bench run.
malloc_env() {
	local alloc=$1 pool=$2
	case $alloc in
	glibc) echo "env -u LD_PRELOAD" ;;
	jemalloc) echo "env LD_PRELOAD=$jemalloc" ;;
	btd-none) echo "env LD_PRELOAD=$preload BTD_POLICY=none" ;;
	btd-all) echo "env LD_PRELOAD=$preload BTD_POLICY=all BTD_POOL=$pool BTD_POOL_SIZE=4G" ;;
	btd-all-force) echo "env LD_PRELOAD=$preload BTD_POLICY=all BTD_POOL=$pool BTD_POOL_SIZE=4G PMEM_IS_PMEM_FORCE=1" ;;
	btd-all-tmp) echo "env LD_PRELOAD=$preload BTD_POLICY=all BTD_POOL=$pool BTD_POOL_SIZE=4G" ;;
	esac
}

run_malloc() {
	local alloc=$1 w=$2 t=$3 n=$4 r=$5 rc=0 pool=$shm/pool cmd
	[ "$alloc" = btd-all-tmp ] && pool=$disk/pool
	rm -f "$pool"
	cmd="$(malloc_env "$alloc" "$pool") $peer_bench $w $t $n"
	# shellcheck disable=SC2086
	timeout 300 $cmd >"$tmp/out" 2>"$tmp/err" || rc=$?
	rm -f "$pool"
	record "$r" malloc "$w" "$t" - "$alloc" "$rc" "$cmd"
}

run_nvm() {
	local impl=$1 w=$2 t=$3 s=$4 r=$5 rc=0 pool=$shm/pool cmd
	rm -f "$pool"
	case $impl in
	nvm-btd) cmd="env BTD_POOL=$pool BTD_POOL_SIZE=4G $nvm_btd" ;;
	nvm-pmemobj) cmd="env NVM_BENCH_POOL=$pool NVM_BENCH_POOL_SIZE=1024 $nvm_pmemobj" ;;
	nvm-jemalloc) cmd="env LD_PRELOAD=$jemalloc $nvm_jemalloc" ;;
	esac
	cmd="$cmd $w $t $s $nvm_blocks"
	# shellcheck disable=SC2086
	timeout 300 $cmd >"$tmp/out" 2>"$tmp/err" || rc=$?
	rm -f "$pool"
	record "$r" nvm "$w" "$t" "$s" "$impl" "$rc" "$cmd"
}

start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)
echo "peer: $runs runs x (${#sel_malloc[@]} malloc workloads x ${#allocs[@]} allocators" \
	"+ ${#sel_nvm[@]} nvm workloads x ${#impls[@]})" >&2
echo "peer: jemalloc = $jemalloc; pools under $shm and $disk ($disk_fs)" >&2
for ((r = 1; r <= runs; r++)); do
	for c in "${sel_malloc[@]}"; do
		IFS=: read -r w t n <<<"$c"
		n=$((n / div))
		for ((k = 0; k < ${#allocs[@]}; k++)); do
			run_malloc "${allocs[$(((k + r - 1) % ${#allocs[@]}))]}" "$w" "$t" "$n" "$r"
		done
	done
	for c in "${sel_nvm[@]}"; do
		IFS=: read -r w t s <<<"$c"
		for ((k = 0; k < ${#impls[@]}; k++)); do
			run_nvm "${impls[$(((k + r - 1) % ${#impls[@]}))]}" "$w" "$t" "$s" "$r"
		done
	done
	echo "peer: run $r/$runs done ($((SECONDS - start)) s)" >&2
done
bench_s=$((SECONDS - start))

# ---- syscalls -------------------------------------------------------------
sys=$tmp/peer-syscalls.tsv
printf 'workload\tthreads\tfs\tlen\tops\tmsync\tfallocate\tmadvise\tmmap\tmunmap\tstatus\n' >"$sys"
if [ $syscalls -eq 1 ]; then
	for c in "${sel_malloc[@]}"; do
		IFS=: read -r w t n <<<"$c"
		for fs in tmpfs disk; do
			pool=$shm/pool
			[ $fs = disk ] && pool=$disk/pool
			for len in short long; do
				# threadtest and sh6bench want whole rounds: >= 20000
				nn=$((n / div / 100))
				[ "$nn" -lt 20000 ] && nn=20000
				[ $len = long ] && nn=$((nn * 10))
				rm -f "$pool" "$tmp/strace"
				rc=0
				cmd="strace --seccomp-bpf -f -c -o $tmp/strace -e trace=msync,fallocate,madvise,munmap,mmap $(malloc_env btd-all "$pool") $peer_bench $w $t $nn"
				# shellcheck disable=SC2086
				timeout 600 $cmd >"$tmp/out" 2>"$tmp/err" || rc=$?
				rm -f "$pool"
				line=$(grep '^workload=' "$tmp/out" || true)
				if [ $rc -ne 0 ] || [ -z "$line" ]; then
					{
						echo "strace $w T=$t $fs $len: exit status $rc"
						echo "    reproduce: $cmd"
						sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
					} >>"$failures"
					printf '%s\t%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\tfail(%s)\n' "$w" "$t" \
						"$fs" "$len" "$rc" >>"$sys"
					continue
				fi
				ops=$(sed -n 's/.* ops=\([^ ]*\).*/\1/p' <<<"$line")
				python3 - "$tmp/strace" "$w" "$t" "$fs" "$len" "$ops" >>"$sys" <<'EOF'
import re, sys
path, w, t, fs, ln, ops = sys.argv[1:7]
calls = {}
for l in open(path):
    m = re.match(r'^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$', l)
    if m and m.group(2) != 'total':
        calls[m.group(2)] = int(m.group(1))
print('\t'.join([w, t, fs, ln, ops] + [str(calls.get(k, 0)) for k in
      ('msync', 'fallocate', 'madvise', 'mmap', 'munmap')] + ['ok']))
EOF
			done
		done
	done
	echo "peer: syscall counts done ($((SECONDS - start)) s)" >&2
fi

# ---- report ---------------------------------------------------------------
mkdir -p "$script_dir/results"
commit=$(bench_commit "$root")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)

PB_RUNS=$runs PB_ALLOCS="${allocs[*]}" PB_IMPLS="${impls[*]}" PB_MALLOC="${sel_malloc[*]}" \
	PB_NVM="${sel_nvm[*]}" PB_COMMIT=$commit PB_UNAME=$(uname -srm) PB_CPU=$cpu \
	PB_NPROC=$(nproc) PB_JEMALLOC=$(basename "$jemalloc") PB_LOAD_START=$load_start \
	PB_LOAD_END=$load_end PB_BENCH_S=$bench_s PB_TOTAL_S=$((SECONDS - start)) \
	PB_QUICK=$quick PB_DISKFS=$disk_fs PB_BLOCKS=$nvm_blocks PB_SYSCALLS=$syscalls \
	python3 - "$results" "$sys" "$failures" "$tmp" <<'EOF' >"$tmp/peer.md"
import csv, os, statistics, sys

E = os.environ
res_path, sys_path, fail_path, tmp = sys.argv[1:5]
runs = int(E['PB_RUNS'])
rows = list(csv.DictReader(open(res_path), delimiter='\t'))
srows = list(csv.DictReader(open(sys_path), delimiter='\t'))
allocs = E['PB_ALLOCS'].split()
impls = E['PB_IMPLS'].split()
mconf = [tuple(c.split(':')[:2]) for c in E['PB_MALLOC'].split()]
nconf = [tuple(c.split(':')) for c in E['PB_NVM'].split()]

# Ralloc as the issue measured it on this machine: time ratio vs jemalloc.
RALLOC = {('larson', '2'): 1.26, ('prod-con', '2'): 1.53, ('sh6bench', '1'): 1.50}

def sel(suite, w, t, a, size='-'):
    return [r for r in rows if r['suite'] == suite and r['workload'] == w
            and r['threads'] == t and r['alloc'] == a and r['size'] == size]

def med(suite, w, t, a, size='-', key='seconds'):
    rs = sel(suite, w, t, a, size)
    ok = [r for r in rs if r['status'] == 'ok' and r[key] != 'NA']
    na = [r for r in rs if r['status'] == 'ok' and r[key] == 'NA']
    v = [float(r[key]) for r in ok]
    return (statistics.median(v) if v else None), len(ok) + len(na), len(rs), bool(na)

def tr(suite, w, t, a, b, size='-'):
    """time ratio a/b = mops(b)/mops(a): ops are the same for both"""
    ma = med(suite, w, t, a, size, 'mops')[0]
    mb = med(suite, w, t, b, size, 'mops')[0]
    return mb / ma if ma and mb else None

def cell(suite, w, t, a, size='-'):
    m, nok, n, na = med(suite, w, t, a, size)
    if n == 0:
        return 'n/a'
    if nok < n:
        return 'FAIL (%d/%d)' % (n - nok, n) if m is None else '%.3f FAIL (%d/%d)' % (m, n - nok, n)
    if na:
        return 'n/a'
    return '%.3f' % m

def rs(x):
    return 'n/a' if x is None else '%.2f' % x

def met(x, target):
    if x is None:
        return 'n/a'
    return 'met' if x <= target else '**missed**'

out = []
P = out.append
P('## Peer suite (bench/peer.sh)%s' % (' -- QUICK SMOKE RUN, not a measurement'
  if E['PB_QUICK'] == '1' else ''))
P('')
P('commit %s; %s; %s, %s CPUs; jemalloc = %s; medians of %d interleaved runs; '
  'load average %s at start, %s at end; %s s of runs, %s s in all.' % (
  E['PB_COMMIT'], E['PB_UNAME'], E['PB_CPU'], E['PB_NPROC'], E['PB_JEMALLOC'], runs,
  E['PB_LOAD_START'], E['PB_LOAD_END'], E['PB_BENCH_S'], E['PB_TOTAL_S']))
P('')
if mconf:
    P('### Malloc workloads: wall seconds (median), and time ratios against jemalloc')
    P('')
    P('btd all = `LD_PRELOAD=libbtd_preload.so BTD_POLICY=all`, pool on /dev/shm (tmpfs); '
      'force = the same with `PMEM_IS_PMEM_FORCE=1`; /tmp = pool on /tmp (%s).  '
      'Targets: btd none / jemalloc <= 1.03, btd all / jemalloc <= 1.1, '
      'btd all on /tmp <= 1.5x btd all on tmpfs.  The Ralloc column is **from the issue, not '
      'measured in this run** (Ralloc is not built here).' % E['PB_DISKFS'])
    P('')
    names = {'glibc': 'glibc', 'jemalloc': 'jemalloc', 'btd-none': 'btd none',
             'btd-all': 'btd all', 'btd-all-force': 'btd all force',
             'btd-all-tmp': 'btd all /tmp'}
    P('| workload | T |' + ''.join(' %s s |' % names[a] for a in allocs) +
      ' none/je | <= 1.03 | all/je | <= 1.1 | force/je | /tmp / tmpfs | <= 1.5 '
      '| Ralloc/je (from the issue, not measured in this run) |')
    P('|---|---:|' + '---:|' * len(allocs) + '---:|---|---:|---|---:|---:|---|---:|')
    for w, t in mconf:
        cells = [cell('malloc', w, t, a) for a in allocs]
        rn = tr('malloc', w, t, 'btd-none', 'jemalloc')
        ra = tr('malloc', w, t, 'btd-all', 'jemalloc')
        rf = tr('malloc', w, t, 'btd-all-force', 'jemalloc')
        rt = tr('malloc', w, t, 'btd-all-tmp', 'btd-all')
        ral = RALLOC.get((w, t))
        P('| %s | %s |' % (w, t) + ''.join(' %s |' % c for c in cells) +
          ' %s | %s | %s | %s | %s | %s | %s | %s |' % (
              rs(rn), met(rn, 1.03), rs(ra), met(ra, 1.1), rs(rf), rs(rt), met(rt, 1.5),
              '%.2f' % ral if ral else ''))
    P('')
    with open(tmp + '/plot.dat', 'w') as f:
        cols = [a for a in allocs if a != 'jemalloc']
        f.write('workload ' + ' '.join('"%s"' % names[a] for a in cols) + ' "Ralloc (issue)"\n')
        for w, t in mconf:
            v = [tr('malloc', w, t, a, 'jemalloc') for a in cols]
            ral = RALLOC.get((w, t))
            f.write('%s/T%s ' % (w, t) + ' '.join('%g' % x if x else 'NaN' for x in v) +
                    ' %s\n' % ('%g' % ral if ral else 'NaN'))

if E['PB_SYSCALLS'] == '1' and mconf:
    P('### Steady-state syscalls of btd all (strace -f -c)')
    P('')
    P('Per million ops (one op = one malloc or one free) = (calls of a long run - calls '
      'of a short run) / (ops long - ops short) x 1e6, so that opening and closing the pool '
      'cancel.  Target: 0 msync, fallocate and madvise per Mop.  mmap+munmap for '
      'information (the benchmark\'s own bookkeeping mmaps are the same in both runs).')
    P('')
    P('| workload | T | tmpfs msync | tmpfs fallocate | tmpfs madvise | target 0 '
      '| /tmp msync | /tmp fallocate | /tmp madvise | target 0 | mmap+munmap tmpfs | mmap+munmap /tmp |')
    P('|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|')
    for w, t in mconf:
        def per(fs, keys):
            g = {r['len']: r for r in srows if r['workload'] == w and r['threads'] == t
                 and r['fs'] == fs}
            if 'short' not in g or 'long' not in g:
                return None
            if g['short']['status'] != 'ok' or g['long']['status'] != 'ok':
                return 'FAIL'
            d = float(g['long']['ops']) - float(g['short']['ops'])
            if d <= 0:
                return None
            return sum(int(g['long'][k]) - int(g['short'][k]) for k in keys) / d * 1e6
        cells = []
        for fs in ('tmpfs', 'disk'):
            vals = [per(fs, [k]) for k in ('msync', 'fallocate', 'madvise')]
            for v in vals:
                cells.append('n/a' if v is None else v if v == 'FAIL' else '%.2f' % v)
            if any(v == 'FAIL' for v in vals):
                cells.append('FAIL')
            elif any(v is None for v in vals):
                cells.append('n/a')
            else:
                cells.append('met' if all(v <= 0 for v in vals) else '**missed**')
        for fs in ('tmpfs', 'disk'):
            v = per(fs, ['mmap', 'munmap'])
            cells.append('n/a' if v is None else v if v == 'FAIL' else '%.2f' % v)
        P('| %s | %s |' % (w, t) + ''.join(' %s |' % c for c in cells))
    P('')

if nconf:
    P('### nvm_malloc benchmark: wall seconds (median)')
    P('')
    P('%d blocks per thread; reserve = btd_malloc / pmemobj_alloc / malloc; activate = write '
      'the payload, persist it, store the reference in a link word and persist that '
      '(btd_persist / pmemobj_persist).  jemalloc persists nothing (a volatile baseline, no '
      'recovery).  Pools on /dev/shm (tmpfs): btd and libpmemobj persist with msync.  '
      'recovery = reopening after a child built the lists and exited without closing.' %
      int(E['PB_BLOCKS']))
    P('')
    inames = {'nvm-jemalloc': 'jemalloc (volatile)', 'nvm-btd': 'btd',
              'nvm-pmemobj': 'libpmemobj'}
    P('| workload | T | payload |' + ''.join(' %s s |' % inames[i] for i in impls) +
      ' btd/jemalloc | pmemobj/btd |')
    P('|---|---:|---|' + '---:|' * len(impls) + '---:|---:|')
    for w, t, s in nconf:
        cells = [cell('nvm', w, t, i, s) for i in impls]
        bj = tr('nvm', w, t, 'nvm-btd', 'nvm-jemalloc', s)
        pb = tr('nvm', w, t, 'nvm-pmemobj', 'nvm-btd', s) if 'nvm-pmemobj' in impls else None
        P('| %s | %s | %s |' % (w, t, s) + ''.join(' %s |' % c for c in cells) +
          ' %s | %s |' % (rs(bj), rs(pb)))
    P('')

f = open(fail_path).read().strip()
P('### Errors')
P('')
if f:
    P('Failed runs (FAIL in the tables), or runs that wrote to stderr:')
    P('')
    for l in f.splitlines():
        P('    ' + l)
else:
    P('None: every run exited 0, printed its result line, wrote nothing to stderr, and '
      'every block held what was written to it.')
P('')
print('\n'.join(out))
EOF

cp "$tmp/peer.md" "$script_dir/results/peer.md"
cp "$results" "$script_dir/results/peer.tsv"
cp "$sys" "$script_dir/results/peer-syscalls.tsv"

if [ -s "$tmp/plot.dat" ] && command -v gnuplot >/dev/null 2>&1; then
	term="pngcairo size 1200,600 font 'sans,10'"
	if ! gnuplot -e "set terminal pngcairo" </dev/null >/dev/null 2>&1; then
		term="png size 1200,600"
	fi
	ncol=$(head -1 "$tmp/plot.dat" | grep -o '"[^"]*"' | wc -l)
	gnuplot <<EOF 2>"$tmp/gnuplot.err" || echo "peer.sh: gnuplot failed: $(cat "$tmp/gnuplot.err")" >&2
set terminal $term
set output '$script_dir/results/peer.png'
set title "Peer suite: time relative to jemalloc, median of $runs runs ($(nproc) CPUs; lower is better)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.25:*]
set ylabel 'time / jemalloc time (log scale)'
set key outside right top noenhanced
set grid ytics
set xtics rotate by -35 noenhanced
set bmargin 6
plot for [i=2:$((ncol + 1))] '$tmp/plot.dat' using i:xtic(1) title columnheader(i), \
     1 with lines lc rgb 'black' dt 2 notitle
EOF
	if [ -e "$script_dir/results/peer.png" ]; then
		cp "$script_dir/results/peer.png" "$script_dir/peer.png"
	fi
elif ! command -v gnuplot >/dev/null 2>&1; then
	echo "peer.sh: gnuplot not found: no plot (apt-get install gnuplot-nox)" >&2
fi

cat "$tmp/peer.md"
echo >&2
echo "peer: total $((SECONDS - start)) s; tables in bench/results/peer.md, runs in" \
	"bench/results/peer.tsv and peer-syscalls.tsv, plot bench/results/peer.png" \
	"(copied to bench/peer.png)" >&2
