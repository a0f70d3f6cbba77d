#!/bin/bash
# linked.sh LIB PROG BTD: a program linked to libbtd under the preload --
# its btd_* calls open the pool the routing uses, whichever comes first
# (see linked.c for the modes).
set -u
lib=$1 prog=$2 btd=$3
tmp=$(mktemp -d /dev/shm/btd-linked.XXXXXX)
dir=/dev/shm/btd-$(id -u)
trap 'rm -rf "$tmp"; rm -f "$dir"/btd_test_linked.pool "$dir"/btd_test_linked.[0-9]*.pool' EXIT
fail() { echo "linked.sh: $*" >&2; exit 1; }
run() { env LD_PRELOAD="$lib" BTD_STRICT=1 "$@"; }
quiet() { [ ! -s "$tmp/err" ] || fail "$1 printed: $(cat "$tmp/err")"; }

# Get-or-create across runs: the first call of the second run finds the
# root the first run made.
for want in 1 2 3; do
	out=$(run BTD_POOL="$tmp/counter.pool" "$prog" counter 2>"$tmp/err") ||
		fail "counter run $want: $(cat "$tmp/err")"
	[ "$out" = "runs $want" ] || fail "counter run $want printed '$out': the root was not found"
	quiet "counter"
done

# btd_cluster_create does not switch the routing off: the same pool.
run "$prog" cluster "$tmp/cluster.pool" >/dev/null 2>"$tmp/err" || fail "cluster: $(cat "$tmp/err")"
quiet "cluster"
"$btd" info "$tmp/cluster.pool" | grep -q big || fail "root 'big' missing: $("$btd" info "$tmp/cluster.pool")"

# BTD_POLICY=none routes nothing, and the API still opens its pool.
for want in 1 2; do
	out=$(run BTD_POLICY=none BTD_POOL="$tmp/none.pool" "$prog" api-only 2>"$tmp/err") ||
		fail "api-only run $want: $(cat "$tmp/err")"
	[ "$out" = "runs $want" ] || fail "api-only run $want printed '$out'"
	quiet "api-only"
done

# A pool that cannot open: NULL and the reason (the routing never tried,
# so no warning and no BTD_STRICT exit: the program was told).
run BTD_POOL=/nonexistent-dir/p.pool "$prog" unavailable >/dev/null 2>"$tmp/err" ||
	fail "unavailable: $(cat "$tmp/err")"
quiet "unavailable"

# The routing opened the default pool; a create asking for another fails.
env -u BTD_POOL LD_PRELOAD="$lib" "$prog" other "$tmp/other.pool" >/dev/null 2>"$tmp/err" ||
	fail "other: $(cat "$tmp/err")"
quiet "other"
[ ! -e "$tmp/other.pool" ] || fail "a second pool was created"

# BTD_POOL_PROGRAM naming another program: the API refuses too.
run BTD_POOL="$tmp/f.pool" BTD_POOL_PROGRAM=someone-else "$prog" filtered >/dev/null \
	2>"$tmp/err" || fail "filtered: $(cat "$tmp/err")"
quiet "filtered"
[ ! -e "$tmp/f.pool" ] || fail "a filtered program created its pool"
echo "linked: ok"
