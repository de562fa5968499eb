#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (an H200, bare: no registry, none of our -dev
# packages; see shared/docs/gpu-machine.md). Two halves:
#
# Here (the development machine, no GPU needed):
#   scripts/gpu-check.sh --bundle [--from BUILD_DIR] [--out DIR]
#     builds the GPU tests and benchmarks for sm_90 (or takes them from an existing CUDA build
#     tree) and copies them, every shared library they need that a bare machine lacks, the two
#     static libraries and fmt's headers the torch runner needs, into DIR (default .gpu-bundle/,
#     git-ignored). Fails above 40 MiB.
#   scripts/gpu-check.sh --loader-check [DIR]
#     runs `ldd` on everything in the bundle inside a minimal Debian root without any -dev
#     package (debootstrap --variant=minbase, cached in /var/cache/yesod-worker/; root needed):
#     fails when a library other than the CUDA driver's and runtime's is not found, or when the
#     bundle is over its limit. tests/kernels runs both on a CUDA tree's binaries
#     (--bundle-and-check BUILD_DIR).
#
# There (carry .gpu-bundle; one command, meant to finish in under 8 minutes; the two memory songs
#   are bounded at 90 s each):
#   scripts/gpu-check.sh
#     builds only libyw_torch_runner.so (one libtorch TU) against the device's pip torch and a
#     Demucs-sized model with that torch (both in the background), runs the GPU tests, the twin /
#     HPSS benchmark and the separation benchmark (throughput, then the device and host peak of
#     a 3-minute and a 20-minute song) on cuda:0 while sampling nvidia-smi, and prints a short
#     table last. The match rescoring's twins (yw_match_gpu_check: one catalogue-like
#     candidate x offset batch, exact equality, tasks/s) run after the twin benchmark. Logs and
#     the table go to $OUT (or build/gpu-check).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
limit_mib=40
bundle="$root/.gpu-bundle"
targets=(yw_fingerprint_gpu_tests yw_models_gpu_tests yw_gpu_check_bench yw_separation_bench_bundle
  yw_match_gpu_check yw_common yw_kernels_core)
# Libraries a bare machine has (glibc) or must bring itself (the CUDA driver and runtime).
system_libs='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libresolv)\.so'
cuda_libs='^lib(cuda|cudart|cufft|nvidia-[a-z-]*|nvrtc|nvJitLink)\.so'
cxx_runtime='^lib(stdc\+\+|gcc_s)\.so'

