#!/bin/bash
# test.sh: install what is missing, build with -Dwerror=true, run the whole
# test suite, and end with one line "N passed, N failed".  Exits non-zero
# when a test failed.  The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --tests
# Both test builds have the crash points (BTD_CRASH_AT, BTD_CRASH_SIM) that
# the crash suite arms; an installed build has none.
if [ -f build/meson-private/coredata.dat ]; then
	meson configure build -Dwerror=true -Dtests=enabled -Dcrash_points=true >/dev/null
else
	meson setup build -Dwerror=true -Dtests=enabled -Dcrash_points=true >/dev/null
fi
ninja -C build
# The internals once more under AddressSanitizer and UBSan (the unit, API
# and fuzz-replay suites: a sanitizer's runtime interposes malloc itself, so
# the preload suite cannot run there).
if [ -f build-asan/meson-private/coredata.dat ]; then
	meson configure build-asan -Dcrash_points=true >/dev/null
else
	meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror=true -Dtests=enabled -Dreal_programs=false -Dcrash_points=true >/dev/null
fi
ninja -C build-asan
# The fuzz suite in a clang build: the libFuzzer target fuzz_pool runs for a
# minute (tests/fuzz).  Only its targets are built there: the interposer
# uses gcc's attribute copy, which clang -Werror refuses.
if [ ! -f build-fuzz/meson-private/coredata.dat ]; then
	CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=enabled -Db_lundef=false \
		-Dwerror=true -Dtests=enabled -Dreal_programs=false >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz_pool tests/fuzz/fuzz_replay tests/fuzz/fuzz_memd \
	tests/fuzz/fuzz_memd_replay

# meson's own output, less its closing counts: the last line is ours.
quiet() { grep -vE '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' || true; }
set +e
meson test -C build --print-errorlogs --num-processes 2 "$@" 2>&1 | quiet
meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite api \
	--suite fuzz 2>&1 | quiet
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz 2>&1 | quiet
set -e
exec python3 scripts/test_summary.py build/meson-logs/testlog.json \
	asan:build-asan/meson-logs/testlog.json fuzz:build-fuzz/meson-logs/testlog.json
