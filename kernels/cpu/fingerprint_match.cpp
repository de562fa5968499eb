// acoustid_compare2 in two halves (yw/kernels/fingerprint_match.hpp), written from the
// description in docs chromaprint.md §1.15 / fingerprint-search.md §1.3. The float and double
// steps follow the C original's types (float score and diversity, double intermediate
// arithmetic), so the returned float is the same value, bit for bit.
#include "yw/kernels/fingerprint_match.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "yw/common/error.hpp"

namespace yw {
namespace {

constexpr int kKeyBits = 14;
constexpr std::size_t kKeys = std::size_t{1} << kKeyBits;  // 16384
// The original's u16 position tables cannot address more items than this.
constexpr std::size_t kMaxItems = 65535;

inline std::uint32_t key14(std::uint32_t item) {
  return item >> (32 - kKeyBits);
}

}  // namespace

Compare2Alignment compare2_align(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b,
                                 int max_offset) {
  a = a.first(std::min(a.size(), kMaxItems));
  b = b.first(std::min(b.size(), kMaxItems));
  Compare2Alignment al;
  const int asize = static_cast<int>(a.size());
  const int bsize = static_cast<int>(b.size());
  // Last position of each key; 0 doubles as "absent", so a key seen only at index 0 never votes.
  std::vector<std::uint16_t> apos(kKeys, 0), bpos(kKeys, 0);
  for (int i = 0; i < asize; ++i)
    apos[key14(a[static_cast<std::size_t>(i)])] = static_cast<std::uint16_t>(i);
  for (int i = 0; i < bsize; ++i)
    bpos[key14(b[static_cast<std::size_t>(i)])] = static_cast<std::uint16_t>(i);

  std::vector<std::uint16_t> counts(static_cast<std::size_t>(asize + bsize + 1), 0);
  int topcount = 0, topoffset = 0;
  // The original's loop stops at key 16382 (it runs to the 14-bit mask, exclusive).
  for (std::size_t k = 0; k + 1 < kKeys; ++k) {
    if (apos[k] == 0 || bpos[k] == 0) continue;
    const int offset = static_cast<int>(apos[k]) - static_cast<int>(bpos[k]);
    if (max_offset != 0 && (offset < -max_offset || offset > max_offset)) continue;
    auto& c = counts[static_cast<std::size_t>(offset + bsize)];
    ++c;
    if (c > topcount) {  // the first offset to reach the top count wins
      topcount = c;
      topoffset = offset;
    }
  }
  al.offset = topoffset;
  al.votes = topcount;
  al.minsize = static_cast<std::size_t>(std::min(asize, bsize)) & ~std::size_t{1};
  int alen = asize, blen = bsize;
  if (topoffset < 0) {
    al.b_start = static_cast<std::size_t>(std::min(-topoffset, bsize));
    blen = std::max(0, bsize + topoffset);
  } else {
    al.a_start = static_cast<std::size_t>(std::min(topoffset, asize));
    alen = std::max(0, asize - topoffset);
  }
  al.pairs = static_cast<std::size_t>(std::min(alen, blen) / 2);
  if (al.pairs == 0 || al.minsize == 0) return al;  // score 0

  auto distinct = [](std::span<const std::uint32_t> x) {
    std::vector<std::uint8_t> seen(kKeys, 0);
    int n = 0;
    for (const auto item : x) {
      auto& s = seen[key14(item)];
      if (!s) {
        s = 1;
        ++n;
      }
    }
    return n;
  };
  const int auniq = distinct(a.subspan(al.a_start, static_cast<std::size_t>(alen)));
  const int buniq = distinct(b.subspan(al.b_start, static_cast<std::size_t>(blen)));
  // float / int, + 0.5 in double, min with 1.0 in double, stored as float: as the original.
  const double da = std::min(1.0, static_cast<float>(auniq + 10) / static_cast<float>(alen) + 0.5);
  const double db = std::min(1.0, static_cast<float>(buniq + 10) / static_cast<float>(blen) + 0.5);
  al.diversity = static_cast<float>(std::min(da, db));
  if (topcount < std::max(auniq, buniq) * 0.02) return al;  // chance alignment: score 0
  al.rejected = false;
  return al;
}

float compare2_score(const Compare2Alignment& al, std::uint64_t bit_errors) {
  if (al.rejected) return 0.0f;
  const double size = static_cast<double>(al.pairs);
  // The original counts bits in an int and converts it to float before the division.
  const auto errors = static_cast<float>(static_cast<int>(bit_errors));
  float score = static_cast<float>((size * 2.0 / static_cast<double>(al.minsize)) *
                                   (1.0 - 2.0 * static_cast<double>(errors) / (64.0 * size)));
  if (score < 0.0f) score = 0.0f;
  if (al.diversity < 1.0f) {
    score = static_cast<float>(
        std::pow(static_cast<double>(score), 8.0 - 7.0 * static_cast<double>(al.diversity)));
  }
  return score;
}

double compare2_ber(const Compare2Alignment& al, std::uint64_t bit_errors) {
  if (al.pairs == 0) return 0.0;
  return static_cast<double>(bit_errors) / (64.0 * static_cast<double>(al.pairs));
}

void check_bit_error_tasks(std::size_t query_size,
                           const std::vector<std::span<const std::uint32_t>>& candidates,
                           std::span<const BitErrorTask> tasks) {
  for (const auto& t : tasks) {
    YW_CHECK(t.candidate < candidates.size(), "bit-error task names candidate {} of {}",
             t.candidate, candidates.size());
    YW_CHECK(std::size_t{t.query_start} + t.count <= query_size &&
                 std::size_t{t.cand_start} + t.count <= candidates[t.candidate].size(),
             "bit-error task [{}+{}] / [{}+{}] runs past its arrays ({} / {})", t.query_start,
             t.count, t.cand_start, t.count, query_size, candidates[t.candidate].size());
  }
}

std::vector<std::uint64_t> bit_errors_batch_cpu(
    std::span<const std::uint32_t> query,
    const std::vector<std::span<const std::uint32_t>>& candidates,
    std::span<const BitErrorTask> tasks) {
  check_bit_error_tasks(query.size(), candidates, tasks);
  std::vector<std::uint64_t> out(tasks.size(), 0);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto& t = tasks[i];
    const std::uint32_t* q = query.data() + t.query_start;
    const std::uint32_t* c = candidates[t.candidate].data() + t.cand_start;
    std::uint64_t n = 0;
    for (std::uint32_t k = 0; k < t.count; ++k)
      n += static_cast<std::uint64_t>(std::popcount(q[k] ^ c[k]));
    out[i] = n;
  }
  return out;
}

