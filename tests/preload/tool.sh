#!/bin/bash
# tool.sh BTD: the btd command -- run, --version, help, and its errors.
set -u
btd=$1
fail() { echo "tool.sh: $*" >&2; exit 1; }

"$btd" --version | grep -qE '^btd [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"
"$btd" help | grep -q 'run \[--stats\]' || fail "help"
out=$("$btd" run -- /bin/sh -c 'echo "$LD_PRELOAD"') || fail "run failed"
case $out in */libbtd_preload.so) ;; *) fail "run set LD_PRELOAD=$out" ;; esac
[ -r "$out" ] || fail "LD_PRELOAD names a missing file: $out"
# An existing LD_PRELOAD is kept after ours.
out=$(LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6 "$btd" run /bin/sh -c 'echo "$LD_PRELOAD"')
case $out in *libbtd_preload.so:/lib/x86_64-linux-gnu/libc.so.6) ;; *) fail "kept LD_PRELOAD: $out" ;; esac
# (Not sh: dash leaves through _exit, which runs no destructor.  echo
# closes its stderr before exiting: the report reopens the file it was.)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$btd" run --stats -- /bin/echo x 2>"$tmp" >/dev/null
grep -q '^btd: stats of echo' "$tmp" || fail "--stats gave no report: $(cat "$tmp")"
# No descriptor of ours is left for the program to see.
fds=$("$btd" run --stats -- /bin/ls /proc/self/fd 2>/dev/null | tr '\n' ' ')
[ "$fds" = "0 1 2 3 " ] || fail "the program sees descriptors it did not open: $fds"
out=$("$btd" run --pool /tmp/p.pool --policy none -- /bin/sh -c 'echo "$BTD_POOL $BTD_POLICY"')
[ "$out" = "/tmp/p.pool none" ] || fail "--pool/--policy: $out"
"$btd" run --policy sometimes -- /bin/true 2>/dev/null && fail "bad --policy accepted"
"$btd" run --policy sometimes -- /bin/true 2>&1 | grep -q 'use none, tagged, large or all' || fail "bad --policy message"
"$btd" run 2>/dev/null && fail "run without a program accepted"
"$btd" run -- /nonexistent/prog 2>/dev/null
[ $? -eq 127 ] || fail "a missing program should exit 127"
"$btd" frobnicate 2>/dev/null && fail "unknown command accepted"
# Exit status of the program is passed through.
"$btd" run -- /bin/sh -c 'exit 7'
[ $? -eq 7 ] || fail "exit status not passed through"
echo "tool: ok"
