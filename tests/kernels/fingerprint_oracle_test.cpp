// The fingerprint against the real Debian fpcalc (label `oracle`), on audio generated here.
// 16-bit WAV/FLAC must give identical items, compressed strings and DURATION lines; lossy files
// (decoded by a different MP3/Vorbis/Opus/AAC decoder than fpcalc's FFmpeg) must stay within 3 %
// of bit errors after alignment.
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

struct OracleCase {
  int rate;
  int channels;
  Content content;
  double seconds;
};

std::string case_name(const testing::TestParamInfo<OracleCase>& info) {
  const auto& c = info.param;
  return fmt::format("r{}_c{}_{}_{}ms", c.rate, c.channels, to_string(c.content),
                     static_cast<int>(c.seconds * 1000));
}

// Ours vs fpcalc for one file and one -length: items, string and DURATION line.
void expect_same_as_fpcalc(const fs::path& file, double length) {
  SCOPED_TRACE(fmt::format("{} -length {}", file.filename().string(), length));
  const std::string len = fmt::format("{}", length);
  const FpcalcResult raw = run_fpcalc(file, {"-raw", "-length", len});
  const FileFingerprint ours = fingerprint_file(file, length);
  if (!raw.ok) {
    // fpcalc's "Empty fingerprint": fewer than 30031 samples reached the library.
    EXPECT_NE(raw.err.find("Empty fingerprint"), std::string::npos) << raw.err;
    EXPECT_TRUE(ours.items.empty()) << ours.items.size() << " items where fpcalc had none";
    return;
  }
  const auto expected = parse_items(raw.fingerprint);
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(ours.items.size(), expected.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < expected.size(); ++i)
    differing += ours.items[i] != expected[i] ? 1 : 0;
  EXPECT_EQ(differing, 0u) << "items differing from fpcalc";
  EXPECT_EQ(raw.duration_line,
            fmt::format("DURATION={}", static_cast<long long>(ours.duration_seconds)));
  const FpcalcResult text = run_fpcalc(file, {"-length", len});
  ASSERT_TRUE(text.ok) << text.err;
  EXPECT_EQ(ours.fingerprint, text.fingerprint);
}

class FpcalcIdentical : public testing::TestWithParam<OracleCase> {};

TEST_P(FpcalcIdentical, WavAndFlacDefaultAndWholeFile) {
  const auto& c = GetParam();
  ScratchDir dir("yw-fp-oracle");
  const fs::path wav = dir / "in.wav";
  const fs::path flac = dir / "in.flac";
  make_audio(wav, c.content, c.rate, c.channels, c.seconds);
  const auto conv = run_process({"sox", "-q", wav.string(), flac.string()});
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  for (const auto& file : {wav, flac}) {
    expect_same_as_fpcalc(file, 120);
    if (c.seconds > 120) expect_same_as_fpcalc(file, 0);
  }
}

