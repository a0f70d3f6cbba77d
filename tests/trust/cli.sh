#!/bin/bash
# cli.sh LISTPROG DAMAGE BTD: options that need a value reject a missing
# one (issue 6, item 9); a busy pool names the process that really holds
# it (item 10).
LISTPROG=$1 DAMAGE=$2 BTD=$3
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1

for args in "--pool -- /bin/true" "--pool" "--pool --policy all -- /bin/true" \
	    "--policy -- /bin/true" "--pool= -- /bin/true"; do
	# shellcheck disable=SC2086
	run "$BTD" run $args
	[ $st -eq 2 ] || fail "btd run $args exited $st: $out"
	grep -q 'needs a value' <<<"$out" || fail "btd run $args: $out"
done
ls -A | grep -q . && fail "btd run created files: $(ls -A)"
run "$BTD" run --pool="$tmp/x.pool" --policy=all -- /bin/sh -c 'echo "$BTD_POOL $BTD_POLICY"'
[ "$out" = "$tmp/x.pool all" ] || fail "--pool=/--policy= forms: $out"
run "$BTD" check --repair
[ $st -eq 2 ] || fail "check --repair without a pool exited $st"

# A child that inherited the pool's mapping outlives its killed parent:
# info and check name the child, not the dead parent.
child=$("$LISTPROG" holdfork)
[ -n "$child" ] || fail "holdfork printed no pid"
trap 'kill -9 $child 2>/dev/null; rm -rf "$tmp"' EXIT
run "$BTD" info "$BTD_POOL"
grep -q "^state       open in pid $child " <<<"$out" || fail "info names the wrong holder: $out"
run "$BTD" check "$BTD_POOL"
[ $st -eq 2 ] && grep -q "(pid $child, " <<<"$out" || fail "check names the wrong holder: $st: $out"
kill -9 "$child"
wait "$child" 2>/dev/null
sleep 0.1
run "$BTD" info "$BTD_POOL"
grep -q '^state       crashed' <<<"$out" || fail "info after the holder died: $out"
echo "cli: ok"
