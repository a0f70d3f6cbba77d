# lib.sh: shared by the real-program tests in this directory; sourced, not run.
#
# Each test runs one unmodified program twice, once plainly and once with
# LD_PRELOAD=<libbtd_preload.so>, compares what the two runs print, and checks
# the stats report that btd appends to $BTD_STATS_FILE at exit, so that a
# preload that silently failed to load (ld.so only warns) cannot pass.
#
# Set PROGRAMS_KEEP_WORK=1 to keep the work dir of a failed test.  (Not a
# BTD_ name: btd warns on stderr about every BTD_ variable it does not know,
# and the preloaded programs would print that warning.)
#
# Usage from a test:   . "$(dirname "$0")/lib.sh"; btd_init "$@"
# After btd_init: PRELOAD (the library), WORK (a private temp dir, removed at
# exit), BTD_STATS_FILE (the stats file for the preloaded run).

set -uo pipefail

TEST_NAME=program-$(basename "$0" .sh)
PROGRAMS_DIR=$(cd "$(dirname "$0")" && pwd)

# fail REASON: one line on stderr, exit 1.  With PROGRAMS_KEEP_WORK=1 in the
# environment the work dir (outputs, stats) is kept for a look.
fail()
{
	if [ "${PROGRAMS_KEEP_WORK:-0}" = 1 ] && [ -n "${WORK:-}" ]; then
		echo "$TEST_NAME: FAIL: $* [kept $WORK]" >&2
		WORK=
	else
		echo "$TEST_NAME: FAIL: $*" >&2
	fi
	exit 1
}

note()
{
	echo "$TEST_NAME: $*"
}

# need_program NAME...: a missing program is a setup failure, not a skip:
# scripts/setup.sh installs them.
need_program()
{
	local p

	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 ||
			fail "$p is not installed (scripts/setup.sh installs it)"
	done
}

btd_cleanup()
{
	# Kill whatever we left running in the background (by pid, ours only).
	local pid

	for pid in ${BTD_BG_PIDS:-}; do
		kill "$pid" 2>/dev/null
	done
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}

btd_init()
{
	[ $# -ge 1 ] || fail "usage: $0 /abs/path/to/libbtd_preload.so"
	PRELOAD=$1
	case $PRELOAD in
	/*) ;;
	*) fail "the preload library path must be absolute, got '$PRELOAD'" ;;
	esac
	[ -f "$PRELOAD" ] || fail "no preload library at $PRELOAD (build it first)"
	need_program timeout
	# PROGRAMS_POLICY=all runs the preloaded side with every allocation in
	# the persistent heap; the reports then count calls on that route.
	POLICY=${PROGRAMS_POLICY:-}
	ROUTE=transient
	[ "$POLICY" = all ] && ROUTE=persistent

	# The plain run must be plain, and the preloaded run must report to our
	# file only.
	unset LD_PRELOAD BTD_STATS

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/btd-$TEST_NAME.XXXXXX") ||
		fail "mktemp -d failed"
	BTD_BG_PIDS=
	trap btd_cleanup EXIT
	trap 'exit 130' INT TERM
	# Programs that change uid in a child (python's test_subprocess runs
	# children as nobody) still append their reports to the stats file.
	chmod 755 "$WORK"
	mkdir "$WORK/stats"
	chmod 777 "$WORK/stats"
	BTD_STATS_FILE=$WORK/stats/stats.txt
	: >"$BTD_STATS_FILE"
	chmod 666 "$BTD_STATS_FILE"
}

# run_plain SECONDS CMD...: CMD under timeout, without the preload.
run_plain()
{
	local secs=$1

	shift
	timeout -k 10 "$secs" "$@"
}

# run_preloaded SECONDS PIDFILE CMD...: CMD under timeout with the preload
# and BTD_STATS; the pid of CMD itself (which the stats report names) goes to
# PIDFILE.  Neither timeout nor the sh in between is preloaded: only CMD and
# its descendants are.
run_preloaded()
{
	local secs=$1 pidfile=$2

	shift 2
	timeout -k 10 "$secs" sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
		env LD_PRELOAD="$PRELOAD" BTD_STATS="$BTD_STATS_FILE" ${POLICY:+BTD_POLICY=$POLICY} "$@"
}

# status_reason WHAT RC: "WHAT exited RC" with a note for timeouts.
status_reason()
{
	case $2 in
	124 | 137) echo "$1 timed out (exit $2)" ;;
	*) echo "$1 exited $2" ;;
	esac
}

# stats_calls PROGRAM PID ENTRY ROUTE: the calls column of that row in the
# report of PROGRAM (pid PID) in the stats file; empty if there is no such
# report or row.
stats_calls()
{
	awk -v hdr="btd: stats of $1 (pid $2)" -v e="$3" -v r="$4" '
		index($0, "btd: stats of ") == 1 { in_report = ($0 == hdr); next }
		in_report && $1 == "btd:" && $2 == e && $3 == r { print $4; exit }
	' "$BTD_STATS_FILE"
}

# stats_reports PROGRAM: how many reports of PROGRAM (any pid) show malloc
# calls, on any route (a fork child that does not exec allocates nothing
# more from its parent's pool: its calls are transient even under `all`).
stats_reports()
{
	awk -v p="$1" '
		index($0, "btd: stats of ") == 1 {
			in_report = ($4 == p); seen = 0; next
		}
		in_report && !seen && $2 == "malloc" && $4 > 0 { n++; seen = 1 }
		END { print n + 0 }
	' "$BTD_STATS_FILE"
}

# check_preload_active PROGRAM PID: the preloaded run's main process left a
# report with a non-zero count of malloc calls on $ROUTE; the count goes to
# MAIN_CALLS.
check_preload_active()
{
	local prog=$1 pid=$2 calls

	[ -n "$pid" ] || fail "no pid recorded for the preloaded $prog"
	grep -q "^btd: stats of $prog (pid $pid)\$" "$BTD_STATS_FILE" ||
		fail "no btd stats report for $prog (pid $pid) in $BTD_STATS_FILE: was the preload loaded? ($(grep -c '^btd: stats of' "$BTD_STATS_FILE") other reports)"
	calls=$(stats_calls "$prog" "$pid" malloc "$ROUTE")
	[ -n "$calls" ] && [ "$calls" -gt 0 ] ||
		fail "the btd report of $prog (pid $pid) shows no malloc calls on the $ROUTE route"
	MAIN_CALLS=$calls
}

# check_no_btd_messages FILE: the preloaded run printed no btd warnings or
# errors (a btd line on a program's stderr is a finding in itself).
check_no_btd_messages()
{
	local line

	line=$(grep -m1 '^btd' "$1") &&
		fail "btd printed to the program's output: $line"
	return 0
}

# compare_outputs PLAIN PRELOADED WHAT: identical files, or fail with the
# first differing line.
compare_outputs()
{
	local d

	cmp -s "$1" "$2" && return 0
	d=$(diff "$1" "$2" | grep -m1 '^[<>]')
	fail "$3 differs with the preload (first difference: ${d:-?}; plain $(wc -l <"$1") lines, preloaded $(wc -l <"$2") lines)"
}
