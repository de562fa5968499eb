// The fingerprint core alone, for scripts/bench/fingerprint.sh: int16 mono 11025 Hz in (already
// at fpcalc's rate, so no decoding or resampling), items out. Prints audio seconds per CPU second
// of the one thread that ran it ("x real time per core"). Built with CUDA,
// yw_fingerprint_bench_cuda (fingerprint_bench_cuda.cpp) adds the batched CUDA twin's rate.
//
//   yw_fingerprint_bench [--seconds S] [--signals N] [--repeat R]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_signal.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace {

using yw::bench::make_signal;
using yw::bench::thread_cpu_seconds;

}  // namespace

int main(int argc, char** argv) {
  double seconds = 180.0;
  int signals = 20;
  int repeat = 1;
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
                   "usage: yw_fingerprint_bench [--seconds S] [--signals N] [--repeat R]\n");
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

  return 0;
}
