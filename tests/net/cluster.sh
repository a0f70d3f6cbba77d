#!/bin/bash
# cluster.sh BTD REPL_WORK RAW_CLIENT PRELOAD [scenario...]: the distributed heap
# end to end, on 127.0.0.1 with three real `btd memd` processes and the tcp
# provider.  Every daemon is bounded in time and always stopped (trap).
#
# Scenarios (all by default):
#   client-crash  two replicas; kill -9 the client mid-commit, delete its
#                 pool, restore (btd restore, and at open): every commit that
#                 returned is there, none torn, btd check clean
#   sync-crash    one replica; kill -9 the client while btd_sync sends a
#                 whole image: the image before it is still there
#   node-crash    kill -9 one memory node mid-commit: the client goes on
#                 degraded; the node restarts (new keys), the client
#                 reconnects and resyncs it: both replicas byte-identical
#   auth          a wrong key is refused, on both sides
#   forge         forged offsets and keys are refused; garbage messages do
#                 not stop the node serving the others
#   example       the original README example with single_node = 0 against
#                 three nodes, restored on a "new machine"
#   admin         two pools that had one path: restore refuses to guess,
#                 --uuid chooses; `btd memd --list` and `--drop` on a
#                 stopped node (C, so last)
#   preload       under libbtd_preload.so: the linked workload replicates
#                 the same way, and an unmodified program's heap reaches the
#                 node at its exit (BTD_STATS counts it)
set -u
btd=$1 work=$2 raw=$3 preload=$4
shift 4
scenarios=${*:-client-crash sync-crash node-crash auth forge example preload admin}

