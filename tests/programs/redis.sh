#!/usr/bin/env bash
# redis.sh PRELOAD: redis-server on 127.0.0.1 (a free port between 20000 and
# 40000), loaded by redis-benchmark and then by a fixed list of redis-cli
# commands (strings, lists, hashes, sets, sorted sets, a Lua script that
# creates and drops 50,000 keys, MEMORY PURGE); then SHUTDOWN NOSAVE.  Once
# plainly and once with server and clients under the preload; the server
# must exit 0 and the redis-cli outputs must match (the benchmark's speeds
# are not compared, only that all its tests ran).
#
# What btd sees of redis here (Debian's redis 7.0, "malloc=jemalloc-5.3.0"):
# redis-server is not built with a static, prefixed jemalloc but linked
# against the system's libjemalloc.so.2, the same library btd routes to.
# Its zmalloc layer calls the plain names -- malloc, calloc, realloc, free,
# malloc_usable_size are undefined symbols of /usr/bin/redis-server (see
# `nm -D --undefined-only`) -- so under LD_PRELOAD they bind to btd's entry
# points, and its stats report shows hundreds of thousands of malloc calls
# and about twice as many malloc_usable_size calls (redis's used_memory
# accounting).  Only mallctl, nallocx and malloc_stats_print (INFO, MEMORY
# PURGE / MALLOC-STATS) go straight to libjemalloc, which is the same
# jemalloc instance that btd allocates from, so its numbers stay coherent.
# So this test asserts the real thing: the server's report shows mallocs and
# malloc_usable_size calls served by btd.  (If a build of redis with a
# private, prefixed jemalloc were used, only the report's existence could be
# asserted.)
. "$(dirname "$0")/lib.sh"
btd_init "$@"

need_program redis-server redis-cli redis-benchmark