# ---- here: the bundle -------------------------------------------------------------------------
make_bundle() {
  local from="" out="$bundle"
  while [ $# -gt 0 ]; do
    case $1 in
      --from) from=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      *) echo "gpu-check: unknown option $1" >&2; return 2 ;;
    esac
  done
  if [ -z "$from" ]; then
    from="$root/build/gpu-bundle"
    export PATH="$PATH:/usr/local/cuda/bin"
    cmake -S . -B "$from" -G Ninja -DCMAKE_BUILD_TYPE=Release -DYW_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DYW_TORCH=OFF -DYW_WERROR=ON >"$from.configure.log" 2>&1 \
      || { tail -30 "$from.configure.log"; return 1; }
    cmake --build "$from" -j "${YW_JOBS:-2}" --target "${targets[@]}" || return 1
  fi
  local bins=(tests/kernels/yw_fingerprint_gpu_tests tests/models/yw_models_gpu_tests
    tests/kernels/yw_gpu_check_bench tests/models/yw_separation_bench_bundle
    tests/match/yw_match_gpu_check)
  rm -rf "$out"
  mkdir -p "$out/bin" "$out/lib/static" "$out/include"
  for b in "${bins[@]}"; do
    [ -x "$from/$b" ] || { echo "gpu-check: $from/$b is not built" >&2; return 1; }
    cp "$from/$b" "$out/bin/"
  done
  cp "$from/common/libyw_common.a" "$from/kernels/libyw_kernels_core.a" "$out/lib/static/"
  cp -r /usr/include/fmt "$out/include/"
  # The closure of every binary, minus glibc and CUDA; the copies keep their sonames. The C++
  # runtime goes to lib/fallback, searched last: a device whose own libstdc++ is newer (the torch
  # runner is compiled there, and may need its newer symbols) keeps it.
  mkdir -p "$out/lib/fallback"
  local name path dest
  while read -r name path; do
    [[ "$name" =~ $system_libs || "$name" =~ $cuda_libs ]] && continue
    dest="$out/lib"
    [[ "$name" =~ $cxx_runtime ]] && dest="$out/lib/fallback"
    [ -f "$dest/$name" ] || cp -L "$path" "$dest/$name"
  done < <(for b in "$out"/bin/*; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u)
  strip --strip-unneeded "$out"/bin/* "$out"/lib/*.so* "$out"/lib/fallback/*.so* 2>/dev/null
  # The torch runner's build links this libfmt by path (scripts/gpu-check/torch-runner).
  [ -f "$out/lib/libfmt.so.9" ] || { echo "gpu-check: no libfmt.so.9 in the closure" >&2; return 1; }
  {
    echo "built from $(git rev-parse --short HEAD 2>/dev/null) in $from on $(date -u +%FT%TZ)"
    (cd "$out" && find . -type f -printf '%s %p\n' | sort -k2)
  } >"$out/MANIFEST"
  local bytes
  bytes=$(du -sb "$out" | cut -f1)
  echo "gpu-check: bundle $out: $(find "$out" -type f | wc -l) files," \
    "$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB (limit $limit_mib MiB)"
  [ "$bytes" -le $((limit_mib * 1048576)) ] || { echo "gpu-check: bundle over its limit" >&2; return 1; }
}

# ---- here: the loader check in a minimal root -------------------------------------------------
# The Debian mirror this machine's apt uses (deb822 .sources first, then sources.list), so
# debootstrap reaches what apt reaches; empty means debootstrap's own default.
apt_mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "$m"
}

minimal_root() {
  local cache=/var/cache/yesod-worker
  local dir="$cache/minbase-bookworm"
  if [ ! -x "$dir/usr/bin/ldd" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null 2>&1
    mkdir -p "$cache"
    rm -rf "$dir.tmp"
    echo "gpu-check: creating the minimal root $dir (debootstrap --variant=minbase, once)" >&2
    # shellcheck disable=SC2046 # no mirror: debootstrap's default
    debootstrap --variant=minbase bookworm "$dir.tmp" $(apt_mirror) \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; return 1; }
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

loader_check() {
  local dir=${1:-$bundle}
  [ -d "$dir/bin" ] || { echo "gpu-check: no bundle in $dir (run --bundle first)" >&2; return 1; }
  # 77: ctest's skip code (tests/kernels/CMakeLists.txt), for a run that is not root.
  [ "$(id -u)" = 0 ] || { echo "gpu-check: the loader check needs root (chroot): skipped" >&2; return 77; }
  local rootfs
  rootfs=$(minimal_root) || return 1
  # The root must be bare: no -dev package, no FFTW, no fmt (dpkg's own view).
  local dev
  dev=$(chroot "$rootfs" dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$|fftw|libfmt' || true)
  [ -z "$dev" ] || { echo "gpu-check: the minimal root has $dev" >&2; return 1; }
  rm -rf "$rootfs/opt/yw-bundle"
  mkdir -p "$rootfs/opt"
  cp -r "$dir" "$rootfs/opt/yw-bundle"
  local report
  report=$(unshare --mount --fork chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin \
    LD_LIBRARY_PATH=/opt/yw-bundle/lib:/opt/yw-bundle/lib/fallback /bin/sh -c \
    'for f in /opt/yw-bundle/bin/* /opt/yw-bundle/lib/*.so* /opt/yw-bundle/lib/fallback/*; do
       echo "== $f"; ldd "$f" 2>&1; done')
  rm -rf "$rootfs/opt/yw-bundle"
  local missing bad
  missing=$(grep 'not found' <<<"$report" | awk '{print $1}' | sort -u)
  bad=$(grep -Ev "$cuda_libs" <<<"$missing" || true)
  echo "gpu-check: loader check in $rootfs: $(grep -c '^==' <<<"$report") files;" \
    "not found (CUDA, the device brings them): $(grep -E "$cuda_libs" <<<"$missing" | tr '\n' ' ')"
  if [ -n "$bad" ]; then
    echo "gpu-check: unresolved in a bare root: $(tr '\n' ' ' <<<"$bad")" >&2
    return 1
  fi
  local bytes
  bytes=$(du -sb "$dir" | cut -f1)
  [ "$bytes" -le $((limit_mib * 1048576)) ] ||
    { echo "gpu-check: bundle is $bytes bytes, over $limit_mib MiB" >&2; return 1; }
}

case "${1:-}" in
  --bundle) shift; make_bundle "$@"; exit $? ;;
  --loader-check) shift; loader_check "$@"; exit $? ;;
  --bundle-and-check)  # BUILD_DIR: the ctest check of a CUDA tree
    make_bundle --from "$2" --out "$2/gpu-bundle" && loader_check "$2/gpu-bundle"
    exit $? ;;
  "") ;;
  *) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 2 ;;
esac

# ---- there: the device run --------------------------------------------------------------------
out=${OUT:-$root/build/gpu-check}
mkdir -p "$out"
t0=$(date +%s)
stamp() { printf '[%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
declare -A r
[ -d "$bundle/bin" ] || { echo "gpu-check: no .gpu-bundle (run --bundle here and carry it)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

# The CUDA runtime and cuFFT of the device: the toolkit's, else pip's nvidia wheels.
libdirs=""
site=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
for lib in libcudart.so.13 libcufft.so.12; do
  # shellcheck disable=SC2086
  found=$(find /usr/local/cuda/lib64/ /usr/local/cuda/targets/*/lib/ $site -name "$lib*" 2>/dev/null | head -1)
  [ -n "$found" ] && libdirs="$libdirs:$(dirname "$found")"
