// Waveform peaks in BBC audiowaveform's JSON version 2 (label unit): the field list, and min/max
// per pixel on signals whose peaks are known by construction.
#include <cstdint>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/metadata_test_util.hpp"
#include "yw/common/error.hpp"
#include "yw/worker/metadata.hpp"

namespace yw::test {
namespace {

using yw::worker::WaveformBuilder;
using yw::worker::WaveformConfig;

// 16-bit PCM WAV, written by hand so the samples are exactly known.
void write_wav16(const std::filesystem::path& p, int rate, int channels,
                 const std::vector<int16_t>& interleaved) {
  std::ofstream out(p, std::ios::binary);
  const auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  const auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  const auto data_bytes = static_cast<uint32_t>(interleaved.size() * 2);
  out.write("RIFF", 4);
  u32(36 + data_bytes);
  out.write("WAVEfmt ", 8);
  u32(16);
  u16(1);
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * 2));
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  out.write("data", 4);
  u32(data_bytes);
  out.write(reinterpret_cast<const char*>(interleaved.data()), data_bytes);
}

// Pixel k (100 samples) holds +peak_hi(k) at sample 17 and -peak_lo(k) at sample 61, zeros
// elsewhere; the last pixel is partial (40 samples).
int peak_hi(int k) {
  return 1000 * (k + 1);
}
int peak_lo(int k) {
  return 700 * (k + 2);
}
std::vector<int16_t> known_peaks(int pixels) {
  std::vector<int16_t> s(static_cast<size_t>(pixels) * 100 + 40, 0);
  for (int k = 0; k <= pixels; ++k) {
    s[static_cast<size_t>(k) * 100 + 17] = static_cast<int16_t>(peak_hi(k));
    if (k < pixels) s[static_cast<size_t>(k) * 100 + 61] = static_cast<int16_t>(-peak_lo(k));
  }
  return s;
}

TEST(WaveformTest, JsonHasExactlyTheAudiowaveformV2Fields) {
  WaveformBuilder b(WaveformConfig{}, 44100, 2);
  const std::vector<float> frames(2 * 1500, 0.25f);
  b.add(frames.data(), 1500);
  const auto j = yw::worker::to_json(b.finish());
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"version", "channels", "sample_rate", "samples_per_pixel",
                                         "bits", "length", "data"}));
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["channels"], 1);
  EXPECT_EQ(j["sample_rate"], 44100);
  EXPECT_EQ(j["samples_per_pixel"], 512);
  EXPECT_EQ(j["bits"], 8);
  EXPECT_EQ(j["length"], 3);  // 1500 = 512 + 512 + 476
  ASSERT_EQ(j["data"].size(), 6u);
  for (const auto& v : j["data"])
    EXPECT_EQ(v, 32);  // 0.25 * 32768 = 8192 -> 8192 >> 8
}

TEST(WaveformTest, MinMaxPerPixelOnKnownPeaks16Bit) {
  ScratchDir dir("yw-wave");
  const int pixels = 20;
  write_wav16(dir / "peaks.wav", 8000, 1, known_peaks(pixels));
  yw::worker::MetadataOptions opt;
  opt.waveform = {100, 16};
  const auto r = yw::worker::analyze_audio_file(dir / "peaks.wav", opt);
  const auto& w = r.waveform;
  ASSERT_EQ(w.length, pixels + 1);
  ASSERT_EQ(w.data.size(), static_cast<size_t>(2 * (pixels + 1)));
  for (int k = 0; k < pixels; ++k) {
    EXPECT_EQ(w.data[static_cast<size_t>(2 * k)], -peak_lo(k)) << "pixel " << k;
    EXPECT_EQ(w.data[static_cast<size_t>(2 * k + 1)], peak_hi(k)) << "pixel " << k;
  }
  EXPECT_EQ(w.data[static_cast<size_t>(2 * pixels)], 0) << "partial pixel min";
  EXPECT_EQ(w.data[static_cast<size_t>(2 * pixels + 1)], peak_hi(pixels)) << "partial pixel max";
  EXPECT_EQ(w.sample_rate, 8000);
}

TEST(WaveformTest, EightBitValuesAndStereoAverage) {
  // Left +16384 / right -16384 average to 0; left = right = -32768 stays full scale.
  WaveformBuilder b(WaveformConfig{4, 8}, 48000, 2);
  const std::vector<float> frames = {0.5f,  -0.5f, 0.25f, 0.25f,  -1.0f, -1.0f, 0.0f, 0.0f,
                                     0.99f, 0.99f, 0.0f,  -0.25f, 0.0f,  0.0f,  0.0f, 0.0f};
  b.add(frames.data(), 8);
  const auto w = b.finish();
  ASSERT_EQ(w.length, 2);
  EXPECT_EQ(w.data, (std::vector<int>{-128, 32, -16, 126}));
  // 0.99 * 32768 = 32440.3 -> 32440 >> 8 = 126; -0.125 * 32768 = -4096 >> 8 = -16.
}

TEST(WaveformTest, BadConfigurationIsRefused) {
  EXPECT_THROW(WaveformBuilder(WaveformConfig{0, 8}, 44100, 1), yw::Error);
  EXPECT_THROW(WaveformBuilder(WaveformConfig{256, 12}, 44100, 1), yw::Error);
}

}  // namespace
}  // namespace yw::test
