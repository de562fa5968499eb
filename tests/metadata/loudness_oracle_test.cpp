// Loudness and format against the reference tools (label oracle): ffmpeg's ebur128 filter
// (`-af ebur128=peak=true`) and ffprobe, on material generated here with sox.
// Tolerances from issue 7: integrated 0.1 LU, range 0.2 LU, true peak 0.2 dB.
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/metadata_test_util.hpp"
#include "yw/common/error.hpp"
#include "yw/worker/metadata.hpp"

namespace yw::test {
namespace {

constexpr double kIntegratedTolLu = 0.1;
constexpr double kRangeTolLu = 0.2;
constexpr double kTruePeakTolDb = 0.2;

struct FfmpegLoudness {
  double integrated = 0, range = 0, true_peak_db = 0;
};

// The final values ffmpeg's ebur128 filter reports: I and LRA from its per-frame metadata (three
// decimals; the last frame carries the whole-file values), true peak from its summary (dBFS).
FfmpegLoudness ffmpeg_ebur128(const std::filesystem::path& file, const ScratchDir& dir) {
  const auto meta = dir / (file.stem().string() + ".r128.txt");
  const auto r =
      run_process({"ffmpeg", "-hide_banner", "-nostats", "-i", file.string(), "-af",
                   "ebur128=peak=true:metadata=1,ametadata=mode=print:file=" + meta.string(), "-f",
                   "null", "-"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  FfmpegLoudness out;
  std::ifstream in(meta);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("lavfi.r128.I=")) out.integrated = std::stod(line.substr(13));
    if (line.starts_with("lavfi.r128.LRA=")) out.range = std::stod(line.substr(15));
  }
  const auto summary = r.err.substr(r.err.rfind("Summary:"));
  std::smatch m;
  EXPECT_TRUE(std::regex_search(summary, m, std::regex(R"(Peak:\s+(-?[0-9.]+|-inf) dBFS)")))
      << summary;
  out.true_peak_db = m.size() > 1 ? std::stod(m[1].str()) : 0.0;
  return out;
}

struct Material {
  const char* name;
  std::vector<std::string> sox;  // arguments after `sox -n`
};

class LoudnessOracleTest : public ::testing::TestWithParam<Material> {};

TEST_P(LoudnessOracleTest, MatchesFfmpegEbur128) {
  ScratchDir dir("yw-loud");
  const auto file = dir / (std::string(GetParam().name) + ".wav");
  std::vector<std::string> argv = {"sox", "-n"};
  for (const auto& a : GetParam().sox)
    argv.push_back(a == "OUT" ? file.string() : a);
  ASSERT_TRUE(run_tool(argv));

  const auto ours = yw::worker::analyze_audio_file(file);
  const auto ref = ffmpeg_ebur128(file, dir);
  SCOPED_TRACE(GetParam().name);
  EXPECT_NEAR(ours.loudness.integrated_lufs, ref.integrated, kIntegratedTolLu);
  EXPECT_NEAR(ours.loudness.loudness_range_lu, ref.range, kRangeTolLu);
  EXPECT_NEAR(ours.loudness.true_peak_dbtp, ref.true_peak_db, kTruePeakTolDb);
  EXPECT_NEAR(ours.replaygain.track_gain_db, -18.0 - ours.loudness.integrated_lufs, 1e-9);
  EXPECT_NEAR(20 * std::log10(ours.replaygain.track_peak), ours.loudness.true_peak_dbtp, 1e-9);
  EXPECT_LE(ours.loudness.sample_peak_dbfs, ours.loudness.true_peak_dbtp + 1e-9);
}

// 30-40 s each: LRA needs minutes-scale material to mean anything, and stays cheap to measure.
INSTANTIATE_TEST_SUITE_P(
    Generated, LoudnessOracleTest,
    ::testing::Values(Material{"sine_mono_48k",
                               {"-r", "48000", "-c", "1", "-b", "16", "OUT", "synth", "30", "sine",
                                "997", "vol", "0.5"}},
                      Material{"two_level_sines",
                               {"-r",    "44100", "-c",   "2",   "-b",  "16",  "OUT",
                                "synth", "20",    "sine", "440", "vol", "0.5", ":",
                                "synth", "20",    "sine", "220", "vol", "0.05"}},
                      Material{"pink_noise_fades",
                               {"-r", "48000", "-c", "1", "-b", "24", "OUT", "synth", "40",
                                "pinknoise", "vol", "0.3", "fade", "5", "40", "10"}},
                      Material{"plucked_chords",
                               {"-r",    "44100", "-c",    "2",     "-b",   "16", "OUT",   "synth",
                                "15",    "pluck", "C3",    "pluck", "E3",   ":",  "synth", "15",
                                "pluck", "G3",    "pluck", "B3",    "gain", "-3"}},
                      Material{"stereo_unequal_channels",
                               {"-r", "44100", "-c", "2", "-b", "16", "OUT", "synth", "30", "sine",
                                "300", "brownnoise", "remix", "1v0.8", "2v0.1"}},
                      Material{"very_quiet",
                               {"-r", "44100", "-c", "2", "-b", "24", "OUT", "synth", "30", "sine",
                                "1000", "vol", "0.001"}}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// Digital silence has no loudness: null in JSON rather than -inf or a made-up number.
TEST(LoudnessTest, SilenceIsNull) {
  ScratchDir dir("yw-loud");
  const auto file = dir / "silence.wav";
  ASSERT_TRUE(run_tool(
      {"sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", file.string(), "trim", "0", "5"}));
  const auto r = yw::worker::analyze_audio_file(file);
  const auto j = yw::worker::to_json(r, std::nullopt);
  EXPECT_TRUE(j["loudness"]["integrated_lufs"].is_null()) << j.dump();
  EXPECT_TRUE(j["loudness"]["true_peak_dbtp"].is_null()) << j.dump();
  EXPECT_TRUE(j["replaygain"]["track_gain_db"].is_null()) << j.dump();
  EXPECT_EQ(j["format"]["frames"], 5 * 44100);
}

// ---- format against ffprobe ---------------------------------------------------------------------

struct Encoding {
  const char* ext;
  std::vector<std::string> codec_args;
  double duration_tol;  // lossy containers carry encoder delay/padding estimates
};

class FormatOracleTest : public ::testing::TestWithParam<Encoding> {};

TEST_P(FormatOracleTest, MatchesFfprobe) {
  ScratchDir dir("yw-fmt");
  const auto wav = dir / "src.wav";
  ASSERT_TRUE(run_tool({"sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav.string(), "synth",
                        "7.3", "sine", "440", "vol", "0.4"}));
  auto file = dir / (std::string("x.") + GetParam().ext);
  std::vector<std::string> argv = {"ffmpeg", "-loglevel", "error", "-y", "-i", wav.string()};
  argv.insert(argv.end(), GetParam().codec_args.begin(), GetParam().codec_args.end());
  argv.push_back(file.string());
  ASSERT_TRUE(run_tool(argv));

  const auto probe = run_process(
      {"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
       "stream=codec_name,sample_rate,channels:format=duration", "-of", "json", file.string()});
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  const auto p = nlohmann::json::parse(probe.out);
  const auto& s = p["streams"][0];
  const auto ours = yw::worker::analyze_audio_file(file);
  SCOPED_TRACE(GetParam().ext);
  EXPECT_EQ(ours.format.codec, s["codec_name"].get<std::string>());
  EXPECT_EQ(ours.format.sample_rate, std::stoi(s["sample_rate"].get<std::string>()));
  EXPECT_EQ(ours.format.channels, s["channels"].get<int>());
  EXPECT_NEAR(ours.format.duration_seconds, std::stod(p["format"]["duration"].get<std::string>()),
              GetParam().duration_tol);
  EXPECT_GT(ours.format.bitrate_kbps, 0.0);
  EXPECT_GT(ours.format.frames, 0);
  EXPECT_EQ(ours.sha256.size(), 64u);
}

INSTANTIATE_TEST_SUITE_P(Containers, FormatOracleTest,
                         ::testing::Values(Encoding{"wav", {"-c:a", "pcm_s24le"}, 1e-3},
                                           Encoding{"flac", {"-c:a", "flac"}, 1e-3},
                                           Encoding{"mp3", {"-c:a", "libmp3lame"}, 0.06},
                                           Encoding{"ogg", {"-c:a", "libvorbis"}, 0.03},
                                           Encoding{"m4a", {"-c:a", "aac"}, 0.06}),
                         [](const auto& param_info) { return std::string(param_info.param.ext); });

TEST(FormatTest, Sha256MatchesSha256sum) {
  ScratchDir dir("yw-sha");
  const auto wav = dir / "a.wav";
  ASSERT_TRUE(
      run_tool({"sox", "-n", "-r", "8000", "-c", "1", wav.string(), "synth", "1", "whitenoise"}));
  const auto r = run_process({"sha256sum", wav.string()});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(yw::worker::sha256_file(wav), r.out.substr(0, 64));
}

TEST(FormatTest, NotAudioIsInputErrorNamingTheFile) {
  ScratchDir dir("yw-bad");
  const auto bad = dir / "notes.wav";
  std::ofstream(bad) << "this is not audio at all, just text pretending to be a wav file";
  try {
    yw::worker::analyze_audio_file(bad);
    ADD_FAILURE() << "text must not decode";
  } catch (const yw::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("notes.wav"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yw::test
