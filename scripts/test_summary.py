#!/usr/bin/env python3
"""test_summary.py [LABEL:]TESTLOG.json...: the closing line of the test command.

Reads meson's testlog.json files (one JSON object per test; a LABEL names
the build in failure lines) and prints
"N passed, N failed" (", N skipped" when any were), naming each failure
first.  Exits 1 when a test failed or none ran."""
import json
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def main(paths):
    passed, failed, skipped = 0, [], 0
    for arg in paths:
        label, _, path = arg.rpartition(":")
        prefix = label + ": " if label else ""
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                t = json.loads(line)
                if t["result"] in PASSED:
                    passed += 1
                elif t["result"] in SKIPPED:
                    skipped += 1
                else:
                    failed.append(f'{prefix}{t["name"]} ({t["result"]})')
    for name in failed:
        print(f"failed: {name}")
    line = f"{passed} passed, {len(failed)} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
