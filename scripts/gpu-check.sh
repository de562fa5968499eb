#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (an H200): builds for sm_90 against the device's
# own libtorch, runs the `gpu` tests and the fingerprint, separation and pipeline benchmarks on
# cuda:0, and prints a short table last. Meant to finish within 8 minutes.
#
# Here (a machine with Debian's registry):   scripts/gpu-check.sh --fetch-debs
#   downloads the Debian 12 libraries the device image lacks into .gpu-debs/ (git-ignored).
# There (carry .gpu-debs):                    scripts/gpu-check.sh
#   unpacks them into a private prefix (never into /), configures, builds, tests, benchmarks.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
debdir="$root/.gpu-debs"
out=${OUT:-$root/build/gpu-check}
mkdir -p "$out"

GPU_DEBS=(
  libpqxx-dev libpqxx-6.4 libpq-dev libpq5
  libsndfile1-dev libsndfile1 libflac12 libvorbis0a libvorbisenc2 libogg0 libopus0 libmpg123-0 libmp3lame0
  libfftw3-dev libfftw3-single3 libfftw3-double3
  libavformat-dev libavformat59 libavcodec-dev libavcodec59 libavutil-dev libavutil57
  libswresample-dev libswresample4
  libtag1-dev libtag1v5 libtag1v5-vanilla libebur128-dev libebur128-1
  libcurl4-openssl-dev libcurl4
  libcli11-dev libfmt-dev libfmt9 nlohmann-json3-dev libgtest-dev libgmock-dev
  libchromaprint-tools libchromaprint1 sox libsox3
)

if [ "${1:-}" = --fetch-debs ]; then
  mkdir -p "$debdir"
  grep -qx '/.gpu-debs/' .git/info/exclude 2>/dev/null || echo '/.gpu-debs/' >>.git/info/exclude
  (cd "$debdir" && apt-get download "${GPU_DEBS[@]}")
  du -sh "$debdir"
  exit 0
fi

t0=$(date +%s)
stamp() { printf '[%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
declare -A result

prefix=/tmp/yw-prefix
if [ -d "$debdir" ]; then
  stamp "unpacking $(ls "$debdir" | wc -l) .deb files into $prefix"
  mkdir -p "$prefix"
  for f in "$debdir"/*.deb; do dpkg -x "$f" "$prefix"; done
fi
export PKG_CONFIG_SYSROOT_DIR=$prefix
export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig
export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PATH=$prefix/usr/bin:$PATH:/usr/local/cuda/bin
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

stamp "configure (sm_90, torch from $torch_prefix)"
cmake -S . -B build/h200 -G Ninja -DCMAKE_BUILD_TYPE=Release -DYW_CUDA=ON -DYW_TORCH=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DYW_WERROR=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr;$prefix/usr/lib/x86_64-linux-gnu/cmake" \
  >"$out/configure.log" 2>&1 && result[configure]=ok || { result[configure]=FAILED; tail -30 "$out/configure.log"; }
# Whether the torch runner was built on its own CUDA stream (a CUDA libtorch, c10_cuda found) or
# with the CPU-libtorch stand-in that synchronises the whole device.
result[torch_stream]=$(grep -o 'own CUDA stream: [A-Z]*' "$out/configure.log" | awk '{print $NF}')
if [ "${result[configure]}" = ok ]; then
  stamp "build"
  cmake --build build/h200 -j "$(nproc)" >"$out/build.log" 2>&1 && result[build]=ok || { result[build]=FAILED; grep -E 'error|FAILED' "$out/build.log" | head -30; }
fi
if [ "${result[build]:-}" = ok ]; then
  stamp "gpu tests"
  ctest --test-dir build/h200 -L gpu --output-on-failure -j 4 >"$out/gpu-tests.log" 2>&1 \
    && result[gpu_tests]=ok || result[gpu_tests]=FAILED
  result[gpu_tests]+=" ($(grep -Eo '[0-9]+% tests passed.*' "$out/gpu-tests.log" | tail -1))"
  export YW_BENCH_DEVICE=cuda:0 YW_BUILD_DIR=$root/build/h200
  for b in fingerprint separation pipeline; do
    stamp "bench $b"
    if timeout 150 scripts/bench.sh "$b" >"$out/bench-$b.log" 2>&1; then result[bench_$b]=ok; else result[bench_$b]="FAILED/timeout"; fi
  done
fi

echo
echo "=== gpu-check summary ($(cat "$out/gpu.txt" 2>/dev/null)) ==="
printf '%-22s %s\n' step result
for k in configure torch_stream build gpu_tests bench_fingerprint bench_separation bench_pipeline; do
  printf '%-22s %s\n' "$k" "${result[$k]:-skipped}"
done
for b in fingerprint separation pipeline; do
  [ -f "$out/bench-$b.log" ] && { echo "--- $b"; grep -iE 'ratio|x real|busy|jobs/s|audio s/s' "$out/bench-$b.log" | tail -6; }
done
