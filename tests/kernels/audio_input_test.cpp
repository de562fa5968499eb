// The audio decoder (label `unit`): what it reports and reads for files written here byte by
// byte, and the clear errors for bad input, through the API and the CLI.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/audio.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

class AudioInput : public testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("yw-audio"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path file(const std::string& name) const { return dir_ / name; }

  // open() must throw InputError whose message names the file and contains `problem`.
  void expect_input_error(const fs::path& path, const std::string& problem) {
    try {
      AudioReader::open(path);
      ADD_FAILURE() << path << ": opened without an error";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(problem), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

std::vector<std::int16_t> ramp(std::size_t n) {
  std::vector<std::int16_t> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::int16_t>(static_cast<int>(i * 37 % 65536) - 32768);
  return out;
}

TEST_F(AudioInput, WavInfoAndSamplesAreExact) {
  const auto pcm = ramp(2 * 22050);
  write_bytes(file("a.wav"), wav_bytes(22050, 2, pcm));
  auto reader = AudioReader::open(file("a.wav"));
  const AudioInfo& info = reader->info();
  EXPECT_EQ(info.backend, "sndfile");
  EXPECT_EQ(info.container, "wav");
  EXPECT_EQ(info.codec, "pcm_s16le");
  EXPECT_EQ(info.sample_rate, 22050);
  EXPECT_EQ(info.channels, 2);
  EXPECT_EQ(info.bits_per_sample, 16);
  EXPECT_EQ(info.frames, 22050);
  EXPECT_DOUBLE_EQ(info.duration_seconds, 1.0);
  EXPECT_DOUBLE_EQ(info.bitrate_kbps, 705.6);
  std::vector<std::int16_t> got(pcm.size() + 2000);  // room for a whole last block
  std::size_t frames = 0;
  while (true) {
    const std::size_t n = reader->read_int16(got.data() + frames * 2, 1000);
    if (n == 0) break;
    frames += n;
  }
  ASSERT_EQ(frames, 22050u);
  got.resize(pcm.size());
  EXPECT_EQ(got, pcm);
  const DecodedAudio all = decode_audio(file("a.wav"));
  ASSERT_EQ(all.frames(), 22050);
  EXPECT_FLOAT_EQ(all.samples[0], pcm[0] / 32768.0f);
  EXPECT_EQ(decode_audio(file("a.wav"), 0.5).frames(), 11025);
}

TEST_F(AudioInput, FlacAndM4aGoThroughTheRightBackends) {
  write_bytes(file("a.wav"), wav_bytes(44100, 1, ramp(44100)));
  const auto flac = run_process({"sox", "-q", file("a.wav").string(), file("a.flac").string()});
  ASSERT_EQ(flac.exit_code, 0) << flac.err;
  const AudioInfo f = probe_audio(file("a.flac"));
  EXPECT_EQ(f.backend, "sndfile");
  EXPECT_EQ(f.codec, "flac");
  EXPECT_EQ(f.bits_per_sample, 16);
  EXPECT_EQ(f.frames, 44100);
  ffmpeg_convert(file("a.wav"), file("a.m4a"), {"-c:a", "aac", "-b:a", "128k"});
  const AudioInfo m = probe_audio(file("a.m4a"));
  EXPECT_EQ(m.backend, "ffmpeg");
  EXPECT_EQ(m.container, "mp4");
  EXPECT_EQ(m.codec, "aac");
  EXPECT_EQ(m.bits_per_sample, 0);
  EXPECT_NEAR(m.duration_seconds, 1.0, 0.1);
  const DecodedAudio d = decode_audio(file("a.m4a"));
  EXPECT_NEAR(static_cast<double>(d.frames()), 44100.0, 2048.0);
}

TEST_F(AudioInput, EmptyFile) {
  write_bytes(file("empty.wav"), {});
  expect_input_error(file("empty.wav"), "empty file");
}

TEST_F(AudioInput, TruncatedWav) {
  auto bytes = wav_bytes(44100, 2, ramp(44100 * 2));
  auto cut = bytes;
  cut.resize(bytes.size() / 2);
  write_bytes(file("half.wav"), cut);
  expect_input_error(file("half.wav"), "truncated WAV");
  cut.resize(30);  // inside the fmt chunk
  write_bytes(file("head.wav"), cut);
  expect_input_error(file("head.wav"), "truncated WAV");
}

TEST_F(AudioInput, HtmlSavedAsMp3) {
  const std::string html =
      "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
      "</body></html>\n";
  write_bytes(file("page.mp3"), std::vector<unsigned char>(html.begin(), html.end()));
  expect_input_error(file("page.mp3"), "not a supported audio file");
}

TEST_F(AudioInput, ZeroChannels) {
  auto bytes = wav_bytes(44100, 1, ramp(1000));
  bytes[22] = 0;  // fmt.channels
  bytes[23] = 0;
  write_bytes(file("zero.wav"), bytes);
  expect_input_error(file("zero.wav"), "zero channels");
}

TEST_F(AudioInput, AbsurdHeaderSizes) {
  auto rate = wav_bytes(44100, 1, ramp(1000));
  rate[24] = rate[25] = rate[26] = rate[27] = 0xFF;  // fmt.sample_rate = 4294967295
  write_bytes(file("rate.wav"), rate);
  expect_input_error(file("rate.wav"), "absurd");
  auto chans = wav_bytes(44100, 1, ramp(1000));
  chans[22] = 0xFF;  // 65535 channels
  chans[23] = 0xFF;
  write_bytes(file("chans.wav"), chans);
  expect_input_error(file("chans.wav"), "absurd");
  auto chunk = wav_bytes(44100, 1, ramp(1000));
  // A LIST chunk claiming 2 GB, placed before "data".
  const std::vector<unsigned char> list = {'L', 'I', 'S', 'T', 0xF0, 0xFF, 0xFF, 0x7F};
  chunk.insert(chunk.begin() + 36, list.begin(), list.end());
  write_bytes(file("chunk.wav"), chunk);
  expect_input_error(file("chunk.wav"), "claims 2147483632 bytes");
}

TEST_F(AudioInput, UnreadablePaths) {
  expect_input_error(file("missing.wav"), "cannot open");
  fs::create_directory(file("dir.wav"));
  expect_input_error(file("dir.wav"), "directory");
  write_bytes(file("locked.wav"), wav_bytes(8000, 1, ramp(8000)));
  fs::permissions(file("locked.wav"), fs::perms::none);
  if (::access(file("locked.wav").c_str(), R_OK) == 0) {
    std::printf("[ INFO     ] running as root: permission case not checked\n");
  } else {
    expect_input_error(file("locked.wav"), "cannot open");
  }
}

TEST_F(AudioInput, CliNamesEachFailedFileAndGoesOn) {
  write_bytes(file("empty.wav"), {});
  const std::string html = "<html><body>nope</body></html>";
  write_bytes(file("page.mp3"), std::vector<unsigned char>(html.begin(), html.end()));
  const auto good = ramp(11025 * 2 * 4);
  write_bytes(file("good.wav"), wav_bytes(11025, 2, good));
  const auto r = run_process({worker_binary(), "fingerprint", file("empty.wav").string(),
                              file("good.wav").string(), file("page.mp3").string(),
                              file("missing.wav").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(file("empty.wav").string() + ": empty file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(file("page.mp3").string() + ": not a supported audio file"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(file("missing.wav").string() + ": cannot open"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("DURATION=4\nFINGERPRINT=AQ"), std::string::npos) << r.out;
  const auto help = run_process({worker_binary(), "fingerprint", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--length"), std::string::npos);
  EXPECT_NE(help.out.find("120"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace yw::test
