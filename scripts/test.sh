#!/bin/bash
# test.sh: install what is missing, build with -Dwerror=true, run the whole
# test suite, and end with one line "N passed, N failed".  Exits non-zero
# when a test failed.  The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --tests
if [ -f build/meson-private/coredata.dat ]; then
	meson configure build -Dwerror=true -Dtests=enabled >/dev/null
else
	meson setup build -Dwerror=true -Dtests=enabled >/dev/null
fi
ninja -C build
set +e
meson test -C build --print-errorlogs --num-processes 2 "$@" >build/test-output.txt 2>&1
set -e
# meson's own output, less the per-test lines that repeat the summary.
grep -vE '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' build/test-output.txt || true
exec python3 scripts/test_summary.py build/meson-logs/testlog.json
