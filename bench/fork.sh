#!/usr/bin/env bash
# bench/fork.sh: what fork costs a process with a persistent heap (issue 7).
#
#   bench/fork.sh [--runs N] [--build DIR] [--no-redis] [--redis-runs N]
#                 [--redis-keys N] [--redis-requests N]
#
# Builds nothing: run `ninja -C build` first.  Three measurements:
#
# FORK+EXEC.  bench/fork_bench.c holds 10, 100 and 300 MiB of heap (4 MiB
# blocks, every byte written) and times fork() + execve("/bin/true") +
# waitpid() (20 / 10 / 5 of them per run, after one untimed), under
#   jemalloc  LD_PRELOAD=libjemalloc.so.2 (JEMALLOC=path overrides the search)
#   btd       LD_PRELOAD=libbtd_preload.so, the default policy (4 MiB blocks
#             are >= BTD_LARGE_MIN, so persistent), a fresh BTD_POOL on
#             /dev/shm per run
# The exec'd /bin/true gets the environment without LD_PRELOAD under both,
# so only the fork differs.  A btd run whose blocks are not in the pool
# file (fork_bench prints the mapping that holds them) is an error.
#
# BASH.  `bash -c` of a script that builds a 50 MiB variable (a large block,
# so persistent under the default policy) and then runs 200 command
# substitutions `$(echo $i)`, each a fork, under glibc (no preload),
# jemalloc, and btd (default policy, fresh pool).  The loop's time comes
# from $EPOCHREALTIME; the whole script's wall time is shown too.
#
# REDIS.  redis-server on 127.0.0.1 (a free port from 20000-39999, --save ""),
# filled with --redis-keys keys (DEBUG POPULATE, default 500000: about
# 60 MB of heap), then redis-benchmark -t lpush -n --redis-requests (default
# 200000, 50 clients) while a loop asks for BGSAVE SCHEDULE every 100 ms, so
# a background save (a fork) is running or about to most of the time.  The
# server runs plainly (Debian's redis-server links libjemalloc.so.2 and
# calls malloc & co.) and under libbtd_preload.so BTD_POLICY=all (every
# allocation in the pool); the client is never preloaded.  Each server
# lives under `timeout`, and is SHUTDOWN NOSAVE'd (or killed) when its run
# ends or the script exits.  --redis-runs (default 3) runs each, interleaved;
# --no-redis skips it.
#
# Medians of N runs (--runs, default 5; allocators interleaved, order
# rotated from run to run).  Prints markdown tables and writes them to
# bench/results/fork.md, and every run to bench/results/fork.tsv
# (bench/results/ is git-ignored).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$script_dir")

runs=5
redis_runs=3
build=build
do_redis=1
redis_keys=500000
redis_requests=200000
sizes=(10 100 300)

usage() {
	cat >&2 <<'EOF'
usage: bench/fork.sh [--runs N] [--build DIR] [--no-redis] [--redis-runs N]
                     [--redis-keys N] [--redis-requests N]
  --runs N            runs of the fork+exec and bash measurements (default 5)
  --build DIR         meson build dir, relative to the repo root unless
                      absolute (default build)
  --no-redis          skip the redis-server measurement
  --redis-runs N      runs of the redis measurement per server (default 3)
  --redis-keys N      keys loaded before the benchmark (default 500000)
  --redis-requests N  LPUSH requests per run (default 200000)
EOF
}