done
export LD_LIBRARY_PATH="$bundle/lib$libdirs:${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$bundle/lib/fallback"
stamp "libraries: $LD_LIBRARY_PATH"

# In the background while the tests run: the runner (one libtorch TU) and the model.
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>"$out/torch.log")
(
  export PATH="$PATH:/usr/local/cuda/bin"
  gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S scripts/gpu-check/torch-runner -B /tmp/yw-runner "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DYW_BUNDLE="$bundle" -DCMAKE_PREFIX_PATH="$torch_prefix" &&
    cmake --build /tmp/yw-runner -j "$(nproc)"
) >"$out/runner.log" 2>&1 &
runner_pid=$!
python3 scripts/gpu-check/demucs_like.py /tmp/yw-demucs-like.pt >"$out/model.log" 2>&1 &
model_pid=$!

# Samples utilisation (%) and used memory (MiB) every 200 ms while "$@" runs; sets r[<key>_busy]
# and r[<key>_peak_mib].
sampled() {
  local key=$1; shift
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
    >"$out/smi-$key.csv" 2>/dev/null &
  local smi=$!
  "$@"
  local rc=$?
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  r[${key}_busy]=$(awk -F', ' '{s += $1; n++} END {if (n) printf "%.2f", s / n / 100; else print "?"}' "$out/smi-$key.csv")
  r[${key}_peak_mib]=$(awk -F', ' '$2 > m {m = $2} END {print m + 0}' "$out/smi-$key.csv")
  return $rc
}

gtest() {  # key binary: runs one gtest binary, r[key] = "passed/failed/skipped"
  local key=$1 bin=$2
  timeout 150 "$bundle/bin/$bin" --gtest_brief=1 >"$out/$key.log" 2>&1
  local rc=$?
  r[$key]="rc=$rc $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]|^\[  SKIPPED \] [0-9]' "$out/$key.log" | tr -s ' ' | tr '\n' ' ')"
  grep -h 'TWINS' "$out/$key.log" | tail -3
}

stamp "gpu tests"
sampled tests gtest fingerprint_twin yw_fingerprint_gpu_tests
gtest hpss_twin yw_models_gpu_tests
# compute-sanitizer worked on one device runtime and not on another (gpu-machine.md): tried on
# the smallest cases, bounded, reported, never fatal.
if command -v compute-sanitizer >/dev/null; then
  stamp "compute-sanitizer memcheck"
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$bundle/bin/yw_models_gpu_tests" --gtest_filter='HpssCuda.SilenceStaysSilent' \
    >"$out/memcheck.log" 2>&1
  r[memcheck]="hpss rc=$?"
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$bundle/bin/yw_fingerprint_gpu_tests" --gtest_filter='FingerprintTwins.MusicLikeAudio' \
    >>"$out/memcheck.log" 2>&1
  r[memcheck]+=", fingerprint rc=$? ($(grep -m1 -oE 'ERROR SUMMARY: [0-9]+ errors?' "$out/memcheck.log"))"
fi
stamp "twin benchmark"
sampled bench timeout 200 "$bundle/bin/yw_gpu_check_bench" >"$out/bench.log" 2>&1
r[bench_rc]=$?
val() { awk -v k="$1" '$1 == k {print $2}' "$out/bench.log"; }
stamp "match rescoring twins"
sampled match timeout 120 "$bundle/bin/yw_match_gpu_check" --records 8000 --queries 512 \
  >"$out/match.log" 2>&1
r[match_rc]=$?
mval() { awk -v k="$1" '$1 == k {print $2}' "$out/match.log"; }

