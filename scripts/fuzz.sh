#!/bin/bash
# fuzz.sh [--time SECONDS] [--jobs N] [-- LIBFUZZER_FLAGS...]: fuzz the pool parser for longer.
#
# Installs what is missing, configures and builds the clang fuzz build
# (build-fuzz, as scripts/test.sh does), then runs tests/fuzz/fuzz_pool for
# SECONDS (default 600) in N processes (default 1; libFuzzer's -jobs=N
# beyond that, each logging to fuzz-J.log in build-fuzz/tests/fuzz/findings
# and sharing the corpus), from the committed corpora and a working corpus kept in
# build-fuzz/tests/fuzz/findings/corpus, which grows from run to run.  A
# finding stops the run and is left in build-fuzz/tests/fuzz/findings/artifacts:
# replay it with build/tests/fuzz/fuzz_replay FILE, and once the bug is
# fixed keep it as tests/fuzz/corpus/regress/<the bug>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600 jobs=1
while [ $# -gt 0 ]; do
	case $1 in
	--time) seconds=$2; shift 2 ;;
	--time=*) seconds=${1#*=}; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	--jobs=*) jobs=${1#*=}; shift ;;
	--) shift; break ;;
	*) echo "usage: scripts/fuzz.sh [--time SECONDS] [--jobs N] [-- LIBFUZZER_FLAGS...]" >&2
	   exit 2 ;;
	esac
done
[[ $seconds =~ ^[0-9]+$ && $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || {
	echo "fuzz.sh: --time and --jobs take positive whole numbers" >&2
	exit 2
}

scripts/setup.sh --tests
if [ ! -f build-fuzz/meson-private/coredata.dat ]; then
	CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=enabled -Db_lundef=false \
		-Dwerror=true -Dtests=enabled -Dreal_programs=false >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz_pool tests/fuzz/fuzz_replay >/dev/null
[ "$jobs" -gt 1 ] && set -- -jobs="$jobs" -workers="$jobs" "$@"
exec tests/fuzz/bounded.sh --grow build-fuzz/tests/fuzz/fuzz_pool tests/fuzz/corpus \
	build-fuzz/tests/fuzz/findings "$seconds" "$@"