posint() {
	[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "fork.sh: $1 wants a positive integer, got '$2'" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || { usage; exit 2; }; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--build) [ $# -ge 2 ] || { usage; exit 2; }; build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	--no-redis) do_redis=0; shift ;;
	--redis-runs) [ $# -ge 2 ] || { usage; exit 2; }; redis_runs=$2; shift 2 ;;
	--redis-runs=*) redis_runs=${1#--redis-runs=}; shift ;;
	--redis-keys) [ $# -ge 2 ] || { usage; exit 2; }; redis_keys=$2; shift 2 ;;
	--redis-keys=*) redis_keys=${1#--redis-keys=}; shift ;;
	--redis-requests) [ $# -ge 2 ] || { usage; exit 2; }; redis_requests=$2; shift 2 ;;
	--redis-requests=*) redis_requests=${1#--redis-requests=}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "fork.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
	esac
done
posint --runs "$runs"
posint --redis-runs "$redis_runs"
posint --redis-keys "$redis_keys"
posint --redis-requests "$redis_requests"

case $build in
/*) ;;
*) build=$root/$build ;;
esac

prog=$build/bench/fork_bench
preload=$build/interpose/libbtd_preload.so
for f in "$prog" "$preload"; do
	if [ ! -e "$f" ]; then
		echo "fork.sh: missing build product: $f" >&2
		echo "fork.sh: build first; from the repo root run: meson setup build && ninja -C build" >&2
		exit 1
	fi
done
command -v python3 >/dev/null 2>&1 || { echo "fork.sh: python3 is needed for the medians" >&2; exit 1; }
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "fork.sh: needs a writable /dev/shm for the pools" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
jemalloc=$(find_jemalloc)
if [ -z "$jemalloc" ] || [ ! -e "$jemalloc" ]; then
	echo "fork.sh: libjemalloc.so.2 not found (ldconfig -p, multiarch lib dir);" \
		"install libjemalloc2 or set JEMALLOC=/path/to/libjemalloc.so.2" >&2
	exit 1
fi
if [ $do_redis -eq 1 ]; then
	for p in redis-server redis-cli redis-benchmark; do
		if ! command -v $p >/dev/null 2>&1; then
			echo "fork.sh: $p not installed: skipping the redis measurement" >&2
			do_redis=0
		fi
	done
fi

tmp=$(mktemp -d /dev/shm/btd-fork-bench.XXXXXX)
server_pid=
saver_pid=
cleanup() {
	if [ -n "$saver_pid" ]; then
		kill "$saver_pid" 2>/dev/null || true
		wait "$saver_pid" 2>/dev/null || true
	fi
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$tmp/fork.tsv
printf 'bench\trun\tcase\talloc\tvalue\textra\n' >"$results"
start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)

# rotate N R: the indices 0..N-1 rotated by R.
rotate() {
	local n=$1 r=$2 k
	for ((k = 0; k < n; k++)); do
		echo $(((k + r) % n))
	done
}

# ---- fork+exec -----------------------------------------------------------
forks_for() {
	case $1 in
	10) echo 20 ;;
	100) echo 10 ;;
	*) echo 5 ;;
	esac
}

allocs=(jemalloc btd)
echo "fork.sh: fork+exec, $runs runs x ${sizes[*]} MiB x ${allocs[*]}" >&2
for ((r = 1; r <= runs; r++)); do
	for mb in "${sizes[@]}"; do
		for k in $(rotate ${#allocs[@]} "$r"); do
			a=${allocs[$k]}
			rm -f "$tmp/p.pool"
			case $a in
			jemalloc) cmd=(env LD_PRELOAD="$jemalloc") ;;
			btd) cmd=(env LD_PRELOAD="$preload" BTD_POOL="$tmp/p.pool") ;;
			esac
			if ! out=$("${cmd[@]}" "$prog" "$mb" "$(forks_for "$mb")" 2>"$tmp/err"); then
				echo "fork.sh: fork_bench $mb under $a failed:" >&2
				cat "$tmp/err" >&2
				exit 1
			fi
			if [ -s "$tmp/err" ]; then
				echo "fork.sh: fork_bench $mb under $a wrote to stderr:" >&2
				cat "$tmp/err" >&2
				exit 1
			fi
			ms=$(sed -n 's/.*ms_per_fork=\([0-9.]*\).*/\1/p' <<<"$out")
			where=$(sed -n 's/.*mapping=//p' <<<"$out")
			if [ "$a" = btd ] && [ "$where" != "$tmp/p.pool" ]; then
				echo "fork.sh: under btd the blocks are not in the pool ($where): is the" \
					"default policy still 'large' with BTD_LARGE_MIN <= 4M?" >&2
				exit 1
			fi
			printf 'forkexec\t%s\t%s\t%s\t%s\t\n' "$r" "$mb" "$a" "$ms" >>"$results"
		done
	done
	rm -f "$tmp/p.pool"
	echo "fork.sh: fork+exec run $r/$runs done ($((SECONDS - start)) s)" >&2
done

# ---- bash ----------------------------------------------------------------
# shellcheck disable=SC2016
script='x=$(head -c 52428800 /dev/zero | tr "\0" x)
t0=$EPOCHREALTIME
for ((i = 0; i < 200; i++)); do y=$(echo "$i"); done
t1=$EPOCHREALTIME
echo "len=${#x} y=$y t0=$t0 t1=$t1"'
ballocs=(glibc jemalloc btd)
echo "fork.sh: bash, $runs runs x ${ballocs[*]} (btd: about 20 s a run)" >&2
for ((r = 1; r <= runs; r++)); do
	for k in $(rotate ${#ballocs[@]} "$r"); do
		a=${ballocs[$k]}
		rm -f "$tmp/p.pool"
		case $a in
		glibc) cmd=(env -u LD_PRELOAD) ;;
		jemalloc) cmd=(env LD_PRELOAD="$jemalloc") ;;
		btd) cmd=(env LD_PRELOAD="$preload" BTD_POOL="$tmp/p.pool") ;;
		esac
		t0=$(date +%s.%N)
		if ! out=$(LC_ALL=C "${cmd[@]}" bash -c "$script" 2>"$tmp/err"); then
			echo "fork.sh: the bash script under $a failed:" >&2
			cat "$tmp/err" >&2
			exit 1
		fi
		t1=$(date +%s.%N)
		if [ "$(sed -n 's/^len=\([0-9]*\) y=\([0-9]*\).*/\1 \2/p' <<<"$out")" != "52428800 199" ]; then
			echo "fork.sh: the bash script under $a printed '$out'" >&2
			exit 1
		fi
		if [ "$a" = btd ] && [ ! -s "$tmp/p.pool" ]; then
			echo "fork.sh: the bash script under btd left no pool: nothing was persistent" >&2
			exit 1
		fi
		loop=$(sed 's/.*t0=\([0-9.]*\) t1=\([0-9.]*\).*/\1 \2/' <<<"$out" | awk '{printf "%.4f", $2 - $1}')
		wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')
		printf 'bash\t%s\tloop\t%s\t%s\t%s\n' "$r" "$a" "$loop" "$wall" >>"$results"
	done
	rm -f "$tmp/p.pool"
	echo "fork.sh: bash run $r/$runs done ($((SECONDS - start)) s)" >&2
done

# ---- redis ---------------------------------------------------------------
port_is_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# info PORT FIELD: one field of INFO.
info() {
	timeout 10 redis-cli -h 127.0.0.1 -p "$1" info 2>/dev/null | tr -d '\r' |
		sed -n "s/^$2://p"
}

# stop_server PORT
stop_server() {
	local i
	timeout 10 redis-cli -h 127.0.0.1 -p "$1" shutdown nosave >/dev/null 2>&1 || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

# redis_one ALLOC RUN: appends one line to $results.
redis_one() {
	local a=$1 r=$2 port i rc out ops forks fork_us
	local -a cmd
	case $a in
	jemalloc) cmd=(env -u LD_PRELOAD) ;;
	btd) cmd=(env LD_PRELOAD="$preload" BTD_POLICY=all BTD_POOL="$tmp/p.pool" BTD_POOL_SIZE=4G) ;;
	esac
	rm -rf "$tmp/redis" "$tmp/p.pool"
	mkdir -p "$tmp/redis"
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 20000))
		port_is_free "$port" || continue
		timeout -k 5 300 "${cmd[@]}" redis-server --port "$port" --bind 127.0.0.1 \
			--save '' --appendonly no --daemonize no --dir "$tmp/redis" \
			--enable-debug-command local --logfile '' >"$tmp/redis.log" 2>&1 &
		server_pid=$!
		for ((i = 0; i < 100; i++)); do
			[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && break
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 100 ] && break
		stop_server "$port"
		grep -q 'Address already in use' "$tmp/redis.log" && continue
		echo "fork.sh: redis-server under $a did not start:" >&2
		tail -n 5 "$tmp/redis.log" >&2
		exit 1
	done
	[ -n "$server_pid" ] || { echo "fork.sh: no free port for redis-server in 8 tries" >&2; exit 1; }

	out=$(timeout 120 redis-cli -h 127.0.0.1 -p "$port" debug populate "$redis_keys" key 100 2>&1) || true
	if [ "$out" != OK ]; then
		stop_server "$port"
		echo "fork.sh: DEBUG POPULATE under $a: $out" >&2
		exit 1
	fi
	used=$(info "$port" used_memory)
	forks=$(info "$port" total_forks)
	(
		while :; do
			timeout 10 redis-cli -h 127.0.0.1 -p "$port" bgsave schedule >/dev/null 2>&1 || true
			sleep 0.1
		done
	) &
	saver_pid=$!
	rc=0
	out=$(timeout 200 redis-benchmark -h 127.0.0.1 -p "$port" -t lpush \
		-n "$redis_requests" -q 2>&1) || rc=$?
	kill "$saver_pid" 2>/dev/null || true
	wait "$saver_pid" 2>/dev/null || true
	saver_pid=
	forks=$(( $(info "$port" total_forks) - forks ))
	fork_us=$(info "$port" latest_fork_usec)
	stop_server "$port"
	rm -f "$tmp/p.pool"
	ops=$(tr '\r' '\n' <<<"$out" | sed -n 's/^LPUSH: \([0-9.]*\) requests per second.*/\1/p' | tail -n1)
	if [ $rc -ne 0 ] || [ -z "$ops" ]; then
		echo "fork.sh: redis-benchmark against the server under $a failed (exit $rc):" >&2
		tr '\r' '\n' <<<"$out" | tail -n 3 >&2
		exit 1
	fi
	printf 'redis\t%s\tlpush\t%s\t%s\t%s %s %s\n' "$r" "$a" "$ops" "$forks" "$fork_us" "$used" >>"$results"
}

