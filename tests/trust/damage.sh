#!/bin/bash
# damage.sh LISTPROG DAMAGE BTD: `btd check` never lies and never writes
# unasked; damage that could lose reachable data stops a program's open;
# `btd check --repair` repairs it (issue 6, item 5).
LISTPROG=$1 DAMAGE=$2 BTD=$3
. "$(dirname "$0")/lib.sh"

# 1. A crashed pool with one zeroed slab descriptor under a live list.
"$LISTPROG" crash 3000
"$DAMAGE" "$BTD_POOL" zero-slab >/dev/null || fail "damage zero-slab"
cp "$BTD_POOL" "$tmp/before"
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] || fail "check of a pool with a lost slab exited $st: $out"
grep -q 'reachable pointers lead into pages of no live run' <<<"$out" || fail "not reported: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "btd check (no --repair) changed the file"
run "$LISTPROG" verify 3000
[ $st -eq 3 ] || fail "a program opened the damaged pool (exit $st): $out"
grep -q 'btd check --repair' <<<"$out" || fail "the refusal does not say what to do: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "the refused open changed the pool file"
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 1 ] || fail "repair exited $st: $out"
grep -q 'restored 1 lost runs' <<<"$out" && grep -q '^REPAIRED$' <<<"$out" || fail "repair: $out"
# The slab came back with its class: exactly the list's blocks, each a block start.
grep -q '^blocks      3000 allocated, 3000 reachable' <<<"$out" || fail "repair restored the wrong run: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check after repair: $out"
run "$LISTPROG" verify 3000
[ $st -eq 0 ] || fail "the list after repair: $out"

# 1b. One byte of a slab's descriptor changed (its class): the descriptor
# fails its check, so the slab is lost, not misread; repair brings it back
# with its class.
rm -f "$BTD_POOL"
"$LISTPROG" crash 3000
"$DAMAGE" "$BTD_POOL" slab-class >/dev/null || fail "damage slab-class"
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] || fail "check of a slab with a changed class exited $st: $out"
run "$LISTPROG" verify 3000
[ $st -eq 3 ] || fail "a program opened a pool whose slab changed class (exit $st): $out"
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 1 ] && grep -q '^blocks      3000 allocated, 3000 reachable' <<<"$out" ||
	fail "repair of the slab's class: $st: $out"
run "$LISTPROG" verify 3000
[ $st -eq 0 ] || fail "the list after repairing the slab's class: $out"

# 2. Leaks in a cleanly closed pool are problems, not "ok".
rm -f "$BTD_POOL"
"$LISTPROG" leak
cp "$BTD_POOL" "$tmp/before"
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q '10 allocated blocks are unreachable (leaked)' <<<"$out" ||
	fail "leaks: exit $st: $out"
grep -q '^ok$' <<<"$out" && fail "ok printed over leaks: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "btd check (no --repair) changed the file"
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 1 ] || fail "repairing leaks exited $st: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "leaks remain after repair: $out"

# 3. Random descriptor damage: reported without a write, then repaired,
# then stable (every later check says the same).
for seed in 1 2 3; do
	rm -f "$BTD_POOL"
	"$LISTPROG" crash 3000
	"$DAMAGE" "$BTD_POOL" descs $seed
	cp "$BTD_POOL" "$tmp/before"
	run "$BTD" check "$BTD_POOL"
	[ $st -eq 1 ] || fail "seed $seed: check exited $st: $out"
	cmp -s "$BTD_POOL" "$tmp/before" || fail "seed $seed: btd check changed the file"
	run "$BTD" check --repair "$BTD_POOL"
	[ $st -eq 1 ] || fail "seed $seed: repair exited $st: $out"
	run "$BTD" check "$BTD_POOL"
	[ $st -eq 0 ] || fail "seed $seed: check after repair: $out"
	first=$out
	run "$BTD" check "$BTD_POOL"
	[ "$out" = "$first" ] || fail "seed $seed: two checks disagree: $first / $out"
done

# 4. Random bytes over the root table: no root is invented, the open stops.
rm -f "$BTD_POOL"
"$LISTPROG" build 100
"$DAMAGE" "$BTD_POOL" roots 7
cp "$BTD_POOL" "$tmp/before"
run "$BTD" info "$BTD_POOL"
grep -q '^roots       0 (and 1024 damaged slots' <<<"$out" || fail "info over random roots: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q '1024 root slots fail their checks' <<<"$out" || fail "check over random roots: $st: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "btd check changed the file"
run "$LISTPROG" verify
[ $st -eq 3 ] && grep -q 'root slots fail their checks' <<<"$out" || fail "open over random roots: $st: $out"
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 1 ] || fail "repair of the roots exited $st: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check after the roots' repair: $out"

