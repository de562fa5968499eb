// The device check's benchmark (scripts/gpu-check.sh runs it on a lent GPU): prints one
// `key value` line per measurement, which the script turns into its closing table.
//   fingerprint: CPU twin rate per core; the CUDA twin with every signal in one call (batched)
//   and one signal per call (unbatched), in audio seconds per wall second; whether its items
//   equal the CPU twin's.
//   hpss: the built-in separator's twins on stereo 44.1 kHz audio, real-time factors and the
//   largest difference.
// Needs only the core, the CUDA twins and the CUDA runtime (no decoder, no files).
//
//   yw_gpu_check_bench [--signals N] [--seconds S] [--hpss-seconds S]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench_signal.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/cuda/hpss_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/hpss.hpp"

namespace {

using yw::bench::make_signal;
using yw::bench::thread_cpu_seconds;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  int signals = 32;
  double seconds = 180.0;
  double hpss_seconds = 120.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--signals") {
      signals = std::atoi(argv[i + 1]);
    } else if (a == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (a == "--hpss-seconds") {
      hpss_seconds = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: yw_gpu_check_bench [--signals N] [--seconds S] "
                   "[--hpss-seconds S]\n");
      return 2;
    }
  }
  const auto inv = yw::cuda_inventory();
  if (inv.count == 0) {
    std::printf("device none (%s)\n", inv.reason.c_str());
    return 3;
  }
  std::printf("device %s\n", inv.describe(0).c_str());

  // ---- fingerprint
  const auto n = static_cast<std::size_t>(seconds * 11025.0);
  std::vector<std::vector<std::int16_t>> pcm;
  for (int i = 0; i < signals; ++i)
    pcm.push_back(make_signal(n, static_cast<unsigned>(i + 1)));
  const double audio = seconds * signals;
  // The CPU reference, one thread per signal; the rate is CPU seconds per thread.
  std::vector<std::vector<std::uint32_t>> cpu_items(pcm.size());
  std::vector<double> cpu_seconds(pcm.size());
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < pcm.size(); ++i)
      threads.emplace_back([&, i] {
        const double c0 = thread_cpu_seconds();
        cpu_items[i] = yw::fingerprint_cpu(pcm[i]);
        cpu_seconds[i] = thread_cpu_seconds() - c0;
      });
    for (auto& t : threads)
      t.join();
  }
  double cpu_total = 0.0;
  for (const double s : cpu_seconds)
    cpu_total += s;
  std::printf("fp_cpu_x_realtime_per_core %.0f\n", audio / cpu_total);

  std::vector<yw::MonoSignal> in;
  for (const auto& p : pcm)
    in.push_back({p.data(), p.size()});
  yw::fingerprint_batch_cuda(in, 0);  // warm-up: context, plans, buffers
  double t0 = now();
  const auto batched = yw::fingerprint_batch_cuda(in, 0);
  const double batched_wall = now() - t0;
  t0 = now();
  std::vector<std::vector<std::uint32_t>> unbatched;
  for (const auto& s : in)
    unbatched.push_back(yw::fingerprint_batch_cuda({s}, 0).front());
  const double unbatched_wall = now() - t0;
  std::size_t items = 0, differing = 0;
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    const auto& want = cpu_items[i];
    items += want.size();
    for (std::size_t k = 0; k < want.size(); ++k) {
      const bool same = k < batched[i].size() && batched[i][k] == want[k] &&
                        k < unbatched[i].size() && unbatched[i][k] == want[k];
      differing += same ? 0 : 1;
    }
    if (batched[i].size() != want.size() || unbatched[i].size() != want.size()) ++differing;
  }
  std::printf("fp_twin_items %zu\n", items);
  std::printf("fp_twin_differing_items %zu\n", differing);
  std::printf("fp_batched_items_per_s %.0f\n", static_cast<double>(items) / batched_wall);
  std::printf("fp_batched_x_realtime %.0f\n", audio / batched_wall);
  std::printf("fp_unbatched_x_realtime %.0f\n", audio / unbatched_wall);
  std::printf("fp_batched_over_unbatched %.2f\n", unbatched_wall / batched_wall);

  // ---- hpss, stereo: one call per channel, as the separator makes them
  const auto hn = static_cast<std::int64_t>(hpss_seconds * 44100.0);
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.2f);
  std::vector<float> x(static_cast<std::size_t>(hn));
  for (std::int64_t i = 0; i < hn; ++i)
    x[static_cast<std::size_t>(i)] = d(rng) + 0.3f * std::sin(0.05f * static_cast<float>(i));
  const yw::HpssConfig cfg;
  std::vector<float> hc(x.size()), pc(x.size()), hg(x.size()), pg(x.size());
  double c0 = thread_cpu_seconds();
  yw::hpss_cpu(cfg, x.data(), hn, hc.data(), pc.data());
  const double hpss_cpu = thread_cpu_seconds() - c0;
  yw::hpss_cuda(cfg, x.data(), hn, hg.data(), pg.data(), 0);  // warm-up
  t0 = now();
  for (int channel = 0; channel < 2; ++channel)
    yw::hpss_cuda(cfg, x.data(), hn, hg.data(), pg.data(), 0);
  const double hpss_gpu = now() - t0;
  float max_abs = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i)
    max_abs = std::max({max_abs, std::abs(hc[i] - hg[i]), std::abs(pc[i] - pg[i])});
  std::printf("hpss_cpu_x_realtime_per_core %.1f\n", hpss_seconds / hpss_cpu);
  std::printf("hpss_cuda_x_realtime_stereo %.1f\n", hpss_seconds / hpss_gpu);
  std::printf("hpss_max_abs_diff %.3g\n", static_cast<double>(max_abs));
  return 0;
}
