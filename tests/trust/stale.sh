#!/bin/bash
# stale.sh STALE BTD: stale words in a live block's unwritten tail are
# dangling pointers, not damage: `btd check` of the clean pool says ok.
STALE=$1 BTD=$2
set -u
tmp=$(mktemp -d /dev/shm/btd-trust.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BTD_POOL=$tmp/p.pool
"$STALE" || { echo "stale.sh: the program failed" >&2; exit 1; }
out=$("$BTD" check "$BTD_POOL" 2>&1)
st=$?
[ $st -eq 0 ] && grep -q '^ok$' <<<"$out" && grep -q 'free blocks are pointed at' <<<"$out" ||
	{ echo "stale.sh: btd check exited $st: $out" >&2; exit 1; }
echo "stale: ok"
