#!/usr/bin/env bash
# bash.sh PRELOAD: bash runs forky.sh (about 2,000 forks: subshells,
# pipelines, command and process substitutions, background jobs with wait)
# plainly and under the preload; the values and checksums it prints must be
# the same.  Under the preload every fork child that exits reports its own
# stats (btd resets them in the child), so the number of reports also shows
# that the children ran with btd in place.
. "$(dirname "$0")/lib.sh"
btd_init "$@"

need_program bash sha256sum sort uniq tr wc cksum cut cat
SCRIPT=$PROGRAMS_DIR/forky.sh
[ -f "$SCRIPT" ] || fail "missing $SCRIPT"
BASH_BIN=$(command -v bash)

mkdir "$WORK/plain" "$WORK/preloaded"
(cd "$WORK/plain" && run_plain 120 "$BASH_BIN" "$SCRIPT") \
	>"$WORK/plain.out" 2>"$WORK/plain.err"
rc=$?
[ $rc -eq 0 ] ||
	fail "$(status_reason "the plain run (without the preload)" $rc): the environment is broken, not btd: $(head -n1 "$WORK/plain.err")"
[ -s "$WORK/plain.err" ] && fail "the plain run wrote to stderr: $(head -n1 "$WORK/plain.err")"
grep -q '^final ' "$WORK/plain.out" || fail "the plain run did not reach the end of forky.sh"

(cd "$WORK/preloaded" && run_preloaded 120 "$WORK/pid" "$BASH_BIN" "$SCRIPT") \
	>"$WORK/preloaded.out" 2>"$WORK/preloaded.err"
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the preloaded run" $rc): $(head -n1 "$WORK/preloaded.err")"
check_no_btd_messages "$WORK/preloaded.err"
[ -s "$WORK/preloaded.err" ] && fail "the preloaded run wrote to stderr: $(head -n1 "$WORK/preloaded.err")"
compare_outputs "$WORK/plain.out" "$WORK/preloaded.out" "forky.sh's output"

check_preload_active bash "$(cat "$WORK/pid")"
children=$(stats_reports bash)
[ "$children" -ge 1000 ] ||
	fail "only $children bash processes left a btd report with mallocs (expected one per fork child, over 1,000)"
note "ok: $(tail -n1 "$WORK/plain.out"); main bash made $MAIN_CALLS mallocs through btd; $children bash processes and $(($(grep -c '^btd: stats of' "$BTD_STATS_FILE") - children)) exec'd programs reported"
