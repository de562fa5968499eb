// TorchScript separators through the worker's runner (libyw_torch_runner.so, dlopen'ed): the
// contract check at load, and chunked, cross-song batched apply against one whole-song forward.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "support/process.hpp"
#include "torch_models.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/kernels/audio_writer.hpp"
#include "yw/kernels/resample.hpp"
#include "yw/models/apply.hpp"
#include "yw/models/separator.hpp"

namespace {

using yw::models::Audio;
using yw::models::Stem;

class TorchModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = yw::test::make_temp_dir("yw_torch_models"); }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static inline std::string dir_;
};

Audio random_song(int rate, int channels, int64_t frames, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.03f, 0.2f);
  Audio a = Audio::zeros(rate, channels, frames);
  for (auto& v : a.samples)
    v = d(rng);
  return a;
}

std::string open_error(const std::string& model, yw::Device device = {}) {
  yw::models::SeparatorOptions opt;
  opt.model_path = model;
  opt.device = device;
  opt.threads = 1;
  try {
    yw::models::open_separator(opt);
  } catch (const yw::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(TorchModels, ContractBreakingModelsAreRefusedClearly) {
  using yw::test::BrokenKind;
  const std::pair<BrokenKind, std::string> cases[] = {
      {BrokenKind::wrong_rank, "[batch, sources, channels, time]"},
      {BrokenKind::missing_samplerate, "'samplerate' (int) is missing"},
      {BrokenKind::wrong_source_count, "[1, 4, 2, 11025], got [1, 3, 2, 11025]"},
      {BrokenKind::sources_not_strings, "'sources' must be a List[str]"},
  };
  int i = 0;
  for (const auto& [kind, words] : cases) {
    const std::string p = path("broken" + std::to_string(i++) + ".pt");
    yw::test::save_broken_model(p, kind);
    const std::string err = open_error(p);
    EXPECT_NE(err.find("breaks the separator contract"), std::string::npos) << err;
    EXPECT_NE(err.find(words), std::string::npos) << err;
    EXPECT_NE(err.find(p), std::string::npos) << err;
  }
}

// A model that declares its one legal shape is not run at load (a trace of htdemucs would cost a
// whole 7.8 s forward there); its first batch finds the broken promise and says so.
TEST_F(TorchModels, DeclaredShapesAreCheckedAtTheFirstBatchNotByAProbe) {
  const std::string p = path("declared_wrong.pt");
  yw::test::save_broken_model(p, yw::test::BrokenKind::declared_wrong_shape);
  yw::models::SeparatorOptions opt;
  opt.model_path = p;
  opt.threads = 1;
  auto sep = yw::models::open_separator(opt);  // no forward, so no error yet
  ASSERT_EQ(sep->sources().size(), 4u);
  try {
    sep->separate(random_song(44100, 2, 9000, 3));
    FAIL() << "expected the first batch to fail";
  } catch (const yw::Error& e) {
    const std::string err = e.what();
    EXPECT_NE(err.find("breaks the separator contract"), std::string::npos) << err;
    EXPECT_NE(err.find("4, 2, 4410], got ["), std::string::npos) << err;
    EXPECT_NE(err.find("3, 2, 4410]"), std::string::npos) << err;
    EXPECT_NE(err.find(p), std::string::npos) << err;
  }
}

TEST_F(TorchModels, CorruptMissingAndDeviceErrorsAreClear) {
  const std::string corrupt = path("corrupt.pt");
  {
    std::ofstream f(corrupt, std::ios::binary);
    f << "PK\x03\x04 this is not a TorchScript archive";
  }
  EXPECT_NE(open_error(corrupt).find("not a loadable TorchScript file"), std::string::npos)
      << open_error(corrupt);
  EXPECT_NE(open_error(path("absent.pt")).find("no such file"), std::string::npos);

  const std::string gain = path("gain_dev.pt");
  yw::test::save_gain_model(gain, {}, {1, 1, 1, 1});
  yw::Device missing{yw::Device::Kind::cuda, 7};
  const std::string err = open_error(gain, missing);
  EXPECT_NE(err.find("cuda:7 is not available"), std::string::npos) << err;
}

// The whole song through one forward (libtorch directly), following Demucs' procedure.
std::vector<Stem> whole_song(const std::string& model, const Audio& mix, int sources) {
  const int channels = 2;
  const int64_t len = yw::resampled_length(mix.frames, mix.sample_rate, 44100);
  std::vector<float> x(static_cast<size_t>(channels * len));
  for (int c = 0; c < channels; ++c)
    yw::resample_cpu(mix.channel(mix.channels == 1 ? 0 : c), mix.frames, mix.sample_rate, 44100,
                     &x[static_cast<size_t>(c * len)], len);
  double sum = 0.0, sum2 = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double r = 0.5 * (x[static_cast<size_t>(i)] + x[static_cast<size_t>(len + i)]);
    sum += r;
    sum2 += r * r;
  }
  const double mean = sum / static_cast<double>(len);
  const double std = std::sqrt((sum2 - sum * mean) / static_cast<double>(len - 1)) + 1e-8;
  for (auto& v : x)
    v = static_cast<float>((v - mean) / std);
  const auto y = yw::test::torch_forward_once(model, x, channels, len);
  std::vector<Stem> out;
  std::vector<float> row(static_cast<size_t>(len));
  for (int s = 0; s < sources; ++s) {
    Stem st{"", Audio::zeros(mix.sample_rate, channels, mix.frames)};
    for (int c = 0; c < channels; ++c) {
      for (int64_t i = 0; i < len; ++i)
        row[static_cast<size_t>(i)] =
            static_cast<float>(y[static_cast<size_t>((s * channels + c) * len + i)] * std + mean);
      yw::resample_cpu(row.data(), len, 44100, mix.sample_rate, st.audio.channel(c), mix.frames);
    }
    out.push_back(std::move(st));
  }
  return out;
}

float max_diff(const std::vector<Stem>& a, const std::vector<Stem>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.0f;
  for (size_t s = 0; s < std::min(a.size(), b.size()); ++s) {
    EXPECT_EQ(a[s].audio.samples.size(), b[s].audio.samples.size());
    for (size_t i = 0; i < std::min(a[s].audio.samples.size(), b[s].audio.samples.size()); ++i)
      m = std::max(m, std::abs(a[s].audio.samples[i] - b[s].audio.samples[i]));
  }
  return m;
}

// Each song alone (one segment per forward) against all of them at once, submitted from threads
// and waited for so that every batch mixes songs: the same stems.
void expect_cross_song_batches_change_nothing(yw::models::SeparatorOptions opt,
                                              const std::vector<Audio>& songs, int batch,
                                              size_t sources) {
  opt.batch_max = 1;
  std::vector<std::vector<Stem>> alone;
  {
    auto sep = yw::models::open_separator(opt);
    for (const auto& s : songs)
      alone.push_back(sep->separate(s));
  }
  opt.batch_max = batch;
  opt.batch_delay_ms = 2000;  // until every song is in
  auto sep = yw::models::open_separator(opt);
  std::vector<std::vector<Stem>> together(songs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < songs.size(); ++i)
    threads.emplace_back([&, i] { together[i] = sep->separate(songs[i]); });
  for (auto& t : threads)
    t.join();
  for (size_t i = 0; i < songs.size(); ++i) {
    ASSERT_EQ(together[i].size(), sources);
    EXPECT_LT(max_diff(together[i], alone[i]), 1e-5f) << "song " << i;
  }
}

TEST_F(TorchModels, ChunkedBatchedApplyEqualsOneUnchunkedForward) {
  const std::string gain = path("gain.pt");
  yw::test::save_gain_model(gain, {}, {0.5f, -1.0f, 2.0f, 0.25f});
  const std::string fixed = path("gain_fixed.pt");
  yw::test::TorchModelSpec fixed_spec;
  fixed_spec.segment_samples = 4410;  // a "traced" export: only this length
  yw::test::save_gain_model(fixed, fixed_spec, {0.5f, -1.0f, 2.0f, 0.25f});

  yw::models::SeparatorOptions opt;
  opt.threads = 2;
  opt.batch_max = 4;
  opt.batch_delay_ms = 0;
  opt.segment_seconds = 0.1;  // 4410 samples at 44.1 kHz, like the fixed model
  for (const std::string& model : {gain, fixed}) {
    opt.model_path = model;
    auto sep = yw::models::open_separator(opt);
    ASSERT_EQ(sep->sources(), (std::vector<std::string>{"drums", "bass", "other", "vocals"}));
    for (int rate : {22050, 44100, 48000}) {
      for (int channels : {1, 2}) {
        for (int64_t model_len : {int64_t{1000}, int64_t{4410}, int64_t{4410 * 6 + 77}}) {
          const int64_t frames = model_len * rate / 44100;
          const Audio mix = random_song(rate, channels, frames, static_cast<unsigned>(frames));
          const auto got = sep->separate(mix);
          ASSERT_EQ(got.size(), 4u);
          ASSERT_EQ(got[0].audio.frames, frames);
          EXPECT_LT(max_diff(got, whole_song(gain, mix, 4)), 1e-5f)
              << model << ": " << rate << " Hz, " << channels << " ch, " << model_len;
        }
      }
    }
  }
  EXPECT_TRUE(yw::models::torch_runtime_loaded());
}

TEST_F(TorchModels, CrossSongBatchesGiveTheSameStemsAsEachSongAlone) {
  const std::string conv = path("conv.pt");
  yw::test::save_conv_model(conv, {}, {8, 16}, 7);
  yw::models::SeparatorOptions opt;
  opt.model_path = conv;
  opt.threads = 2;
  opt.segment_seconds = 0.1;
  std::vector<Audio> songs;
  for (unsigned i = 0; i < 4; ++i)
    songs.push_back(random_song(i % 2 ? 44100 : 48000, 2, 10000 + 3000 * i, 40 + i));

  expect_cross_song_batches_change_nothing(opt, songs, 16, 4);
}

// The CPU runner installs libtorch's CPU allocator (BlockCache in the runner): a freed block of
// 64 KiB or more is kept, so the next window's request of the same size gets it back without
// faulting fresh zero pages in, where mapping every such block afresh (the runner's earlier
// rule, a glibc mmap threshold) gave zeros. Smaller blocks still come from malloc.
TEST_F(TorchModels, CpuRunnerKeepsFreedBlocksForTheNextRequestOfTheirSize) {
  const std::string conv = path("conv_probe.pt");
  yw::test::save_conv_model(conv, {}, {8, 16}, 3);
  yw::models::SeparatorOptions opt;
  opt.model_path = conv;
  auto sep = yw::models::open_separator(opt);
  const auto big = yw::test::probe_cpu_allocator(4 << 20);
  EXPECT_FALSE(big.default_allocator);
  EXPECT_TRUE(big.same_block);
  EXPECT_TRUE(big.pattern_kept);
  // Separating still gives the stems a fresh allocator would.
  const Audio song = random_song(44100, 2, 30000, 9);
  const auto first = sep->separate(song);
  const auto second = sep->separate(song);
  ASSERT_EQ(first.size(), second.size());
  for (size_t s = 0; s < first.size(); ++s)
    EXPECT_EQ(first[s].audio.samples, second[s].audio.samples);
}

TEST_F(TorchModels, CommandLineSeparatesWithAModel) {
  const std::string gain = path("cli_gain.pt");
  yw::test::save_gain_model(gain, {}, {0.5f, -1.0f, 2.0f, 0.25f});
  const Audio mix = random_song(48000, 1, 30000, 5);  // mono, 48 kHz: converted both ways
  const std::string wav = path("cli_song.wav");
  yw::write_audio_file(wav, yw::AudioFileFormat::wav, mix.samples.data(), 1, mix.frames, 48000);
  yw::test::ProcessOptions popt;
  popt.unset_env = {"YW_MODEL", "YW_DEVICE"};
  const auto r =
      yw::test::run_process({yw::test::worker_binary(), "separate", wav, "--out", path("cli_out"),
                             "--model", gain, "--format", "wav", "--device", "cpu", "--clip-mode",
                             "none"},  // float WAV keeps stems above 1
                            popt);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 stems"), std::string::npos) << r.out;
  const auto expected = whole_song(gain, mix, 4);
  const char* names[] = {"drums", "bass", "other", "vocals"};
  for (int s = 0; s < 4; ++s) {
    const Audio got = yw::models::load_audio(path("cli_out") + "/cli_song/" + names[s] + ".wav");
    ASSERT_EQ(got.channels, 2);  // a mono mix comes back with the model's channels
    ASSERT_EQ(got.frames, mix.frames);
    ASSERT_EQ(got.sample_rate, 48000);
    float err = 0.0f;
    for (size_t i = 0; i < got.samples.size(); ++i)
      err = std::max(err,
                     std::abs(got.samples[i] - expected[static_cast<size_t>(s)].audio.samples[i]));
    EXPECT_LT(err, 1e-5f) << names[s];
  }
}

// --shifts 0 equals Demucs bit for bit on CPU: the worker's stems against Demucs' procedure
// written with the same torch operations (torch_models.cpp), for a pointwise model batched four
// segments a call, a convolutional one a segment a call (as Demucs runs on CPU), a model with
// one traced length, and a --segment shorter than that length (chunks padded with neighbours).
TEST_F(TorchModels, ShiftsZeroEqualsDemucsBitForBit) {
  const std::string gain = path("exact_gain.pt");
  yw::test::save_gain_model(gain, {}, {0.5f, -1.0f, 2.0f, 0.25f});
  const std::string conv = path("exact_conv.pt");
  yw::test::save_conv_model(conv, {}, {8, 16}, 11);
  yw::test::TorchModelSpec fixed_spec;
  fixed_spec.segment_samples = 4410;
  const std::string fixed = path("exact_fixed.pt");
  yw::test::save_conv_model(fixed, fixed_spec, {8, 16}, 12);
  struct Case {
    std::string model;
    int batch;
    double chunk_seconds;  // 0: the window
    double overlap;
  };
  const Case cases[] = {{gain, 4, 0.0, 0.25},
                        {conv, 1, 0.0, 0.25},
                        {fixed, 1, 0.0, 0.25},
                        {fixed, 1, 0.06, 0.25},
                        {conv, 1, 0.0, 0.5}};
  const Audio mix = random_song(44100, 2, 4410 * 5 + 321, 77);
  for (const auto& c : cases) {
    yw::models::SeparatorOptions opt;
    opt.model_path = c.model;
    opt.threads = 2;
    opt.batch_max = c.batch;
    opt.batch_delay_ms = 0;
    opt.segment_seconds = 0.1;  // a 4410-sample window for the any-length models
    auto sep = yw::models::open_separator(opt);
    yw::models::SeparateOptions so;
    so.segment_seconds = c.chunk_seconds;
    so.overlap = c.overlap;
    const auto got = sep->separate(mix, so, {});
    const int64_t segment =
        c.chunk_seconds > 0 ? static_cast<int64_t>(c.chunk_seconds * 44100) : 4410;
    const auto want =
        yw::test::demucs_reference(c.model, mix.samples, 2, mix.frames, segment, 4410, c.overlap);
    ASSERT_EQ(got.size(), 4u);
    size_t differing = 0;
    for (size_t s = 0; s < 4; ++s)
      for (size_t i = 0; i < got[s].audio.samples.size(); ++i)
        differing += got[s].audio.samples[i] != want[s * got[s].audio.samples.size() + i];
    EXPECT_EQ(differing, 0u) << c.model << " segment " << segment << " overlap " << c.overlap;
  }
  // The statistics themselves, and the plain C++ ones used by models without torch.
  const auto [mean, scale] = yw::test::demucs_mix_stats(mix.samples, 2, mix.frames);
  const float* ch[] = {mix.channel(0), mix.channel(1)};
  const auto cpu = yw::models::mix_stats_cpu(ch, mix.frames);
  EXPECT_NEAR(cpu.mean, mean, 1e-6f * std::abs(mean) + 1e-9f);
  EXPECT_NEAR(cpu.scale, scale, 1e-6f * scale);
}

// The command line's Demucs options end to end: shifts with a seed reproduce, stems at the
// model's rate, 16-bit output rescaled as Demucs does, float32 output clamped.
TEST_F(TorchModels, CommandLineTakesDemucsOptions) {
  const std::string gain = path("cli_opts.pt");
  yw::test::save_gain_model(gain, {}, {0.5f, -1.0f, 2.0f, 0.25f});
  Audio mix = random_song(48000, 2, 24000, 9);
  for (auto& v : mix.samples)
    v *= 2.0f;  // "other" (x2) peaks well above 1
  const std::string wav = path("opts_song.wav");
  yw::write_audio_file(wav, yw::AudioFileFormat::wav, mix.samples.data(), 2, mix.frames, 48000);
  yw::test::ProcessOptions popt;
  popt.unset_env = {"YW_MODEL", "YW_DEVICE"};
  const auto run = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args{yw::test::worker_binary(),
                                  "separate",
                                  wav,
                                  "--out",
                                  path(out),
                                  "--model",
                                  gain,
                                  "--device",
                                  "cpu"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = yw::test::run_process(args, popt);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path(out) + "/opts_song/";
  };
  const std::vector<std::string> shifted{"--shifts",      "1",    "--seed",      "3",
                                         "--format",      "wav",  "--bit-depth", "16",
                                         "--output-rate", "model"};
  const auto a = run("opts_a", shifted);
  const auto b = run("opts_b", shifted);
  for (const char* stem : {"drums", "other"}) {
    const auto reader = yw::AudioReader::open(a + stem + ".wav");
    EXPECT_EQ(reader->info().sample_rate, 44100);
    EXPECT_EQ(reader->info().bits_per_sample, 16);
    const Audio x = yw::models::load_audio(a + stem + ".wav");
    const Audio y = yw::models::load_audio(b + stem + ".wav");
    EXPECT_EQ(x.samples, y.samples) << stem << ": the same seed must give the same file";
    float peak = 0.0f;
    for (float v : x.samples)
      peak = std::max(peak, std::abs(v));
    EXPECT_LE(peak, 1.0f / 1.01f + 1e-4f) << stem;
    if (std::string(stem) == "other") {
      EXPECT_GT(peak, 0.98f) << "rescaled to 1/1.01";
    }
  }
  const auto c = run("opts_c", {"--format", "wav", "--float32", "--clip-mode", "clamp"});
  const Audio other = yw::models::load_audio(c + "other.wav");
  EXPECT_EQ(other.sample_rate, 48000);
  float peak = 0.0f;
  for (float v : other.samples)
    peak = std::max(peak, std::abs(v));
  EXPECT_EQ(peak, 0.99f);
  // Bad combinations are usage errors, before any model is loaded.
  const auto bad =
      yw::test::run_process({yw::test::worker_binary(), "separate", wav, "--out", path("opts_bad"),
                             "--model", gain, "--float32", "--format", "flac"},
                            popt);
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("FLAC stores integer samples only"), std::string::npos) << bad.err;
}