if [ $do_redis -eq 1 ]; then
	rallocs=(jemalloc btd)
	echo "fork.sh: redis, $redis_runs runs x ${rallocs[*]}" >&2
	for ((r = 1; r <= redis_runs; r++)); do
		for k in $(rotate ${#rallocs[@]} "$r"); do
			redis_one "${rallocs[$k]}" "$r"
		done
		echo "fork.sh: redis run $r/$redis_runs done ($((SECONDS - start)) s)" >&2
	done
fi

# ---- report ----------------------------------------------------------------
mkdir -p "$script_dir/results"
commit=$(bench_commit "$root")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
FB_COMMIT=$commit FB_UNAME=$(uname -srm) FB_CPU=$cpu FB_NPROC=$(nproc) \
	FB_JEMALLOC=$(basename "$jemalloc") FB_RUNS=$runs FB_RRUNS=$redis_runs \
	FB_REDIS=$do_redis FB_KEYS=$redis_keys FB_REQ=$redis_requests \
	FB_LOAD="$load_start / $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo NA)" \
	FB_SECS=$((SECONDS - start)) \
	python3 - "$results" >"$tmp/fork.md" <<'EOF'
import csv, os, statistics, sys

E = os.environ
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))

def vals(bench, case, alloc, key='value'):
    return [float(r[key]) for r in rows
            if r['bench'] == bench and r['case'] == case and r['alloc'] == alloc]

