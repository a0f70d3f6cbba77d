#!/bin/bash
# bounded.sh [--grow] FUZZ_POOL CORPUS OUT SECONDS [FLAGS...]: run the pool fuzzer for a bounded time.
#
# Starts from CORPUS/seed and CORPUS/regress (read, never written).  New
# inputs go to a scratch corpus removed at the end, so that every run takes
# the same time -- or, with --grow, to OUT/corpus, which is kept and read
# again by the next run (scripts/fuzz.sh).  A finding goes to
# OUT/artifacts.  FLAGS go to libFuzzer.  The pools live in a private
# directory under /dev/shm, removed at the end.  Exit 0 when nothing was
# found.
set -u
grow=0
[ "${1:-}" = --grow ] && { grow=1; shift; }
mkdir -p "$3/artifacts" || exit 2
fuzzer=$(realpath "$1") corpus=$(realpath "$2") out=$(realpath "$3") seconds=$4
shift 4
tmp=$(mktemp -d /dev/shm/btd-fuzz.XXXXXX 2>/dev/null || mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pools" "$tmp/corpus" || exit 2
cd "$out" || exit 2 # where libFuzzer's -jobs write their logs (fuzz-N.log)
rm -f fuzz-*.log
work=$tmp/corpus
if [ $grow -eq 1 ]; then
	work=$out/corpus
	mkdir -p "$work" || exit 2
fi
BTD_FUZZ_TMP=$tmp/pools "$fuzzer" -max_total_time="$seconds" -timeout=20 -max_len=1024 \
	-close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$@" \
	"$work" "$corpus/seed" "$corpus/regress"
st=$?
for log in fuzz-*.log; do
	[ -f "$log" ] && { echo "== $out/$log"; grep -E '^(stat::|==[0-9]+==ERROR|SUMMARY|fuzz_pool:)' "$log"; }
done
if [ $st -ne 0 ]; then
	found=$(ls -t "$out/artifacts" 2>/dev/null | head -1)
	echo "bounded.sh: a finding (exit $st): $out/artifacts/$found" >&2
	echo "bounded.sh: fuzz_replay FILE replays it, fuzz_replay --show FILE says what it" \
		"patches; once fixed, keep it as tests/fuzz/corpus/regress/<the bug>" >&2
fi
exit $st