// htdemucs_ft's shape: four networks, each source from its own one (one-hot weights), as a bag
// manifest; the bag runs through the same batched separator, and each stem equals its member's
// stem run alone, bit for bit. A bag with no weights averages its members.
TEST_F(TorchModels, BagsCombineMembersPerSourceThroughTheBatchedPath) {
  std::vector<std::string> members;
  for (int m = 0; m < 4; ++m) {
    members.push_back(path(fmt::format("ft_{}.pt", m)));
    yw::test::save_conv_model(members.back(), {}, {8, 16}, 100 + static_cast<uint64_t>(m));
  }
  const std::string bag = path("htdemucs_ft_like.json");
  std::ofstream(bag) << R"({"models": ["ft_0.pt", "ft_1.pt", "ft_2.pt", "ft_3.pt"],
    "weights": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]})";
  yw::models::SeparatorOptions opt;
  opt.threads = 2;
  opt.batch_max = 3;
  opt.batch_delay_ms = 0;
  opt.segment_seconds = 0.1;
  const Audio mix = random_song(44100, 2, 4410 * 4 + 17, 21);
  opt.model_path = bag;
  auto sep = yw::models::open_separator(opt);
  EXPECT_EQ(sep->name(), "htdemucs_ft_like");
  const auto got = sep->separate(mix);
  ASSERT_EQ(got.size(), 4u);
  for (size_t m = 0; m < 4; ++m) {
    opt.model_path = members[m];
    const auto alone = yw::models::open_separator(opt)->separate(mix);
    EXPECT_EQ(got[m].name, alone[m].name);
    EXPECT_EQ(got[m].audio.samples, alone[m].audio.samples) << "source " << m;
  }

  const std::string g1 = path("avg_1.pt"), g2 = path("avg_2.pt"), g12 = path("avg_12.pt");
  yw::test::save_gain_model(g1, {}, {1.0f, 0.0f, 2.0f, -1.0f});
  yw::test::save_gain_model(g2, {}, {0.0f, 1.0f, 1.0f, 0.5f});
  yw::test::save_gain_model(g12, {}, {0.5f, 0.5f, 1.5f, -0.25f});
  const std::string avg = path("avg.json");
  std::ofstream(avg) << R"({"models": ["avg_1.pt", ")" << g2 << R"("]})";
  opt.model_path = avg;
  const auto mean = yw::models::open_separator(opt)->separate(mix);
  opt.model_path = g12;
  EXPECT_LT(max_diff(mean, yw::models::open_separator(opt)->separate(mix)), 1e-6f);

  // Members that disagree, and broken manifests, are refused naming the bag.
  yw::test::TorchModelSpec six;
  six.sources = {"drums", "bass", "other", "vocals", "guitar", "piano"};
  yw::test::save_gain_model(path("six.pt"), six, {1, 1, 1, 1, 1, 1});
  const std::pair<std::string, std::string> bad[] = {
      {R"({"models": ["avg_1.pt", "six.pt"]})", "must agree"},
      {R"({"models": ["avg_1.pt"], "weights": [[1, 1]]})", "has 2 values for 4 sources"},
      {R"({"models": ["avg_1.pt"], "weights": [[1, 0, 1, 1]]})", "source 'bass' has no model"},
      {R"({"models": []})", "expected {"},
      {R"({"models": ["absent.pt"]})", "no such file"},
      {R"(not json)", "not JSON"},
  };
  for (const auto& [text, words] : bad) {
    const std::string p = path("bad_bag.json");
    std::ofstream(p) << text;
    const std::string err = open_error(p);
    EXPECT_NE(err.find(words), std::string::npos) << text << ": " << err;
  }
}

