#!/bin/bash
# tx.sh TXPROG BTD [PRELOAD]: a transaction interrupted by a crash is
# rolled back by the next open, whatever the media held; `btd info` shows
# the log in flight, `btd check` says what recovery would roll back
# without writing a byte, `--repair` rolls it back.  With PRELOAD, the
# same program runs under the preload.
TXPROG=$1 BTD=$2 PRELOAD=${3:-}
set -u
tmp=$(mktemp -d /dev/shm/btd-trust.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BTD_POOL=$tmp/p.pool
fail() { echo "tx.sh${PRELOAD:+ (preload)}: $*" >&2; exit 1; }
run() { out=$("$@" 2>&1); st=$?; }
prog() { if [ -n "$PRELOAD" ]; then LD_PRELOAD=$PRELOAD BTD_POLICY=all "$TXPROG" "$@"; else "$TXPROG" "$@"; fi; }

for i in 1 2 3; do prog commit || fail "commit $i"; done
prog verify 3 || fail "three commits"
prog crash
run "$BTD" info "$BTD_POOL"
grep -q '^  log .* in flight: 1 ranges' <<<"$out" || fail "info shows no log in flight: $out"
grep -q '1 in flight (1 ranges' <<<"$out" || fail "info: $out"
cp "$BTD_POOL" "$tmp/before"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check exited $st: $out"
grep -q '^transactions 1 in flight (1 ranges, 16 bytes): a program' <<<"$out" || fail "check: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "btd check wrote the pool"
prog verify 3 || fail "the crashed transaction was not rolled back"
run "$BTD" info "$BTD_POOL"
grep -q 'rolled back 1 transactions' <<<"$out" || fail "info: no last recovery: $out"
grep -q ', 0 in flight$' <<<"$out" || fail "info: a log still in flight: $out"

# --repair rolls back too, and then the pool is clean.
prog crash
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 0 ] && grep -q '^transactions 1 in flight .*: rolled back' <<<"$out" ||
	fail "check --repair exited $st: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] && ! grep -q '^transactions' <<<"$out" || fail "after repair: $st: $out"
prog verify 3 || fail "after repair"
prog commit && prog verify 4 || fail "a commit after the repair"
echo "tx: ok"
