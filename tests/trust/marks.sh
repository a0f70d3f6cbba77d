#!/bin/bash
# marks.sh PRELOAD ALIGN BTD: release marks cover every page of a released
# run, also when an aligned block is placed inside it and another block then
# takes the rest: a dangling pointer into it after a crash is not a lost run.
PRELOAD=$1 ALIGN=$2 BTD=$3 DAMAGE=$4
. "$(dirname "$0")/lib.sh"
env LD_PRELOAD="$PRELOAD" BTD_POLICY=all "$ALIGN" 2>/dev/null
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "dangling pointers into a released run: check exited $st: $out"
run env LD_PRELOAD="$PRELOAD" BTD_POLICY=all "$ALIGN" open
[ $st -eq 0 ] && [ "$out" = opened ] || fail "the open: $st: $out"
# A rootless pool (an unmodified program's) whose descriptors changed after
# its clean close: nothing in it can be reachable, so the next run resets
# it without a word.
rm -f "$BTD_POOL"
env LD_PRELOAD="$PRELOAD" BTD_POLICY=all ls / >/dev/null || fail "ls"
"$DAMAGE" "$BTD_POOL" descs0
run env LD_PRELOAD="$PRELOAD" BTD_POLICY=all BTD_STRICT=1 ls /
[ $st -eq 0 ] && ! grep -q btd: <<<"$out" || fail "a damaged rootless pool: $st: $out"
# A program with a root, under the preload: what the policy put in the pool
# and the program never frees does not pile up over runs (the clean close
# asks the next open to collect).
rm -f "$BTD_POOL"
for i in $(seq 20); do
	env LD_PRELOAD="$PRELOAD" BTD_POLICY=all "$ALIGN" leak >/dev/null || fail "leak run $i"
done
run "$BTD" check "$BTD_POOL"
[ $st -eq 0 ] || fail "leaks piled up over 20 runs: $out"
n=$(sed -n 's/^blocks *\([0-9]*\) allocated.*/\1/p' <<<"$out")
[ -n "$n" ] && [ "$n" -lt 10 ] || fail "20 runs left $n blocks allocated: $out"
echo "marks: ok"