def med(*a, **k):
    v = vals(*a, **k)
    return statistics.median(v) if v else None

def verdict(r, target):
    return '%.2f %s' % (r, 'met' if r <= target else '**MISSED**')

out = []
P = out.append
P('# fork with a persistent heap (bench/fork.sh)')
P('')
P('commit %s; %s; %s, %s CPUs; jemalloc = %s; pools on /dev/shm (tmpfs); '
  'load average at start / end: %s; %s s in all.' % (
      E['FB_COMMIT'], E['FB_UNAME'], E['FB_CPU'], E['FB_NPROC'], E['FB_JEMALLOC'],
      E['FB_LOAD'], E['FB_SECS']))
P('')
P('## fork + execve(/bin/true) + waitpid: ms each, median of %s runs' % E['FB_RUNS'])
P('')
P('The process holds MiB of heap in 4 MiB blocks, every byte written; btd = '
  'LD_PRELOAD=libbtd_preload.so with the default policy (the blocks are '
  'persistent).  Target: btd / jemalloc <= 1.5 at every size.')
P('')
P('| heap MiB | jemalloc ms | btd ms | btd / jemalloc | btd min - max ms |')
P('|---:|---:|---:|---:|---:|')
for mb in dict.fromkeys(r['case'] for r in rows if r['bench'] == 'forkexec'):
    j, b = med('forkexec', mb, 'jemalloc'), med('forkexec', mb, 'btd')
    v = vals('forkexec', mb, 'btd')
    P('| %s | %.2f | %.2f | %s | %.2f - %.2f |' % (mb, j, b, verdict(b / j, 1.5), min(v), max(v)))
