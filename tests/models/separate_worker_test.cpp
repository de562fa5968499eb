// The separation surfaces: `yesod-worker separate` (a real process) and the separate_stems
// handler (through the handler registry, with real file:// storage).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/kernels/audio_writer.hpp"
#include "yw/models/separator.hpp"
#include "yw/worker/handler.hpp"

namespace {

namespace fs = std::filesystem;
using yw::models::Audio;

Audio test_song(int64_t frames, int channels = 2) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 0.05f);
  Audio a = Audio::zeros(44100, channels, frames);
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < frames; ++i)
      a.channel(c)[i] = d(rng) + 0.3f * std::sin(0.06f * static_cast<float>(i));
  return a;
}

void write_wav(const fs::path& p, const Audio& a) {
  yw::write_audio_file(p, yw::AudioFileFormat::wav, a.samples.data(), a.channels, a.frames,
                       a.sample_rate);
}

// harmonic + percussive read back from `dir` must give `mix` within `tol`.
void expect_stems_sum_to(const fs::path& dir, const std::string& ext, const Audio& mix, float tol) {
  const Audio h = yw::models::load_audio(dir / ("harmonic." + ext));
  const Audio p = yw::models::load_audio(dir / ("percussive." + ext));
  ASSERT_EQ(h.frames, mix.frames);
  ASSERT_EQ(p.frames, mix.frames);
  ASSERT_EQ(h.channels, mix.channels);
  float err = 0.0f;
  for (size_t i = 0; i < mix.samples.size(); ++i)
    err = std::max(err, std::abs(h.samples[i] + p.samples[i] - mix.samples[i]));
  EXPECT_LT(err, tol);
}

// load_audio decodes into the planar buffer the header announces; lossy streams come out shorter
// or longer than announced, and Ogg may announce nothing. Every channel must still hold exactly
// its own samples.
TEST(LoadAudio, PlanarEqualsTheInterleavedDecodeWhateverTheHeaderSays) {
  const std::string dir = yw::test::make_temp_dir("yw_load_audio");
  Audio mix = test_song(44100);
  for (int64_t i = 0; i < mix.frames; ++i)
    mix.channel(1)[i] *= -0.5f;  // channels differ
  write_wav(fs::path(dir) / "src.wav", mix);
  for (const char* ext : {"wav", "mp3", "ogg", "flac"}) {
    const std::string file = dir + "/x." + ext;
    if (std::string(ext) != "wav") {
      const auto r = yw::test::run_process(
          {"ffmpeg", "-nostdin", "-v", "error", "-y", "-i", dir + "/src.wav", file});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    } else {
      fs::copy_file(dir + "/src.wav", file);
    }
    const Audio planar = yw::models::load_audio(file);
    const auto ref = yw::decode_audio(file);
    ASSERT_EQ(planar.frames, ref.frames()) << ext;
    ASSERT_EQ(planar.channels, 2);
    for (int64_t i = 0; i < planar.frames; ++i)
      for (int c = 0; c < 2; ++c)
        ASSERT_EQ(planar.channel(c)[i], ref.samples[static_cast<size_t>(i * 2 + c)])
            << ext << " frame " << i << " channel " << c;
  }
  fs::remove_all(dir);
}

class SeparateCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = yw::test::make_temp_dir("yw_separate_cli"); }
  void TearDown() override { fs::remove_all(dir_); }
  yw::test::ProcessResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {yw::test::worker_binary(), "separate"});
    yw::test::ProcessOptions opt;
    opt.unset_env = {"YW_MODEL", "YW_DEVICE"};
    opt.cwd = dir_;
    return yw::test::run_process(args, opt);
  }
  std::string dir_;
};

