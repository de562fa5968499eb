#!/usr/bin/env bash
# Queue throughput and latency, one run, one database, both sides (issue 3):
#   ours:  yw_test_worker (the real executor, no-op handler) draining N queued no-op jobs
#   peer:  pg-boss 12.38.0's own work() at its best settings: batchSize 100, localConcurrency 4,
#          burstWhenBatchFull, pollingIntervalSeconds 0.5
# Each round inserts N jobs with pg-boss's insert() (chunks of 1000) and ANALYZEs, then drains:
# from the worker's start until every job is completed. Rounds alternate C++ / Node.
# Latency: send-to-handler-start of one job at a time (random gaps), queue notify = true, for the
# C++ worker (LISTEN, poll 2 s) and pg-boss (useListenNotify, default work options).
#
#   scripts/bench.sh queue [--jobs 20000] [--rounds 2] [--samples 100] [--concurrency 2000]
#                          [--batch 1000] [--loops 1]
# (C++ side: jobs in flight, jobs claimed per fetch, fetch loops; fetches also write completions.)
# With no-op jobs the database does ~85 % of the work: one fetch loop claiming 1,000 at a time
# costs it the least per job (parallel claims of the same queue's head skip each other's locked
# rows and dead index entries), measured against 250 x 4 and 500 x 2.
#
# Uses $DATABASE_URL when set, else starts a private PostgreSQL (scripts/lib/pg.sh). Wall-clock
# figures: run on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=20000
rounds=2
samples=100
concurrency=2000
batch=1000
loops=1
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) jobs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --loops) loops=$2; shift 2 ;;
    *) echo "queue bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_TEST_WORKER_BIN:-$(yw_built "$root" tests/interop/yw_test_worker || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "queue bench: build yw_test_worker first (ninja yw_test_worker)" >&2; exit 2; }
tool=$root/tests/interop/pgboss_tool.mjs
cli=$root/scripts/pgboss/node_modules/.bin/pg-boss
command -v node >/dev/null && command -v psql >/dev/null || { echo "queue bench: node and psql are needed" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work"
url=${DATABASE_URL:-}
cleanup() {
  if [ -n "${schema:-}" ] && [ -n "$url" ]; then
    psql "$url" -qAt -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  fi
  if [ -z "${DATABASE_URL:-}" ]; then
    # shellcheck source=scripts/lib/pg.sh
    source "$root/scripts/lib/pg.sh"
    yw_pg_stop "$work/pg" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$url" ]; then
  # shellcheck source=scripts/lib/pg.sh
  source "$root/scripts/lib/pg.sh"
  yw_pg_start "$work/pg" >/dev/null
  url=$YW_PG_URL
fi
schema=yw_bench_$$
"$cli" migrate --connection-string "$url" --schema "$schema" >/dev/null
q() { psql "$url" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
create_queue() { q "SELECT $schema.create_queue('$1', '$2')" >/dev/null; }
stat() {  # stat FILE_WITH_JSON_ARRAY: min p50 p95 max of the numbers
  node -e '
    const a = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).sort((x, y) => x - y);
    const p = (f) => a[Math.min(a.length - 1, Math.floor(f * a.length))];
    console.log(`n=${a.length} min ${a[0].toFixed(1)} p50 ${p(0.5).toFixed(1)} p95 ${p(0.95).toFixed(1)} max ${a[a.length - 1].toFixed(1)} ms`);
    ' "$1"
}

echo "queue bench: $jobs jobs x $rounds rounds; C++ concurrency $concurrency, batch $batch, $loops fetch loops; load $(cut -d' ' -f1-3 /proc/loadavg)"
cpp_total=0
node_total=0
for (( r = 1; r <= rounds; r++ )); do
  create_queue "cpp_$r" '{"policy":"standard"}'
  node "$tool" insert "$url" "$schema" "cpp_$r" "$jobs" >/dev/null
  out=$(YW_BENCH_EXPECT=$jobs YW_MAX_BATCH=$batch YW_FETCHERS=$loops YW_SETTLERS=1 "$bin" "$url" "$schema" "cpp_$r" noop "$concurrency" 0 500 2>"$work/cpp.err") \
    || { cat "$work/cpp.err" >&2; exit 1; }
  cpp_s=$(node -e 'console.log(JSON.parse(process.argv[1]).seconds)' "$out")
  create_queue "node_$r" '{"policy":"standard"}'
  node "$tool" insert "$url" "$schema" "node_$r" "$jobs" >/dev/null
  out=$(node "$tool" bench-work "$url" "$schema" "node_$r" "$jobs" 2>"$work/node.err") \
    || { cat "$work/node.err" >&2; exit 1; }
  node_s=$(node -e 'console.log(JSON.parse(process.argv[1]).seconds)' "$out")
  left=$(q "SELECT count(*) FROM $schema.job WHERE name IN ('cpp_$r', 'node_$r') AND state <> 'completed'")
  [ "$left" = 0 ] || { echo "queue bench: $left jobs not completed in round $r" >&2; exit 1; }
  printf 'round %d: C++ %8.0f jobs/s (%.2f s)   pg-boss work() %8.0f jobs/s (%.2f s)\n' "$r" \
    "$(node -e "console.log($jobs / $cpp_s)")" "$cpp_s" "$(node -e "console.log($jobs / $node_s)")" "$node_s"
  cpp_total=$(node -e "console.log($cpp_total + $cpp_s)")
  node_total=$(node -e "console.log($node_total + $node_s)")
done
printf 'throughput: C++ %.0f jobs/s, pg-boss %.0f jobs/s, ratio %.2fx (target >= 2x)\n' \
  "$(node -e "console.log($jobs * $rounds / $cpp_total)")" \
  "$(node -e "console.log($jobs * $rounds / $node_total)")" \
  "$(node -e "console.log($node_total / $cpp_total)")"

# Latency with NOTIFY, one job at a time, random gaps of 0-400 ms.
create_queue lat_cpp '{"policy":"standard","notify":true}'
create_queue lat_node '{"policy":"standard","notify":true}'
"$bin" "$url" "$schema" lat_cpp latency 4 0 2000 >"$work/lat_cpp.out" 2>"$work/lat_cpp.err" &
worker_pid=$!
for _ in $(seq 100); do grep -q ready "$work/lat_cpp.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
node "$tool" send-timed "$url" "$schema" lat_cpp "$samples" 400 >/dev/null
sleep 0.5
kill -TERM "$worker_pid"
wait "$worker_pid" || true
node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).latencies_ms))' \
  "$work/lat_cpp.out" >"$work/lat_cpp.json"
node "$tool" latency "$url" "$schema" lat_node "$samples" 400 \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).latencies_ms)))' \
  >"$work/lat_node.json"
echo "latency C++ (LISTEN, poll 2 s):        $(stat "$work/lat_cpp.json")"
echo "latency pg-boss (useListenNotify):     $(stat "$work/lat_node.json")"
