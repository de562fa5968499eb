// compare2 (production halves) against the plain reference, the index's matching rules and the
// match batcher's merging, on synthetic fingerprints (label unit). Real audio: match_audio_test.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "match/compare2_reference.hpp"
#include "match/synthetic.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fingerprint_match.hpp"
#include "yw/worker/catalogue.hpp"
#include "yw/worker/fingerprint_index.hpp"
#include "yw/worker/match_batcher.hpp"

namespace yw::worker {
namespace {

using test::reference_compare2;
using test::SyntheticFingerprints;

TEST(Compare2, EqualsTheReferenceBitForBitOnVariedPairs) {
  SyntheticFingerprints gen(1);
  std::uniform_int_distribution<int> len(0, 1200), shift(-150, 150), pick(0, 5);
  int nonzero = 0;
  for (int trial = 0; trial < 600; ++trial) {
    auto a = gen.song(static_cast<std::size_t>(len(gen.rng())));
    std::vector<std::uint32_t> b;
    switch (pick(gen.rng())) {
      case 0:
        b = gen.song(static_cast<std::size_t>(len(gen.rng())));  // unrelated
        break;
      case 1:
        b = gen.degrade(a, 0.03);  // a re-encode
        break;
      case 2: {  // shifted either way
        const int s = shift(gen.rng());
        b = gen.degrade(a, 0.05);
        if (s > 0 && static_cast<std::size_t>(s) < b.size()) b.erase(b.begin(), b.begin() + s);
        if (s < 0) b.insert(b.begin(), static_cast<std::size_t>(-s), 0x12345678u);
        break;
      }
      case 3:  // a clip
        if (a.size() > 400) b = gen.degrade({a.begin() + 200, a.begin() + 360}, 0.04);
        break;
      case 4:  // low diversity (a loop)
        for (std::size_t i = 0; i < a.size(); ++i)
          b.push_back(a[i % 7]);
        break;
      default:
        b = std::vector<std::uint32_t>(a.size(), kChromaprintSilenceItem);  // silence
    }
    for (const int maxoffset : {0, 80, 16}) {
      const float want = reference_compare2(a, b, maxoffset);
      const float got = compare2(a, b, maxoffset).score;
      ASSERT_EQ(got, want) << "trial " << trial << " maxoffset " << maxoffset;
      nonzero += want > 0.0f;
    }
  }
  EXPECT_GT(nonzero, 300);  // the comparison covered real scores, not only zeros
}

TEST(Compare2, ScoresFollowTheBitErrorRate) {
  SyntheticFingerprints gen(2);
  const auto a = gen.song(948);
  EXPECT_FLOAT_EQ(compare2(a, a, 80).score, 1.0f);
  const auto r = compare2(a, gen.degrade(a, 0.05), 80);
  EXPECT_NEAR(r.score, 0.9, 0.03);
  EXPECT_NEAR(compare2_ber(r.alignment, r.bit_errors), 0.05, 0.01);
  EXPECT_LT(compare2(a, gen.song(948), 80).score, 0.1f);
  // 40 items dropped from the head: found at offset +40.
  std::vector<std::uint32_t> late(a.begin() + 40, a.end());
  EXPECT_EQ(compare2(a, late, 80).alignment.offset, 40);
}

TEST(Compare2, BatchedCountsEqualSingleCounts) {
  SyntheticFingerprints gen(3);
  const auto q = gen.song(500);
  std::vector<std::vector<std::uint32_t>> store;
  for (int i = 0; i < 5; ++i)
    store.push_back(gen.song(600));
  std::vector<std::span<const std::uint32_t>> cands(store.begin(), store.end());
  std::vector<BitErrorTask> tasks = {{0, 0, 0, 500}, {4, 100, 10, 490}, {2, 7, 3, 0}};
  const auto n = bit_errors_batch_cpu(q, cands, tasks);
  ASSERT_EQ(n.size(), 3u);
  std::uint64_t want = 0;
  for (int i = 0; i < 490; ++i)
    want += static_cast<std::uint64_t>(std::popcount(q[10 + i] ^ store[4][100 + i]));
  EXPECT_EQ(n[1], want);
  EXPECT_EQ(n[2], 0u);
  const std::vector<BitErrorTask> bad = {{1, 500, 0, 200}};
  EXPECT_THROW(bit_errors_batch_cpu(q, cands, bad), Error);
}

TEST(FingerprintIndex, FindsPlantedNearDuplicatesWithVerdictsAndOffsets) {
  SyntheticFingerprints gen(4);
  FingerprintIndex index(true);
  std::vector<std::vector<std::uint32_t>> songs;
  for (int i = 0; i < 300; ++i) {
    songs.push_back(gen.song(948));
    ASSERT_TRUE(index.upsert("r" + std::to_string(i), songs.back(), 120.0));
  }
  const BitErrorFn cpu = &bit_errors_batch_cpu;
  // A re-encode of r17 (BER 3 %): duplicate, offset 0.
  auto m = index.match(gen.degrade(songs[17], 0.03), 120.0, {}, cpu);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].record_id, "r17");
  EXPECT_EQ(m[0].verdict, "duplicate");
  EXPECT_EQ(m[0].offset_items, 0);
  EXPECT_NEAR(m[0].bit_error_rate, 0.03, 0.01);
  // BER 10 %: same_recording. 5 s trimmed from the head: offset +40 items.
  std::vector<std::uint32_t> trimmed(songs[5].begin() + 40, songs[5].end());
  m = index.match(gen.degrade(trimmed, 0.10), 115.0, {}, cpu);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].record_id, "r5");
  EXPECT_EQ(m[0].verdict, "same_recording");
  EXPECT_EQ(m[0].offset_items, 40);
  EXPECT_NEAR(m[0].offset_seconds, 40 * kItemSeconds, 1e-9);
  // The duration filter: the same items claimed to be 30 s longer are not compared.
  EXPECT_TRUE(index.match(gen.degrade(songs[17], 0.03), 150.0, {}, cpu).empty());
  // A 20 s excerpt from 60 s into r42: only the clip index finds it, at the right offset.
  std::vector<std::uint32_t> clip(songs[42].begin() + 485, songs[42].begin() + 485 + 161);
  clip = gen.degrade(clip, 0.04);
  MatchOptions full;
  EXPECT_TRUE(index.match(clip, 20.0, full, cpu).empty());
  MatchOptions o;
  o.mode = MatchMode::clip;
  m = index.match(clip, 20.0, o, cpu);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].record_id, "r42");
  EXPECT_EQ(m[0].offset_items, 485);
  EXPECT_EQ(m[0].mode, "clip");
  EXPECT_GE(m[0].score, 0.75f);
  // The clip score is compare2 of the query against the record's region it was found in.
  const std::vector<std::uint32_t> region(songs[42].begin() + 485 - 16,
                                          songs[42].begin() + 485 + 161 + 16);
  EXPECT_EQ(m[0].score, reference_compare2(region, clip, 16));
  // Exclusion, removal, replacement.
  o.exclude = "r42";
  EXPECT_TRUE(index.match(clip, 20.0, o, cpu).empty());
  index.remove("r17");
  EXPECT_TRUE(index.match(gen.degrade(songs[17], 0.03), 120.0, {}, cpu).empty());
  index.upsert("r5", songs[17], 120.0);
  m = index.match(gen.degrade(songs[17], 0.03), 120.0, {}, cpu);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].record_id, "r5");
  EXPECT_EQ(index.stats().records, 299u);
}

