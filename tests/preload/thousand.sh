#!/bin/bash
# thousand.sh LIB CHURN_EXIT BTD: 1000 short runs of an unmodified program
# under BTD_POLICY=all, exiting, crashing and being killed in turn: the
# pool's space stays flat (a rootless pool is reset in O(1) at each open).
set -u
lib=$1 prog=$2 btd=$3
tmp=$(mktemp -d /dev/shm/btd-thousand.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "thousand.sh: $*" >&2; exit 1; }
pool=$tmp/t.pool
modes=(exit abort kill)
used() { du -k "$pool" | cut -f1; }

for ((i = 1; i <= 1000; i++)); do
	env LD_PRELOAD="$lib" BTD_POLICY=all BTD_POOL="$pool" BTD_POOL_SIZE=64M \
		"$prog" "${modes[i % 3]}" 2>/dev/null
	st=$?
	case ${modes[i % 3]} in
	exit) [ $st -eq 0 ] || fail "run $i exited $st" ;;
	abort) [ $st -eq 134 ] || fail "run $i (abort) ended $st" ;;
	kill) [ $st -eq 137 ] || fail "run $i (kill) ended $st" ;;
	esac
	[ $i -eq 10 ] && first=$(used)
done
last=$(used)
echo "pool holds ${first} KiB after 10 runs, ${last} KiB after 1000"
[ "$last" -le $((first + 512)) ] || fail "the pool grew from ${first} to ${last} KiB"
"$btd" info "$pool" | grep -q 'opens       1000 ' || fail "the pool was not opened by every run: $("$btd" info "$pool" | grep opens)"
# The stats report of a run after a crash: the reset and the persists.
env LD_PRELOAD="$lib" BTD_POLICY=all BTD_POOL="$pool" "$prog" kill 2>/dev/null
env LD_PRELOAD="$lib" BTD_POLICY=all BTD_POOL="$pool" BTD_STATS="$tmp/stats.txt" "$prog" exit ||
	fail "the run after a crash failed"
grep -q '^btd:   pool: opened dirty, rootless: reset$' "$tmp/stats.txt" ||
	fail "the report does not show the reset: $(grep pool: "$tmp/stats.txt")"
grep -qE '^btd:   flushes for descriptors +[1-9][0-9]*, drains [1-9][0-9]*$' "$tmp/stats.txt" ||
	fail "the report shows no descriptor persists: $(grep persists "$tmp/stats.txt")"

# btd info on a truncated pool: a message, not a SIGBUS.
truncate -s 100000 "$pool"
"$btd" info "$pool" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "btd info on a truncated pool did not exit 2 (not a readable pool)"
grep -q "truncated" "$tmp/err" || fail "btd info on a truncated pool: $(cat "$tmp/err")"
echo "thousand: ok"
