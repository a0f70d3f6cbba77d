#!/bin/bash
# crash.sh: crash-injection tests -- crash the transaction workload at every
# named crash point, with a simulated power failure, and verify the pool.
#
#   scripts/crash.sh [--build DIR] --quick         every point, a few passes and seeds (the suite's)
#   scripts/crash.sh [--build DIR]                 every point, more passes and seeds
#   scripts/crash.sh [--build DIR] --runs N [--seed X]
#                                                  torture: N runs at random points, passes,
#                                                  seeds and moments, on one pool
#   scripts/crash.sh [--build DIR] --case P:N:S    one case (point P, pass N, seed S; P "kill":
#                                                  kill -9 after N ms); --keep leaves its pool
#                                                  and files, and says where
#   --points REGEX                                 only the points whose names match
#
# DIR is a build with -Dcrash_points=true (default: build).  A case runs
# tests/crash/tx_workload with BTD_CRASH_AT=P:N and BTD_CRASH_SIM=S on a
# fresh 64 MiB pool: it dies by SIGKILL at the Nth pass of P, after the
# simulated power failure threw away, word by word as seed S says, what was
# not flushed and drained.  Then tx_verify opens the pool (replay,
# recovery) and checks it against what the workload reported committed,
# closes it cleanly, and `btd check` must say ok.  A point of recovery
# (recovery.*) crashes the verifier's open instead, after a workload crash
# inside a transaction; the verifier then runs again and must pass.  A
# point not reached at that pass: the workload (or verifier) just finishes,
# is verified all the same, and the case is "ok ... # SKIP not reached".
# Torture runs also kill the workload with `kill -9` at a random moment,
# and flush with CPU instructions every other run.  The environment is
# passed on: PMEM_IS_PMEM_FORCE=1 runs any mode on the cache-line path.
#
# Output is TAP: "1..N", then "ok N - P:N seed S" or "not ok ..." with the
# reason and the command that reproduces it as "# " lines.  Exit status 1
# when a case failed, 2 on bad usage or a build without crash points.
set -u
cd "$(dirname "$0")/.."

build=build mode=full runs=0 only= keep=0 pattern=. keep_failed=0 tseed=$RANDOM
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?--build needs a directory}; shift ;;
	--quick) mode=quick ;;
	--runs) mode=torture; runs=${2:?--runs needs a number}; shift ;;
	--case) mode=case; only=${2:?--case needs POINT:NTH:SEED}; shift ;;
	--keep) keep=1 ;;
	--points) pattern=${2:?--points needs a pattern}; shift ;;
	--seed) tseed=${2:?--seed needs a number}; shift ;;
	*) echo "usage: scripts/crash.sh [--build DIR] [--points REGEX]" \
		"[--quick | --runs N [--seed X] | --case P:N:S [--keep]]" >&2
	   exit 2 ;;
	esac
	shift
done
workload=$build/tests/crash/tx_workload
verify=$build/tests/crash/tx_verify
btd=$build/tools/btd
for b in "$workload" "$verify" "$btd"; do
	[ -x "$b" ] || { echo "crash.sh: no $b: build first (ninja -C $build)" >&2; exit 2; }
done
points=$(BTD_CRASH_AT=list "$workload" | awk '{ print $1 }')
if [ -z "$points" ]; then
	echo "crash.sh: $build has no crash points: meson configure $build -Dcrash_points=true" >&2
	exit 2
fi
all_points=$points
points=$(grep -E -- "$pattern" <<<"$points")
[ -n "$points" ] || { echo "crash.sh: no crash point matches $pattern" >&2; exit 2; }