tmp=$(mktemp -d /dev/shm/btd-test-net.XXXXXX)
declare -A memd_pid memd_port
failures=0
cleanup() {
	for n in "${!memd_pid[@]}"; do kill -TERM "${memd_pid[$n]}" 2>/dev/null; done
	sleep 0.2
	for n in "${!memd_pid[@]}"; do kill -KILL "${memd_pid[$n]}" 2>/dev/null; done
	[ -n "${client:-}" ] && kill -KILL "$client" 2>/dev/null
	# the watchdogs, before their pids could name other processes
	for w in "${watchdogs[@]}"; do kill "$w" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export FI_PROVIDER=tcp BTD_FABRIC_PROVIDER=tcp
unset BTD_POOL BTD_REPLICAS BTD_MIN_REPLICAS BTD_KEY_FILE BTD_POLICY
head -c 32 /dev/urandom >"$tmp/key" && chmod 600 "$tmp/key"
head -c 32 /dev/urandom >"$tmp/other" && chmod 600 "$tmp/other"

fail() { echo "FAIL [$scenario]: $*"; failures=$((failures + 1)); }
ok() { [ "$failures" -eq "$before" ] && echo "ok [$scenario]: $*"; }

# wait_for FILE PATTERN SECONDS
wait_for() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_memd NAME [PORT]: a memory node on its own pool; its port in memd_port.
# A node holds two leases of each pool (net/repl.c); C also serves the
# misbehaving clients (a lease each).
start_memd() {
	local n=$1 p=${2:-0} size=256M
	[ "$n" = A ] && size=512M
	[ "$n" = C ] && size=768M
	[ "$n" = D ] && size=1G
	: >"$tmp/$n.log"
	"$btd" memd --pool "$tmp/$n.node" --listen "127.0.0.1:$p" --key "$tmp/key" \
		--size $size 2>>"$tmp/$n.log" &
	memd_pid[$n]=$!
	# bounded in time even if this script is killed before its trap runs
	watchdog "${memd_pid[$n]}" 900
	if ! wait_for "$tmp/$n.log" "listening on 127.0.0.1:" 10; then
		echo "memd $n did not start:"; cat "$tmp/$n.log"; exit 1
	fi
	memd_port[$n]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$n.log" | tail -1)
}
# watchdog PID SECONDS: kill PID if it outlives SECONDS (not `timeout`,
# whose pid is not the program's: kill -9 must reach the program itself).
watchdogs=()
watchdog() {
	(
		trap 'kill $s; exit' TERM
		sleep "$2" & s=$!
		wait $s && kill -KILL "$1"
	) >/dev/null 2>&1 &
	watchdogs+=($!)
}
stop_memd() { kill -"${2:-TERM}" "${memd_pid[$1]}" 2>/dev/null; wait "${memd_pid[$1]}" 2>/dev/null; }
addr() { echo "127.0.0.1:${memd_port[$1]}"; }
last_commit() { sed -n 's/^committed //p' "$1" | tail -1; }

start_memd A
start_memd B
start_memd C
export BTD_KEY_FILE=$tmp/key

for scenario in $scenarios; do
before=$failures
case $scenario in
client-crash)
	pool=$tmp/cc.pool
	BTD_POOL=$pool BTD_REPLICAS=$(addr A),$(addr B) "$work" run 100000 200 \
		>"$tmp/cc.out" 2>"$tmp/cc.err" &
	client=$!; watchdog $client 120
	wait_for "$tmp/cc.out" "^committed 300$" 60 || fail "no progress: $(head -3 "$tmp/cc.err")"
	kill -KILL $client; wait $client 2>/dev/null; client=
	last=$(last_commit "$tmp/cc.out")
	rm -f "$pool"
	"$btd" restore "$pool" --from "$(addr A),$(addr B)" >"$tmp/cc.restore" 2>&1 ||
		fail "btd restore: $(cat "$tmp/cc.restore")"
	got=$(BTD_POOL=$pool "$work" verify 2>&1)
	n=${got#counter }
	[[ $got == counter* ]] && [ "$n" -ge "$last" ] ||
		fail "after restore: '$got', last returned commit $last"
	"$btd" check "$pool" >"$tmp/cc.check" 2>&1 || fail "btd check: $(tail -3 "$tmp/cc.check")"
	ok "commit $last returned; restored counter $n, whole; btd check clean"
	# Restore at open: the program finds its pool missing and the nodes set.
	rm -f "$pool"
	got=$(BTD_POOL=$pool BTD_REPLICAS=$(addr A),$(addr B) "$work" verify 2>"$tmp/cc.auto")
	[ "$got" = "counter $n" ] || fail "restore at open: '$got': $(cat "$tmp/cc.auto")"
	grep -q "restored from the replicas" "$tmp/cc.auto" || fail "restore at open said nothing"
	ok "restored at open: $got"
	;;
sync-crash)
	pool=$tmp/sc.pool
	start_memd D # its own node: these images are large
	BTD_POOL=$pool BTD_POOL_SIZE=256M BTD_REPLICAS=$(addr D) "$work" syncs 1000 24 \
		>"$tmp/sc.out" 2>"$tmp/sc.err" &
	client=$!; watchdog $client 120
	wait_for "$tmp/sc.out" "^synced 3$" 60 || fail "no progress: $(head -3 "$tmp/sc.err")"
	sleep 0.0$((RANDOM % 10)) # somewhere in the next whole image
	kill -KILL $client; wait $client 2>/dev/null; client=
	last=$(sed -n 's/^synced //p' "$tmp/sc.out" | tail -1)
	rm -f "$pool"
	"$btd" restore "$pool" --from "$(addr D)" >/dev/null 2>"$tmp/sc.r" ||
		fail "restore after a cut whole image: $(cat "$tmp/sc.r")"
	got=$(BTD_POOL=$pool "$work" verify 2>&1)
	[[ $got == counter* ]] && [ "${got#counter }" -ge "$last" ] ||
		fail "after restore: '$got', last returned btd_sync $last"
	ok "btd_sync $last returned, killed in the next; restored $got"
	stop_memd D TERM
	;;
node-crash)
	pool=$tmp/nc.pool
	BTD_POOL=$pool BTD_REPLICAS=$(addr A),$(addr B) BTD_MIN_REPLICAS=1 BTD_REPLICA_TIMEOUT=2000 \
		"$work" run 600 5000 idle >"$tmp/nc.out" 2>"$tmp/nc.err" &
	client=$!; watchdog $client 120
	wait_for "$tmp/nc.out" "^committed 50$" 60 || fail "no progress: $(head -3 "$tmp/nc.err")"
	stop_memd B KILL
	wait_for "$tmp/nc.out" "^committed 150$" 60 || fail "the client stopped without B"
	grep -q "is stale" "$tmp/nc.err" || fail "the client did not report B stale"
	start_memd B "${memd_port[B]}" # same pool, same port, new keys
	wait_for "$tmp/nc.out" "^idle$" 90 || fail "the client did not finish"
	grep -q "is back" "$tmp/nc.err" || fail "the client did not resync B: $(tail -3 "$tmp/nc.err")"
	grep -q "^unreplicated" "$tmp/nc.out" && fail "a commit failed with one replica live"
	kill -KILL $client; wait $client 2>/dev/null; client=
	# Restore finds an image by the path it was taken from: restore into
	# that name from each node in turn.
	rm -f "$pool"
	"$btd" restore "$pool" --from "$(addr A)" >/dev/null 2>"$tmp/nc.ra" ||
		fail "restore from A: $(cat "$tmp/nc.ra")"
	mv "$pool" "$tmp/nc-a.pool"
	"$btd" restore "$pool" --from "$(addr B)" >/dev/null 2>"$tmp/nc.rb" ||
		fail "restore from B: $(cat "$tmp/nc.rb")"
	mv "$pool" "$tmp/nc-b.pool"
	cmp -s "$tmp/nc-a.pool" "$tmp/nc-b.pool" && ok "replicas A and B byte-identical after the resync" ||
		fail "replicas A and B differ after the resync: $(cmp "$tmp/nc-a.pool" "$tmp/nc-b.pool" 2>&1)"
	;;
