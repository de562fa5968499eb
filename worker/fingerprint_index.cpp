#include "yw/worker/fingerprint_index.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_set>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

constexpr std::uint32_t kWindowMask = 0xFFFFFFF0u;
constexpr std::uint32_t kClipMask = 0xAAAFFFFFu;
constexpr std::uint32_t kSilence = 627964279u;
constexpr int kWindowBits = 18;
constexpr int kClipBits = 20;
constexpr std::size_t kWindowTerms = 120;
constexpr std::size_t kWindowStart = 80;
// Rescored per query: the best candidates by index hits (fpindex returns up to 40 by default).
constexpr std::size_t kMaxCandidates = 40;
// A clip candidate needs this many votes at one offset: unrelated tracks give 0-2 (§5 measured
// at most 47 for two tracks sharing a theme, which the compare2 rescoring then judges).
constexpr int kMinClipVotes = 4;
// The region around a voted clip offset that compare2 may still shift within.
constexpr int kClipSlack = 16;

inline std::uint32_t bucket_of(std::uint32_t term, int bits) {
  return (term * 0x9E3779B1u) >> (32 - bits);
}

std::vector<std::uint32_t> clip_keys(std::span<const std::uint32_t> items) {
  std::vector<std::uint32_t> keys;
  keys.reserve(items.size());
  for (const auto item : items)
    keys.push_back(item & kClipMask);
  return keys;
}

}  // namespace

std::string match_verdict(double score) {
  if (score >= kDuplicateThreshold) return "duplicate";
  if (score >= kSameRecordingThreshold) return "same_recording";
  if (score >= kSimilarThreshold) return "similar";
  return "";
}

std::vector<std::uint32_t> window_terms(std::span<const std::uint32_t> items) {
  // Start at item 80, earlier when the fingerprint is too short to give 120 terms from there.
  std::size_t start = kWindowStart;
  if (items.size() < kWindowStart + kWindowTerms)
    start = items.size() > kWindowTerms ? items.size() - kWindowTerms : 0;
  std::vector<std::uint32_t> terms;
  terms.reserve(kWindowTerms);
  for (std::size_t i = start; i < items.size() && terms.size() < kWindowTerms; ++i) {
    if (items[i] == kSilence) continue;
    const std::uint32_t t = items[i] & kWindowMask;
    if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(t);
  }
  return terms;
}

FingerprintIndex::FingerprintIndex(bool clip_index)
    : clip_(clip_index), window_(std::size_t{1} << kWindowBits) {
  if (clip_) clipidx_.resize(std::size_t{1} << kClipBits);
}

FingerprintIndex::~FingerprintIndex() = default;

bool FingerprintIndex::upsert(const std::string& record_id, std::vector<std::uint32_t> items,
                              double duration_seconds) {
  const bool indexable = has_unique_items(items, kMinUniqueItems);
  const auto terms = indexable ? window_terms(items) : std::vector<std::uint32_t>{};
  std::unique_lock lock(m_);
  if (auto it = slot_of_.find(record_id); it != slot_of_.end()) {
    unindex(it->second);
    slot_of_.erase(it);
  }
  if (!indexable) return false;
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    YW_CHECK(records_.size() < 0xFFFFFFFFu, "fingerprint index is full");
    slot = static_cast<std::uint32_t>(records_.size());
    records_.emplace_back();
  }
  for (const auto t : terms)
    window_[bucket_of(t, kWindowBits)].push_back((std::uint64_t{t} << 32) | slot);
  window_postings_ += terms.size();
  if (clip_) {
    const auto keys = clip_keys(items);
    for (std::size_t i = 0; i < keys.size(); ++i)
      clipidx_[bucket_of(keys[i], kClipBits)].push_back(
          {keys[i], slot, static_cast<std::uint32_t>(i)});
    clip_postings_ += keys.size();
  }
  Record& r = records_[slot];
  r.id = record_id;
  r.items = std::move(items);
  r.duration = static_cast<float>(duration_seconds);
  r.live = true;
  slot_of_.emplace(record_id, slot);
  return true;
}

void FingerprintIndex::unindex(std::uint32_t slot) {
  Record& r = records_[slot];
  for (const auto t : window_terms(r.items)) {
    auto& b = window_[bucket_of(t, kWindowBits)];
    const auto n = b.size();
    std::erase(b, (std::uint64_t{t} << 32) | slot);
    window_postings_ -= n - b.size();
  }
  if (clip_) {
    std::unordered_set<std::uint32_t> buckets;
    for (const auto k : clip_keys(r.items))
      buckets.insert(bucket_of(k, kClipBits));
    for (const auto bi : buckets) {
      auto& b = clipidx_[bi];
      const auto n = b.size();
      std::erase_if(b, [slot](const ClipPosting& p) { return p.slot == slot; });
      clip_postings_ -= n - b.size();
    }
  }
  r = Record{};
  free_slots_.push_back(slot);
}