TEST(FingerprintIndex, SilenceAndLoopsAreNeitherIndexedNorMatched) {
  FingerprintIndex index(true);
  const std::vector<std::uint32_t> silence(948, kChromaprintSilenceItem);
  EXPECT_FALSE(index.upsert("silence", silence, 120.0));
  std::vector<std::uint32_t> loop;
  for (int i = 0; i < 948; ++i)
    loop.push_back(0x1000u * static_cast<std::uint32_t>(i % 20));
  EXPECT_FALSE(index.upsert("loop", loop, 120.0));
  SyntheticFingerprints gen(5);
  index.upsert("song", gen.song(948), 120.0);
  MatchOptions o;
  o.mode = MatchMode::both;
  EXPECT_TRUE(index.match(silence, 120.0, o, &bit_errors_batch_cpu).empty());
  EXPECT_TRUE(index.match(loop, 120.0, o, &bit_errors_batch_cpu).empty());
  EXPECT_EQ(index.stats().records, 1u);
}

TEST(UniqueItems, EarlyExitAgreesWithTheFullCount) {
  SyntheticFingerprints gen(9);
  for (const std::size_t len : {0, 50, 79, 80, 81, 200, 948}) {
    auto v = gen.song(len, 0.05);
    for (std::size_t i = 0; i < v.size(); i += 3)
      v[i] = kChromaprintSilenceItem;
    if (!v.empty()) v[0] = 0;
    for (const std::size_t n : {0, 1, 40, 80, 150})
      EXPECT_EQ(has_unique_items(v, n), unique_items(v) >= n) << len << " " << n;
  }
}

