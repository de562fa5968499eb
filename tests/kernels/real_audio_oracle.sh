#!/usr/bin/env bash
# Oracle tier on real music (issue 12): every file derived by scripts/lib/real_audio.sh is
# fingerprinted by `yesod-worker fingerprint` and by Debian's fpcalc, one process per file for
# each, with the default length, `-length 0` and `-raw`; stdout must be byte-identical. Where
# fpcalc refuses a file (it prints no FINGERPRINT), ours must refuse it too: exit status 1 and an
# "ERROR: <file>: ..." line. fpcalc exits 3 after reading a file to the end although its output is
# complete (Debian quirk, chromaprint.md §1.2), so its exit status alone decides nothing.
#
#   real_audio_oracle.sh --bin BUILD/worker/yesod-worker [--set ci|full] [--cache DIR]
#                        [--skip N] [--max N]   (a slice of the set's tracks: N skipped, N at most)
#
# --set ci (what ctest runs): two tracks × every recipe; --set full (scripts/bench.sh): every
# track. The derived files are cached in DIR (default $YW_REAL_CACHE, else build/real-audio under
# the source tree) so both build trees and later runs share them. Ends with "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=
set=ci
skip=0
max=0
cache=${YW_REAL_CACHE:-$root/build/real-audio}
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --set) set=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --max) max=$2; shift 2 ;;
    *) echo "real_audio_oracle: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "real_audio_oracle: --bin must name the yesod-worker binary" >&2; exit 2; }
for t in ffmpeg fpcalc md5sum; do
  command -v $t >/dev/null || { echo "real_audio_oracle: $t is needed" >&2; exit 2; }
done
export YW_REAL_CACHE=$cache
# shellcheck source=scripts/lib/real_audio.sh
source "$root/scripts/lib/real_audio.sh"

mapfile -t sources < <(yw_real_sources "$set")
sources=("${sources[@]:$skip}")
[ "$max" -gt 0 ] && sources=("${sources[@]:0:$max}")
[ ${#sources[@]} -gt 0 ] || { echo "real_audio_oracle: no source tracks" >&2; exit 1; }
list=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$list" "$work"' EXIT
passed=0 failed=0 total=0
# mode LABEL FPCALC-ARGS... -- OURS-ARGS...: fpcalc once per file; ours once for all the files
# (its blocks come in argument order, two lines each; a refused file has its ERROR line on
# stderr instead), then file by file.
mode() {
  local label=$1
  shift
  local fp=() ours=()
  while [ "$1" != -- ]; do fp+=("$1"); shift; done
  shift
  ours=("$@")
  local orc=0
  "$bin" fingerprint "${ours[@]}" "${files[@]}" > "$work/o.out" 2> "$work/o.err" || orc=$?
  local line=1 i prc got
  for i in "${!files[@]}"; do
    local file=${files[$i]} what
    what="${names[$i]} $(basename "${files[$i]}") [$label]"
    prc=0
    fpcalc "${fp[@]}" "$file" > "$work/p.out" 2> "$work/p.err" || prc=$?
    if grep -qF "ERROR: $file: " "$work/o.err"; then
      got=refused
    else
      sed -n "${line},$((line + 1))p" "$work/o.out" > "$work/one.out"
      line=$((line + 2))
      got=fingerprint
    fi
    if grep -q '^FINGERPRINT=' "$work/p.out"; then
      if [ $got = fingerprint ] && cmp -s "$work/p.out" "$work/one.out"; then
        passed=$((passed + 1))
        continue
      fi
      echo "FAIL $what: fpcalc (rc $prc) printed a fingerprint; ours $got"
      [ $got = fingerprint ] && { diff <(cut -c1-100 "$work/p.out") <(cut -c1-100 "$work/one.out") || true; }
      [ $got = refused ] && grep -F "ERROR: $file: " "$work/o.err"
    else
      if [ $got = refused ] && [ $orc -eq 1 ]; then
        passed=$((passed + 1))
        continue
      fi
      echo "FAIL $what: fpcalc refused it ($(tr '\n' ' ' < "$work/p.err")) but ours did not (rc $orc)"
    fi
    failed=$((failed + 1))
  done
}

# all_modes: the three comparisons over the files in $list.
all_modes() {
  mapfile -t names < <(cut -f1 "$list")
  mapfile -t files < <(cut -f2 "$list")
  total=$((total + ${#files[@]}))
  mode default --
  mode "length 0" -length 0 -- --length 0
  mode raw -raw -- --raw
}

if [ "$set" = ci ]; then
  yw_real_derive "$set" "$cache/derived" "${sources[@]}" > "$list"
  all_modes
else
  # The full set is tens of GB once derived: one track at a time, in a scratch folder.
  for src in "${sources[@]}"; do
    yw_real_derive "$set" "$work/derived" "$src" > "$list"
    all_modes
    rm -rf "$work/derived"
  done
fi
echo "real audio vs fpcalc ($set set, $total files, 3 modes each):"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