TEST_F(SeparateCli, WritesStemsThatSumToTheInput) {
  const Audio mix = test_song(44100 * 2);
  write_wav(fs::path(dir_) / "song.wav", mix);
  const auto r =
      run({dir_ + "/song.wav", "--out", dir_ + "/out", "--format", "wav", "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 stems"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "progress shown although stderr is no terminal";
  expect_stems_sum_to(fs::path(dir_) / "out" / "song", "wav", mix, 1e-4f);

  const auto f = run({dir_ + "/song.wav", "--out", dir_ + "/flac"});  // default: FLAC, 24-bit
  ASSERT_EQ(f.exit_code, 0) << f.err;
  expect_stems_sum_to(fs::path(dir_) / "flac" / "song", "flac", mix, 1e-4f);
}

TEST_F(SeparateCli, TinyAndSilentInputsGiveStems) {
  write_wav(fs::path(dir_) / "tiny.wav", test_song(10, 1));
  write_wav(fs::path(dir_) / "silent.wav", Audio::zeros(44100, 2, 5000));
  const auto r =
      run({dir_ + "/tiny.wav", dir_ + "/silent.wav", "--out", dir_ + "/out", "--format", "wav"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_stems_sum_to(fs::path(dir_) / "out" / "tiny", "wav", test_song(10, 1), 1e-4f);
  const Audio h = yw::models::load_audio(fs::path(dir_) / "out" / "silent" / "harmonic.wav");
  for (float v : h.samples)
    ASSERT_EQ(v, 0.0f);
}

TEST_F(SeparateCli, BadInputsFailClearly) {
  { std::ofstream(fs::path(dir_) / "junk.wav") << "this is not audio"; }
  write_wav(fs::path(dir_) / "ok.wav", test_song(4410));
  auto r = run({dir_ + "/junk.wav", dir_ + "/ok.wav", "--out", dir_ + "/out"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("junk.wav"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "out" / "ok" / "harmonic.flac"))
      << "the good file still runs";

  r = run({dir_ + "/ok.wav", "--out", dir_ + "/out", "--model", dir_ + "/missing.pt"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.pt"), std::string::npos) << r.err;

  r = run({dir_ + "/ok.wav", "--out", dir_ + "/out", "--format", "mp3"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(SeparateCli, HelpListsEveryFlagWithItsDefault) {
  const auto r = run({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* flag : {"--out", "--format", "--model", "--device", "--batch-max"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag << "\n" << r.out;
  EXPECT_NE(r.out.find("flac"), std::string::npos) << r.out;
}

TEST(SeparateBinary, DoesNotLinkLibtorch) {
  // libtorch is dlopen'ed with the first TorchScript model (models/torch_loader.cpp); the
  // worker binary itself must not pull in its ~290 libraries.
  const auto r = yw::test::run_process({"ldd", yw::test::worker_binary()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("libtorch"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("libc10"), std::string::npos) << r.out;
}

class SeparateHandler : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = yw::test::make_temp_dir("yw_separate_handler");
    fs::create_directories(fs::path(dir_) / "in");
    config_.input_roots = {dir_ + "/in"};
    config_.output_uri = "file://" + dir_ + "/out";
    yw::worker::register_separation_handlers(registry_);
    ctx_.queue = "separate_stems";
    ctx_.id = "job-1";
    ctx_.config = &config_;
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json call(const nlohmann::json& data) {
    const auto* h = registry_.find("separate_stems");
    EXPECT_NE(h, nullptr);
    return (*h)(data, ctx_);
  }
  std::string input_error(const nlohmann::json& data) {
    try {
      call(data);
    } catch (const yw::InputError& e) {
      return e.what();
    }
    return "(no InputError)";
  }
  std::string dir_;
  yw::worker::WorkerConfig config_;
  yw::worker::HandlerRegistry registry_;
  yw::worker::JobContext ctx_;
};

TEST_F(SeparateHandler, StoresEveryStemAndReportsThem) {
  const Audio mix = test_song(30000);
  write_wav(fs::path(dir_) / "in" / "a.wav", mix);
  const auto out =
      call({{"audio", "file://" + dir_ + "/in/a.wav"}, {"record_id", 42}, {"format", "wav"}});
  EXPECT_EQ(out["record_id"], 42);
  EXPECT_EQ(out["model"], "hpss");
  EXPECT_EQ(out["sample_rate"], 44100);
  EXPECT_NEAR(out["duration_seconds"].get<double>(), 30000.0 / 44100, 1e-9);
  ASSERT_TRUE(out["stems"].contains("harmonic")) << out.dump();
  ASSERT_TRUE(out["stems"].contains("percussive")) << out.dump();
  expect_stems_sum_to(fs::path(dir_) / "out" / "42", "wav", mix, 1e-4f);

  // Without record_id the job id names the folder; FLAC is the default format.
  const auto out2 = call({{"audio", "file://" + dir_ + "/in/a.wav"}});
  EXPECT_TRUE(out2["record_id"].is_null());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "out" / "job-1" / "percussive.flac")) << out2.dump();
}

// The job's output conventions reach the files: 16-bit FLAC, clamp at 0.99.
TEST_F(SeparateHandler, OutputConventionsFromTheJob) {
  Audio mix = test_song(20000);
  for (auto& v : mix.samples)
    v *= 3.0f;  // peaks near 1.1: clamp and rescale both act
  write_wav(fs::path(dir_) / "in" / "loud.wav", mix);
  const std::string uri = "file://" + dir_ + "/in/loud.wav";
  call({{"audio", uri}, {"record_id", "c"}, {"bit_depth", 16}, {"clip_mode", "clamp"}});
  const auto reader = yw::AudioReader::open(fs::path(dir_) / "out" / "c" / "harmonic.flac");
  EXPECT_EQ(reader->info().bits_per_sample, 16);
  float peak = 0.0f;
  for (const float v :
       yw::models::load_audio(fs::path(dir_) / "out" / "c" / "harmonic.flac").samples)
    peak = std::max(peak, std::abs(v));
  EXPECT_NEAR(peak, 0.99f, 1e-4f);
  EXPECT_NE(input_error({{"audio", uri}, {"clip_mode", "soft"}}).find("clip_mode:"),
            std::string::npos);
  EXPECT_NE(input_error({{"audio", uri}, {"float32", true}}).find("float32:"), std::string::npos);
}

TEST_F(SeparateHandler, BadJobDataFailsTerminallyNamingTheField) {
  write_wav(fs::path(dir_) / "in" / "a.wav", test_song(1000));
  const std::string uri = "file://" + dir_ + "/in/a.wav";
  EXPECT_NE(input_error({{"record_id", 1}}).find("audio: required"), std::string::npos);
  EXPECT_NE(input_error({{"audio", 5}}).find("audio:"), std::string::npos);
  EXPECT_NE(input_error({{"audio", uri}, {"format", "mp3"}}).find("format:"), std::string::npos);
  EXPECT_NE(input_error({{"audio", uri}, {"model", "htdemucs"}}).find("model:"), std::string::npos);
  EXPECT_NE(
      input_error({{"audio", uri}, {"record_id", nlohmann::json::array()}}).find("record_id:"),
      std::string::npos);
  // A record id that is not path-safe is made safe, the same way for every handler of a record.
  call({{"audio", uri}, {"record_id", "a/b"}, {"format", "wav"}});
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "out" / "a_b" / "harmonic.wav"));
  { std::ofstream(fs::path(dir_) / "in" / "junk.wav") << "not audio at all"; }
  EXPECT_NE(input_error({{"audio", "file://" + dir_ + "/in/junk.wav"}}).find("junk.wav"),
            std::string::npos);

  // A worker whose model is broken fails the job retryably (yw::Error, not InputError).
  config_.model = dir_ + "/missing.pt";
  try {
    call({{"audio", uri}});
    ADD_FAILURE() << "expected an error";
  } catch (const yw::InputError& e) {
    ADD_FAILURE() << "a worker's broken model must not fail the job terminally: " << e.what();
  } catch (const yw::Error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("missing.pt"), std::string::npos) << e.what();
  }
  config_.model.clear();
}

}  // namespace
