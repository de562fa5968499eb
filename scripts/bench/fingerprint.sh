#!/usr/bin/env bash
# Fingerprint throughput, one run, the same files for both sides (issue 4):
#   ours:  `yesod-worker fingerprint --length 0 F1 … F20` (one process)
#   peer:  `fpcalc -length 0 F` once per file (Debian fpcalc 1.5.1)
# for twenty 3-minute 44.1 kHz stereo WAVs and the same as MP3 (192 kbps). Prints audio seconds
# per wall second for each, the ratio, our peak resident memory, whether the WAV outputs are
# identical, and the core alone (PCM already at 11025 Hz) in x real time per core; with a CUDA
# build and a device, the batched CUDA core too. Targets: >= 2x fpcalc on WAV, >= 1.3x on MP3,
# core >= 10,000x real time per core.
#
#   scripts/bench.sh fingerprint [--files 20] [--seconds 180]
#
# The audio is generated once (sox, ffmpeg) into $YW_BENCH_CACHE/fingerprint (default
# build/bench-cache/fingerprint) and reused. Wall-clock figures: run on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
files=20
seconds=180
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "fingerprint bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_WORKER_BIN:-$(yw_built "$root" worker/yesod-worker || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "fingerprint bench: build yesod-worker first" >&2; exit 2; }
build=$(dirname "$(dirname "$bin")")
for t in sox ffmpeg fpcalc /usr/bin/time; do
  command -v $t >/dev/null || { echo "fingerprint bench: $t is needed" >&2; exit 2; }
done

cache=${YW_BENCH_CACHE:-$root/build/bench-cache}/fingerprint/${files}x${seconds}s
mkdir -p "$cache"
wavs=() mp3s=()
for (( i = 0; i < files; i++ )); do
  w=$cache/song$i.wav m=$cache/song$i.mp3
  if [ ! -s "$w" ]; then
    echo "generating $w"
    # Plucked chords whose root moves with i, over pink noise, with a slow tremolo.
    sox -q -R -n -r 44100 -c 2 -b 16 "$w.tmp.wav" synth "$seconds" \
      pluck "%$(( i % 12 - 12 ))" pluck "%$(( i % 12 - 5 ))" pluck "%$(( i % 12 ))" \
      synth "$seconds" pinknoise mix tremolo 0.$(( i % 9 + 1 )) 40 vol 0.7
    mv "$w.tmp.wav" "$w"
  fi
  if [ ! -s "$m" ]; then
    ffmpeg -nostdin -loglevel error -y -i "$w" -c:a libmp3lame -b:a 192k "$m.tmp.mp3"
    mv "$m.tmp.mp3" "$m"
  fi
  wavs+=("$w") mp3s+=("$m")
done
audio=$(( files * seconds ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
# ours KIND JOBS FILES...: one process (JOBS threads, 0 = one per CPU); prints "<wall> <peak KB>"
ours() {
  local kind=$1 jobs=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/$kind.time" "$bin" fingerprint --jobs "$jobs" --length 0 "$@" \
    > "$work/$kind.ours"
  cat "$work/$kind.time"
}
# peer KIND FILES...: fpcalc once per file; prints the wall seconds of the whole loop
peer() {
  local kind=$1; shift
  local t0 t1 f
  : > "$work/$kind.fpcalc"
  t0=$(now)
  for f in "$@"; do
    # Debian's fpcalc exits 3 after reading to the end (chromaprint.md §1.2); its output is whole.
    fpcalc -length 0 "$f" >> "$work/$kind.fpcalc" 2>/dev/null || [ $? -eq 3 ]
  done
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

report() {
  local kind=$1 ours_wall=$2 peak=$3 ours1_wall=$4 peak1=$5 peer_wall=$6
  awk -v k="$kind" -v a="$audio" -v o="$ours_wall" -v o1="$ours1_wall" -v p="$peer_wall" \
      -v m="$peak" -v m1="$peak1" -v c="$(nproc)" 'BEGIN {
    printf "%-4s ours, %d threads %8.1f audio s/s  (%.2f s wall, peak RSS %.1f MB)\n", k, c, a / o, o, m / 1024
    printf "%-4s ours, 1 thread  %8.1f audio s/s  (%.2f s wall, peak RSS %.1f MB)\n", k, a / o1, o1, m1 / 1024
    printf "%-4s fpcalc          %8.1f audio s/s  (%.2f s wall, one process per file)\n", k, a / p, p
    printf "%-4s ratio %.2fx (1 thread: %.2fx)\n", k, p / o, p / o1
  }'
}

echo "files: $files x ${seconds}s 44.1 kHz stereo ($audio audio seconds per format); binary $bin"
for kind in wav mp3; do
  if [ $kind = wav ]; then set -- "${wavs[@]}"; else set -- "${mp3s[@]}"; fi
  # Warm the page cache and the dynamic loader's files for both sides.
  cat "$@" > /dev/null
  read -r o1_wall o1_peak < <(ours $kind 1 "$@")
  read -r o_wall o_peak < <(ours $kind 0 "$@")
  p_wall=$(peer $kind "$@")
  report $kind "$o_wall" "$o_peak" "$o1_wall" "$o1_peak" "$p_wall"
  if cmp -s "$work/$kind.ours" "$work/$kind.fpcalc"; then
    echo "$kind outputs: identical to fpcalc"
  else
    echo "$kind outputs: $(diff <(grep FINGERPRINT "$work/$kind.ours") <(grep FINGERPRINT "$work/$kind.fpcalc") | grep -c '^<') of $files fingerprints differ from fpcalc"
  fi
done

core=$build/tests/kernels/yw_fingerprint_bench
if [ -x "$build/tests/kernels/yw_fingerprint_bench_cuda" ]; then
  "$build/tests/kernels/yw_fingerprint_bench_cuda" --seconds "$seconds" --signals "$files"
elif [ -x "$core" ]; then
  "$core" --seconds "$seconds" --signals "$files"
else
  echo "core: build yw_fingerprint_bench for the core-alone figure"
fi
