#!/bin/bash
# fallback.sh LIB PROG BTD: a pool that cannot be used gives one line on
# stderr and the program runs on jemalloc, leaving the file as it was;
# BTD_STRICT=1 exits instead; concurrent runs of one program get separate
# default pools.
set -u
lib=$1 prog=$2 btd=$3
tmp=$(mktemp -d /dev/shm/btd-fallback.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "fallback.sh: $*" >&2; exit 1; }
run() { env LD_PRELOAD="$lib" BTD_POLICY=all "$@"; }

# A directory that does not exist.
run BTD_POOL=/nonexistent-dir/p.pool "$prog" exit 2>"$tmp/err" || fail "the program did not run on"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "want one line: $(cat "$tmp/err")"
grep -q "persistent heap unavailable: cannot create pool /nonexistent-dir/p.pool" "$tmp/err" ||
	fail "unclear message: $(cat "$tmp/err")"

# A file that is not a pool: refused, unchanged.
head -c 100000 /dev/urandom >"$tmp/foreign"
sum=$(md5sum <"$tmp/foreign")
run BTD_POOL="$tmp/foreign" "$prog" exit 2>"$tmp/err" || fail "the program did not run on"
grep -q "is not a btd pool" "$tmp/err" || fail "foreign file: $(cat "$tmp/err")"
[ "$(md5sum <"$tmp/foreign")" = "$sum" ] || fail "the foreign file was changed"

# BTD_STRICT=1: exit 78 instead of falling back.
run BTD_STRICT=1 BTD_POOL="$tmp/foreign" "$prog" exit 2>"$tmp/err"
[ $? -eq 78 ] || fail "BTD_STRICT=1 did not exit 78"
grep -q "BTD_STRICT=1: exiting" "$tmp/err" || fail "strict message: $(cat "$tmp/err")"

# A full pool: the smallest pool, a program that wants more.
run BTD_POOL="$tmp/small.pool" BTD_POOL_SIZE=2M "$prog" exit 2>"$tmp/err" ||
	fail "the program did not run on with a full pool"
grep -q "persistent allocation of [0-9]* bytes failed: pool $tmp/small.pool is full" "$tmp/err" ||
	fail "full pool: $(cat "$tmp/err")"
grep -q "this allocation went to jemalloc (transient); later ones still try the pool" "$tmp/err" ||
	fail "the full-pool warning does not say what happens: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/err")" -eq 1 ] || fail "a full pool warns once: $(cat "$tmp/err")"
# A full pool is a real failure: BTD_STRICT=1 exits.
rm -f "$tmp/small.pool"
run BTD_STRICT=1 BTD_POOL="$tmp/small.pool" BTD_POOL_SIZE=2M "$prog" exit 2>"$tmp/err"
[ $? -eq 78 ] || fail "BTD_STRICT=1 with a full pool did not exit 78: $(cat "$tmp/err")"

# A full file system: growing the pool fails cleanly and once, the program
# runs on (never a SIGBUS), and fast: failed growth is not retried on every
# allocation.  A 16 MiB tmpfs of our own, in a private mount namespace.
mkdir "$tmp/mnt"
start=$(date +%s)
unshare --map-root-user --mount sh -c 'mount -t tmpfs -o size=16M tmpfs "$1" || exit 99
	shift; exec env "$@"' sh "$tmp/mnt" LD_PRELOAD="$lib" BTD_POLICY=all \
	BTD_POOL="$tmp/mnt/p.pool" BTD_POOL_SIZE=1G "$prog" big 2>"$tmp/err"
st=$?
[ $st -ne 99 ] || fail "cannot mount a tmpfs in a user namespace here"
[ $st -eq 0 ] || fail "the program ended $st on a full file system: $(cat "$tmp/err")"
grep -q "cannot grow pool $tmp/mnt/p.pool.*No space left on device" "$tmp/err" ||
	fail "full file system: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/err")" -eq 1 ] || fail "want one line: $(cat "$tmp/err")"
[ $(($(date +%s) - start)) -lt 20 ] || fail "a full file system made allocation slow"

# Two concurrent runs of one program with the default pool: separate pools.
mkdir -p "$tmp/home"
for i in 1 2; do
	(run BTD_STATS="$tmp/stats$i.txt" "$prog" sleep 2>"$tmp/err$i") &
done
wait
for i in 1 2; do
	[ ! -s "$tmp/err$i" ] || fail "concurrent run $i: $(cat "$tmp/err$i")"
done
dir=/dev/shm/btd-$(id -u)
[ -f "$dir/churn_exit.pool" ] && [ -f "$dir/churn_exit.1.pool" ] ||
	fail "two concurrent runs did not get two pools: $(ls "$dir")"
"$btd" info "$dir/churn_exit.1.pool" | grep -q '^state       clean' || fail "instance pool not closed clean"
echo "fallback: ok"
