#!/usr/bin/env bash
# run_fuzzer.sh BINARY TARGET SECONDS REGRESSIONS_DIR ARTIFACT_DIR
# Replays every saved regression input, then fuzzes for SECONDS from seeds made here. A crash
# leaves its input in ARTIFACT_DIR (copy it into REGRESSIONS_DIR to keep it as a test).
set -euo pipefail
bin=$1 target=$2 seconds=$3 regressions=$4 artifacts=$5
mkdir -p "$artifacts"
work=$(mktemp -d /tmp/yw-fuzz-$target.XXXXXX)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0"
opts=(-rss_limit_mb=2048 -timeout=20 -artifact_prefix="$artifacts/$target-")

shopt -s nullglob
saved=("$regressions"/*)
if [ ${#saved[@]} -gt 0 ]; then
  echo "replaying ${#saved[@]} regression input(s)"
  "$bin" "${opts[@]}" "${saved[@]}"
fi

corpus=$work/corpus
mkdir -p "$corpus"
case $target in
  audio_decode)
    # Small real files of every format the decoder meets, as starting points.
    sox -n -r 8000 -c 1 -b 16 "$corpus/a.wav" synth 0.2 sine 440
    sox -n -r 11025 -c 2 -b 24 "$corpus/b.flac" synth 0.2 sine 300 sine 500
    sox -n -r 22050 -c 1 "$corpus/c.aiff" synth 0.1 noise
    ffmpeg -loglevel error -f lavfi -i "sine=f=440:d=0.3" -c:a libvorbis "$corpus/d.ogg"
    ffmpeg -loglevel error -f lavfi -i "sine=f=440:d=0.3" -c:a libmp3lame "$corpus/e.mp3"
    ffmpeg -loglevel error -f lavfi -i "sine=f=440:d=0.3" -c:a aac "$corpus/f.m4a"
    ;;
  job_data)
    printf '%s' '{"audio":"file:///data/a.wav","record_id":1,"length_seconds":0,"raw":true}' >"$corpus/a"
    printf '%s' '{"record_id":"r","metadata":{"storage_path":"x/y.flac"},"tasks":["stems"]}' >"$corpus/b"
    printf '%s' 'DATABASE_URL="postgresql://u:p@h:5432/d"\nexport NODE_ENV=production' >"$corpus/c"
    printf '%s' 'cuda:3' >"$corpus/d"
    ;;
esac
echo "fuzzing $target for ${seconds}s"
"$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 "$corpus"