// Every rate of the issue, mono and stereo, each with one content kind and one length; the
// lengths cover "empty" (< 2.72 s), short, default-limited (> 120 s) and whole-file cases.
std::vector<OracleCase> matrix() {
  const int rates[] = {8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000};
  const Content kinds[] = {Content::chords, Content::noise, Content::speech, Content::silence,
                           Content::near_silence};
  const double lengths[] = {2.5, 9.3, 31.0, 125.0, 2.8, 17.0, 3.0};
  std::vector<OracleCase> out;
  int i = 0;
  for (const int rate : rates) {
    for (const int channels : {1, 2}) {
      out.push_back({rate, channels, kinds[i % 5], lengths[i % 7]});
      ++i;
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Matrix, FpcalcIdentical, testing::ValuesIn(matrix()), case_name);

// Ten-minute files, default length and --length 0.
INSTANTIATE_TEST_SUITE_P(TenMinutes, FpcalcIdentical,
                         testing::Values(OracleCase{44100, 2, Content::chords, 600.0},
                                         OracleCase{48000, 1, Content::speech, 600.0},
                                         OracleCase{22050, 2, Content::noise, 600.0}),
                         case_name);

// Best bit error rate over alignments of up to +-10 items.
double aligned_ber(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b,
                   int* best_offset) {
  double best = 1.0;
  for (int off = -10; off <= 10; ++off) {
    std::size_t bits = 0;
    std::size_t diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto j = static_cast<std::ptrdiff_t>(i) + off;
      if (j < 0 || j >= static_cast<std::ptrdiff_t>(b.size())) continue;
      diff += static_cast<std::size_t>(std::popcount(a[i] ^ b[static_cast<std::size_t>(j)]));
      bits += 32;
    }
    if (bits >= 32 * 100 && static_cast<double>(diff) / static_cast<double>(bits) < best) {
      best = static_cast<double>(diff) / static_cast<double>(bits);
      *best_offset = off;
    }
  }
  return best;
}

struct LossyCase {
  std::string name;
  std::string ext;
  std::vector<std::string> ffmpeg_args;
};

class LossyBer : public testing::TestWithParam<LossyCase> {};

TEST_P(LossyBer, WithinThreePercentOfFpcalc) {
  const auto& c = GetParam();
  ScratchDir dir("yw-fp-oracle");
  const fs::path wav = dir / "src.wav";
  const fs::path file = dir / ("in." + c.ext);
  make_audio(wav, Content::chords, 44100, 2, 60.0);
  ffmpeg_convert(wav, file, c.ffmpeg_args);
  const FpcalcResult raw = run_fpcalc(file, {"-raw", "-length", "0"});
  ASSERT_TRUE(raw.ok) << raw.err;
  const auto expected = parse_items(raw.fingerprint);
  const FileFingerprint ours = fingerprint_file(file, 0);
  ASSERT_GT(ours.items.size(), 100u);
  int offset = 0;
  const double ber = aligned_ber(ours.items, expected, &offset);
  std::printf("[ BER      ] %s: %.4f %% at offset %d (%zu vs %zu items)\n", c.name.c_str(),
              100.0 * ber, offset, ours.items.size(), expected.size());
  RecordProperty("ber_percent", fmt::format("{:.4f}", 100.0 * ber));
  EXPECT_LE(ber, 0.03);
  // The duration is the container's, as FFmpeg reports it to fpcalc (not the gapless length).
  const auto json = run_process({"fpcalc", "-ignore-errors", "-json", file.string()});
  const auto at = json.out.find("\"duration\": ");
  ASSERT_NE(at, std::string::npos) << json.out;
  const std::string theirs = json.out.substr(at + 12, json.out.find(',', at) - at - 12);
  EXPECT_EQ(fmt::format("{:.2f}", ours.duration_seconds), theirs);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, LossyBer,
    testing::Values(LossyCase{"mp3", "mp3", {"-c:a", "libmp3lame", "-b:a", "192k"}},
                    LossyCase{"mp3_vbr", "mp3", {"-c:a", "libmp3lame", "-q:a", "4"}},
                    LossyCase{"ogg_vorbis", "ogg", {"-c:a", "libvorbis", "-q:a", "5"}},
                    LossyCase{"opus", "opus", {"-c:a", "libopus", "-b:a", "128k"}},
                    LossyCase{"m4a_aac", "m4a", {"-c:a", "aac", "-b:a", "192k"}}),
    [](const testing::TestParamInfo<LossyCase>& p) { return p.param.name; });

// ALAC is lossless 16-bit: FFmpeg decodes it to s16p, so even the FFmpeg backend must be exact.
TEST(FpcalcIdenticalFfmpegBackend, Alac) {
  ScratchDir dir("yw-fp-oracle");
  const fs::path wav = dir / "src.wav";
  const fs::path m4a = dir / "in.m4a";
  make_audio(wav, Content::speech, 44100, 2, 20.0);
  ffmpeg_convert(wav, m4a, {"-c:a", "alac"});
  const FileFingerprint ours = fingerprint_file(m4a, 120);
  EXPECT_EQ(ours.info.backend, "ffmpeg");
  EXPECT_EQ(ours.info.codec, "alac");
  const FpcalcResult raw = run_fpcalc(m4a, {"-raw"});
  ASSERT_TRUE(raw.ok) << raw.err;
  EXPECT_EQ(ours.items, parse_items(raw.fingerprint));
}

}  // namespace
}  // namespace yw::test
