#pragma once
// Comparing Chromaprint fingerprints the way AcoustID's server does (pg_acoustid
// `acoustid_compare2`, docs chromaprint.md §1.15 and fingerprint-search.md §1.3), split in the
// two halves the worker batches separately:
//  1. compare2_align: the offset vote over the top 14 bits of each item, the shift, the
//     uniqueness/diversity terms and the 2 % vote guard. O(|a| + |b| + 16384), on the CPU.
//  2. the bit-error count over the aligned items: the CPU twin (bit_errors_batch_cpu) and the
//     CUDA twin (bit_errors_batch_cuda, yw/kernels/cuda/fingerprint_match_cuda.hpp) take many
//     (query, candidate, offset) tasks at once and return identical integers.
//  compare2_score then turns (alignment, bit errors) into the float compare2 returns, with the
//  same float/double steps as the C original, so scores are equal, not merely close.
//
// Sign convention (as compare2): `a` is the stored fingerprint, `b` the query; offset > 0 means
// the query starts `offset` items into the stored fingerprint.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "yw/kernels/fingerprint_match_task.hpp"

namespace yw {

// Seconds per item: one item per 1365 samples at 11025 Hz.
inline constexpr double kItemSeconds = 1365.0 / 11025.0;
// AcoustID's TRACK_MAX_OFFSET (80 items, ~9.9 s) and thresholds (acoustid-server const.py).
inline constexpr int kAcoustidMaxOffset = 80;
inline constexpr double kDuplicateThreshold = 0.9;
inline constexpr double kSameRecordingThreshold = 0.75;
inline constexpr double kSimilarThreshold = 0.4;

struct Compare2Alignment {
  int offset = 0;           // a's position minus b's position of the winning vote
  int votes = 0;            // votes for that offset (topcount)
  std::size_t a_start = 0;  // first aligned item of a (offset when > 0)
  std::size_t b_start = 0;  // first aligned item of b (-offset when < 0)
  std::size_t pairs = 0;    // compared item pairs: 2 * pairs items are XORed
  std::size_t minsize = 0;  // shorter original length, rounded down to even
  float diversity = 1.0f;
  // True when compare2 returns 0 without counting bits: nothing to compare, or fewer votes than
  // 2 % of the distinct keys (chance alignment).
  bool rejected = true;
  std::size_t items() const { return 2 * pairs; }
};

// Step 1 of compare2 (max_offset 0 = unlimited). Positions are kept as u16 as in pg_acoustid, so
// fingerprints of more than 65535 items (~2.25 h) align as the original does (wrapping).
Compare2Alignment compare2_align(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b,
                                 int max_offset);
// Step 3: compare2's score from the alignment and Σ popcount(a ⊕ b) over its 2·pairs items.
float compare2_score(const Compare2Alignment& al, std::uint64_t bit_errors);
// Bit error rate of an aligned comparison (0 when nothing was compared).
double compare2_ber(const Compare2Alignment& al, std::uint64_t bit_errors);

// The CPU twin: out[i] = Σ popcount over task i. Throws yw::Error on a task outside its arrays.
std::vector<std::uint64_t> bit_errors_batch_cpu(
    std::span<const std::uint32_t> query,
    const std::vector<std::span<const std::uint32_t>>& candidates,
    std::span<const BitErrorTask> tasks);
// Checks every task against the arrays' lengths (both twins call it before counting).
void check_bit_error_tasks(std::size_t query_size,
                           const std::vector<std::span<const std::uint32_t>>& candidates,
                           std::span<const BitErrorTask> tasks);

// The whole acoustid_compare2(a, b, max_offset) on the CPU (align, count, score).
struct Compare2Result {
  Compare2Alignment alignment;
  std::uint64_t bit_errors = 0;
  float score = 0.0f;
};
Compare2Result compare2(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b,
                        int max_offset);

// Distinct non-silence items of a fingerprint: AcoustID stores only fingerprints with at least
// kMinUniqueItems of them (FINGERPRINT_MIN_UNIQUE_ITEMS), which keeps silence, near-silence and
// loops out of the index.
inline constexpr std::size_t kMinUniqueItems = 80;
std::size_t unique_items(std::span<const std::uint32_t> items);
// unique_items(items) >= n, stopping as soon as n distinct items were seen (O(n) for music).
bool has_unique_items(std::span<const std::uint32_t> items, std::size_t n);

}  // namespace yw
