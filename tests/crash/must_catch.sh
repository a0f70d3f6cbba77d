#!/bin/bash
# must_catch.sh CRASH_SH BUILD DROP CASE: the crash suite sees a missing
# flush.  CASE passes as btd is; with the flush DROP taken out
# (BTD_CRASH_DROP, test builds only) the same case must fail -- a failed
# verification, not a usage error.
crash=$1 build=$2 drop=$3 case=$4
out=$("$crash" --build "$build" --case "$case" 2>&1) ||
	{ echo "must_catch.sh: $case fails with every flush in place:"; echo "$out"; exit 1; }
out=$(BTD_CRASH_DROP=$drop "$crash" --build "$build" --case "$case" 2>&1)
st=$?
if [ $st -ne 1 ] || ! grep -q '^not ok' <<<"$out"; then
	echo "must_catch.sh: without the $drop flush, $case exited $st (want 1, a failed case):"
	echo "$out"
	exit 1
fi
echo "must_catch.sh: without the $drop flush, $case fails as it must:"
grep '^#' <<<"$out" | head -3
exit 0
