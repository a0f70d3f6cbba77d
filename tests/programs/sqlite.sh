#!/usr/bin/env bash
# sqlite.sh PRELOAD: the sqlite3 shell runs workload.sql (100,000 rows from a
# recursive CTE, indexes, joins, GROUP BY, window and JSON functions,
# UPDATE/DELETE with rollbacks, VACUUM) on a fresh database file, plainly and
# under the preload; what it prints must be the same byte for byte.
. "$(dirname "$0")/lib.sh"
btd_init "$@"

need_program sqlite3
SQL=$PROGRAMS_DIR/workload.sql
[ -f "$SQL" ] || fail "missing $SQL"

# run_sqlite MODE: MODE is plain or preloaded.
run_sqlite()
{
	local db=$WORK/$1.db

	if [ "$1" = plain ]; then
		run_plain 120 sqlite3 -batch -bail "$db" <"$SQL"
	else
		run_preloaded 120 "$WORK/pid" sqlite3 -batch -bail "$db" <"$SQL"
	fi >"$WORK/$1.out" 2>"$WORK/$1.err"
}

run_sqlite plain
rc=$?
[ $rc -eq 0 ] ||
	fail "$(status_reason "the plain run (without the preload)" $rc): the environment is broken, not btd: $(head -n1 "$WORK/plain.err")"
[ -s "$WORK/plain.err" ] && fail "the plain run wrote to stderr: $(head -n1 "$WORK/plain.err")"
grep -q '^final|' "$WORK/plain.out" || fail "the plain run did not reach the end of workload.sql"

run_sqlite preloaded
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the preloaded run" $rc): $(head -n1 "$WORK/preloaded.err")"
check_no_btd_messages "$WORK/preloaded.err"
[ -s "$WORK/preloaded.err" ] && fail "the preloaded run wrote to stderr: $(head -n1 "$WORK/preloaded.err")"
compare_outputs "$WORK/plain.out" "$WORK/preloaded.out" "sqlite3's output"

check_preload_active sqlite3 "$(cat "$WORK/pid")"
note "ok: $(wc -l <"$WORK/plain.out") lines of output identical; sqlite3 made $MAIN_CALLS mallocs through btd"