# port_is_free PORT: nothing accepts connections on it.
port_is_free()
{
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# client MODE CMD...: a client program, preloaded in the preloaded run.
client()
{
	local mode=$1

	shift
	if [ "$mode" = preloaded ]; then
		timeout -k 5 60 env LD_PRELOAD="$PRELOAD" BTD_STATS="$BTD_STATS_FILE" \
			${POLICY:+BTD_POLICY=$POLICY} "$@"
	else
		timeout -k 5 60 "$@"
	fi
}

cat >"$WORK/commands.txt" <<'EOF'
FLUSHALL
SET greeting hello
GET greeting
APPEND greeting ", world"
GET greeting
SETRANGE big 200000 end
STRLEN big
GETRANGE big 199998 200003
MSET a 1 b 2 c 3
MGET a b c nosuchkey
INCRBY counter 41
INCR counter
RPUSH list one two three four five
LPUSH list zero
LRANGE list 0 -1
LPOP list 2
LLEN list
HSET hash f1 v1 f2 v2 f3 v3
HGET hash f2
HGETALL hash
HDEL hash f1
HLEN hash
SADD set x y z x
SCARD set
SISMEMBER set y
ZADD zset 3 c 1 a 2 b 10 j
ZRANGE zset 0 -1 WITHSCORES
ZRANGEBYSCORE zset 2 5
EVAL "for i = 1, 50000 do redis.call('SET', 'k' .. i, string.rep('v', i % 300)) end return redis.call('DBSIZE')" 0
EVAL "local n = 0 for i = 1, 50000, 7 do n = n + redis.call('STRLEN', 'k' .. i) end return n" 0
EVAL "local t = {} for i = 1, 20000 do t[#t + 1] = tostring(i * i) end return #table.concat(t, ',')" 0
EVAL "for i = 1, 50000, 2 do redis.call('DEL', 'k' .. i) end return redis.call('DBSIZE')" 0
MEMORY PURGE
GET k2
GET k4999
EVAL "for i = 2, 50000, 2 do redis.call('DEL', 'k' .. i) end return redis.call('DBSIZE')" 0
DEL big list hash
DBSIZE
EOF

# run_redis MODE: MODE is plain or preloaded; the server's port, pid and
# output go to $WORK/MODE.*, the redis-cli outputs to $WORK/MODE.out.
run_redis()
{
	local mode=$1 port spid attempt i rc

	spid=
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 20000))
		port_is_free "$port" || continue
		set -- --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize no --dir "$WORK" --logfile ''
		# timeout itself in the background (not a function, which would
		# be a subshell), so that $! is what to wait for and to kill.
		if [ "$mode" = plain ]; then
			timeout -k 10 180 redis-server "$@" >"$WORK/$mode.log" 2>&1 &
		else
			timeout -k 10 180 sh -c 'echo $$ >"$0"; exec "$@"' "$WORK/pid" \
				env LD_PRELOAD="$PRELOAD" BTD_STATS="$BTD_STATS_FILE" \
				${POLICY:+BTD_POLICY=$POLICY} \
				redis-server "$@" >"$WORK/$mode.log" 2>&1 &
		fi
		spid=$!
		BTD_BG_PIDS="$BTD_BG_PIDS $spid"
		for ((i = 0; i < 100; i++)); do
			[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && break
			kill -0 "$spid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$spid" 2>/dev/null && break
		wait "$spid"
		rc=$?
		BTD_BG_PIDS=${BTD_BG_PIDS% "$spid"}
		spid=
		# Someone took the port between the check and the bind: again.
		grep -q 'Address already in use' "$WORK/$mode.log" && continue
		fail "$(status_reason "the $mode redis-server" $rc) at start-up: $(grep -m1 -v -i warning "$WORK/$mode.log")"
	done
	[ -n "$spid" ] || fail "found no free port for redis-server in 8 tries"
	[ "$i" -lt 100 ] || fail "the $mode redis-server did not answer PING within 10 s"

	client "$mode" redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -q \
		-t set,get,lpush,lpop,incr >"$WORK/$mode.bench" 2>&1
	rc=$?
	[ $rc -eq 0 ] || fail "$(status_reason "redis-benchmark against the $mode server" $rc)"
	[ "$(tr '\r' '\n' <"$WORK/$mode.bench" | grep -c 'requests per second')" -ge 5 ] ||
		fail "redis-benchmark against the $mode server did not finish its 5 tests: $(tr '\r' '\n' <"$WORK/$mode.bench" | grep -v '^ *$' | tail -n1)"

	{
		client "$mode" redis-cli -h 127.0.0.1 -p "$port" <"$WORK/commands.txt" ||
			echo "redis-cli exited $?"
		client "$mode" redis-cli -h 127.0.0.1 -p "$port" info memory |
			tr -d '\r' | grep '^mem_allocator:'
	} >"$WORK/$mode.out" 2>&1

	client "$mode" redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1
	wait "$spid"
	rc=$?
	BTD_BG_PIDS=${BTD_BG_PIDS% "$spid"}
	[ $rc -eq 0 ] ||
		fail "$(status_reason "the $mode redis-server" $rc) after SHUTDOWN NOSAVE: $(grep -v -i warning "$WORK/$mode.log" | tail -n1)"
	grep -q 'ready to exit, bye bye' "$WORK/$mode.log" ||
		fail "the $mode redis-server did not log its shutdown"
}

run_redis plain
# The plain run is the reference: no errors, and complete.
line=$(grep -m1 -E '^(ERR|WRONGTYPE|redis-cli exited|Could not connect)' "$WORK/plain.out") &&
	fail "the plain run's redis-cli output has an error, the environment is broken, not btd: $line"
grep -q '^mem_allocator:' "$WORK/plain.out" ||
	fail "the plain run's redis-cli output is incomplete: $(tail -n1 "$WORK/plain.out")"
run_redis preloaded

check_no_btd_messages "$WORK/preloaded.log"
check_no_btd_messages "$WORK/preloaded.out"
check_no_btd_messages "$WORK/preloaded.bench"
compare_outputs "$WORK/plain.out" "$WORK/preloaded.out" "the redis-cli output"

pid=$(cat "$WORK/pid")
check_preload_active redis-server "$pid"
usable=$(stats_calls redis-server "$pid" malloc_usable_size "$ROUTE")
[ -n "$usable" ] && [ "$usable" -gt 0 ] ||
	fail "the btd report of redis-server (pid $pid) shows no malloc_usable_size calls: redis's zmalloc accounting did not go through btd"
[ "$(stats_reports redis-cli)" -ge 3 ] && [ "$(stats_reports redis-benchmark)" -ge 1 ] ||
	fail "the preloaded redis-cli and redis-benchmark runs left no btd reports"
note "ok: $(wc -l <"$WORK/plain.out") lines of redis-cli output identical; redis-server made $MAIN_CALLS mallocs and $usable malloc_usable_size calls through btd"
