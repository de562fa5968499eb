#!/usr/bin/env bash
# Matching at catalogue scale, one run (tests/match/match_bench.cpp):
#   ours:  the worker's FingerprintIndex: window index + compare2 rescoring (full mode) over
#          --records synthetic fingerprints (realistic neighbour statistics, planted
#          near-duplicates), and the every-item clip index over --clip-records
#   peer:  compare2 against every record (a catalogue without an index), timed on a slice
# Prints ingestion rate, p50/p99 query latency, recall, memory per fingerprint and the ratio;
# with a database (DATABASE_URL, or a throwaway cluster when unset) also the PostgreSQL
# ingestion and a new worker's load rate. --device cuda:0 adds the CUDA twin's figures.
#
#   scripts/bench.sh match [--records 1000000] [--queries 1000] [--clip-records 100000] [--device cuda:0]
#
# Memory: about 5.5 KB per fingerprint in full mode (1 M: ~5.5 GB). Wall-clock times; run it on
# an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_MATCH_BENCH_BIN:-$(yw_built "$root" tests/match/yw_match_bench || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "match bench: build yw_match_bench first" >&2; exit 2; }
db=${DATABASE_URL:-}
if [ -z "$db" ]; then
  # shellcheck source=scripts/lib/pg.sh
  source "$root/scripts/lib/pg.sh"
  pgdir=$(mktemp -d /tmp/yw-match-bench-pg.XXXXXX)
  trap 'yw_pg_stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  YW_PG_FSYNC=off yw_pg_start "$pgdir" >/dev/null
  db=$YW_PG_URL
fi
"$bin" --database "$db" "$@"
