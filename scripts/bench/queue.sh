#!/usr/bin/env bash
# Queue throughput and latency, one run, one database, both sides (issues 3, 16):
#   ours:  the product, `yesod-worker run` with its DEFAULT configuration (every default queue
#          served, default concurrency, logging at info), draining N queued trivial
#          process_new_record records (a record_id, no audio: each completes as `skipped`)
#   peer:  pg-boss 12.38.0's own work() at its best settings: batchSize 100, localConcurrency 4,
#          burstWhenBatchFull, pollingIntervalSeconds 0.5, no-op handler
# Each round inserts N jobs with pg-boss's insert() (chunks of 1000) and ANALYZEs, then drains.
# Both sides are timed the same way, from the database's own clock: first started_on to last
# completed_on of the round's jobs (process start-up is outside it for both). Rounds alternate.
# Latency: send-to-handler-start of one job at a time (random gaps), queue notify = true, for the
# C++ executor (yw_test_worker: LISTEN, poll 2 s; it reports handler start times) and pg-boss
# (useListenNotify, default work options).
#
#   scripts/bench.sh queue [--jobs 20000] [--rounds 2] [--samples 100]
#
# Uses $DATABASE_URL when set, else starts a private PostgreSQL (scripts/lib/pg.sh). Wall-clock
# figures: run on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=20000
rounds=2
samples=100
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) jobs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    *) echo "queue bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_TEST_WORKER_BIN:-$(yw_built "$root" tests/interop/yw_test_worker || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "queue bench: build yw_test_worker first (ninja yw_test_worker)" >&2; exit 2; }
product=${YW_WORKER_BIN:-$(yw_built "$root" worker/yesod-worker || true)}
[ -n "$product" ] && [ -x "$product" ] || { echo "queue bench: build yesod-worker first" >&2; exit 2; }
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

# Seconds from the first start to the last completion of queue $1's jobs (database clock).
span() {
  q "SELECT extract(epoch FROM max(completed_on) - min(started_on)) FROM $schema.job WHERE name = '$1'"
}
echo "queue bench: $jobs jobs x $rounds rounds; yesod-worker run, default configuration; load $(cut -d' ' -f1-3 /proc/loadavg)"
cpp_total=0
node_total=0
create_queue process_new_record__dead '{"policy":"standard"}'
create_queue process_new_record '{"policy":"standard","deadLetter":"process_new_record__dead","notify":true}'
for (( r = 1; r <= rounds; r++ )); do
  q "DELETE FROM $schema.job WHERE name = 'process_new_record'" >/dev/null
  node "$tool" insert "$url" "$schema" process_new_record "$jobs" records >/dev/null
  (cd "$work" && exec env -u NODE_ENV -u WORKER_CONCURRENCY -u YW_QUEUE_CONCURRENCY -u YW_QUEUES \
    DATABASE_URL="$url" PGBOSS_SCHEMA="$schema" YW_METRICS_ADDR=off YW_DEVICE=cpu \
    "$product" run >/dev/null 2>"$work/run.err") &
  run_pid=$!
  for _ in $(seq 6000); do
    # Two index probes (stale statistics would pick a scan of the whole table): a count(*)
    # here cost the database 16-70 ms every 50 ms, taken from our side of the comparison only.
    [ "$(psql "$url" -qAt -c "SET enable_seqscan = off" -c "SELECT EXISTS (SELECT 1 FROM $schema.job WHERE name = 'process_new_record' AND state < 'active' AND NOT blocked) OR EXISTS (SELECT 1 FROM $schema.job WHERE name = 'process_new_record' AND state = 'active')")" = f ] && break
    kill -0 "$run_pid" 2>/dev/null || { tail -20 "$work/run.err" >&2; exit 1; }
    sleep 0.05
  done
  kill -TERM "$run_pid"; wait "$run_pid" || { tail -20 "$work/run.err" >&2; exit 1; }
  done_n=$(q "SELECT count(*) FROM $schema.job WHERE name = 'process_new_record' AND state = 'completed'")
  [ "$done_n" = "$jobs" ] || { echo "queue bench: $done_n of $jobs records completed in round $r" >&2; exit 1; }
  cpp_s=$(span process_new_record)
  create_queue "node_$r" '{"policy":"standard"}'
  node "$tool" insert "$url" "$schema" "node_$r" "$jobs" >/dev/null
  node "$tool" bench-work "$url" "$schema" "node_$r" "$jobs" >/dev/null 2>"$work/node.err" \
    || { cat "$work/node.err" >&2; exit 1; }
  left=$(q "SELECT count(*) FROM $schema.job WHERE name = 'node_$r' AND state <> 'completed'")
  [ "$left" = 0 ] || { echo "queue bench: $left jobs not completed in round $r" >&2; exit 1; }
  node_s=$(span "node_$r")
  printf 'round %d: yesod-worker run %8.0f jobs/s (%.2f s)   pg-boss work() %8.0f jobs/s (%.2f s)\n' "$r" \
    "$(node -e "console.log($jobs / $cpp_s)")" "$cpp_s" "$(node -e "console.log($jobs / $node_s)")" "$node_s"
  cpp_total=$(node -e "console.log($cpp_total + $cpp_s)")
  node_total=$(node -e "console.log($node_total + $node_s)")
done
printf 'throughput: yesod-worker run %.0f jobs/s, pg-boss %.0f jobs/s, ratio %.2fx (target >= 2x)\n' \
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
