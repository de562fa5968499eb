#!/usr/bin/env bash
# Fingerprint speed and fidelity on real uploads, side by side with Debian fpcalc 1.5.1 (issue 12):
#   ours:  `yesod-worker fingerprint F1 … Fn` per codec (one process, --jobs 0 = one per CPU)
#   peer:  `fpcalc F` once per file, as users run it
# on a realistic mix derived from real music in Debian packages (scripts/lib/real_audio.sh):
# Vorbis as shipped, MP3, AAC, Opus, FLAC 16/24, WAV 16/24/float and 5.1 AAC/FLAC, default length.
# Prints a per-codec table of CPU seconds (user + sys) and wall seconds for both, their ratios
# (fpcalc ÷ ours: above 1 means ours is faster; ours' CPU both with one thread per CPU and one file
# at a time) and how many outputs are byte-identical, then the whole mix. Targets: >= 1.5x fpcalc
# in CPU and wall on the mix, no codec below 1.0x. Then the decoder floor (the part of fpcalc's
# CPU inside the FFmpeg libraries both sides run, and the ratio it bounds; needs perf). Then the
# full real-music oracle (every track of the three packages, every recipe; --no-oracle skips it)
# and the core alone (PCM already at 11025 Hz), with the CUDA core where built.
#
#   scripts/bench.sh fingerprint [--tracks 6] [--repeat 3] [--no-oracle]
#
# Each side's CPU and wall seconds are the smallest of --repeat runs (per file for fpcalc, per
# codec for ours).
#
# Derived files are cached in $YW_REAL_CACHE (default build/real-audio). Wall-clock figures need an
# otherwise idle machine; CPU seconds are the robust figure on a shared one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tracks=6
repeat=3
oracle=1
while [ $# -gt 0 ]; do
  case $1 in
    --tracks) tracks=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-oracle) oracle=0; shift ;;
    *) echo "fingerprint bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib/built.sh
