#!/bin/bash
# setup.sh [--tests|--bench]: install what bartender needs on Debian bookworm.
#
# Installs only what is missing, so a second run is quick and quiet.  The
# base set builds btd and runs the demo; --tests adds the real programs the
# test suite runs under the preload, and clang with its libFuzzer and
# sanitizer runtimes (libclang-rt-dev: clang alone does not link
# -fsanitize=fuzzer) for the fuzz build; --bench adds PMDK's libpmemobj (the
# baseline of the heap and transaction benchmarks), gnuplot and strace
# (bench/tx.sh counts msync calls with it).  Needs root (or sudo) when
# something is missing.
set -euo pipefail

base=(meson ninja-build pkg-config gcc g++ binutils python3
      libpmem-dev libjemalloc-dev libfabric-dev libssl-dev libcriterion-dev sqlite3)
tests=(libpython3.11-testsuite redis-server redis-tools git bash coreutils clang libclang-rt-dev)

bench=(libpmemobj-dev gnuplot-nox libjemalloc2 strace)

want=("${base[@]}")
case ${1:-} in
--tests) want+=("${tests[@]}") ;;
--bench) want+=("${bench[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "setup.sh: missing packages: ${missing[*]}; run this script as root to install them" >&2
	exit 1
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
