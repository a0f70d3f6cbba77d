#!/bin/bash
# demo.sh: install what is missing, build, and run real unmodified programs
# under libbtd_preload.so with BTD_STATS=1, so you see bartender at work.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
[ -f build/meson-private/coredata.dat ] || meson setup build >/dev/null
ninja -C build >/dev/null
btd=build/tools/btd

echo "== python3, unmodified, under btd (BTD_STATS=1) =="
PYTHONMALLOC=malloc "$btd" run --stats -- /usr/bin/python3 -c '
import json, hashlib
data = [{"n": i, "sq": i * i, "s": str(i) * 3} for i in range(50000)]
text = json.dumps(data)
print("json:", len(text), "bytes, sha256", hashlib.sha256(text.encode()).hexdigest()[:16])'

echo
echo "== sqlite3, unmodified, under btd (BTD_STATS=1) =="
"$btd" run --stats -- sqlite3 :memory: '
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
SELECT count(*), sum(x), avg(length(printf("%d", x))) FROM c;'
