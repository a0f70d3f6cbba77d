#!/usr/bin/env bash
# perl.sh PRELOAD BTD: perl builds and frees about 300 MB of large strings
# and exits; under the preload (default policy, a pool of its own in
# /dev/shm) it prints the same, and afterwards the pool file holds little:
# free pages go back to the file system.  Then a steady churn of large
# strings, under strace: after its warm-up, no fallocate at all.
. "$(dirname "$0")/lib.sh"
btd_init "$1"
BTD=${2:-}
[ -x "$BTD" ] || fail "usage: $0 PRELOAD BTD (the btd command)"

PERL=/usr/bin/perl
[ -x $PERL ] || fail "$PERL is not installed (scripts/setup.sh installs it)"
need_program strace du
SHM=$(mktemp -d /dev/shm/btd-perl.XXXXXX) || fail "mktemp -d in /dev/shm failed"
trap 'rm -rf "$SHM"; btd_cleanup' EXIT
POOL=$SHM/perl.pool

cat >"$WORK/build.pl" <<'EOF'
my @a;
for my $i (1 .. 300) { push @a, ("x" x (1024 * 1024 - 64)) . $i; }
my $n = 0;
$n += length($_) for @a;
@a = ();
my %h;
$h{$_} = "y" x (512 * 1024) for 1 .. 50;
my $m = 0;
$m += length($h{$_}) for keys %h;
%h = ();
print "built $n and $m bytes\n";
EOF

run_plain 60 $PERL "$WORK/build.pl" >"$WORK/plain.out" 2>"$WORK/plain.err" ||
	fail "the plain run (without the preload) failed: $(head -n1 "$WORK/plain.err")"
BTD_POOL=$POOL run_preloaded 60 "$WORK/pid" $PERL "$WORK/build.pl" \
	>"$WORK/preloaded.out" 2>"$WORK/preloaded.err"
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the preloaded run" $rc): $(head -n1 "$WORK/preloaded.err")"
check_no_btd_messages "$WORK/preloaded.err"
compare_outputs "$WORK/plain.out" "$WORK/preloaded.out" "perl's output"
check_preload_active perl "$(cat "$WORK/pid")"
persistent=$(stats_calls perl "$(cat "$WORK/pid")" malloc persistent)
[ "${persistent:-0}" -ge 300 ] ||
	fail "perl made ${persistent:-no} persistent mallocs: the large strings did not reach the pool"

[ -f "$POOL" ] || fail "no pool at $POOL"
held=$(du -k "$POOL" | cut -f1)
info=$("$BTD" info "$POOL") || fail "btd info failed on the pool"
file_mib=$(sed -n 's/.*file holds \([0-9]*\) MiB.*/\1/p' <<<"$info")
[ -n "$file_mib" ] || fail "btd info does not say what the file holds: $info"
[ "$held" -lt 16384 ] ||
	fail "after perl freed everything and exited, the pool holds $((held / 1024)) MiB (du)"
[ "$file_mib" -lt 16 ] || fail "btd info says the pool file holds $file_mib MiB"
grep -q '^state *clean' <<<"$info" || fail "the pool was not closed cleanly: $info"
note "ok: $persistent persistent mallocs; the pool holds $held KiB after exit (btd info: $file_mib MiB)"

# Steady churn: eight live strings of three large sizes, one freed and one
# made per round.  Warm-up for 1.5 s (past the decay ticks that give back
# what the warm-up left), then 0.7 s between two markers on stderr, in
# which strace must see no fallocate.
cat >"$WORK/churn.pl" <<'EOF'
use Time::HiRes qw(time);
my @live;
my @sizes = (300 * 1024, 1024 * 1024, 640 * 1024);
my $i = 0;
sub churn {
	my $until = time + shift;
	while (time < $until) {
		for (1 .. 50) {
			undef $live[$i % 8];
			$live[$i % 8] = ("z" x $sizes[$i % 3]) . "!"; # a fresh malloc of the size
			$i++;
		}
	}
}
churn(1.5);
syswrite STDERR, "btd-churn-warm\n";
churn(0.7);
syswrite STDERR, "btd-churn-end\n";
print "rounds $i\n";
EOF
rm -f "$POOL"
timeout -k 10 60 strace -f -o "$WORK/strace.txt" -e trace=fallocate,write \
	env LD_PRELOAD="$PRELOAD" BTD_POOL="$POOL" $PERL "$WORK/churn.pl" \
	>"$WORK/churn.out" 2>"$WORK/churn.err"
rc=$?
[ $rc -eq 0 ] || fail "$(status_reason "the churn under strace" $rc): $(head -n1 "$WORK/churn.err")"
grep -q 'btd-churn-end' "$WORK/strace.txt" || fail "no end marker in the strace log"
total=$(grep -c 'fallocate(' "$WORK/strace.txt")
# The pool was used: it grew (fallocate) during the warm-up.
[ "$total" -gt 0 ] || fail "no fallocate at all: did the churn reach the pool?"
during=$(awk '/btd-churn-warm/ { on = 1; next } /btd-churn-end/ { on = 0 }
	on && /fallocate\(/ { n++ } END { print n + 0 }' "$WORK/strace.txt")
[ "$during" -eq 0 ] ||
	fail "steady churn made $during fallocate calls in 0.7 s after its warm-up ($total in all)"
note "ok: churn of $(sed 's/rounds //' "$WORK/churn.out") rounds; $total fallocate calls in all, none in steady state"
