#!/bin/bash
# exit.sh LISTPROG DAMAGE BTD: a linked program that returns from main
# leaves its pool clean (issue 6, item 1), and recovery neither resurrects
# never-written blocks nor reports counts that contradict each other
# (item 2).
LISTPROG=$1 DAMAGE=$2 BTD=$3
. "$(dirname "$0")/lib.sh"

"$LISTPROG" build 1000 || fail "build failed"
run "$BTD" info "$BTD_POOL"
grep -q '^state       clean$' <<<"$out" || fail "returning from main left the pool dirty: $out"
"$LISTPROG" verify 1000 >/dev/null || fail "the list did not survive"
"$LISTPROG" verify 1000 >/dev/null || fail "the list did not survive a second reopen"
run "$BTD" info "$BTD_POOL"
grep -q '^opens       3 (0 after a crash)$' <<<"$out" || fail "reopens were counted as crashes: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check after clean runs: $out"

# A fork child that calls exit() neither marks the parent's pool clean nor
# gives back pages the parent is using.
rm -f "$BTD_POOL"
run "$LISTPROG" forkexit 1000
[ $st -eq 0 ] || fail "a fork child's exit damaged the parent's pool: $out"
run "$BTD" info "$BTD_POOL"
grep -q '^state       clean$' <<<"$out" || fail "after forkexit: $out"
"$LISTPROG" verify 1000 >/dev/null || fail "the list did not survive a fork child's exit"

# A crash (no destructor at all) is still a crash.
rm -f "$BTD_POOL"
"$LISTPROG" crash 500
run "$BTD" info "$BTD_POOL"
grep -q '^state       crashed' <<<"$out" || fail "_exit did not leave the pool dirty: $out"
"$LISTPROG" verify 500 >/dev/null || fail "the list did not survive the crash"

# A crash between a free and the reassignment of the field that held the
# block leaves a dangling pointer: recovery ignores it, the pool opens.
rm -f "$BTD_POOL"
"$LISTPROG" dangle >/dev/null && "$LISTPROG" dangle >/dev/null || fail "dangle runs"
"$LISTPROG" dangle kill
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "a dangling pointer after a crash is taken for damage: $out"
grep -q 'recovered (in a private view): kept 1 blocks' <<<"$out" || fail "dangling: $out"
run "$LISTPROG" verify
[ $st -eq 0 ] || fail "a program cannot open the pool with a dangling pointer: $st: $out"

# One rooted block whose first word was never written, ten more, a crash:
# recovery keeps exactly the rooted block and reclaims the ten.
rm -f "$BTD_POOL"
"$LISTPROG" unwritten
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "check of the unwritten-block pool: $out"
grep -q 'kept 1 blocks (224 bytes), reclaimed 10 blocks (2240 bytes)' <<<"$out" ||
	fail "recovery of a never-written rooted block: $out"
# No config and no cluster needed: the process's pool, opened as needed.
rm -f "$BTD_POOL"
run "$LISTPROG" nullapi
[ $st -eq 0 ] || fail "btd_malloc(NULL)/btd_cluster_create(NULL): $out"
echo "exit: ok"