void FingerprintIndex::remove(const std::string& record_id) {
  std::unique_lock lock(m_);
  if (auto it = slot_of_.find(record_id); it != slot_of_.end()) {
    unindex(it->second);
    slot_of_.erase(it);
  }
}

bool FingerprintIndex::contains(const std::string& record_id) const {
  std::shared_lock lock(m_);
  return slot_of_.contains(record_id);
}

std::vector<std::uint32_t> FingerprintIndex::items_of(const std::string& record_id) const {
  std::shared_lock lock(m_);
  const auto it = slot_of_.find(record_id);
  return it == slot_of_.end() ? std::vector<std::uint32_t>{} : records_[it->second].items;
}

std::vector<FingerprintIndex::Candidate> FingerprintIndex::window_candidates(
    std::span<const std::uint32_t> query, double duration_seconds, const MatchOptions& o) const {
  std::unordered_map<std::uint32_t, int> hits;
  hits.reserve(1024);
  for (const auto t : window_terms(query)) {
    for (const auto p : window_[bucket_of(t, kWindowBits)])
      if (static_cast<std::uint32_t>(p >> 32) == t) ++hits[static_cast<std::uint32_t>(p)];
  }
  int best = 0;
  for (const auto& [slot, n] : hits)
    best = std::max(best, n);
  const int cut = std::max(2, (best + 9) / 10);
  std::vector<Candidate> out;
  for (const auto& [slot, n] : hits) {
    if (n < cut) continue;
    const Record& r = records_[slot];
    if (o.max_duration_diff_s >= 0 && duration_seconds > 0 && r.duration > 0 &&
        std::abs(static_cast<double>(r.duration) - duration_seconds) > o.max_duration_diff_s)
      continue;
    out.push_back({slot, n, 0});
  }
  return out;
}

std::vector<FingerprintIndex::Candidate> FingerprintIndex::clip_candidates(
    std::span<const std::uint32_t> query, const MatchOptions&) const {
  // Votes per (slot, offset); the offset is biased to stay non-negative in the key.
  std::unordered_map<std::uint64_t, int> votes;
  votes.reserve(4096);
  const auto keys = clip_keys(query);
  for (std::size_t j = 0; j < keys.size(); ++j) {
    for (const auto& p : clipidx_[bucket_of(keys[j], kClipBits)]) {
      if (p.key != keys[j]) continue;
      const std::int64_t off = static_cast<std::int64_t>(p.pos) - static_cast<std::int64_t>(j);
      ++votes[(std::uint64_t{p.slot} << 32) | static_cast<std::uint32_t>(off + (1 << 30))];
    }
  }
  // Best offset per record; neighbouring offsets (±1 item) add to it, since a re-encode's hop
  // phase can split one alignment over two offsets.
  std::unordered_map<std::uint32_t, Candidate> best;
  for (const auto& [key, n] : votes) {
    const auto slot = static_cast<std::uint32_t>(key >> 32);
    const int off = static_cast<int>(static_cast<std::int64_t>(key & 0xFFFFFFFFu) - (1 << 30));
    int total = n;
    for (const int d : {-1, 1}) {
      const auto nk = (std::uint64_t{slot} << 32) |
                      static_cast<std::uint32_t>(static_cast<std::int64_t>(off + d) + (1 << 30));
      if (auto it = votes.find(nk); it != votes.end()) total += it->second;
    }
    auto [it, fresh] = best.try_emplace(slot, Candidate{slot, total, off});
    if (!fresh &&
        (total > it->second.votes || (total == it->second.votes && off < it->second.offset)))
      it->second = {slot, total, off};
  }
  std::vector<Candidate> out;
  for (const auto& [slot, c] : best)
    if (c.votes >= kMinClipVotes) out.push_back(c);
  return out;
}

