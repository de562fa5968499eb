#!/usr/bin/env bash
# The device pipeline through the real queue (issue 6), one run, one database, two settings:
#   batched: YW_BATCH_MAX=16 (signals of concurrent fingerprint jobs share one device call)
#   single:  YW_BATCH_MAX=1
# Each round: a fresh pg-boss schema, N fingerprint_audio and M separate_stems jobs sent with
# pg-boss from Node, then `yesod-worker run` until every job is completed. Prints jobs/s of each,
# the ratio, the mean batch size and the device busy fraction (yw_device_busy_seconds_total over
# the drain's wall time, read from /metrics). Separation uses the built-in separator here; model
# batching across songs is measured by scripts/bench.sh separation.
#
#   scripts/bench.sh pipeline [--fingerprints 200] [--separations 10] [--seconds 30]
# Environment: YW_BENCH_DEVICE (cpu; cuda:0 on a GPU host), YW_BUILD_DIR (a built tree),
# DATABASE_URL (else a private PostgreSQL is started). Wall-clock figures: run on an idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fingerprints=200
separations=10
seconds=30
while [ $# -gt 0 ]; do
  case $1 in
    --fingerprints) fingerprints=$2; shift 2 ;;
    --separations) separations=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "pipeline bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
device=${YW_BENCH_DEVICE:-cpu}
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=$(yw_built "$root" worker/yesod-worker || true)
[ -n "$bin" ] || { echo "pipeline bench: build yesod-worker first" >&2; exit 2; }
tool=$root/tests/pipeline/pipeline_tool.mjs
cli=$root/scripts/pgboss/node_modules/.bin/pg-boss

work=$(mktemp -d)
chmod 755 "$work"
url=${DATABASE_URL:-}
schemas=()
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
  for s in "${schemas[@]}"; do psql "$url" -qAt -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
  if [ -z "${DATABASE_URL:-}" ]; then
    # shellcheck source=scripts/lib/pg.sh
    source "$root/scripts/lib/pg.sh"
    yw_pg_stop "$work/pg" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/pg.sh
source "$root/scripts/lib/pg.sh"
if [ -z "$url" ]; then
  yw_pg_start "$work/pg" >/dev/null
  url=$YW_PG_URL
fi

echo "pipeline bench: $fingerprints fingerprint + $separations separation jobs of ${seconds}s audio, device $device, $bin; load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$work/in"
for i in $(seq 0 $((fingerprints - 1))); do
  sox -n -r 44100 -c 2 -b 16 "$work/in/fp$i.wav" synth "$seconds" sine $((200 + i)) sine $((300 + 2 * i)) vol 0.4 &
  (( i % 8 == 7 )) && wait
done
for i in $(seq 0 $((separations - 1))); do
  sox -n -r 44100 -c 2 -b 16 "$work/in/sep$i.wav" synth "$seconds" pluck $((110 + 20 * i)) synth "$seconds" pinknoise mix vol 0.4 &
done
wait

metric() {  # metric PORT NAME_WITH_LABELS: the sample's value, 0 when absent
  local port=$1 name=$2 body
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n' >&3
  body=$(cat <&3)
  exec 3<&-
  awk -v n="$name" 'index($0, n " ") == 1 { print $2; found = 1 } END { if (!found) print 0 }' <<<"$body"
}

declare -A rate busy mean
for mode in batched single; do
  max=16
  [ "$mode" = single ] && max=1
  schema=yw_bench_pipe_${mode}_$$
  schemas+=("$schema")
  "$cli" migrate --connection-string "$url" --schema "$schema" >/dev/null
  for q in fingerprint_audio separate_stems; do
    psql "$url" -qAt -c "SELECT $schema.create_queue('$q', '{\"policy\":\"standard\"}')" >/dev/null
  done
  node -e '
    const [n, m, dir] = process.argv.slice(1).map((v, i) => (i < 2 ? Number(v) : v));
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push({ queue: "fingerprint_audio", data: { audio: `file://${dir}/fp${i}.wav`, record_id: i } });
    for (let i = 0; i < m; i++) jobs.push({ queue: "separate_stems", data: { audio: `file://${dir}/sep${i}.wav`, record_id: `s${i}` } });
    process.stdout.write(JSON.stringify(jobs));
  ' "$fingerprints" "$separations" "$work/in" | node "$tool" send "$url" "$schema" >/dev/null
  port=$(yw_free_port 19464)
  start=$(date +%s.%N)
  DATABASE_URL=$url PGBOSS_SCHEMA=$schema YW_INPUT_ROOTS=$work/in YW_OUTPUT_URI=file://$work/out-$mode \
    YW_DEVICE=$device YW_BATCH_MAX=$max YW_BATCH_DELAY_MS=20 WORKER_CONCURRENCY=16 \
    YW_QUEUE_CONCURRENCY=separate_stems=2 YW_QUEUES=fingerprint_audio,separate_stems \
    YW_METRICS_ADDR=127.0.0.1:$port YW_LOG_LEVEL=warn "$bin" run 2>"$work/worker-$mode.log" &
  worker_pid=$!
  total=$((fingerprints + separations))
  while true; do
    done_n=$(psql "$url" -qAt -c "SELECT count(*) FROM $schema.job WHERE name IN ('fingerprint_audio','separate_stems') AND state IN ('completed','failed')")
    [ "$done_n" -ge "$total" ] && break
    kill -0 "$worker_pid" 2>/dev/null || { echo "worker died:"; tail -20 "$work/worker-$mode.log"; exit 1; }
    sleep 0.2
  done
  end=$(date +%s.%N)
  failed=$(psql "$url" -qAt -c "SELECT count(*) FROM $schema.job WHERE state = 'failed' AND name IN ('fingerprint_audio','separate_stems')")
  [ "$failed" = 0 ] || echo "warning: $failed job(s) failed in $mode mode (see the worker log)"
  label=$device
  b=$(metric "$port" "yw_device_busy_seconds_total{device=\"$label\"}")
  s=$(metric "$port" 'yw_batch_size_sum{stage="fingerprint"}')
  c=$(metric "$port" 'yw_batch_size_count{stage="fingerprint"}')
  kill -TERM "$worker_pid"; wait "$worker_pid" || true; worker_pid=""
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  rate[$mode]=$(awk -v n="$total" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
  busy[$mode]=$(awk -v b="$b" -v w="$wall" 'BEGIN { printf "%.0f", 100 * b / w }')
  mean[$mode]=$(awk -v s="$s" -v c="$c" 'BEGIN { printf "%.2f", (c > 0 ? s / c : 0) }')
  echo "  $mode: $total jobs in ${wall}s = ${rate[$mode]} jobs/s; mean fingerprint batch ${mean[$mode]}; device busy ${busy[$mode]}%"
done
echo
printf '%-10s %10s %12s %10s\n' mode 'jobs/s' 'mean batch' 'busy %'
for mode in batched single; do printf '%-10s %10s %12s %10s\n' "$mode" "${rate[$mode]}" "${mean[$mode]}" "${busy[$mode]}"; done
echo "ratio batched/single: $(awk -v a="${rate[batched]}" -v b="${rate[single]}" 'BEGIN { printf "%.2f", a / b }')x"
