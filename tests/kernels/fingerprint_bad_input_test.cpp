// Awkward and bad uploads through `yesod-worker fingerprint` against fpcalc (label `oracle`,
// issue 12). Whatever fpcalc fingerprints, ours prints byte for byte (a truncated file, a video
// with an audio track); whatever fpcalc refuses, ours refuses with exit status 1 and a message
// naming the file and the problem (zero-length streams, absurd channel counts, a codec FFmpeg has
// no decoder for). One process handles the bad files among good ones and goes on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

class BadInput : public testing::Test {
 protected:
  void SetUp() override { make_audio(dir_ / "src.wav", Content::speech, 44100, 2, 20.0); }
  fs::path path(const std::string& name) const { return dir_ / name; }

  // fpcalc prints a FINGERPRINT: ours prints exactly the same (default length and --length 0).
  void expect_same_as_fpcalc(const fs::path& f) {
    for (const bool whole : {false, true}) {
      std::vector<std::string> fp = {"fpcalc"};
      std::vector<std::string> yw = {worker_binary(), "fingerprint"};
      if (whole) {
        fp.insert(fp.end(), {"-length", "0"});
        yw.insert(yw.end(), {"--length", "0"});
      }
      fp.push_back(f.string());
      yw.push_back(f.string());
      const auto theirs = run_process(fp);
      const auto ours = run_process(yw);
      ASSERT_NE(theirs.out.find("FINGERPRINT="), std::string::npos) << theirs.err;
      EXPECT_EQ(ours.exit_code, 0) << ours.err;
      EXPECT_EQ(ours.out, theirs.out) << f;
    }
  }
  // fpcalc refuses it: ours refuses it too, naming the file and `problem`.
  void expect_refused(const fs::path& f, const std::string& problem) {
    const auto theirs = run_process({"fpcalc", f.string()});
    EXPECT_EQ(theirs.out.find("FINGERPRINT="), std::string::npos) << theirs.out;
    const auto ours = run_process({worker_binary(), "fingerprint", f.string()});
    EXPECT_EQ(ours.exit_code, 1);
    EXPECT_TRUE(ours.out.empty()) << ours.out;
    EXPECT_NE(ours.err.find("ERROR: " + f.string() + ": "), std::string::npos) << ours.err;
    EXPECT_NE(ours.err.find(problem), std::string::npos) << ours.err;
  }
  ScratchDir dir_{"yw-fp-bad"};
};

std::vector<char> read_all(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_all(const fs::path& f, const std::vector<char>& bytes) {
  std::ofstream out(f, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A FLAC file cut inside a frame: fpcalc also drops the good frame decoded before the damaged one.
TEST_F(BadInput, TruncatedFilesGetFpcalcsFingerprintOfWhatIsThere) {
  for (const auto& [name, args] :
       {std::pair<std::string, std::vector<std::string>>{"t.flac", {"-c:a", "flac"}},
        {"t.mp3", {"-c:a", "libmp3lame"}},
        {"t.opus", {"-c:a", "libopus"}},
        {"t.wav", {"-c:a", "pcm_f32le"}}}) {
    SCOPED_TRACE(name);
    const fs::path whole = path("whole-" + name);
    ffmpeg_convert(path("src.wav"), whole, args);
    auto bytes = read_all(whole);
    bytes.resize(bytes.size() * 3 / 5 + 7);  // cut mid-frame
    write_all(path(name), bytes);
    expect_same_as_fpcalc(path(name));
  }
}

TEST_F(BadInput, VideoWithAnAudioTrack) {
  const fs::path mkv = path("clip.mkv");
  const auto r = run_process({"ffmpeg",
                              "-nostdin",
                              "-loglevel",
                              "error",
                              "-y",
                              "-f",
                              "lavfi",
                              "-i",
                              "testsrc=size=160x120:rate=10:duration=20",
                              "-i",
                              path("src.wav").string(),
                              "-map",
                              "0:v",
                              "-map",
                              "1:a",
                              "-c:v",
                              "mpeg4",
                              "-c:a",
                              "libvorbis",
                              "-shortest",
                              mkv.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_as_fpcalc(mkv);
}

TEST_F(BadInput, ZeroLengthStreamsAreRefused) {
  write_bytes(path("empty-data.wav"), wav_bytes(44100, 2, {}));
  expect_refused(path("empty-data.wav"), "empty fingerprint");
  const auto r =
      run_process({"ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", path("src.wav").string(),
                   "-t", "0", "-c:a", "libvorbis", path("empty.ogg").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_refused(path("empty.ogg"), "");
}

TEST_F(BadInput, AbsurdChannelCountsAreRefused) {
  auto bytes = wav_bytes(44100, 2, std::vector<std::int16_t>(8000, 1000));
  bytes[22] = 0x00;  // channel count 0xEA00 = 59904
  bytes[23] = 0xEA;
  write_bytes(path("absurd.wav"), bytes);
  expect_refused(path("absurd.wav"), "channels");
}

TEST_F(BadInput, CodecWithoutADecoderIsRefused) {
  auto bytes = wav_bytes(44100, 2, std::vector<std::int16_t>(88200, 1000));
  bytes[20] = 0x34;  // WAVE format tag 0x1234: no codec FFmpeg knows
  bytes[21] = 0x12;
  write_bytes(path("unknown-codec.wav"), bytes);
  expect_refused(path("unknown-codec.wav"), "codec");
}

TEST_F(BadInput, OneProcessReportsEachBadFileAndGoesOn) {
  write_bytes(path("empty-data.wav"), wav_bytes(44100, 2, {}));
  write_bytes(path("zero.flac"), {});
  const auto ours =
      run_process({worker_binary(), "fingerprint", path("empty-data.wav").string(),
                   path("src.wav").string(), path("zero.flac").string(), path("src.wav").string()});
  EXPECT_EQ(ours.exit_code, 1);
  const auto good = run_process({"fpcalc", path("src.wav").string()});
  EXPECT_EQ(ours.out, good.out + good.out);
  EXPECT_NE(ours.err.find(path("empty-data.wav").string()), std::string::npos) << ours.err;
  EXPECT_NE(ours.err.find(path("zero.flac").string() + ": empty file"), std::string::npos)
      << ours.err;
}

}  // namespace
}  // namespace yw::test