# 5. A damaged header copy: reported on stderr, repaired by the next open.
rm -f "$BTD_POOL"
"$LISTPROG" build 10
"$DAMAGE" "$BTD_POOL" header1
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q "header copy 1 was damaged" <<<"$out" || fail "torn header: $st: $out"
run "$LISTPROG" verify 10
[ $st -eq 0 ] && grep -q 'header copy 1 was damaged.*repaired from copy 0' <<<"$out" ||
	fail "open over a torn header: $st: $out"
run "$BTD" info "$BTD_POOL"
grep -q '^header' <<<"$out" && fail "the header copy was not repaired: $out"

# 6. A pool of format 1.0 opens, keeps its roots, and is upgraded.
"$DAMAGE" "$BTD_POOL" minor0
"$BTD" info "$BTD_POOL" | grep -q '^format      1.0$' || fail "downgrade"
run "$LISTPROG" verify 10
[ $st -eq 0 ] || fail "a format 1.0 pool: $out"
run "$BTD" info "$BTD_POOL"
grep -q '^format      1.1$' <<<"$out" || fail "not upgraded: $out"
"$LISTPROG" verify 10 >/dev/null || fail "roots lost in the upgrade"

# 7. A cleanly closed pool is trusted only while its metadata is what its
# close left: zeroed descriptors stop the open, a zeroed bitmap is
# recovered, and nothing is punched or lost on the way.
rm -f "$BTD_POOL"
"$LISTPROG" grow 3000        # three slabs of list nodes and an 8 MiB block
"$LISTPROG" verify 3000 >/dev/null || fail "grow"
"$DAMAGE" "$BTD_POOL" descs0
cp "$BTD_POOL" "$tmp/before"
run "$LISTPROG" verify 3000
[ $st -eq 3 ] && grep -q 'lost run' <<<"$out" || fail "clean pool, zeroed descriptors: $st: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "the refused open changed the pool file"
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q 'changed since' <<<"$out" || fail "check, zeroed descriptors: $st: $out"
run "$BTD" check --repair "$BTD_POOL"
[ $st -eq 1 ] || fail "repair, zeroed descriptors: $st: $out"
# Every run back as it was: the slabs at their heads with their class (one
# block per node), the large block whole.
grep -q '^blocks      3001 allocated, 3001 reachable' <<<"$out" || fail "runs restored wrongly: $out"
run "$LISTPROG" verify 3000
[ $st -eq 0 ] && grep -q '^3000 ok$' <<<"$out" || fail "the data after repairing zeroed descriptors: $st: $out"
rm -f "$BTD_POOL"
"$LISTPROG" build 3000
"$DAMAGE" "$BTD_POOL" bitmap0
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q 'changed since' <<<"$out" || fail "check, zeroed bitmap: $st: $out"
run "$LISTPROG" verify 3000
[ $st -eq 0 ] || fail "the list over a zeroed bitmap: $st: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check after the zeroed bitmap was recovered: $out"

# A cleanly closed pool whose root table was zeroed: its close recorded
# roots, none is left -- refused, not reset.
rm -f "$BTD_POOL"
"$LISTPROG" build 100
"$DAMAGE" "$BTD_POOL" roots0
cp "$BTD_POOL" "$tmp/before"
run "$LISTPROG" verify
[ $st -eq 3 ] && grep -q 'none of the roots' <<<"$out" || fail "zeroed root table: $st: $out"
cmp -s "$BTD_POOL" "$tmp/before" || fail "the refused open changed the pool file"

# 8. The newer header copy lost after the heap grew: the older copy's top
# is too low; the descriptors show the live runs above it.
rm -f "$BTD_POOL"
"$LISTPROG" grow 3000
"$DAMAGE" "$BTD_POOL" newest
run "$BTD" check "$BTD_POOL"
[ $st -eq 1 ] && grep -q 'header copy . was damaged' <<<"$out" || fail "newest header lost: $st: $out"
run "$LISTPROG" verify 3000
[ $st -eq 0 ] && grep -q '^3000 ok$' <<<"$out" || fail "the data above the old top: $st: $out"

# 9. Not a pool, no pool: exit 2, nothing written.
head -c 1048576 /dev/urandom >"$tmp/junk"
cp "$tmp/junk" "$tmp/junk.before"
run "$BTD" check "$tmp/junk"
[ $st -eq 2 ] || fail "check of random bytes exited $st: $out"
run "$BTD" check --repair "$tmp/junk"
[ $st -eq 2 ] || fail "repair of random bytes exited $st: $out"
run "$BTD" info "$tmp/junk"
[ $st -eq 2 ] || fail "info of random bytes exited $st: $out"
cmp -s "$tmp/junk" "$tmp/junk.before" || fail "a foreign file was changed"
run "$BTD" check "$tmp/missing"
[ $st -eq 2 ] || fail "check of a missing pool exited $st"
[ -e "$tmp/missing" ] && fail "check created a pool"
echo "damage: ok"
