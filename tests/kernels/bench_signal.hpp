#pragma once
// Shared by the fingerprint and device-check benchmarks: a music-like 11025 Hz test signal and
// the calling thread's CPU time.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace yw::bench {

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A few drifting partials plus noise, so every stage does real work.
inline std::vector<std::int16_t> make_signal(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 600.0);
  std::vector<std::int16_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 11025.0;
    const double v = 5000.0 * std::sin(2 * 3.14159265 * (220.0 + 30.0 * std::sin(t * 0.3)) * t) +
                     3000.0 * std::sin(2 * 3.14159265 * 329.6 * t * (1.0 + 0.001 * seed)) +
                     noise(rng);
    out[i] = static_cast<std::int16_t>(std::max(-32768.0, std::min(32767.0, v)));
  }
  return out;
}

}  // namespace yw::bench