stamp "waiting for the torch runner and the model"
wait "$runner_pid"; r[runner]=$([ -f /tmp/yw-runner/libyw_torch_runner.so ] && echo built || echo FAILED)
r[runner_stream]=$(grep -o 'own CUDA stream: [A-Z]*' "$out/runner.log" | awk '{print $NF}')
wait "$model_pid"; r[model]=$(grep -o '[0-9.]* M parameters' "$out/model.log" || echo FAILED)
if [ "${r[runner]}" = built ] && [ -f /tmp/yw-demucs-like.pt ]; then
  stamp "separation benchmark"
  export YW_TORCH_RUNNER=/tmp/yw-runner/libyw_torch_runner.so
  sampled sep timeout 240 \
    "$bundle/bin/yw_separation_bench_bundle" --device cuda:0 --model /tmp/yw-demucs-like.pt \
    --songs 8 --seconds 60 --batch 8 >"$out/separation.log" 2>&1
  r[sep_rc]=$?
  # Memory bounded by the batch on the device too (issue 15): one 3-minute and one 20-minute
  # song through the same model at batch 8; the device peak is nvidia-smi's, the host's RSS.
  for secs in 180 1200; do
    stamp "separation memory, ${secs} s song"
    sampled "mem$secs" timeout 90 "$bundle/bin/yw_separation_bench_bundle" --device cuda:0 \
      --model /tmp/yw-demucs-like.pt --batch 8 --memory-song "$secs" >"$out/memory-$secs.log" 2>&1
    r[mem${secs}_rss]=$(grep -oE 'peak RSS [0-9]+ MB' "$out/memory-$secs.log" | grep -oE '[0-9]+')
  done
else
  tail -20 "$out/runner.log" "$out/model.log"
fi
sep() { grep -E "$1" "$out/separation.log" 2>/dev/null | grep -oE '[0-9.]+ s audio / s' | head -1; }

echo
echo "=== gpu-check ($(cat "$out/gpu.txt")), $(($(date +%s) - t0)) s wall ===" | tee "$out/table.txt"
{
  printf '%-40s %s\n' "fingerprint twin test" "${r[fingerprint_twin]}"
  printf '%-40s %s\n' "hpss twin test" "${r[hpss_twin]}"
  printf '%-40s %s\n' "compute-sanitizer memcheck" "${r[memcheck]:-not on this machine}"
  printf '%-40s %s of %s items differ\n' "fingerprint twins (bench)" "$(val fp_twin_differing_items)" "$(val fp_twin_items)"
  printf '%-40s %s items/s, %sx real time\n' "fingerprint cuda, batched" "$(val fp_batched_items_per_s)" "$(val fp_batched_x_realtime)"
  printf '%-40s %sx real time (batched/unbatched %s)\n' "fingerprint cuda, one signal per call" "$(val fp_unbatched_x_realtime)" "$(val fp_batched_over_unbatched)"
  printf '%-40s %sx real time per core\n' "fingerprint cpu twin" "$(val fp_cpu_x_realtime_per_core)"
  printf '%-40s cuda %sx (stereo), cpu %sx per core, max diff %s\n' "hpss real-time factor" "$(val hpss_cuda_x_realtime_stereo)" "$(val hpss_cpu_x_realtime_per_core)" "$(val hpss_max_abs_diff)"
  printf '%-40s equal %s (%s of %s tasks differ, rc=%s, seed %s); GPU %s vs CPU %s tasks/s (%sx)\n' "match rescoring: equal / tasks/s GPU vs CPU" "$(mval match_equal)" "$(mval match_differing_tasks)" "$(mval match_tasks)" "${r[match_rc]}" "$(mval seed)" "$(mval match_gpu_tasks_per_s)" "$(mval match_cpu_tasks_per_s)" "$(mval match_gpu_over_cpu)"
  printf '%-40s GPU %s vs CPU %s (one CPU thread)\n' "match rescoring: candidate-items/s" "$(mval match_gpu_items_per_s)" "$(mval match_cpu_items_per_s)"
  printf '%-40s %s, own CUDA stream %s; model %s\n' "torch runner (device torch)" "${r[runner]}" "${r[runner_stream]:-?}" "${r[model]}"
  printf '%-40s unbatched %s, cross-song %s\n' "separation, demucs-like on cuda:0" "$(sep '^unbatched')" "$(sep '^cross-song')"
  printf '%-40s %s\n' "separation ratio" "$(grep -m1 '^ratio' "$out/separation.log" 2>/dev/null)"
  printf '%-40s 3-min song %s MiB device / %s MB host, 20-min song %s MiB / %s MB\n' "separation memory (batch 8)" "${r[mem180_peak_mib]:-?}" "${r[mem180_rss]:-?}" "${r[mem1200_peak_mib]:-?}" "${r[mem1200_rss]:-?}"
  printf '%-40s tests %s, bench %s, match %s, separation %s\n' "device busy fraction" "${r[tests_busy]:-?}" "${r[bench_busy]:-?}" "${r[match_busy]:-?}" "${r[sep_busy]:-?}"
  printf '%-40s tests %s, bench %s, match %s, separation %s MiB\n' "peak device memory" "${r[tests_peak_mib]:-?}" "${r[bench_peak_mib]:-?}" "${r[match_peak_mib]:-?}" "${r[sep_peak_mib]:-?}"
} | tee -a "$out/table.txt"
