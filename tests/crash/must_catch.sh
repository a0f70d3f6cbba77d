#!/bin/bash
# must_catch.sh CRASH_SH BUILD DROP CASE...: the crash suite sees a missing
# flush.  Every CASE passes as btd is; with the flush DROP taken out
# (BTD_CRASH_DROP, test builds only) at least one of them must fail -- a
# failed verification, not a usage error.  Several cases, since the
# workload's two threads decide which one a given pass lands in.
crash=$1 build=$2 drop=$3
shift 3
caught=
for case in "$@"; do
	out=$("$crash" --build "$build" --case "$case" 2>&1) ||
		{ echo "must_catch.sh: $case fails with every flush in place:"; echo "$out"; exit 1; }
	out=$(BTD_CRASH_DROP=$drop "$crash" --build "$build" --case "$case" 2>&1)
	st=$?
	if [ $st -eq 1 ] && grep -q '^not ok' <<<"$out"; then
		caught="$caught $case"
	elif [ $st -ne 0 ]; then
		echo "must_catch.sh: without the $drop flush, $case exited $st (want 0 or 1):"
		echo "$out"
		exit 1
	fi
done
[ -n "$caught" ] || { echo "must_catch.sh: without the $drop flush, no case failed: $*"; exit 1; }
echo "must_catch.sh: without the $drop flush, these cases fail as they must:$caught"
