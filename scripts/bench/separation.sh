#!/usr/bin/env bash
# Separation throughput: a ~11 M-parameter convolutional encoder/decoder (built in C++ by the
# bench) on N songs, one run: one segment per call vs one song at a time vs segments batched
# across songs, plus the built-in HPSS separator. Prints seconds of audio per second and ratios.
#
#   scripts/bench.sh separation [--songs 8] [--seconds 180] [--batch 8] [--device cpu|cuda:0]
#
# Defaults here are the issue's eight 3-minute songs on a GPU; on a CPU-only machine they would
# take about an hour, so without --device the script runs 8 x 20 s on the CPU (say so when you
# quote figures). Needs a tree built with YW_TORCH=ON (target yw_separation_bench).
set -euo pipefail
# scripts/bench.sh passes the area name first.
[ "${1:-}" = separation ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bench=${YW_SEPARATION_BENCH:-$(yw_built "$root" tests/models/yw_separation_bench || true)}
[ -n "$bench" ] && [ -x "$bench" ] || {
  echo "separation bench: build the target yw_separation_bench first (YW_TORCH=ON)" >&2
  exit 2
}
if [ "${1:-}" = "--memory" ]; then
  # Memory is bounded by the batch, not the song: the 20-minute song may cost the 3-minute
  # song's peak plus its own audio and stems, no more.
  shift
  out3=$("$bench" --memory-song 180 "$@" | grep '^memory:')
  out20=$("$bench" --memory-song 1200 "$@" | grep '^memory:')
  echo "$out3"; echo "$out20"
  p3=$(sed -E 's/.*peak RSS ([0-9]+) MB.*/\1/' <<<"$out3")
  p20=$(sed -E 's/.*peak RSS ([0-9]+) MB.*/\1/' <<<"$out20")
  own20=$(sed -E 's/.*stems ([0-9]+) MB.*/\1/' <<<"$out20")
  echo "20-min peak ${p20} MB vs 3-min peak + 20-min audio and stems = $((p3 + own20)) MB" \
       "(ratio $(awk -v a="$p20" -v b="$((p3 + own20))" 'BEGIN{printf "%.2f", a/b}'))"
  exit 0
fi
args=("$@")
if ! printf '%s\n' "${args[@]:-}" | grep -q -- '--device'; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    args+=(--device cuda:0)
  else
    printf '%s\n' "${args[@]:-}" | grep -q -- '--seconds' || args+=(--seconds 20)
    args+=(--device cpu)
  fi
fi
echo "bench binary: $bench"
exec "$bench" "${args[@]}"
