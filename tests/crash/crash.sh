#!/bin/bash
# crash.sh WRITER VERIFY BTD [ROUNDS]: kill -9 a program that builds a
# root-linked list at random moments; after each kill, the next open must
# find every persisted node intact and the sequence never going back, the
# heap checker clean, and no block leaked.
set -u
writer=$1 verify=$2 btd=$3 rounds=${4:-25}
tmp=$(mktemp -d /dev/shm/btd-crash.XXXXXX)
trap 'kill -9 $wpid 2>/dev/null; rm -rf "$tmp"' EXIT
export BTD_POOL=$tmp/crash.pool
fail() { echo "crash.sh: round $r: $*" >&2; exit 1; }

last=-1
wpid=
for ((r = 1; r <= rounds; r++)); do
	"$writer" 2>"$tmp/writer.err" &
	wpid=$!
	# 20 to 300 ms: early kills catch the first slabs and roots, later ones
	# a large heap with frees and cut tails.
	sleep "0.$(printf '%03d' $((20 + RANDOM % 280)))"
	kill -9 "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	[ -s "$tmp/writer.err" ] && fail "writer: $(cat "$tmp/writer.err")"
	read -r head count < <("$verify") || fail "verify failed"
	[ "$head" -ge "$last" ] || fail "the list went back from seq $last to $head"
	out=$("$btd" check "$BTD_POOL") || fail "btd check: $out"
	grep -q 'unreachable (leaked)' <<<"$out" && fail "leak after recovery: $out"
	echo "round $r: head seq $head, $count nodes reachable; $(grep '^blocks' <<<"$out")"
	last=$head
done
[ "$last" -gt 0 ] || fail "the writer never got going"
echo "crash: ok ($rounds kills)"