Compare2Result compare2(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b,
                        int max_offset) {
  Compare2Result r;
  r.alignment = compare2_align(a, b, max_offset);
  if (!r.alignment.rejected) {
    const BitErrorTask task{0, static_cast<std::uint32_t>(r.alignment.a_start),
                            static_cast<std::uint32_t>(r.alignment.b_start),
                            static_cast<std::uint32_t>(r.alignment.items())};
    // b is the query, a the (single) candidate.
    const std::vector<std::span<const std::uint32_t>> cands{a};
    r.bit_errors = bit_errors_batch_cpu(b, cands, std::span(&task, 1)).front();
  }
  r.score = compare2_score(r.alignment, r.bit_errors);
  return r;
}

std::size_t unique_items(std::span<const std::uint32_t> items) {
  std::vector<std::uint32_t> v;
  v.reserve(items.size());
  for (const auto item : items)
    if (item != 0x256DF977u) v.push_back(item);  // kChromaprintSilenceItem
  std::sort(v.begin(), v.end());
  return static_cast<std::size_t>(std::unique(v.begin(), v.end()) - v.begin());
}

bool has_unique_items(std::span<const std::uint32_t> items, std::size_t n) {
  if (n == 0) return true;
  // Open addressing over 4n slots (power of two); 0 is stored out of band.
  std::size_t slots = 4;
  while (slots < 4 * n)
    slots <<= 1;
  std::vector<std::uint32_t> table(slots, 0);
  bool zero = false;
  std::size_t seen = 0;
  for (const auto item : items) {
    if (item == 0x256DF977u) continue;  // kChromaprintSilenceItem
    if (item == 0) {
      if (!zero) {
        zero = true;
        if (++seen >= n) return true;
      }
      continue;
    }
    std::size_t h = (item * 0x9E3779B1u) & (slots - 1);
    while (table[h] != 0 && table[h] != item)
      h = (h + 1) & (slots - 1);
    if (table[h] == 0) {
      table[h] = item;
      if (++seen >= n) return true;
    }
  }
  return false;
}

}  // namespace yw
