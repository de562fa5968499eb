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

  // song() at scale (benches: a million fingerprints): each bit flips with probability 1/4
  // between neighbours (the AND of two splitmix64 words), ~2 ns per item.
  std::vector<std::uint32_t> fast_song(std::size_t n) {
    std::vector<std::uint32_t> v(n);
    std::uint32_t x = static_cast<std::uint32_t>(next());
    for (std::size_t i = 0; i < n; i += 2) {
      const std::uint64_t m = next() & next();
      x ^= static_cast<std::uint32_t>(m);
      v[i] = x;
      if (i + 1 < n) {
        x ^= static_cast<std::uint32_t>(m >> 32);
        v[i + 1] = x;
      }
    }
    return v;
  }
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::mt19937_64 rng_;
  std::uint64_t state_ = 0x1234567ull;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

}  // namespace yw::test
