// Decoder fidelity for every consumer of yw::AudioReader (metadata, separation), label `oracle`
// (issue 12): float and 24-bit sources at full precision, overs kept in float and saturated in
// int16 (never wrapped), lossy streams decoded completely by FFmpeg's own decoders, sample for
// sample what the ffmpeg tool decodes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"
#include "yw/kernels/audio.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

class AudioFidelity : public testing::Test {
 protected:
  void SetUp() override { make_audio(dir_ / "src.wav", Content::chords, 44100, 2, 12.0); }
  fs::path derive(const std::string& name, const std::vector<std::string>& args) {
    const fs::path out = dir_ / name;
    ffmpeg_convert(dir_ / "src.wav", out, args);
    return out;
  }
  // What the ffmpeg tool decodes, as interleaved float (its native decoders, no resampling).
  std::vector<float> ffmpeg_floats(const fs::path& file) {
    const fs::path raw = dir_ / "decoded.f32";
    const auto r = run_process({"ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i",
                                file.string(), "-f", "f32le", "-c:a", "pcm_f32le", raw.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::ifstream in(raw, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
  }
  ScratchDir dir_{"yw-fidelity"};
};

TEST_F(AudioFidelity, FloatOversStayInFloatAndSaturateInInt16) {
  const fs::path f = derive("loud.wav", {"-af", "volume=16dB", "-c:a", "pcm_f32le"});
  const DecodedAudio audio = decode_audio(f);
  const float peak =
      *std::max_element(audio.samples.begin(), audio.samples.end(),
                        [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  ASSERT_GT(std::fabs(peak), 1.2f) << "the +16 dB master should peak above full scale";
  // The same file as int16: every over saturates with its own sign.
  auto reader = AudioReader::open(f);
  const auto channels = static_cast<std::size_t>(audio.info.channels);
  std::vector<std::int16_t> pcm;
  std::vector<std::int16_t> block(4096 * channels);
  while (const std::size_t got = reader->read_int16(block.data(), 4096))
    pcm.insert(pcm.end(), block.begin(),
               block.begin() + static_cast<std::ptrdiff_t>(got * channels));
  ASSERT_EQ(pcm.size(), audio.samples.size());
  std::size_t overs = 0;
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    const float v = audio.samples[i];
    if (v >= 1.0f) {
      ++overs;
      ASSERT_EQ(pcm[i], 32767) << "sample " << i << " = " << v;
    } else if (v <= -1.0f) {
      ++overs;
      ASSERT_EQ(pcm[i], -32768) << "sample " << i << " = " << v;
    } else {
      ASSERT_LE(std::abs(pcm[i] - std::lrint(v * 32768.0f)), 1) << "sample " << i;
    }
  }
  EXPECT_GT(overs, 100u);
  // Float samples are the file's own, bit for bit.
  EXPECT_EQ(audio.samples, ffmpeg_floats(f));
}

TEST_F(AudioFidelity, TwentyFourBitWavAndFlacKeepAllBits) {
  for (const auto& [name, args] :
       {std::pair<std::string, std::vector<std::string>>{"s24.wav", {"-c:a", "pcm_s24le"}},
        {"s24.flac", {"-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"}}}) {
    SCOPED_TRACE(name);
    // A quiet signal whose 24-bit samples use the 8 bits below 16-bit resolution.
    std::vector<std::string> quiet = {"-af", "volume=-30dB"};
    quiet.insert(quiet.end(), args.begin(), args.end());
    const fs::path f = derive(name, quiet);
    const DecodedAudio audio = decode_audio(f);
    EXPECT_EQ(audio.info.bits_per_sample, 24);
    std::size_t fine = 0;
    for (const float v : audio.samples) {
      const double s = static_cast<double>(v) * 8388608.0;
      ASSERT_EQ(s, std::round(s)) << "not a 24-bit value";
      if (std::fmod(std::fabs(s), 256.0) != 0.0) ++fine;
    }
    EXPECT_GT(fine, audio.samples.size() / 2) << "the low 8 bits were lost";
    EXPECT_EQ(audio.samples, ffmpeg_floats(f));
  }
}

TEST_F(AudioFidelity, LossyStreamsAreFfmpegsDecodeComplete) {
  for (const auto& [name, args] : {std::pair<std::string, std::vector<std::string>>{
                                       "a.opus", {"-c:a", "libopus", "-b:a", "96k"}},
                                   {"a.ogg", {"-c:a", "libvorbis"}},
                                   {"a.mp3", {"-c:a", "libmp3lame", "-b:a", "192k"}}}) {
    SCOPED_TRACE(name);
    const fs::path f = derive(name, args);
    const DecodedAudio audio = decode_audio(f);
    EXPECT_EQ(audio.info.backend, "ffmpeg");
    const std::vector<float> expected = ffmpeg_floats(f);
    ASSERT_EQ(audio.samples.size(), expected.size()) << "frames lost or added";
    EXPECT_EQ(audio.samples, expected);
  }
}

}  // namespace
}  // namespace yw::test
