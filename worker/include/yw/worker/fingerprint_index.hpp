#pragma once
// The in-memory fingerprint index one worker keeps (fingerprint-search.md §1.2, §6), and the
// matching procedure over it. It knows nothing of PostgreSQL: Catalogue (catalogue.hpp) fills it
// from the catalogue table and keeps it following the table's change log.
//
// Two indexes over the same records:
//  - the window index (AcoustID's): per record up to 120 distinct values of item & 0xFFFFFFF0
//    from item 80 on, silence skipped (acoustid_extract_query). A query votes once per shared
//    term; candidates with >= max(2, 10 % of the best) hits are rescored with compare2 at
//    max_offset (80 items) after the ±duration filter.
//  - the clip index (optional): every item under the 26-bit mask 0xAAAFFFFF with its position.
//    A query votes for (record, position offset); the best offsets are rescored with compare2
//    on the record's region around the voted offset. This finds a 20 s excerpt anywhere in a
//    track, where the window index (0:10-0:25 of the audio, ±9.9 s) cannot.
// Rescoring counts bits through a BitErrorFn, so the CPU twin or the CUDA twin (through the
// device's batcher) does the counting; scores are compare2's float either way.
//
// Thread-safety: any number of concurrent match() calls; add/remove take an exclusive lock.
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "yw/kernels/fingerprint_match.hpp"

namespace yw::worker {

using BitErrorFn = std::function<std::vector<std::uint64_t>(
    std::span<const std::uint32_t> query, const std::vector<std::span<const std::uint32_t>>& cands,
    std::span<const BitErrorTask> tasks)>;

enum class MatchMode { full, clip, both };

struct MatchOptions {
  MatchMode mode = MatchMode::full;
  double min_score = kSimilarThreshold;       // matches below are not reported
  int max_offset_items = kAcoustidMaxOffset;  // full mode; 0 = unlimited
  double max_duration_diff_s = 7.0;           // full mode; < 0 = no duration filter
  int limit = 10;
  std::string exclude;  // a record id never reported (the query's own record)
};

struct FingerprintMatch {
  std::string record_id;
  float score = 0.0f;
  int offset_items = 0;  // > 0: the query starts this many items into the record
  double offset_seconds = 0.0;
  double matched_seconds = 0.0;
  double bit_error_rate = 0.0;
  int votes = 0;        // index hits (window terms or clip offset votes)
  std::string mode;     // "full" or "clip": which index found it
  std::string verdict;  // duplicate (>= 0.9), same_recording (>= 0.75), similar (>= 0.4)
};

// AcoustID's thresholds as verdicts; "" below kSimilarThreshold.
std::string match_verdict(double score);

// acoustid_extract_query: the window index's terms of a fingerprint.
std::vector<std::uint32_t> window_terms(std::span<const std::uint32_t> items);

struct IndexStats {
  std::size_t records = 0;
  std::size_t window_postings = 0;
  std::size_t clip_postings = 0;
  std::size_t bytes = 0;  // items, postings and bookkeeping (capacity, not size)
};

class FingerprintIndex {
 public:
  explicit FingerprintIndex(bool clip_index = true);
  ~FingerprintIndex();
  FingerprintIndex(const FingerprintIndex&) = delete;
  FingerprintIndex& operator=(const FingerprintIndex&) = delete;

  // Adds or replaces a record. Records with fewer than kMinUniqueItems distinct items (silence,
  // near-silence, loops) are kept out of the index: they can never match or be matched.
  // Returns whether it was indexed.
  bool upsert(const std::string& record_id, std::vector<std::uint32_t> items,
              double duration_seconds);
  void remove(const std::string& record_id);
  bool contains(const std::string& record_id) const;
  // The stored items of a record (empty when absent).
  std::vector<std::uint32_t> items_of(const std::string& record_id) const;

  std::vector<FingerprintMatch> match(std::span<const std::uint32_t> query, double duration_seconds,
                                      const MatchOptions& options,
                                      const BitErrorFn& bit_errors) const;

  bool has_clip_index() const { return clip_; }
  IndexStats stats() const;

 private:
  struct Record {
    std::string id;
    std::vector<std::uint32_t> items;
    float duration = 0.0f;
    bool live = false;
  };
  struct ClipPosting {
    std::uint32_t key;
    std::uint32_t slot;
    std::uint32_t pos;
  };
  struct Candidate {
    std::uint32_t slot;
    int votes;
    int offset;  // clip: voted offset
  };
  void unindex(std::uint32_t slot);
  std::vector<Candidate> window_candidates(std::span<const std::uint32_t> query,
                                           double duration_seconds, const MatchOptions& o) const;
  std::vector<Candidate> clip_candidates(std::span<const std::uint32_t> query,
                                         const MatchOptions& o) const;

  bool clip_;
  mutable std::shared_mutex m_;
  std::vector<Record> records_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::string, std::uint32_t> slot_of_;
  // Buckets by hash of the term; a posting is (term << 32) | slot.
  std::vector<std::vector<std::uint64_t>> window_;
  std::vector<std::vector<ClipPosting>> clipidx_;
  std::size_t window_postings_ = 0, clip_postings_ = 0;
};

}  // namespace yw::worker
