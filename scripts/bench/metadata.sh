#!/usr/bin/env bash
# Metadata throughput, one run, same files for both sides:
#   ours:  `yesod-worker metadata F1 … F20` (one process: format, tags, SHA-256, loudness with
#          true peak and LRA, ReplayGain, waveform peaks)
#   peer:  per file `ffprobe` (format/tags) + `ffmpeg -af ebur128=peak=true` (loudness)
# Prints files per second for each and the ratio (issue 7's target: >= 3x).
#
#   scripts/bench.sh metadata [--files 20] [--seconds 60]
#
# The files are generated (sox; a mix of WAV, FLAC and MP3, stereo 44.1 kHz music-like material)
# into a temporary folder. Wall-clock times; run it on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
files=20
seconds=60
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "metadata bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_WORKER_BIN:-$(yw_built "$root" worker/yesod-worker || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "metadata bench: build yesod-worker first" >&2; exit 2; }
for t in sox ffmpeg ffprobe; do
  command -v $t >/dev/null || { echo "metadata bench: $t is needed" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "generating $files files of ${seconds}s in $work"
list=()
for (( i = 0; i < files; i++ )); do
  base=$work/song$i
  sox -n -r 44100 -c 2 -b 16 "$base.src.wav" synth "$seconds" pluck $(( 40 + i )) pluck $(( 47 + i )) \
    brownnoise remix 1v0.6,3v0.1 2v0.6,3v0.1 gain -6 2>/dev/null
  case $(( i % 3 )) in
    0) mv "$base.src.wav" "$base.wav"; list+=("$base.wav") ;;
    1) ffmpeg -loglevel error -y -i "$base.src.wav" -metadata title="Song $i" "$base.flac"; list+=("$base.flac") ;;
    2) ffmpeg -loglevel error -y -i "$base.src.wav" -c:a libmp3lame -b:a 192k -metadata title="Song $i" "$base.mp3"; list+=("$base.mp3") ;;
  esac
  rm -f "$base.src.wav"
done

echo "yesod-worker: $bin"
# Warm the page cache for both sides alike.
cat "${list[@]}" >/dev/null

# bash's `time` reports wall, user and system seconds, children included.
TIMEFORMAT='%R %U %S'
ours_t=$( { time "$bin" metadata "${list[@]}" >"$work/ours.jsonl"; } 2>&1 )
peer_t=$( { time for f in "${list[@]}"; do
  ffprobe -v error -show_format -show_streams -of json "$f" >/dev/null
  ffmpeg -hide_banner -nostats -i "$f" -af ebur128=peak=true -f null - 2>/dev/null
done; } 2>&1 )

n_ok=$(wc -l <"$work/ours.jsonl")
[ "$n_ok" -eq "$files" ] || { echo "metadata bench: only $n_ok of $files files analysed" >&2; exit 1; }
awk -v n="$files" -v s="$seconds" -v o="$ours_t" -v p="$peer_t" 'BEGIN {
  split(o, a, " "); split(p, b, " ")
  oc = a[2] + a[3]; pc = b[2] + b[3]
  printf "%-38s %7s %9s %9s %11s\n", "", "wall s", "files/s", "CPU s", "files/CPU-s"
  printf "%-38s %7.2f %9.2f %9.2f %11.2f\n", "yesod-worker metadata (1 process)", a[1], n / a[1], oc, n / oc
  printf "%-38s %7.2f %9.2f %9.2f %11.2f\n", "ffprobe + ffmpeg ebur128 (per file)", b[1], n / b[1], pc, n / pc
  printf "ratio ours/peer: %.2fx by wall clock, %.2fx by CPU time (%d files x %d s; target >= 3x)\n", b[1] / a[1], pc / oc, n, s
}'