std::vector<FingerprintMatch> FingerprintIndex::match(std::span<const std::uint32_t> query,
                                                      double duration_seconds,
                                                      const MatchOptions& o,
                                                      const BitErrorFn& bit_errors) const {
  YW_CHECK(o.limit >= 0, "match: negative limit");
  // A query with too little content (silence, near-silence) matches nothing, as it could not
  // be stored either.
  if (!has_unique_items(query, kMinUniqueItems) || o.limit == 0) return {};
  struct Job {
    Candidate c;
    bool clip;
    std::uint32_t region_start;  // first record item compared (clip: the region's start)
    Compare2Alignment al;
  };
  std::vector<Job> jobs;
  std::vector<std::span<const std::uint32_t>> cands;
  std::vector<std::string> ids;
  std::vector<BitErrorTask> tasks;

  std::shared_lock lock(m_);
  auto take = [&](std::vector<Candidate> list, bool clip) {
    std::sort(list.begin(), list.end(), [&](const Candidate& x, const Candidate& y) {
      return x.votes != y.votes ? x.votes > y.votes : records_[x.slot].id < records_[y.slot].id;
    });
    std::size_t n = 0;
    for (const auto& c : list) {
      const Record& r = records_[c.slot];
      if (!o.exclude.empty() && r.id == o.exclude) continue;
      if (n++ == kMaxCandidates) break;
      std::span<const std::uint32_t> region(r.items);
      std::uint32_t start = 0;
      int max_offset = o.max_offset_items;
      if (clip) {
        // compare2 over the record's region where the query lies, with a little slack.
        const long lo = std::max(0L, static_cast<long>(c.offset) - kClipSlack);
        const long hi =
            std::min(static_cast<long>(r.items.size()),
                     static_cast<long>(c.offset) + static_cast<long>(query.size()) + kClipSlack);
        if (hi <= lo) continue;
        start = static_cast<std::uint32_t>(lo);
        region = region.subspan(start, static_cast<std::size_t>(hi - lo));
        max_offset = kClipSlack;
      }
      Job j{c, clip, start, compare2_align(region, query, max_offset)};
      if (j.al.rejected) continue;
      tasks.push_back({static_cast<std::uint32_t>(cands.size()),
                       static_cast<std::uint32_t>(start + j.al.a_start),
                       static_cast<std::uint32_t>(j.al.b_start),
                       static_cast<std::uint32_t>(j.al.items())});
      cands.push_back(r.items);
      ids.push_back(r.id);
      jobs.push_back(j);
    }
  };
  if (o.mode != MatchMode::clip) take(window_candidates(query, duration_seconds, o), false);
  if (o.mode != MatchMode::full && clip_) take(clip_candidates(query, o), true);

  const auto errors =
      tasks.empty() ? std::vector<std::uint64_t>{} : bit_errors(query, cands, tasks);
  YW_CHECK(errors.size() == tasks.size(), "bit-error counter returned {} results for {} tasks",
           errors.size(), tasks.size());
  std::unordered_map<std::string, FingerprintMatch> best;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const Job& j = jobs[i];
    FingerprintMatch m;
    m.score = compare2_score(j.al, errors[i]);
    if (m.score < o.min_score) continue;
    m.record_id = ids[i];
    m.offset_items = static_cast<int>(j.region_start) + j.al.offset;
    m.offset_seconds = m.offset_items * kItemSeconds;
    m.matched_seconds = static_cast<double>(j.al.items()) * kItemSeconds;
    m.bit_error_rate = compare2_ber(j.al, errors[i]);
    m.votes = j.c.votes;
    m.mode = j.clip ? "clip" : "full";
    m.verdict = match_verdict(m.score);
    auto [it, fresh] = best.try_emplace(m.record_id, m);
    if (!fresh && m.score > it->second.score) it->second = m;
  }
  std::vector<FingerprintMatch> out;
  out.reserve(best.size());
  for (auto& [_, m] : best)
    out.push_back(std::move(m));
  std::sort(out.begin(), out.end(), [](const FingerprintMatch& x, const FingerprintMatch& y) {
    return x.score != y.score ? x.score > y.score : x.record_id < y.record_id;
  });
  if (out.size() > static_cast<std::size_t>(o.limit)) out.resize(static_cast<std::size_t>(o.limit));
  return out;
}

IndexStats FingerprintIndex::stats() const {
  std::shared_lock lock(m_);
  IndexStats s;
  s.records = slot_of_.size();
  s.window_postings = window_postings_;
  s.clip_postings = clip_postings_;
  s.bytes = records_.capacity() * sizeof(Record) + window_.capacity() * sizeof(window_[0]) +
            clipidx_.capacity() * sizeof(clipidx_[0]);
  for (const auto& r : records_)
    s.bytes += r.items.capacity() * sizeof(std::uint32_t) + r.id.capacity();
  for (const auto& b : window_)
    s.bytes += b.capacity() * sizeof(std::uint64_t);
  for (const auto& b : clipidx_)
    s.bytes += b.capacity() * sizeof(ClipPosting);
  // unordered_map: a node per record (key, value, next pointer, cached hash) plus the buckets.
  s.bytes += slot_of_.size() * (sizeof(std::string) + 4 * sizeof(void*)) +
             slot_of_.bucket_count() * sizeof(void*);
  return s;
}

}  // namespace yw::worker
