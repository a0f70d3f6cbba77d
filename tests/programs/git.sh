#!/usr/bin/env bash
# git.sh PRELOAD: bash runs gitwork.sh (init, commits, a branch and a merge,
# log, diffs, blame, gc --aggressive, fsck, revert, cherry-pick, reset) in
# an empty directory, plainly and under the preload.  The dates are fixed,
# so the hashes, and so everything printed, must be the same.  Every git
# process (and those that git itself starts, such as pack-objects during
# gc) runs under the preload and reports its stats.
. "$(dirname "$0")/lib.sh"
btd_init "$@"

need_program git bash seq sed tr cut sort cksum wc
SCRIPT=$PROGRAMS_DIR/gitwork.sh
[ -f "$SCRIPT" ] || fail "missing $SCRIPT"
BASH_BIN=$(command -v bash)

# run_git MODE: MODE is plain or preloaded.
run_git()
{
	mkdir "$WORK/$1"
	(
		cd "$WORK/$1" || exit 1
		export HOME=$WORK/$1
		if [ "$1" = plain ]; then
			run_plain 120 "$BASH_BIN" "$SCRIPT"
		else
			run_preloaded 120 "$WORK/pid" "$BASH_BIN" "$SCRIPT"
		fi
	) >"$WORK/$1.out" 2>"$WORK/$1.err"
}

run_git plain
rc=$?
[ $rc -eq 0 ] ||
	fail "$(status_reason "the plain run (without the preload)" $rc): the environment is broken, not btd: $(head -n1 "$WORK/plain.err")"
grep -q '^== final' "$WORK/plain.out" || fail "the plain run did not reach the end of gitwork.sh"

run_git preloaded
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the preloaded run" $rc): $(grep -m1 -v '^btd' "$WORK/preloaded.err")"
check_no_btd_messages "$WORK/preloaded.err"
compare_outputs "$WORK/plain.out" "$WORK/preloaded.out" "the git workload's stdout"
compare_outputs "$WORK/plain.err" "$WORK/preloaded.err" "the git workload's stderr"

check_preload_active bash "$(cat "$WORK/pid")"
gits=$(stats_reports git)
[ "$gits" -ge 30 ] ||
	fail "only $gits git processes left a btd report with mallocs (the workload runs over 50)"
note "ok: $(wc -l <"$WORK/plain.out") lines identical; $gits git processes made mallocs through btd ($(awk -v r="$ROUTE" '/^btd: stats of git /{g=1;next} /^btd: stats of/{g=0} g && $2=="malloc" && $3==r {s+=$4} END{print s+0}' "$BTD_STATS_FILE") in all)"
