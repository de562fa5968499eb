#pragma once
// A second, deliberately plain acoustid_compare2, written for the tests straight from the
// description in docs chromaprint.md §1.15 (no split into align/count/score, no shared code with
// kernels/cpu/fingerprint_match.cpp): std::map tables, one item at a time, the C original's
// int/float/double steps. The production path must return the same float.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

namespace yw::test {

inline float reference_compare2(std::vector<std::uint32_t> a, std::vector<std::uint32_t> b,
                                int maxoffset) {
  if (a.size() > 65535) a.resize(65535);
  if (b.size() > 65535) b.resize(65535);
  auto key = [](std::uint32_t x) { return static_cast<int>(x >> 18); };
  std::map<int, int> alast, blast;  // key -> last index
  for (int i = 0; i < static_cast<int>(a.size()); ++i)
    alast[key(a[static_cast<std::size_t>(i)])] = i;
  for (int i = 0; i < static_cast<int>(b.size()); ++i)
    blast[key(b[static_cast<std::size_t>(i)])] = i;
  std::map<int, int> counts;
  int topcount = 0, topoffset = 0;
  for (int k = 0; k < 16383; ++k) {  // key 16383 is never looked at
    const auto ia = alast.find(k), ib = blast.find(k);
    if (ia == alast.end() || ib == blast.end()) continue;
    if (ia->second == 0 || ib->second == 0) continue;  // position 0 reads as absent
    const int off = ia->second - ib->second;
    if (maxoffset != 0 && std::abs(off) > maxoffset) continue;
    const int c = ++counts[off];
    if (c > topcount) {
      topcount = c;
      topoffset = off;
    }
  }
  int asize = static_cast<int>(a.size()), bsize = static_cast<int>(b.size());
  const int minsize = std::min(asize, bsize) & ~1;
  int ashift = 0, bshift = 0;
  if (topoffset < 0) {
    bshift = -topoffset;
    bsize = std::max(0, bsize + topoffset);
  } else {
    ashift = topoffset;
    asize = std::max(0, asize - topoffset);
  }
  const int size = std::min(asize, bsize) / 2;
  if (size == 0 || minsize == 0) return 0.0f;
  std::set<int> au, bu;
  for (int i = 0; i < asize; ++i)
    au.insert(key(a[static_cast<std::size_t>(ashift + i)]));
  for (int i = 0; i < bsize; ++i)
    bu.insert(key(b[static_cast<std::size_t>(bshift + i)]));
  const int auniq = static_cast<int>(au.size()), buniq = static_cast<int>(bu.size());
  const float diversity =
      static_cast<float>(std::min(std::min(1.0, static_cast<float>(auniq + 10) / asize + 0.5),
                                  std::min(1.0, static_cast<float>(buniq + 10) / bsize + 0.5)));
  if (topcount < std::max(auniq, buniq) * 0.02) return 0.0f;
  int biterror = 0;
  for (int i = 0; i < 2 * size; ++i)
    biterror += std::popcount(a[static_cast<std::size_t>(ashift + i)] ^
                              b[static_cast<std::size_t>(bshift + i)]);
  float score = static_cast<float>((size * 2.0 / minsize) *
                                   (1.0 - 2.0 * static_cast<float>(biterror) / (64 * size)));
  if (score < 0.0f) score = 0.0f;
  if (diversity < 1.0f) score = static_cast<float>(std::pow(score, 8.0 - 7.0 * diversity));
  return score;
}

}  // namespace yw::test
