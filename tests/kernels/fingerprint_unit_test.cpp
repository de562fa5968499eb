// Pure tests of the fingerprint stages (label `unit`): constants from chromaprint.md, the format,
// the resampler's streaming contract.
#include <gtest/gtest.h>

#include <random>

#include "kernels/random_pcm.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/chromaprint_tables.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"

namespace yw {
namespace {

using test::random_pcm;

TEST(ChromaBands, BinsPerBandMatchTheSpec) {
  int counts[12] = {};
  for (int i = chromaprint_detail::kChromaBinLo; i < chromaprint_detail::kChromaBinHi; ++i)
    ++counts[chromaprint_detail::chroma_band(i)];
  const int expected[12] = {78, 80, 89, 89, 100, 102, 109, 115, 123, 131, 138, 144};
  for (int b = 0; b < 12; ++b)
    EXPECT_EQ(counts[b], expected[b]) << "band " << b;
  EXPECT_EQ(chromaprint_detail::chroma_band(10), 11);  // 26.9 Hz: G#
  EXPECT_EQ(chromaprint_detail::chroma_band(21), 0);   // A
}

TEST(Core, ItemCountFollowsTheFraming) {
  for (const std::size_t n : {0u, 4095u, 30030u, 30031u, 31395u, 31396u, 110250u, 1323000u}) {
    const auto items = fingerprint_cpu(random_pcm(n, 7));
    const std::size_t expected = n < 4096 ? 0
                                          : static_cast<std::size_t>(std::max<long>(
                                                0, (static_cast<long>(n) - 4096) / 1365 - 18));
    EXPECT_EQ(items.size(), expected) << n << " samples";
  }
  EXPECT_EQ(fingerprint_cpu(random_pcm(120 * 11025, 3)).size(), 948u);
}

TEST(Core, SilenceGivesTheSilenceItem) {
  const std::vector<std::int16_t> zeros(11025 * 5, 0);
  const auto items = fingerprint_cpu(zeros);
  ASSERT_FALSE(items.empty());
  for (const auto item : items)
    EXPECT_EQ(item, kChromaprintSilenceItem);
}

TEST(Core, StreamingEqualsOneShot) {
  const auto pcm = random_pcm(11025 * 20, 11);
  const auto once = fingerprint_cpu(pcm);
  FingerprinterCpu fp;
  std::mt19937 rng(5);
  std::size_t pos = 0;
  while (pos < pcm.size()) {
    const std::size_t n = std::min<std::size_t>(pcm.size() - pos, rng() % 9000 + 1);
    fp.feed(std::span(pcm).subspan(pos, n));
    pos += n;
  }
  EXPECT_EQ(fp.items(), once);
  const auto batch = fingerprint_batch_cpu(
      {std::span<const std::int16_t>(pcm), std::span<const std::int16_t>(pcm).first(50000)});
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0], once);
  EXPECT_EQ(batch[1], fingerprint_cpu(std::span(pcm).first(50000)));
}

TEST(Format, WorkedExampleHeaderAndFirstBytes) {
  // chromaprint.md §1.14: 59 items, item 0 = 0xF77FD57F, item 1 = item 0 ^ 0x200.
  std::vector<std::uint32_t> items(59, 0xF77FD57Fu ^ 0x200u);
  items[0] = 0xF77FD57Fu;
  const std::string s = compress_fingerprint(items);
  EXPECT_EQ(s.substr(0, 6), "AQAAO0");
  int algorithm = 0;
  EXPECT_EQ(decompress_fingerprint(s, &algorithm), items);
  EXPECT_EQ(algorithm, 2);
}

