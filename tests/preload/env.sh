#!/bin/bash
# env.sh LIB HELPER: the BTD_* environment seen from a real preloaded
# process -- stats reports, bad values, BTD_STRICT.  HELPER is a small
# program of ours that allocates, forks a child that allocates, and exits.
set -u
lib=$1 helper=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "env.sh: $*" >&2; exit 1; }
run() { env LD_PRELOAD="$lib" "$@"; }

# Silence by default: no variable, no output on stderr.
run "$helper" >"$tmp/out" 2>"$tmp/err" || fail "helper failed"
[ ! -s "$tmp/err" ] || fail "unexpected stderr without BTD_*: $(cat "$tmp/err")"

# BTD_STATS=1: a report on stderr, with the helper's own 1000 mallocs of 100 B.
run BTD_STATS=1 "$helper" 2>"$tmp/err" >/dev/null || fail "helper failed with stats"
grep -q '^btd: stats of stats_helper (pid [0-9]*)$' "$tmp/err" || fail "no report header: $(head -3 "$tmp/err")"
# The child exits first, so the parent's report is the last one.
calls=$(awk '/^btd: stats of/ {c=0} $2=="malloc" && $3=="transient" {c=$4} END {print c}' "$tmp/err")
[ "${calls:-0}" -ge 1000 ] || fail "report counts $calls transient mallocs, want >= 1000"
grep -q 'operator new' "$tmp/err" && fail "a C program reported operator new"

# BTD_STATS=path: parent and fork child each append their own report; the
# child counts only its calls (500 of 200 B), not its parent's.
run BTD_STATS="$tmp/stats.txt" "$helper" >/dev/null 2>"$tmp/err" || fail "helper failed"
[ "$(grep -c '^btd: stats of' "$tmp/stats.txt")" -eq 2 ] || fail "want 2 reports in the stats file"
child_bytes=$(awk '/^btd: stats of/ {n++} n==1 && $2=="malloc" && $3=="transient" {print $5}' "$tmp/stats.txt")
[ "$child_bytes" = 100000 ] || fail "child report shows $child_bytes malloc bytes, want exactly 100000"

# An unwritable stats path: one line naming it, and the report still comes.
run BTD_STATS=/nonexistent-dir/s.txt "$helper" >/dev/null 2>"$tmp/err" || fail "helper failed"
grep -q "cannot open BTD_STATS=/nonexistent-dir/s.txt" "$tmp/err" || fail "no message for a bad stats path"
grep -q '^btd: stats of' "$tmp/err" || fail "no report on stderr after a bad path"

# A misspelt variable: exactly one line, the program runs on.
run BTD_POLCY=all "$helper" >"$tmp/out" 2>"$tmp/err" || fail "helper failed with a bad variable"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "want one line for a misspelt variable: $(cat "$tmp/err")"
grep -q "unknown variable BTD_POLCY" "$tmp/err" || fail "line does not name BTD_POLCY"
grep -q "helper: ok" "$tmp/out" || fail "helper did not run on"

# A bad value: one line naming variable and accepted values.
run BTD_VERBOSE=9 "$helper" >/dev/null 2>"$tmp/err" || fail "helper failed"
grep -q "BTD_VERBOSE=9 is not valid: use 0, 1, 2 or 3" "$tmp/err" || fail "bad value line: $(cat "$tmp/err")"

# BTD_STRICT=1 turns it into exit status 78 before main runs.
run BTD_STRICT=1 BTD_GC=sometimes "$helper" >"$tmp/out" 2>"$tmp/err"
st=$?
[ "$st" -eq 78 ] || fail "BTD_STRICT=1 with a bad value exited $st, want 78"
[ ! -s "$tmp/out" ] || fail "the program ran despite BTD_STRICT=1"
grep -q "BTD_STRICT=1: exiting" "$tmp/err" || fail "no strict message"

# BTD_STRICT=1 with good settings changes nothing.
run BTD_STRICT=1 BTD_STATS=0 "$helper" >/dev/null 2>"$tmp/err" || fail "strict with good settings failed"
[ ! -s "$tmp/err" ] || fail "strict with good settings printed: $(cat "$tmp/err")"

# BTD_VERBOSE=2 says what was decided at start-up.
run BTD_VERBOSE=2 "$helper" >/dev/null 2>"$tmp/err" || fail "helper failed"
grep -q "started: policy large, large_min 262144, stats off, jemalloc fast paths" "$tmp/err" || fail "verbose line: $(cat "$tmp/err")"
echo "env: ok"
