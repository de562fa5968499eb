// The batched CUDA twin's core rate for scripts/bench/fingerprint.sh (CUDA builds only): the CPU
// twin's rate per core, then audio seconds per wall second of fingerprint_batch_cuda with all
// signals in one call, and whether its items equal the CPU twin's.
//
//   yw_fingerprint_bench_cuda [--seconds S] [--signals N] [--repeat R]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_signal.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace {

using yw::bench::make_signal;
using yw::bench::thread_cpu_seconds;

}  // namespace

int main(int argc, char** argv) {
  double seconds = 180.0;
  int signals = 20;
  int repeat = 1;
  const bool cuda = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--signals" && i + 1 < argc) {
      signals = std::atoi(argv[++i]);
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: yw_fingerprint_bench_cuda [--seconds S] [--signals N] [--repeat R]\n");
      return 2;
    }
  }
  const auto n = static_cast<std::size_t>(seconds * 11025.0);
  std::vector<std::vector<std::int16_t>> pcm;
  for (int i = 0; i < signals; ++i)
    pcm.push_back(make_signal(n, static_cast<unsigned>(i + 1)));
  std::vector<std::span<const std::int16_t>> spans(pcm.begin(), pcm.end());
  const double audio = seconds * signals * repeat;

  std::size_t items = 0;
  const double c0 = thread_cpu_seconds();
  for (int r = 0; r < repeat; ++r)
    for (const auto& v : yw::fingerprint_batch_cpu(spans))
      items += v.size();
  const double cpu = thread_cpu_seconds() - c0;
  std::printf("core_cpu: %.0f audio s in %.3f CPU s = %.0fx real time per core (%zu items)\n",
              audio, cpu, audio / cpu, items);

  if (cuda) {
    const auto inv = yw::cuda_inventory();
    if (inv.count == 0) {
      std::printf("core_cuda: skipped (no CUDA device: %s)\n", inv.reason.c_str());
      return 0;
    }
    std::vector<yw::MonoSignal> in;
    for (const auto& p : pcm)
      in.push_back({p.data(), p.size()});
    const auto cpu_items = yw::fingerprint_batch_cpu(spans);
    yw::fingerprint_batch_cuda(in, 0);  // warm-up: context, plan, module load
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<std::uint32_t>> gpu_items;
    for (int r = 0; r < repeat; ++r)
      gpu_items = yw::fingerprint_batch_cuda(in, 0);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "core_cuda: %.0f audio s in %.3f wall s = %.0fx real time (%d signals per call), "
        "items %s the CPU twin's\n",
        audio, wall, audio / wall, signals,
        gpu_items == cpu_items ? "identical to" : "DIFFERENT from");
  }
  return 0;
}