TEST(Format, RoundTripsRandomItemsWithoutPadding) {
  std::mt19937 rng(1);
  for (const std::size_t n : {1u, 2u, 3u, 100u, 948u, 5000u}) {
    std::vector<std::uint32_t> items(n);
    for (auto& v : items)
      v = static_cast<std::uint32_t>(rng());
    const std::string s = compress_fingerprint(items);
    EXPECT_EQ(
        s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
    EXPECT_EQ(decompress_fingerprint(s), items);
  }
  EXPECT_THROW(decompress_fingerprint("AQ"), InputError);
  EXPECT_THROW(decompress_fingerprint("AQAA+/"), InputError);
}

TEST(Resampler, FilterBankFor44100MatchesTheSpec) {
  FpcalcResampler r(44100, 2);
  ASSERT_EQ(r.phase_count(), 1);
  ASSERT_EQ(r.filter_length(), 80);
  const std::vector<std::int16_t> expected = {
      0,    -1,   -2,   -2,    0,     4,     8,    11,   9,    0,    -16,  -32,  -41,  -31,
      0,    47,   93,   112,   83,    0,     -117, -223, -262, -189, 0,    256,  482,  560,
      402,  0,    -548, -1045, -1243, -928,  0,    1469, 3229, 4908, 6115, 6554, 6115, 4908,
      3229, 1469, 0,    -928,  -1243, -1045, -548, 0,    402,  560,  482,  256,  0,    -189,
      -262, -223, -117, 0,     83,    112,   93,   47,   0,    -31,  -41,  -32,  -16,  0,
      9,    11,   8,    4,     0,     -2,    -2,   -1,   0,    0};
  const std::vector<std::int16_t> phase0(r.filter_bank().begin(), r.filter_bank().begin() + 80);
  EXPECT_EQ(phase0, expected);
}

TEST(Resampler, PhasesAndLengthsFollowTheRateTable) {
  struct Row {
    int rate, phases, taps;
  };
  for (const Row& row :
       {Row{44100, 1, 80}, Row{88200, 1, 160}, Row{22050, 1, 40}, Row{48000, 147, 88},
        Row{96000, 147, 176}, Row{24000, 147, 44}, Row{32000, 256, 60}, Row{16000, 256, 30},
        Row{8000, 256, 16}, Row{44056, 256, 80}}) {
    FpcalcResampler r(row.rate, 1);
    EXPECT_EQ(r.phase_count(), row.phases) << row.rate;
    EXPECT_EQ(r.filter_length(), row.taps) << row.rate;
  }
}

TEST(Resampler, OutputDoesNotDependOnBlockSizes) {
  for (const int rate : {8000, 16000, 32000, 44100, 48000, 96000}) {
    const auto pcm = random_pcm(static_cast<std::size_t>(rate) * 2 * 3 + 77, 9);
    std::vector<std::int16_t> once;
    FpcalcResampler a(rate, 2);
    a.feed(pcm.data(), pcm.size() / 2, once);
    a.flush(once);
    std::vector<std::int16_t> pieces;
    FpcalcResampler b(rate, 2);
    std::mt19937 rng(rate);
    std::size_t pos = 0;
    const std::size_t frames = pcm.size() / 2;
    while (pos < frames) {
      const std::size_t n = std::min<std::size_t>(frames - pos, rng() % 700 + 1);
      b.feed(pcm.data() + pos * 2, n, pieces);
      pos += n;
    }
    b.flush(pieces);
    EXPECT_EQ(pieces, once) << rate;
    // About one output per 1/11025 s of input.
    const double expected = static_cast<double>(frames) * 11025.0 / rate;
    EXPECT_NEAR(static_cast<double>(once.size()), expected, 2.0) << rate;
  }
}

TEST(Resampler, StereoMixRoundsHalfUp) {
  // At 11025 Hz only the mix runs: floor((L + R + 1) / 2).
  const std::vector<std::int16_t> in = {1, 2, -1, -2, 32767, 32767, -32768, -32768, 3, -4};
  std::vector<std::int16_t> out;
  FpcalcResampler r(11025, 2);
  r.feed(in.data(), 5, out);
  r.flush(out);
  EXPECT_EQ(out, (std::vector<std::int16_t>{2, -1, 32767, -32768, 0}));
}

TEST(Resampler, RejectsAbsurdRatesAndChannels) {
  EXPECT_THROW(FpcalcResampler(0, 1), InputError);
  EXPECT_THROW(FpcalcResampler(44100, 0), InputError);
  EXPECT_THROW(FpcalcResampler(-5, 2), InputError);
}

}  // namespace
}  // namespace yw