auth)
	pool=$tmp/au.pool
	out=$(BTD_POOL=$pool BTD_REPLICAS=$(addr C) BTD_KEY_FILE=$tmp/other "$work" run 1 0 2>&1)
	rc=$?
	[ $rc -eq 2 ] && grep -q -i "key" <<<"$out" || fail "a wrong key was not refused (exit $rc): $out"
	grep -q -i "auth" "$tmp/C.log" || fail "memd C did not log the refusal"
	chmod 644 "$tmp/other"
	out=$(BTD_POOL=$tmp/au2.pool BTD_REPLICAS=$(addr C) BTD_KEY_FILE=$tmp/other "$work" run 1 0 2>&1)
	grep -q "chmod 600" <<<"$out" || fail "a key file others can read was used: $out"
	chmod 600 "$tmp/other"
	ok "wrong key refused; readable key file refused"
	;;
forge)
	out=$("$raw" 127.0.0.1 "${memd_port[C]}" "$tmp/key" forge-offset 2>&1) ||
		fail "forged offsets: $(tr '\n' ';' <<<"$out")"
	out=$("$raw" 127.0.0.1 "${memd_port[C]}" "$tmp/key" forge-key 2>&1) ||
		fail "forged keys: $(tr '\n' ';' <<<"$out")"
	pool=$tmp/fz.pool
	BTD_POOL=$pool BTD_REPLICAS=$(addr C) "$work" run 400 2000 >"$tmp/fz.out" \
		2>"$tmp/fz.err" &
	client=$!; watchdog $client 120
	for seed in 1 2 3; do
		out=$(timeout 60 "$raw" 127.0.0.1 "${memd_port[C]}" "$tmp/key" garbage $seed 2>&1) ||
			fail "garbage $seed: $out"
	done
	wait $client; rc=$?; client=
	[ $rc -eq 0 ] && ! grep -q "^unreplicated" "$tmp/fz.out" ||
		fail "the honest client suffered (exit $rc): $(tail -2 "$tmp/fz.err")"
	kill -0 "${memd_pid[C]}" || fail "memd C died"
	ok "forged offsets and keys refused; memd served an honest client through garbage"
	;;
example)
	pool=$tmp/ex.pool
	NODES=$(addr A),$(addr B),$(addr C) "$work" example "$pool" 2>"$tmp/ex.err" ||
		fail "the example: $(cat "$tmp/ex.err")"
	mv "$pool" "$tmp/ex.lost" # the client machine is lost
	"$btd" restore "$pool" --from "$(addr C)" >/dev/null 2>"$tmp/ex.r" ||
		fail "restore: $(cat "$tmp/ex.r")"
	got=$(BTD_POOL=$pool "$work" greeting 2>&1)
	[ "$got" = 123 ] && ok "the README example on three nodes, restored: $got" ||
		fail "the greeting after restore: $got"
	;;