source "$root/scripts/lib/built.sh"
bin=${YW_WORKER_BIN:-$(yw_built "$root" worker/yesod-worker || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "fingerprint bench: build yesod-worker first" >&2; exit 2; }
build=$(dirname "$(dirname "$bin")")
for t in ffmpeg ffprobe fpcalc /usr/bin/time; do
  command -v $t >/dev/null || { echo "fingerprint bench: $t is needed" >&2; exit 2; }
done
export YW_REAL_CACHE=${YW_REAL_CACHE:-$root/build/real-audio}
# shellcheck source=scripts/lib/real_audio.sh
source "$root/scripts/lib/real_audio.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Tracks FFmpeg can open, the first $tracks of the full set.
mapfile -t all < <(yw_real_sources full)
sources=()
for s in "${all[@]}"; do
  [ ${#sources[@]} -ge "$tracks" ] && break
  ffprobe -v error "$s" > /dev/null 2>&1 && sources+=("$s")
done
codecs=(shipped mp3_cbr192 aac_m4a opus flac_16 flac_24 wav_s16 wav_s24 wav_f32 surround51_aac
  surround51_flac)
all_recipes=("${YW_REAL_RECIPES[@]}")
YW_REAL_RECIPES=()
for r in "${all_recipes[@]}"; do
  for c in "${codecs[@]}"; do [ "${r%%|*}" = "$c" ] && YW_REAL_RECIPES+=("$r"); done
done
yw_real_derive bench "$YW_REAL_CACHE/derived" "${sources[@]}" > "$work/list"
echo "files: ${#sources[@]} real tracks x ${#codecs[@]} formats, default length (120 s); binary $bin"

# cpu_wall CMD...: runs CMD under /usr/bin/time $repeat times; prints the smallest
# "<user+sys> <wall>" (the least disturbed run on a shared machine)
cpu_wall() {
  local i
  : > "$work/runs"
  for (( i = 0; i < repeat; i++ )); do
    /usr/bin/time -f "%U %S %e" -o "$work/t" "$@" > /dev/null 2>&1 || true
    tail -n 1 "$work/t" | awk '{ printf "%.3f %.3f\n", $1 + $2, $3 }' >> "$work/runs"
  done
  awk 'NR == 1 || $1 < c { c = $1 } NR == 1 || $2 < w { w = $2 } END { print c, w }' "$work/runs"
}

printf '%-16s %5s %10s %10s %7s %10s %7s %10s %10s %7s %10s\n' codec files "fpcalc cpu" "ours cpu" \
  ratio "1 job cpu" ratio "fpcalc wall" "ours wall" ratio identical
tot_pc=0 tot_oc=0 tot_o1=0 tot_pw=0 tot_ow=0 tot_n=0 tot_same=0
: > "$work/peer_cpu"
for c in "${codecs[@]}"; do
  mapfile -t files < <(awk -F'\t' -v c="$c" '$1 == c { print $2 }' "$work/list")
  [ ${#files[@]} -gt 0 ] || continue
  cat "${files[@]}" > /dev/null  # warm the page cache for both sides
  pc=0 pw=0
  : > "$work/peer.out"
  for f in "${files[@]}"; do
    read -r cpu wall < <(cpu_wall fpcalc "$f")
    pc=$(awk -v a="$pc" -v b="$cpu" 'BEGIN { print a + b }')
    pw=$(awk -v a="$pw" -v b="$wall" 'BEGIN { print a + b }')
    fpcalc "$f" >> "$work/peer.out" 2> /dev/null || true
  done
  read -r oc ow < <(cpu_wall "$bin" fingerprint --jobs 0 "${files[@]}")
  # One file at a time, as fpcalc works: the like-for-like CPU figure (on a machine whose cores
  # share caches or are hyperthreads of a host, two busy threads each cost more CPU seconds).
  read -r o1 _ < <(cpu_wall "$bin" fingerprint --jobs 1 "${files[@]}")
  "$bin" fingerprint "${files[@]}" > "$work/ours.out" 2> /dev/null || true
  same=$(paste -d' ' <(grep FINGERPRINT "$work/peer.out") <(grep FINGERPRINT "$work/ours.out") |
    awk '$1 == $2' | wc -l)
  awk -v c="$c" -v n=${#files[@]} -v pc="$pc" -v oc="$oc" -v o1="$o1" -v pw="$pw" -v ow="$ow" \
    -v s="$same" 'BEGIN { printf "%-16s %5d %10.2f %10.2f %6.2fx %10.2f %6.2fx %10.2f %10.2f %6.2fx %6d/%d\n",
             c, n, pc, oc, pc / oc, o1, pc / o1, pw, ow, pw / ow, s, n }'
  tot_o1=$(awk -v a="$tot_o1" -v b="$o1" 'BEGIN { print a + b }')
  tot_pc=$(awk -v a="$tot_pc" -v b="$pc" 'BEGIN { print a + b }')
  tot_oc=$(awk -v a="$tot_oc" -v b="$oc" 'BEGIN { print a + b }')
  tot_pw=$(awk -v a="$tot_pw" -v b="$pw" 'BEGIN { print a + b }')
  tot_ow=$(awk -v a="$tot_ow" -v b="$ow" 'BEGIN { print a + b }')
  printf '%s\t%s\n' "$c" "$pc" >> "$work/peer_cpu"
  tot_n=$((tot_n + ${#files[@]}))
  tot_same=$((tot_same + same))
done
awk -v n=$tot_n -v pc="$tot_pc" -v oc="$tot_oc" -v o1="$tot_o1" -v pw="$tot_pw" -v ow="$tot_ow" \
  -v s=$tot_same 'BEGIN { printf "%-16s %5d %10.2f %10.2f %6.2fx %10.2f %6.2fx %10.2f %10.2f %6.2fx %6d/%d\n",
           "mix", n, pc, oc, pc / oc, o1, pc / o1, pw, ow, pw / ow, s, n }'
echo "(ours: one process per codec, --jobs 0 = $(nproc) threads, and --jobs 1; fpcalc: one process per file)"

# The decoder floor: the share of fpcalc's own CPU spent in libavcodec, libavformat and
# libswresample. Ours decodes with the same FFmpeg and converts with the same libswresample
# call (issue 12 asks for both), so it spends at least that much too, and fpcalc's CPU divided by
# it bounds the CPU ratio any such fingerprinter can reach. Sampled with perf when it is here.
if command -v perf >/dev/null 2>&1 && perf record -q -o "$work/probe.data" -- true >/dev/null 2>&1; then
  echo "--- decoder floor (perf samples of fpcalc, one process per file)"
  printf '%-16s %8s %8s %8s %8s %12s\n' codec avcodec avformat swr floor "cpu bound"
  floor_sum=0 peer_sum=0
  for c in "${codecs[@]}"; do
    mapfile -t files < <(awk -F'\t' -v c="$c" '$1 == c { print $2 }' "$work/list")
    [ ${#files[@]} -gt 0 ] || continue
    # (fpcalc's own exit status is not this section's concern: the table above compared them)
    perf record -q -F 2000 -o "$work/floor.data" -- \
      sh -c 'for f in "$@"; do fpcalc "$f"; done' sh "${files[@]}" >/dev/null 2>&1 || true
    read -r share line < <(perf report -i "$work/floor.data" -n --sort dso --stdio 2>/dev/null |
      awk -v c="$c" '/^#/ || NF < 3 { next } { t += $2 }
        $3 ~ /^libavcodec/ { a += $2 } $3 ~ /^libavformat/ { f += $2 } $3 ~ /^libswresample/ { r += $2 }
        END { if (t == 0) exit 1; s = (a + f + r) / t
              printf "%.4f %-16s %7.1f%% %7.1f%% %7.1f%% %7.1f%% %11.2fx\n", s, c, 100 * a / t,
                     100 * f / t, 100 * r / t, 100 * s, 1 / s }') || continue
    echo "$line"
    pc=$(awk -F'\t' -v c="$c" '$1 == c { print $2 }' "$work/peer_cpu")
    floor_sum=$(awk -v a="$floor_sum" -v p="$pc" -v s="$share" 'BEGIN { print a + p * s }')
    peer_sum=$(awk -v a="$peer_sum" -v p="$pc" 'BEGIN { print a + p }')
  done
  awk -v f="$floor_sum" -v p="$peer_sum" 'BEGIN { if (f > 0) printf "%-16s %44s %11.2fx\n",
    "mix", "(fpcalc CPU / its FFmpeg part)", p / f }'
else
  echo "--- decoder floor: perf is not usable here; skipped"
fi

if [ $oracle = 1 ]; then
  echo "--- full real-music oracle (every track, every recipe)"
  "$root/tests/kernels/real_audio_oracle.sh" --bin "$bin" --set full | tail -n 12 || true
fi

core=$build/tests/kernels/yw_fingerprint_bench
if [ -x "$build/tests/kernels/yw_fingerprint_bench_cuda" ]; then
  "$build/tests/kernels/yw_fingerprint_bench_cuda" --seconds 180 --signals 20
elif [ -x "$core" ]; then
  "$core" --seconds 180 --signals 20
else
  echo "core: build yw_fingerprint_bench for the core-alone figure"
fi
