#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds both configurations (CUDA
# compiled in when nvcc is present, and CPU-only), starts a throwaway PostgreSQL, runs every
# test tier with ctest, and stops the server whatever happens. Exit status non-zero on any
# failure. Safe to rerun: builds are incremental (ccache), the server is new each time.
#
# Environment: YW_JOBS (parallel jobs, default nproc), YW_CONFIGS ("cuda cpu" by default),
# YW_TEST_LABELS (ctest -L regex, default every label), YW_BUILD_TYPE (Release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=lib/pg.sh
source scripts/lib/pg.sh

jobs=${YW_JOBS:-$(nproc)}
build_type=${YW_BUILD_TYPE:-Release}
started=$(date +%s)
log() { printf '==> [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }

log "dependencies"
yw_install_deps
yw_install_npm "$root"
export PATH="$PATH:/usr/local/cuda/bin"

# cuda: CUDA compiled in (needs nvcc, no GPU); cpu: -DYW_CUDA=OFF; asan: CPU-only Debug with
# AddressSanitizer and UndefinedBehaviorSanitizer (its unit and db tests run); fuzz: clang +
# libFuzzer targets with ASan/UBSan (only the decoder and the parsers are built there).
configs=${YW_CONFIGS:-}
if [ -z "$configs" ]; then
  if command -v nvcc >/dev/null 2>&1; then configs="cuda cpu asan fuzz"; else
    log "nvcc not found: the CUDA configuration is skipped"
    configs="cpu asan fuzz"
  fi
fi

# v3: -march=x86-64-v3 (FMA in the target) builds only the core's fpcalc oracle tests, which
# prove that -ffp-contract=off keeps the CPU twins fpcalc-identical (kernels/CMakeLists.txt).
if [ -z "${YW_CONFIGS:-}" ]; then
  if [ "$(grep -owE 'avx2|bmi2|fma|movbe' /proc/cpuinfo | sort -u | wc -l)" = 4 ]; then
    configs="$configs v3"
  else
    log "this CPU has no x86-64-v3: the v3 configuration is skipped"
  fi
fi

mkdir -p build
for c in $configs; do
  dir="build/test-$c"
  log "configure + build: $c"
  case $c in
    cuda) flags=(-DYW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90" -DYW_WERROR=ON) ;;
    cpu) flags=(-DYW_CUDA=OFF -DYW_WERROR=ON) ;;
    asan) flags=(-DYW_CUDA=OFF -DYW_WERROR=ON -DYW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    fuzz) flags=(-DYW_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
    v3) flags=(-DYW_CUDA=OFF -DYW_TORCH=OFF -DYW_WERROR=ON -DCMAKE_CXX_FLAGS=-march=x86-64-v3) ;;
    *) echo "unknown configuration '$c'" >&2; exit 2 ;;
  esac
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${flags[@]}" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; exit 1; }
  targets=()
  [ "$c" = v3 ] && targets=(--target yw_fingerprint_oracle_tests)
  cmake --build "$dir" -j "$jobs" "${targets[@]}"
done

pgdir=$(mktemp -d /tmp/yw-test-pg.XXXXXX)
chmod 755 "$pgdir"
cleanup() {
  yw_pg_stop "$pgdir/pg" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
log "PostgreSQL (throwaway, $pgdir)"
YW_PG_FSYNC=off yw_pg_start "$pgdir/pg"
export TEST_DATABASE_URL="$YW_PG_URL"
export PGBOSS_CLI="$root/scripts/pgboss/node_modules/.bin/pg-boss"

passed=0
failed=0
skipped=0
status=0
for c in $configs; do
  dir="build/test-$c"
  log "ctest: $c"
  args=(--test-dir "$dir" --output-on-failure -j "$jobs" --no-tests=error)
  if [ -n "${YW_TEST_LABELS:-}" ]; then
    args+=(-L "$YW_TEST_LABELS")
  elif [ "$c" = asan ]; then
    args+=(-L 'unit|db')
  elif [ "$c" = v3 ]; then
    args+=(-R '^Matrix/FpcalcIdentical|^cpu_twins_have_no_fused_multiply_add$')
  fi
  set +e
  ctest "${args[@]}" 2>&1 | tee "$dir.ctest.log"
  rc=${PIPESTATUS[0]}
  set -e
  summary=$(grep -E '^[0-9]+% tests passed' "$dir.ctest.log" | tail -n 1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
  bad=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
  # GPU tests without a device are reported by ctest as "(Skipped)", with gtest's reason above.
  skip=$(grep -cE '^[[:space:]]+[0-9]+ - .* \(Skipped\)$' "$dir.ctest.log" || true)
  if [[ "$total" =~ ^[0-9]+$ && "$bad" =~ ^[0-9]+$ ]]; then
    passed=$((passed + total - bad - skip))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
  fi
  [ "$rc" = 0 ] || status=1
done

log "done: configurations [$configs]"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
