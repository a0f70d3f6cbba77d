#!/bin/bash
# fork_snapshot.sh LIB PROG BTD: fork children that share the parent's
# persistent heap lazily (heap/fork.c) -- workers, a grandchild, a parent
# killed while a child depends on the pool, durability while children live.
set -u
lib=$1 prog=$2 btd=$3
tmp=$(mktemp -d /dev/shm/btd-forksnap.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "fork_snapshot.sh: $*" >&2; exit 1; }
run() { env LD_PRELOAD="$lib" BTD_POLICY=all BTD_STRICT=1 BTD_POOL="$tmp/$1.pool" "$prog" "$1"; }

run workers >"$tmp/out" 2>&1 || fail "workers: $(cat "$tmp/out")"
run grandchild >"$tmp/out" 2>&1 || fail "grandchild: $(cat "$tmp/out")"

# The parent dies while its child depends on the pool: the child keeps the
# pool locked (a new open is refused, naming it) until it has its own copy;
# then the pool recovers with what the parent made durable, and nothing of
# the child's.
run killparent >"$tmp/out" 2>&1
grep -q holding "$tmp/out" || fail "killparent: $(cat "$tmp/out")"
out=$("$btd" check "$tmp/killparent.pool" 2>&1)
# (the child may already have its copy: then the pool is free)
case $out in *"open in another process"*|*"ok"*) ;; *) fail "check while the child holds it: $out" ;; esac
for _ in $(seq 50); do grep -q done "$tmp/out" && break; sleep 0.1; done
grep -q done "$tmp/out" || fail "the child never finished: $(cat "$tmp/out")"
sleep 0.1
out=$("$btd" check "$tmp/killparent.pool") || fail "check after the child: $out"
got=$(env LD_PRELOAD="$lib" BTD_POLICY=all BTD_POOL="$tmp/killparent.pool" "$btd" info "$tmp/killparent.pool" | grep -c '^  snap ')
[ "$got" = 1 ] || fail "the root did not survive"
# Read the root's block back through a program: "A", not the child's "B".
cat >"$tmp/read.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(void)
{
	void *(*get)(const char *) = (void *(*)(const char *))dlsym(RTLD_DEFAULT, "btd_root_get");
	const char *s = get ? get("snap") : NULL;
	puts(s ? s : "(none)");
	return 0;
}
C
cc -o "$tmp/read" "$tmp/read.c" -ldl || fail "cc"
val=$(env LD_PRELOAD="$lib" BTD_POOL="$tmp/killparent.pool" "$tmp/read")
[ "$val" = A ] || fail "after the parent's kill the block holds '$val', not A"

# Durability in the parent while a child lives: the parent's btd_persist
# reaches the pool before it is killed; the child saw none of it.
run durable >"$tmp/out" 2>&1
grep -q persisted "$tmp/out" || fail "durable: $(cat "$tmp/out")"
for _ in $(seq 50); do grep -q 'child ok' "$tmp/out" && break; sleep 0.1; done
grep -q 'child ok' "$tmp/out" || fail "durable: the child: $(cat "$tmp/out")"
val=$(env LD_PRELOAD="$lib" BTD_POOL="$tmp/durable.pool" "$tmp/read")
[ "$val" = P ] || fail "the parent's durable write is lost: '$val'"
# A child that reuses descriptor numbers (a subshell redirecting onto 3 and
# 4 while its copy is still to be made): btd's socket to the parent must
# never be mistaken for the child's own files.
env LD_PRELOAD="$lib" BTD_POLICY=all BTD_POOL="$tmp/fd.pool" bash -c '
	( exec 3>"$1/3.out" 4>"$1/4.out"; sleep 0.1; echo three >&3; echo four >&4 )' sh "$tmp" ||
	fail "a subshell lost its descriptors"
[ "$(cat "$tmp/3.out" "$tmp/4.out")" = "three
four" ] || fail "the subshell's files: $(cat "$tmp/3.out" "$tmp/4.out")"
echo "fork_snapshot: ok"
