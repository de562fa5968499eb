#pragma once
// Uniform random 16-bit samples in [-amplitude, amplitude], reproducible from `seed`.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace yw::test {

inline std::vector<std::int16_t> random_pcm(std::size_t n, unsigned seed, int amplitude = 12000) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-amplitude, amplitude);
  std::vector<std::int16_t> out(n);
  for (auto& s : out)
    s = static_cast<std::int16_t>(dist(rng));
  return out;
}

}  // namespace yw::test
