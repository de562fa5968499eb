#!/usr/bin/env bash
# The run command (README): sets everything up on a fresh Debian 12 machine and runs the worker
# in CPU mode against a local PostgreSQL kept in ./.local/pg (reused on the next run). On the
# first run it renders a demo song and enqueues process_new_record for it, so the whole mission
# (metadata, fingerprint, stems) runs in front of you. Ctrl+C stops the worker and the database.
#
# Extra arguments go to `yesod-worker run` (e.g. scripts/dev.sh --concurrency 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=lib/pg.sh
source scripts/lib/pg.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "dependencies"
yw_install_deps
yw_install_npm "$root"
export PATH="$PATH:/usr/local/cuda/bin"

say "build (build/dev)"
mkdir -p build
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=${YW_BUILD_TYPE:-Release} >build/dev.configure.log 2>&1 \
  || { cat build/dev.configure.log; exit 1; }
cmake --build build/dev -j "${YW_JOBS:-$(nproc)}" --target yesod-worker
bin="$root/build/dev/worker/yesod-worker"

say "PostgreSQL (./.local/pg)"
mkdir -p .local
yw_pg_start "$root/.local/pg"
stop_db() { yw_pg_stop "$root/.local/pg" && say "PostgreSQL stopped"; }
trap stop_db EXIT

export DATABASE_URL="${DATABASE_URL:-$YW_PG_URL}"
say "pg-boss schema (pg-boss migrate, pinned $(node -p "require('./scripts/pgboss/package.json').dependencies['pg-boss']"))"
scripts/pgboss/node_modules/.bin/pg-boss migrate --connection-string "$DATABASE_URL" | sed 's/^/    /'

export YW_DEVICE="${YW_DEVICE:-cpu}"
export YW_INPUT_ROOTS="${YW_INPUT_ROOTS:-$root/data}"
export YW_OUTPUT_URI="${YW_OUTPUT_URI:-file://$root/data/outputs}"
mkdir -p data/inputs data/outputs

# The demo: once, a rendered song enqueued as a new record (sent once the worker has created
# its queues).
demo=0
if [ ! -f .local/demo-sent ] && [ -x scripts/demo/render_demo.sh ] && [ "${YW_DEMO:-1}" != 0 ]; then
  say "demo: rendering data/inputs/demo.wav"
  scripts/demo/render_demo.sh "$root/data/inputs/demo.wav"
  demo=1
fi

say "yesod-worker run (CPU mode; Ctrl+C stops it)"
# Job control puts the worker in its own process group: Ctrl+C reaches this script alone, which
# forwards exactly one SIGINT (a second Ctrl+C forwards a second, which skips the drain wait).
set -m
"$bin" run "$@" &
worker=$!
trap 'kill -INT $worker 2>/dev/null || true' INT TERM

send_demo() {
  local schema=${PGBOSS_SCHEMA:-pgboss} i
  for i in $(seq 1 120); do
    psql "$DATABASE_URL" -qAt -c "SELECT 1 FROM $schema.queue WHERE name = 'process_new_record'" 2>/dev/null | grep -q 1 && break
    kill -0 "$worker" 2>/dev/null || return 1
    sleep 0.5
  done
  say "demo: enqueueing process_new_record for data/inputs/demo.wav"
  if "$bin" send process_new_record \
      "{\"record_id\":\"demo-1\",\"record_type\":\"song\",\"audio\":\"file://$root/data/inputs/demo.wav\",\"metadata\":{\"source\":\"scripts/dev.sh\"}}"; then
    touch .local/demo-sent
    cat <<MSG
    The worker takes the job and its three children (metadata, fingerprint, stems).
    Results, once their lines say "job completed" (in another terminal):
      jobs and outputs:  DATABASE_URL=$DATABASE_URL node scripts/pgboss/show-record.mjs demo-1
      stems, waveform:   ls $root/data/outputs/demo-1/
MSG
  fi
}
if [ "$demo" = 1 ]; then send_demo || true; fi
status=0
while true; do
  set +e
  wait "$worker"
  rc=$?
  set -e
  # A wait cut short by the trapped signal returns >128 while the worker still runs: wait again.
  if ! kill -0 "$worker" 2>/dev/null; then
    status=$rc
    break
  fi
done
exit $status
