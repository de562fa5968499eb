# shellcheck shell=bash
# What a fresh Debian 12 machine needs, installed only when missing (idempotent).
# One package per line; add what your area needs here.
YW_APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev
  libpqxx-dev libpq-dev
  libsndfile1-dev libfftw3-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libtag1-dev libebur128-dev libcurl4-openssl-dev libssl-dev
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libtorch-dev
  postgresql pgbouncer
  nodejs npm
  libchromaprint-tools ffmpeg sox
  hyperrogue-music planetblupi-music-ogg nexuiz-music unzip
  prometheus
  fluidsynth fluid-soundfont-gm
  time
  hyperrogue-music planetblupi-music-ogg
)

yw_install_deps() {
  local missing=() p
  for p in "${YW_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node may come from elsewhere than Debian (it does on these machines): accept any node >= 20.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}")
    missing=("${missing[@]/npm}")
  fi
  local want=()
  for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
  if [ ${#want[@]} -gt 0 ]; then
    echo "==> installing: ${want[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}"
  fi
}

# npm packages from the committed lockfile (pg-boss 12.38.0 and its CLI).
yw_install_npm() {
  local dir="$1/scripts/pgboss"
  if [ ! -x "$dir/node_modules/.bin/pg-boss" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "==> npm ci (pg-boss)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