preload)
	pool=$tmp/pl.pool
	LD_PRELOAD=$preload BTD_POLICY=all BTD_POOL=$pool BTD_REPLICAS=$(addr A) BTD_STATS=1 \
		"$work" run 200 0 >"$tmp/pl.out" 2>"$tmp/pl.err" || fail "the workload: $(tail -3 "$tmp/pl.err")"
	grep -q "replicas: 1 configured, 1 live" "$tmp/pl.err" ||
		fail "BTD_STATS has no replica line: $(grep replicas "$tmp/pl.err")"
	rm -f "$pool"
	"$btd" restore "$pool" --from "$(addr A)" >/dev/null 2>"$tmp/pl.r" || fail "restore: $(cat "$tmp/pl.r")"
	got=$(BTD_POOL=$pool "$work" verify 2>&1)
	[ "$got" = "counter 200" ] || fail "after restore: $got"
	# An unmodified program: its heap reaches the node at exit.
	seq 20000 -1 1 >"$tmp/numbers"
	LD_PRELOAD=$preload BTD_POLICY=all BTD_POOL=$tmp/sort.pool BTD_REPLICAS=$(addr A) BTD_STATS=1 \
		sort -n "$tmp/numbers" >"$tmp/sorted" 2>"$tmp/sort.err" || fail "sort: $(tail -3 "$tmp/sort.err")"
	[ "$(head -1 "$tmp/sorted")" = 1 ] || fail "sort's output"
	grep -q "replicas: 1 configured, 1 live .* ([1-9][0-9]* whole images)" "$tmp/sort.err" ||
		fail "sort's heap did not reach the node: $(grep replicas "$tmp/sort.err")"
	rm -f "$tmp/sort.pool"
	"$btd" restore "$tmp/sort.pool" --from "$(addr A)" >/dev/null 2>"$tmp/sort.r" ||
		fail "restore of sort's pool: $(cat "$tmp/sort.r")"
	"$btd" check "$tmp/sort.pool" >"$tmp/sort.check" 2>&1 || fail "btd check: $(tail -2 "$tmp/sort.check")"
	ok "linked workload under the preload restored whole; sort's heap replicated at exit, restored, clean"
	;;
admin)
	pool=$tmp/ad.pool
	BTD_POOL=$pool BTD_REPLICAS=$(addr C) "$work" run 3 0 >/dev/null 2>"$tmp/ad.err" ||
		fail "first pool: $(cat "$tmp/ad.err")"
	first=$("$btd" info "$pool" | sed -n 's/^uuid *//p')
	rm -f "$pool"
	BTD_POOL=$pool "$work" verify >/dev/null 2>&1 # creates a new pool there (no bank yet)
	BTD_POOL=$pool BTD_REPLICAS=$(addr C) "$work" run 2 0 >/dev/null 2>"$tmp/ad.err" ||
		fail "second pool: $(cat "$tmp/ad.err")"
	second=$("$btd" info "$pool" | sed -n 's/^uuid *//p')
	[ -n "$first" ] && [ "$first" != "$second" ] || fail "uuids '$first' '$second'"
	rm -f "$pool"
	out=$("$btd" restore "$pool" --from "$(addr C)" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && grep -q "two different pools" <<<"$out" && [ ! -e "$pool" ] ||
		fail "restore guessed between two pools (exit $rc): $out"
	"$btd" restore "$pool" --from "$(addr C)" --uuid "${first:0:12}" >/dev/null 2>"$tmp/ad.r" ||
		fail "restore --uuid: $(cat "$tmp/ad.r")"
	got=$(BTD_POOL=$pool "$work" verify 2>&1)
	[ "$got" = "counter 3" ] || fail "the first pool restored by uuid: $got"
	rm -f "$pool"
	"$btd" restore "$tmp/elsewhere.pool" --from "$(addr C)" --uuid "$second" >/dev/null \
		2>"$tmp/ad.r" || fail "restore --uuid elsewhere: $(cat "$tmp/ad.r")"
	got=$(BTD_POOL=$tmp/elsewhere.pool "$work" verify 2>&1)
	[ "$got" = "counter 2" ] || fail "the second pool restored elsewhere: $got"
	stop_memd C TERM
	"$btd" memd --pool "$tmp/C.node" --list >"$tmp/ad.list" 2>/dev/null || fail "memd --list"
	grep -q "^$first .*$pool" "$tmp/ad.list" || fail "--list: $(cat "$tmp/ad.list")"
	"$btd" memd --pool "$tmp/C.node" --drop "$first" >/dev/null 2>&1 || fail "memd --drop"
	"$btd" memd --pool "$tmp/C.node" --list 2>/dev/null | grep -q "^${first:0:30}" &&
		fail "a dropped lease (or its twin) is still listed"
	ok "restore refused to guess between two pools of one path; --uuid chose; --list, --drop"
	;;
*) echo "unknown scenario $scenario"; exit 2 ;;
esac
done

for n in A B C D; do
	[ -n "${memd_pid[$n]:-}" ] && kill -0 "${memd_pid[$n]}" 2>/dev/null || continue
	stop_memd $n TERM
	grep -q "stopped" "$tmp/$n.log" || { scenario=shutdown; fail "memd $n did not stop cleanly: $(tail -2 "$tmp/$n.log")"; }
done
[ $failures -eq 0 ] || { for n in A B C; do echo "--- memd $n"; tail -5 "$tmp/$n.log"; done; exit 1; }
