#!/usr/bin/env bash
# The reliability suite alone (ctest label `reliability`; scripts/test.sh runs it with the rest):
# real worker processes against a real PostgreSQL, each test asserting the database's final state.
# Bad inputs, a full disk, SIGTERM and kill -9 mid-batch, a 20,000-job soak across two workers, and
# PostgreSQL stopped for 20 s under load (that test starts and restarts a private cluster of its
# own, so the server started here is never stopped under the other tests).
#   scripts/reliability.sh [BUILD_DIR]     (default: build/test-cpu, else build/dev)
# Needs root for the full-disk test (it mounts a small tmpfs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-}
if [ -z "$build" ]; then
  for b in build/test-cpu build/dev; do [ -f "$b/CTestTestfile.cmake" ] && { build=$b; break; }; done
fi
[ -n "$build" ] || { echo "reliability: build the tree first (scripts/test.sh or scripts/dev.sh)" >&2; exit 2; }
# shellcheck source=lib/pg.sh
source scripts/lib/pg.sh
pgdir=$(mktemp -d /tmp/yw-rel-pg.XXXXXX)
chmod 755 "$pgdir"
trap 'yw_pg_stop "$pgdir/pg" || true; rm -rf "$pgdir"' EXIT
YW_PG_FSYNC=off yw_pg_start "$pgdir/pg"
export TEST_DATABASE_URL="$YW_PG_URL"
cmake --build "$build" --target yw_reliability_tests yesod-worker
ctest --test-dir "$build" -L reliability --output-on-failure
