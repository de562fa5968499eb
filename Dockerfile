# syntax=docker/dockerfile:1
# yesod-worker for development: CPU only, Debian 12 packages (libtorch-dev is the CPU build).
#
#   docker build -t yesod-worker:dev .
#   docker run -e DATABASE_URL=postgresql://… yesod-worker:dev
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libpqxx-dev libpq-dev libsndfile1-dev libfftw3-dev \
      libavformat-dev libavcodec-dev libavutil-dev libswresample-dev \
      libtag1-dev libebur128-dev libcurl4-openssl-dev libssl-dev \
      libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev libtorch-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DYW_CUDA=OFF -DYW_BUILD_TESTS=OFF \
    && cmake --build build -j"$(nproc)" \
    && cmake --install build --prefix /opt/yesod-worker

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# libtorch1.13 takes any libblas.so.3, and without a choice apt installs the reference BLAS,
# whose single-threaded sgemm made a 3-minute htdemucs separation take 52 minutes (OpenBLAS: 4).
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates curl libpqxx-6.4 libpq5 libsndfile1 libfftw3-single3 \
      libavformat59 libavcodec59 libavutil57 libswresample4 \
      libtag1v5 libebur128-1 libcurl4 libfmt9 libtorch1.13 libopenblas0-pthread \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home yesod
COPY --from=build /opt/yesod-worker /opt/yesod-worker
ENV PATH=/opt/yesod-worker/bin:$PATH \
    YW_METRICS_ADDR=0.0.0.0:9464 \
    YW_OUTPUT_URI=file:///app/data/outputs
WORKDIR /app
USER yesod
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["yesod-worker", "run", "--device", "cpu"]
