#!/usr/bin/env bash
# Benchmarks that run side by side with the peer in one run and print ratios:
#   scripts/bench.sh queue|fingerprint|separation|pipeline|metadata|match|all
# Each area's script is scripts/bench/<area>.sh; it expects a built tree (scripts/test.sh or
# scripts/dev.sh builds one) and starts what it needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
area=${1:-all}
shift || true
run_one() {
  local name=$1 s="$root/scripts/bench/$1.sh"
  shift
  [ -x "$s" ] || { echo "bench: no benchmark for '$name' yet ($s)" >&2; return 2; }
  echo "=== bench: $name"
  "$s" "$@"
}
if [ "$area" = all ]; then
  for a in queue fingerprint separation pipeline metadata match; do
    [ -x "$root/scripts/bench/$a.sh" ] && run_one "$a" "$@"
  done
else
  run_one "$area" "$@"
fi