P('')
P('## bash: a 50 MiB variable, then 200 `$(echo $i)`: s, median of %s runs' % E['FB_RUNS'])
P('')
P('loop = the 200 command substitutions ($EPOCHREALTIME); wall = the whole '
  '`bash -c`, building the variable included.  glibc = no preload; btd = the '
  'default policy (the 50 MiB string is a large block).  Target: btd / '
  'glibc <= 1.5.')
P('')
P('| | glibc | jemalloc | btd | btd / glibc | btd / jemalloc |')
P('|---|---:|---:|---:|---:|---:|')
for key, name in (('value', 'loop s'), ('extra', 'wall s')):
    g, j, b = (med('bash', 'loop', a, key) for a in ('glibc', 'jemalloc', 'btd'))
    P('| %s | %.3f | %.3f | %.3f | %s | %.2f |' % (name, g, j, b, verdict(b / g, 1.5), b / j))
g, b = med('bash', 'loop', 'glibc'), med('bash', 'loop', 'btd')
P('| ms per substitution (loop) | %.2f | %.2f | %.2f | | |' % (
    g * 5, med('bash', 'loop', 'jemalloc') * 5, b * 5))
P('')
if E['FB_REDIS'] == '1':
    P('## redis-server: redis-benchmark -t lpush with BGSAVE running, median of %s runs'
      % E['FB_RRUNS'])
    P('')
    P('%s keys loaded first (DEBUG POPULATE, 100-byte values), then %s LPUSH requests '
      '(50 clients) while BGSAVE SCHEDULE is asked every 100 ms.  jemalloc = the '
      'plain server (it links libjemalloc.so.2); btd = LD_PRELOAD=libbtd_preload.so '
      'BTD_POLICY=all.  forks = background saves started during the benchmark; '
      'fork ms = INFO latest_fork_usec at the end.  Target: btd / jemalloc time '
      '(= jemalloc ops/s / btd ops/s) <= 1.3.' % (E['FB_KEYS'], E['FB_REQ']))
    P('')
    P('| server | LPUSH ops/s | ops/s min - max | used_memory MB | forks per run | fork ms |')
    P('|---|---:|---:|---:|---:|---:|')
    for a in ('jemalloc', 'btd'):
        ex = [r['extra'].split() for r in rows if r['bench'] == 'redis' and r['alloc'] == a]
        v = vals('redis', 'lpush', a)
        if not v:
            continue
        P('| %s | %.0f | %.0f - %.0f | %.0f | %s | %.1f |' % (
            a, statistics.median(v), min(v), max(v),
            statistics.median(float(e[2]) for e in ex) / 1e6,
            '/'.join(e[0] for e in ex),
            statistics.median(float(e[1]) for e in ex) / 1e3))
    j, b = med('redis', 'lpush', 'jemalloc'), med('redis', 'lpush', 'btd')
    if j and b:
        P('')
        P('btd / jemalloc time: %s' % verdict(j / b, 1.3))
    P('')
print('\n'.join(out))
EOF

cp "$tmp/fork.md" "$script_dir/results/fork.md"
cp "$results" "$script_dir/results/fork.tsv"
cat "$tmp/fork.md"
echo >&2
echo "fork.sh: total $((SECONDS - start)) s; tables in bench/results/fork.md, runs in" \
	"bench/results/fork.tsv" >&2
