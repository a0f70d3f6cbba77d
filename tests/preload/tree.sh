#!/bin/bash
# tree.sh LIB HELPER BTD: one pool, a process tree.  An explicit BTD_POOL
# held by a process of the same tree (a common ancestor below the
# session's leader) is the expected case -- no
# warning, no BTD_STRICT exit -- while a pool held by an unrelated process
# still warns; BTD_POOL_PROGRAM chooses who gets the pool; %p and %i in
# BTD_POOL give each program and instance its own; a request larger than
# the pool is jemalloc's, silently, even under BTD_STRICT=1.
set -u
lib=$1 h=$2 btd=$3
tmp=$(mktemp -d /dev/shm/btd-tree.XXXXXX)
holder=
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "tree.sh: $*" >&2; exit 1; }
run() { env LD_PRELOAD="$lib" BTD_STRICT=1 "$@"; }
quiet() { [ ! -s "$tmp/err" ] || fail "$1: $(grep -c . "$tmp/err") lines on stderr: $(head -3 "$tmp/err")"; }
# Start HELPER hold in the background; wait until it has its pool.
hold() {
	"$@" >"$tmp/held" 2>"$tmp/hold.err" &
	holder=$!
	for _ in $(seq 100); do
		grep -q held "$tmp/held" 2>/dev/null && return
		sleep 0.1
	done
	fail "the holder never got its pool: $(cat "$tmp/hold.err")"
}

# A script whose 20 parallel and 3 sequential children allocate: the
# script (bash, under BTD_POLICY=all) holds the pool, every child runs on
# jemalloc without a word.
run BTD_POOL="$tmp/tree.pool" BTD_POLICY=all BTD_STATS="$tmp/stats.txt" bash -c '
	for i in $(seq 20); do sh -c "$1 alloc" & done
	wait
	for i in 1 2 3; do sh -c "$1 alloc" || exit 1; done' sh "$h" 2>"$tmp/err" ||
	fail "the script failed: $(head -3 "$tmp/err")"
quiet "a script with children"
[ "$(grep -c "^btd: stats of" "$tmp/stats.txt")" -ge 24 ] || fail "missing stats reports"
[ "$(grep -c 'a process of this tree has it open' "$tmp/stats.txt")" -ge 23 ] ||
	fail "the children's reports do not say why they had no pool"

# A script that turns job control on: each job is its own process group,
# yet the jobs are one tree (default policy; each allocates 1 MiB blocks).
# The first job holds the pool while the others allocate. The jobs are
# waited for by pid: bash forgets a job spec once it has reported it done.
run BTD_POOL="$tmp/jobs.pool" bash -c 'set -m
	"$1" hold 2 >/dev/null &
	sleep 0.5
	"$1" alloc & a=$!
	"$1" alloc & b=$!
	wait $a && wait $b' sh "$h" 2>"$tmp/err.all" || fail "jobs: $(head -3 "$tmp/err.all")"
grep -v '^\[[0-9]\]' "$tmp/err.all" >"$tmp/err" # bash's job reports
quiet "a script with job control"

# A wrapper script that execs the program: the shell holds the pool until
# the exec, then the program has it.
printf '#!/bin/sh\nexec "$@"\n' >"$tmp/wrap"
chmod +x "$tmp/wrap"
run BTD_POOL="$tmp/wrap.pool" BTD_POLICY=all "$tmp/wrap" "$h" mine w 2>"$tmp/err" ||
	fail "wrapper: the program did not get the pool: $(head -3 "$tmp/err")"
quiet "a wrapper script"

# An unrelated process (another session) holds the pool: a warning naming
# it, and under BTD_STRICT=1 the exit.
hold env LD_PRELOAD="$lib" BTD_POOL="$tmp/other.pool" setsid "$h" hold 30
env LD_PRELOAD="$lib" BTD_POOL="$tmp/other.pool" "$h" alloc 2>"$tmp/err" ||
	fail "the program did not run on: $(cat "$tmp/err")"
grep -q "pool $tmp/other.pool is open in process $holder (btd_tree_helpe.*), which is not of this" \
	"$tmp/err" || fail "unrelated holder: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/err")" -eq 1 ] || fail "want one line: $(cat "$tmp/err")"
run BTD_POOL="$tmp/other.pool" "$h" alloc 2>"$tmp/err"
[ $? -eq 78 ] || fail "BTD_STRICT=1 with an unrelated holder did not exit 78"
kill "$holder"
wait "$holder" 2>/dev/null
holder=

# timeout PROG: without BTD_POOL_PROGRAM, timeout (an ancestor) takes the
# pool and PROG runs on jemalloc -- silently; with it, PROG gets the pool.
run BTD_POLICY=all BTD_POOL="$tmp/t.pool" timeout 10 "$h" mine t 2>"$tmp/err"
[ $? -eq 3 ] || fail "timeout did not take the pool first: $(cat "$tmp/err")"
quiet "timeout holding the pool"
rm -f "$tmp/t.pool"
run BTD_POLICY=all BTD_POOL="$tmp/t.pool" BTD_POOL_PROGRAM='btd_tree_*,nomatch' \
	timeout 10 "$h" mine t 2>"$tmp/err" || fail "BTD_POOL_PROGRAM: $(cat "$tmp/err")"
quiet "BTD_POOL_PROGRAM"
"$btd" info "$tmp/t.pool" | grep -q '^  t ' || fail "the program's root is not in the pool"

# %p and %i: each program its pool, each concurrent instance its own.
run BTD_POLICY=all BTD_POOL="$tmp/%p-%%.pool" sh -c '"$1" alloc' sh "$h" 2>"$tmp/err" ||
	fail "%p: $(cat "$tmp/err")"
quiet "%p"
[ -f "$tmp/sh-%.pool" ] && [ -f "$tmp/btd_tree_helper-%.pool" ] || fail "%p: $(ls "$tmp")"
hold env LD_PRELOAD="$lib" BTD_POOL="$tmp/%p.%i.pool" "$h" hold 30
run BTD_POOL="$tmp/%p.%i.pool" "$h" mine i 2>"$tmp/err" || fail "%i: $(cat "$tmp/err")"
quiet "%i"
kill "$holder"
wait "$holder" 2>/dev/null
holder=
"$btd" info "$tmp/btd_tree_helper.1.pool" | grep -q '^  i ' ||
	fail "%i: the second instance did not get btd_tree_helper.1.pool: $(ls "$tmp")"
[ -f "$tmp/btd_tree_helper.0.pool" ] || fail "%i: no instance 0: $(ls "$tmp")"

# Larger than the whole pool: jemalloc's, no warning, no BTD_STRICT exit,
# and the pool still serves what fits; counted in the stats.
run BTD_POOL="$tmp/small.pool" BTD_POOL_SIZE=2M BTD_STATS="$tmp/huge.txt" "$h" huge 67108864 \
	2>"$tmp/err" || fail "a request larger than the pool: $(cat "$tmp/err")"
quiet "a request larger than the pool"
grep -q "1 larger than the whole pool" "$tmp/huge.txt" || fail "not counted: $(cat "$tmp/huge.txt")"
echo "tree: ok"
