#pragma once
// Synthetic fingerprints with the statistics of real ones (tests and the match bench): an item
// keeps most bits of the previous one (real items change slowly: each bit flips with probability
// ~0.15-0.25 between neighbours, so keys repeat within a song), and a lossy re-encode flips each
// bit independently at a bit error rate of a few per cent (fingerprint-search.md §5: median BER
// 2.7 % for MP3 128 k, 5.9 % for 32 k mono).
#include <cstdint>
#include <random>
#include <vector>

namespace yw::test {

class SyntheticFingerprints {
 public:
  explicit SyntheticFingerprints(std::uint64_t seed) : rng_(seed) {}

  // A song's items: a slowly changing 32-bit state.
  std::vector<std::uint32_t> song(std::size_t n, double flip = 0.2) {
    std::vector<std::uint32_t> v(n);
    std::uint32_t x = static_cast<std::uint32_t>(rng_());
    for (auto& item : v) {
      x ^= mask(flip);
      item = x;
    }
    return v;
  }
  // A re-encode: every bit flipped with probability `ber`.
  std::vector<std::uint32_t> degrade(std::vector<std::uint32_t> v, double ber) {
    for (auto& item : v)
      item ^= mask(ber);
    return v;
  }
  std::uint32_t mask(double p) {
    std::uint32_t m = 0;
    for (int b = 0; b < 32; ++b)
      if (unit_(rng_) < p) m |= 1u << b;
    return m;
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

}  // namespace yw::test