TEST(MatchVerdict, FollowsAcoustidThresholds) {
  EXPECT_EQ(match_verdict(0.95), "duplicate");
  EXPECT_EQ(match_verdict(0.9), "duplicate");
  EXPECT_EQ(match_verdict(0.8), "same_recording");
  EXPECT_EQ(match_verdict(0.75), "same_recording");
  EXPECT_EQ(match_verdict(0.5), "similar");
  EXPECT_EQ(match_verdict(0.39), "");
}

TEST(MatchOptions, ParsesAndRejectsFields) {
  const auto o = match_options_from_json({{"min_score", 0.75},
                                          {"max_offset_seconds", 0},
                                          {"limit", 3},
                                          {"mode", "clip"},
                                          {"max_duration_diff_seconds", nullptr}},
                                         "");
  EXPECT_EQ(o.min_score, 0.75);
  EXPECT_EQ(o.max_offset_items, 0);
  EXPECT_EQ(o.limit, 3);
  EXPECT_EQ(o.mode, MatchMode::clip);
  EXPECT_LT(o.max_duration_diff_s, 0);
  EXPECT_EQ(match_options_from_json(nlohmann::json::object(), "").max_offset_items, 80);
  try {
    match_options_from_json({{"limit", "many"}}, "match.");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("match.limit"), std::string::npos);
  }
  EXPECT_THROW(match_options_from_json({{"mode", "fuzzy"}}, ""), InputError);
  EXPECT_THROW(match_options_from_json({{"min_score", 2}}, ""), InputError);
}

TEST(PgArray, RoundTripsSignedItems) {
  const std::vector<std::uint32_t> items = {0, 1, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
  EXPECT_EQ(items_to_pg_array(items), "{0,1,2147483647,-2147483648,-1}");
  EXPECT_EQ(items_from_pg_array(items_to_pg_array(items)), items);
  EXPECT_TRUE(items_from_pg_array("{}").empty());
}

TEST(MatchBatcher, MergesConcurrentQueriesIntoOneCallWithTheSameCounts) {
  SyntheticFingerprints gen(6);
  std::vector<std::vector<std::uint32_t>> store;
  for (int i = 0; i < 8; ++i)
    store.push_back(gen.song(700));
  std::atomic<int> calls{0};
  BatchPolicy policy;
  policy.max_batch = 8;
  policy.max_queue_delay = std::chrono::milliseconds(200);
  MatchBatcher batcher(
      [&](std::span<const std::uint32_t> q, const std::vector<std::span<const std::uint32_t>>& c,
          std::span<const BitErrorTask> t) {
        ++calls;
        return bit_errors_batch_cpu(q, c, t);
      },
      policy);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const auto q = store[static_cast<std::size_t>(i)];
      std::vector<std::span<const std::uint32_t>> cands(store.begin(), store.end());
      std::vector<BitErrorTask> tasks;
      for (std::uint32_t c = 0; c < 8; ++c)
        tasks.push_back({c, c, 0, 600});
      ok[static_cast<std::size_t>(i)] =
          batcher.count(q, cands, tasks) == bit_errors_batch_cpu(q, cands, tasks);
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < 8; ++i)
    EXPECT_TRUE(ok[static_cast<std::size_t>(i)]) << i;
  EXPECT_LT(calls.load(), 8);  // merged
}

}  // namespace
}  // namespace yw::worker
