#!/usr/bin/env bash
# python.sh PRELOAD: part of CPython's own regression suite (Debian's
# /usr/bin/python3 and its stdlib `test` package, libpython3.X-testsuite), with
# PYTHONMALLOC=malloc so that every Python object goes through malloc/free
# rather than pymalloc's arenas; run plainly and under the preload.
#
#   test_json            deep recursion, many small strings and dicts
#   test_pickle          large buffers, realloc growth, C extension objects
#   test_subprocess      fork/exec of preloaded children, fd and env handling
#   test_threading_local thread-local storage destroyed at thread exit
#
# Together about 30 s per run here.  The timing lines of regrtest differ
# between runs; the rest of its output is compared.
. "$(dirname "$0")/lib.sh"
btd_init "$@"

PYTHON=/usr/bin/python3
TESTS="test_json test_pickle test_subprocess test_threading_local"

[ -x $PYTHON ] || fail "$PYTHON is not installed (scripts/setup.sh installs python3)"
$PYTHON -c 'import test.libregrtest' 2>/dev/null ||
	fail "$PYTHON has no stdlib test package (install libpython3-testsuite)"

mkdir "$WORK/cwd" "$WORK/tmp"
chmod 1777 "$WORK/tmp"
cd "$WORK/cwd" || fail "cannot cd to $WORK/cwd"
export TMPDIR=$WORK/tmp PYTHONMALLOC=malloc
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP

# why OUTPUT: the first failed test, the test method and the exception, on
# one line.
why()
{
	awk '
		/^test .* failed|crashed|Fatal Python error|Segmentation fault/ && !t {
			t = $0; sub(/ -- Traceback.*/, "", t)
		}
		/, in test_/ && !m { m = $NF }
		/^[A-Za-z_.]*(Error|Exception|Failure)(:|$)/ && !e { e = $0; getline n; e = e " " n }
		END { printf "%s%s%s\n", t, m ? " in " m : "", e ? ": " e : "" }
	' "$1"
}

# shellcheck disable=SC2086
run_plain 240 $PYTHON -m test -q -W --timeout 120 $TESTS >"$WORK/plain.out" 2>&1
rc=$?
[ $rc -eq 0 ] ||
	fail "$(status_reason "the plain run (without the preload)" $rc): the environment is broken, not btd: $(why "$WORK/plain.out")"

# shellcheck disable=SC2086
run_preloaded 240 "$WORK/pid" $PYTHON -m test -q -W --timeout 120 $TESTS \
	>"$WORK/preloaded.out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the preloaded run" $rc): $(why "$WORK/preloaded.out")"

check_no_btd_messages "$WORK/preloaded.out"
keep()
{
	grep -v -E 'load avg|[Dd]uration|[0-9] (sec|ms)\b|^[[:space:]]*$' "$1"
}
keep "$WORK/plain.out" >"$WORK/plain.summary"
keep "$WORK/preloaded.out" >"$WORK/preloaded.summary"
grep -q 'Tests result: SUCCESS' "$WORK/plain.summary" ||
	fail "regrtest printed no 'Tests result: SUCCESS' line in the plain run"
compare_outputs "$WORK/plain.summary" "$WORK/preloaded.summary" "regrtest's summary"

check_preload_active python3 "$(cat "$WORK/pid")"
note "ok: $TESTS; the main python3 made $MAIN_CALLS mallocs through btd, $(stats_reports python3) python3 processes reported"