// htdemucs_6s's shape: six sources through the same batched, cross-song path.
TEST_F(TorchModels, SixSourceModelsRunThroughTheSamePath) {
  yw::test::TorchModelSpec six;
  six.sources = {"drums", "bass", "other", "vocals", "guitar", "piano"};
  const std::string gain = path("six_gain.pt");
  yw::test::save_gain_model(gain, six, {0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.5f});
  const std::string conv = path("six_conv.pt");
  yw::test::save_conv_model(conv, six, {8, 16}, 66);
  yw::models::SeparatorOptions opt;
  opt.threads = 2;
  opt.segment_seconds = 0.1;
  opt.batch_delay_ms = 0;
  opt.model_path = gain;
  const Audio mix = random_song(48000, 2, 20000, 12);
  const auto got = yw::models::open_separator(opt)->separate(mix);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[4].name, "guitar");
  EXPECT_EQ(got[5].name, "piano");
  EXPECT_LT(max_diff(got, whole_song(gain, mix, 6)), 1e-5f);

  opt.model_path = conv;
  std::vector<Audio> songs;
  for (unsigned i = 0; i < 3; ++i)
    songs.push_back(random_song(44100, 2, 9000 + 2000 * i, 70 + i));
  expect_cross_song_batches_change_nothing(opt, songs, 8, 6);
}

}  // namespace