tmp=$(mktemp -d /dev/shm/btd-crash.XXXXXX)
cleanup() { [ "$keep" = 1 ] || [ "$keep_failed" = 1 ] || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export BTD_POOL_SIZE=64M
unset BTD_CRASH_AT BTD_CRASH_SIM BTD_POOL BTD_GC BTD_STRICT
txs=2000
[ "$mode" = quick ] && txs=800

n=0 failed=0
diag() { sed 's/^/#   /'; }

# run NAME CMD...: run a program of the case, its output to $dir/NAME.out;
# sets rc (137: killed by SIGKILL -- crashed; 124: timed out).
run() {
	local name=$1
	shift
	# (the braces keep bash's "Killed" line about the crash off stderr)
	{ timeout -k 10 300 "$@" >"$dir/$name.out" 2>&1; } 2>/dev/null
	rc=$?
	[ "$rc" = 124 ] && echo "(timed out after 300 s)" >>"$dir/$name.out"
}

# The pass of tx.add.durable that crashes the workload before a recovery
# point is tried: inside a transaction, so that replay has work.
pre_pass() { echo $((29 + 211 * $1)); }

# The workload, crashed at POINT:NTH with seed SEED, or killed with
# `kill -9` after NTH ms when POINT is "kill".  Sets rc (137: killed by
# SIGKILL -- crashed).
crash_workload() {
	local point=$1 nth=$2 seed=$3
	if [ "$point" = kill ]; then
		"$workload" --txs "$txs" >"$dir/workload.out" 2>&1 3>>"$dir/reported" &
		local pid=$!
		sleep "$((nth / 1000)).$(printf '%03d' $((nth % 1000)))"
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=$?
	else
		BTD_CRASH_AT=$point:$nth BTD_CRASH_SIM=$seed run workload \
			"$workload" --txs "$txs" 3>>"$dir/reported"
	fi
}

# one_case POINT NTH SEED [DIR]: one TAP line (and diagnostics); 0 when ok.
# Without DIR, on a fresh pool, removed afterwards; with DIR, on the pool
# there, which stays.
one_case() {
	local point=$1 nth=$2 seed=$3 what="" crashed=0 status name
	n=$((n + 1))
	dir=${4:-$tmp/case.$n}
	mkdir -p "$dir"
	rm -f "$dir"/*.out
	export BTD_POOL=$dir/pool
	if [[ $point == recovery.* ]]; then
		crash_workload tx.add.durable "$(pre_pass "$nth")" "$seed"
		[ "$rc" = 0 ] || [ "$rc" = 137 ] || what="the workload failed (exit $rc)"
		if [ -z "$what" ]; then
			BTD_CRASH_AT=$point:$nth BTD_CRASH_SIM=$seed run verify-crash \
				"$verify" "$dir/reported"
			case $rc in
			137) crashed=1 ;;
			0) ;;
			*) what="the verifier failed before the crash (exit $rc)" ;;
			esac
		fi
	else
		crash_workload "$point" "$nth" "$seed"
		case $rc in
		137) crashed=1 ;;
		0) ;;
		*) what="the workload failed (exit $rc)" ;;
		esac
	fi
	# A failed workload is verified all the same: it says more.
	if [ -z "$what" ] || [ ! -s "$dir/verify-crash.out" ]; then
		run verify "$verify" "$dir/reported"
		[ "$rc" = 0 ] || what=${what:-"tx_verify failed (exit $rc)"}
	fi
	if [ -z "$what" ]; then
		run check "$btd" check "$BTD_POOL"
		[ "$rc" = 0 ] || what="btd check after the verifier's clean close: exit $rc"
	fi
	if [ "$point" = kill ]; then
		name="kill -9 after $nth ms"
	else
		name="$point:$nth seed $seed"
	fi
	[ -n "${PMEM_IS_PMEM_FORCE:-}" ] && name="$name, cpu flushes"
	if [ -n "$what" ]; then
		echo "not ok $n - $name"
		{
			echo "$what"
			for f in workload verify-crash verify check; do
				[ -s "$dir/$f.out" ] && { echo "$f:"; tail -n 15 "$dir/$f.out"; }
			done
			if [ "$mode" = torture ]; then
				echo "the pool's history (torture seed $tseed): $history"
			else
				echo "reproduce: scripts/crash.sh --build $build --case $point:$nth:$seed --keep"
			fi
		} | diag
		failed=$((failed + 1))
		status=1
	elif [ "$crashed" = 1 ]; then
		echo "ok $n - $name"
		status=0
	else
		echo "ok $n - $name # SKIP not reached"
		status=0
	fi
	[ "$mode" = case ] && [ "$keep" = 1 ] && echo "# kept: $dir (pool, reported, *.out)"
	[ $# -ge 4 ] || [ "$mode" = case ] || rm -rf "$dir"
	return $status
}

# TORTURE: runs on one pool, which the workload takes up where the last run
# left it, at random points, passes (1 to 4096, log-uniform; 1 or 2 for
# recovery's), seeds, and one run in four a kill -9 at a random moment (10
# to 600 ms); every other run flushes with the CPU's instructions
# (PMEM_IS_PMEM_FORCE=1, libpmem's cache-line path) instead of msync.  A
# pool that fails a check is kept, its history printed, and a fresh one
# taken.
torture() {
	local i p k s pool=$tmp/torture.1 pools=1
	local -a all=($points)
	history=
	for ((i = 1; i <= runs; i++)); do
		s=$((RANDOM * 32768 + RANDOM))
		k=$(((RANDOM % (1 << (RANDOM % 13))) + 1))
		if ((RANDOM % 4 == 0)); then
			p=kill k=$((10 + RANDOM % 590))
		else
			p=${all[RANDOM % ${#all[@]}]}
			[[ $p == recovery.* ]] && k=$((1 + RANDOM % 2))
		fi
		if ((RANDOM % 2)); then
			export PMEM_IS_PMEM_FORCE=1
			history="$history $p:$k:$s(cpu)"
		else
			unset PMEM_IS_PMEM_FORCE
			history="$history $p:$k:$s"
		fi
		if ! one_case "$p" "$k" "$s" "$pool"; then
			echo "# kept the failed pool: $pool"
			keep_failed=1
			pools=$((pools + 1))
			pool=$tmp/torture.$pools
			history=
		fi
	done
}

# The passes tried at each point: a point of recovery is passed once per
# open (replay: once per log in flight).
case $mode in
quick) passes="1 3 40" rpasses="1 2" seeds="1 2" ;;
full) passes="1 2 3 7 20 60 200 700" rpasses="1 2 3" seeds="1 2 3 4" ;;
esac
passes_of() { [[ $1 == recovery.* ]] && echo "$rpasses" || echo "$passes"; }

if [ "$mode" = case ]; then
	IFS=: read -r p k s <<<"$only"
	[ "$p" = kill ] || grep -qx "$p" <<<"$all_points" ||
		{ echo "crash.sh: no crash point $p" >&2; exit 2; }
	echo "1..1"
	one_case "$p" "${k:-1}" "${s:-1}"
	exit $?
fi

if [ "$mode" = torture ]; then
	echo "1..$runs"
	echo "# torture seed $tseed (--seed $tseed repeats the choices, not the kill -9 moments)"
	RANDOM=$tseed
	torture
	[ "$keep_failed" = 1 ] && echo "# failed pools are kept in $tmp"
	exit $((failed > 0))
fi

total=0
for p in $points; do
	total=$((total + $(wc -w <<<"$(passes_of "$p")") * $(wc -w <<<"$seeds")))
done
echo "1..$total"
for p in $points; do
	for k in $(passes_of "$p"); do
		for s in $seeds; do
			one_case "$p" "$k" "$s"
		done
	done
done
[ "$failed" = 0 ] || echo "# $failed of $n cases failed"
exit $((failed > 0))
