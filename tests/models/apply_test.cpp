// The Demucs apply procedure with plain C++ segment models: chunked, batched apply against a
// whole-song computation written out here, cross-song batching, and the batched separator's
// thread-safety. (The same checks with TorchScript models are in torch_model_test.cpp.)
#include <gtest/gtest.h>
#include <atomic>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/resample.hpp"
#include "yw/models/apply.hpp"
#include "yw/models/separator.hpp"

namespace {

using yw::models::ApplyConfig;
using yw::models::Audio;
using yw::models::ModelInfo;
using yw::models::SegmentModel;
using yw::models::Stem;

Audio random_song(int rate, int channels, int64_t frames, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.05f, 0.2f);  // a non-zero mean exercises de-normalisation
  Audio a = Audio::zeros(rate, channels, frames);
  for (auto& v : a.samples)
    v = d(rng);
  return a;
}

// Source s = gain[s] * input: pointwise, so chunking must not change anything.
class GainModel : public SegmentModel {
 public:
  explicit GainModel(int channels, int64_t segment = 0) {
    info_.sources = {"drums", "bass", "other", "vocals"};
    info_.sample_rate = 44100;
    info_.channels = channels;
    info_.segment_samples = segment;
  }
  const ModelInfo& info() const override { return info_; }
  void forward(const float* in, int batch, int64_t length, float* out) override {
    {
      std::lock_guard lock(m_);
      batches.push_back(batch);
      if (info_.segment_samples) {
        EXPECT_EQ(length, info_.segment_samples);
      }
    }
    const int64_t c = info_.channels;
    const auto s = static_cast<int64_t>(info_.sources.size());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t k = 0; k < s; ++k)
        for (int64_t i = 0; i < c * length; ++i)
          out[(b * s + k) * c * length + i] = kGains[k] * in[b * c * length + i];
  }
  static constexpr float kGains[4] = {0.5f, -1.0f, 2.0f, 0.25f};
  std::mutex m_;
  std::vector<int> batches;

 private:
  ModelInfo info_;
};

// A model with temporal context (a 9-tap FIR per source), so padding and cross-fades matter.
class FirModel : public GainModel {
 public:
  FirModel() : GainModel(2) {}
  void forward(const float* in, int batch, int64_t length, float* out) override {
    const int64_t c = info().channels;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t k = 0; k < 4; ++k)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t t = 0; t < length; ++t) {
            float acc = 0.0f;
            for (int64_t j = -4; j <= 4; ++j)
              if (t + j >= 0 && t + j < length)
                acc += in[(b * c + ch) * length + t + j] * static_cast<float>(k + 1 + j) * 0.1f;
            out[((b * 4 + k) * c + ch) * length + t] = acc;
          }
    std::lock_guard lock(m_);
    batches.push_back(batch);
  }
};

// Whole-song reference for the gain model, written from the Demucs procedure directly.
std::vector<Stem> gain_reference(const Audio& mix, int model_channels) {
  const int64_t len = yw::resampled_length(mix.frames, mix.sample_rate, 44100);
  std::vector<std::vector<float>> ch;
  for (int c = 0; c < model_channels; ++c)
    ch.push_back(yw::resample_cpu(mix.channel(mix.channels == 1 ? 0 : c), mix.frames,
                                  mix.sample_rate, 44100));
  double sum = 0.0;
  std::vector<double> ref(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) {
    for (int c = 0; c < model_channels; ++c)
      ref[static_cast<size_t>(i)] += ch[static_cast<size_t>(c)][static_cast<size_t>(i)];
    ref[static_cast<size_t>(i)] /= model_channels;
    sum += ref[static_cast<size_t>(i)];
  }
  const double mean = sum / static_cast<double>(len);
  double var = 0.0;
  for (double r : ref)
    var += (r - mean) * (r - mean);
  const double std = std::sqrt(var / static_cast<double>(len - 1)) + 1e-8;
  std::vector<Stem> stems;
  const char* names[] = {"drums", "bass", "other", "vocals"};
  for (int k = 0; k < 4; ++k) {
    Stem st{names[k], Audio::zeros(mix.sample_rate, model_channels, mix.frames)};
    for (int c = 0; c < model_channels; ++c) {
      std::vector<float> y(static_cast<size_t>(len));
      for (int64_t i = 0; i < len; ++i) {
        const double xn = (ch[static_cast<size_t>(c)][static_cast<size_t>(i)] - mean) / std;
        y[static_cast<size_t>(i)] = static_cast<float>(GainModel::kGains[k] * xn * std + mean);
      }
      yw::resample_cpu(y.data(), len, 44100, mix.sample_rate, st.audio.channel(c), mix.frames);
    }
    stems.push_back(std::move(st));
  }
  return stems;
}

float max_diff(const std::vector<Stem>& a, const std::vector<Stem>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.0f;
  for (size_t s = 0; s < std::min(a.size(), b.size()); ++s) {
    EXPECT_EQ(a[s].name, b[s].name);
    EXPECT_EQ(a[s].audio.samples.size(), b[s].audio.samples.size());
    for (size_t i = 0; i < std::min(a[s].audio.samples.size(), b[s].audio.samples.size()); ++i)
      m = std::max(m, std::abs(a[s].audio.samples[i] - b[s].audio.samples[i]));
  }
  return m;
}

TEST(Apply, ChunkedBatchedEqualsWholeSongForPointwiseModel) {
  ApplyConfig cfg;
  cfg.segment_seconds = 0.1;  // 4410 samples at the model rate
  cfg.batch_max = 3;
  const int64_t seg = 4410;
  for (int rate : {22050, 44100, 48000}) {
    for (int channels : {1, 2}) {
      // Shorter than a segment, exactly one segment, and many segments (model-rate lengths).
      for (int64_t model_len : {seg / 3, seg, 7 * seg + 123}) {
        const int64_t frames = model_len * rate / 44100;
        const Audio mix =
            random_song(rate, channels, frames, static_cast<unsigned>(frames + channels));
        GainModel model(2);
        const Audio* songs[] = {&mix};
        const auto got = yw::models::apply_model(model, songs, cfg);
        ASSERT_EQ(got.size(), 1u);
        ASSERT_EQ(got[0][0].audio.frames, frames);
        ASSERT_EQ(got[0][0].audio.sample_rate, rate);
        EXPECT_LT(max_diff(got[0], gain_reference(mix, 2)), 1e-5f)
            << rate << " Hz, " << channels << " ch, " << model_len << " model samples";
      }
    }
  }
}

TEST(Apply, SegmentsOfSeveralSongsShareBatchesAndGiveTheSameStems) {
  ApplyConfig cfg;
  cfg.segment_seconds = 0.05;
  cfg.batch_max = 8;
  const Audio a = random_song(44100, 2, 5000, 1), b = random_song(48000, 1, 9000, 2),
              c = random_song(22050, 2, 700, 3);
  std::vector<std::vector<Stem>> alone;
  for (const Audio* s : {&a, &b, &c}) {
    FirModel m;
    const Audio* one[] = {s};
    alone.push_back(yw::models::apply_model(m, one, cfg)[0]);
  }
  FirModel m;
  const Audio* all[] = {&a, &b, &c};
  const auto together = yw::models::apply_model(m, all, cfg);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_LT(max_diff(together[i], alone[i]), 1e-6f) << "song " << i;
  // 3 + 5 + 1 segments: the first batch is full and mixes all three songs.
  ASSERT_FALSE(m.batches.empty());
  EXPECT_EQ(m.batches[0], 8);
}

TEST(Apply, FixedLengthModelsGetExactlyTheirLength) {
  ApplyConfig cfg;
  GainModel model(2, 3000);
  const Audio mix = random_song(44100, 2, 10000, 9);
  const Audio* songs[] = {&mix};
  const auto got = yw::models::apply_model(model, songs, cfg);  // the model checks the length
  EXPECT_LT(max_diff(got[0], gain_reference(mix, 2)), 1e-5f);
}

TEST(Apply, SilenceGivesSilentStems) {
  ApplyConfig cfg;
  cfg.segment_seconds = 0.1;
  GainModel model(2);
  const Audio mix = Audio::zeros(44100, 2, 10000);
  const Audio* songs[] = {&mix};
  const auto got = yw::models::apply_model(model, songs, cfg);
  for (const auto& st : got[0])
    for (float v : st.audio.samples)
      ASSERT_EQ(v, 0.0f);
}

TEST(Apply, RejectsUnusableAudio) {
  ApplyConfig cfg;
  GainModel model(2);
  const Audio empty = Audio::zeros(44100, 2, 0);
  EXPECT_THROW(yw::models::SongApply(model, cfg, empty), yw::InputError);
  GainModel six(6);
  const Audio stereo = random_song(44100, 2, 100, 1);
  EXPECT_THROW(yw::models::SongApply(six, cfg, stereo), yw::InputError);
}

// Shifts: each shift separates the song delayed by a random amount and the outputs, moved back,
// are averaged. A pointwise model gives the same stems whatever the delay, so any misalignment
// or wrong weight sum shows; a model with context differs near chunk edges, which move with the
// seed, and a seed reproduces its stems exactly.
TEST(Apply, ShiftsAverageAlignedOutputsAndASeedReproducesThem) {
  ApplyConfig cfg;
  cfg.segment_seconds = 0.1;
  cfg.batch_max = 4;
  const Audio mix = random_song(44100, 2, 4410 * 6 + 99, 31);
  const Audio* songs[] = {&mix};
  for (int shifts : {1, 3}) {
    cfg.shifts = shifts;
    cfg.seed = 5;
    GainModel gain(2);
    EXPECT_LT(max_diff(yw::models::apply_model(gain, songs, cfg)[0], gain_reference(mix, 2)), 1e-5f)
        << shifts << " shifts";
    // Each shift is a whole pass over the song plus up to max_shift samples.
    yw::models::SongApply probe(gain, cfg, mix);
    EXPECT_GE(probe.segment_count(), shifts * 9);
    EXPECT_LE(probe.segment_count(), shifts * 13);
  }
  cfg.shifts = 1;
  FirModel a, b, c, unshifted;
  cfg.seed = 1;
  const auto first = yw::models::apply_model(a, songs, cfg)[0];
  const auto again = yw::models::apply_model(b, songs, cfg)[0];
  EXPECT_EQ(max_diff(first, again), 0.0f) << "the same seed must give the same stems";
  cfg.seed = 2;
  const auto other = yw::models::apply_model(c, songs, cfg)[0];
  EXPECT_GT(max_diff(first, other), 1e-4f) << "another seed moves the chunk edges";
  cfg.shifts = 0;
  const auto plain = yw::models::apply_model(unshifted, songs, cfg)[0];
  EXPECT_GT(max_diff(first, plain), 1e-4f);
  EXPECT_LT(max_diff(first, plain), 0.5f);
}

TEST(Apply, OverlapSegmentAndOutputRateOptions) {
  ApplyConfig cfg;
  cfg.segment_seconds = 0.1;  // the window: 4410 samples
  const Audio mix = random_song(48000, 2, 30000, 8);
  const Audio* songs[] = {&mix};
  for (double overlap : {0.0, 0.5, 0.9}) {
    for (double chunk : {0.0, 0.05}) {
      cfg.overlap = overlap;
      cfg.chunk_seconds = chunk;
      GainModel gain(2, 4410);  // checks every forward gets the whole window
      EXPECT_LT(max_diff(yw::models::apply_model(gain, songs, cfg)[0], gain_reference(mix, 2)),
                1e-5f)
          << "overlap " << overlap << " segment " << chunk;
    }
  }
  // Chunks of half the window, three quarters apart: twice the segments of whole windows.
  GainModel gain(2, 4410);
  cfg.overlap = 0.25;
  cfg.chunk_seconds = 0.05;
  const int64_t model_len = yw::resampled_length(mix.frames, 48000, 44100);
  EXPECT_EQ(yw::models::SongApply(gain, cfg, mix).segment_count(), (model_len + 1652) / 1653);
  cfg.chunk_seconds = 0.2;  // longer than the window
  EXPECT_THROW(yw::models::SongApply(gain, cfg, mix), yw::InputError);
  cfg.chunk_seconds = 0.0;
  cfg.overlap = 1.0;
  EXPECT_THROW(yw::models::SongApply(gain, cfg, mix), yw::InputError);
  cfg.overlap = 0.25;
  cfg.shifts = -1;
  EXPECT_THROW(yw::models::SongApply(gain, cfg, mix), yw::InputError);
  cfg.shifts = 0;

  // Stems at the model's rate are the model-rate stems before they are resampled back.
  const auto at_input = yw::models::apply_model(gain, songs, cfg)[0];
  cfg.model_rate_output = true;
  const auto at_model = yw::models::apply_model(gain, songs, cfg)[0];
  ASSERT_EQ(at_model[0].audio.sample_rate, 44100);
  ASSERT_EQ(at_model[0].audio.frames, model_len);
  for (size_t s = 0; s < 4; ++s) {
    const auto back = yw::resample_cpu(at_model[s].audio.channel(1), model_len, 44100, 48000);
    ASSERT_EQ(at_input[s].audio.frames, mix.frames);
    for (int64_t i = 0; i < mix.frames; ++i)
      ASSERT_EQ(back[static_cast<size_t>(i)], at_input[s].audio.channel(1)[i]) << s << " " << i;
  }
}

TEST(StemOutput, ClipModesFollowDemucs) {
  Audio loud = Audio::zeros(44100, 1, 4);
  loud.samples = {0.5f, -2.0f, 1.5f, 0.1f};
  Audio r = loud;
  yw::models::prevent_clip(r, yw::models::ClipMode::rescale);  // / max(1.01 * 2, 1)
  EXPECT_FLOAT_EQ(r.samples[1], -2.0f / 2.02f);
  EXPECT_FLOAT_EQ(r.samples[0], 0.5f / 2.02f);
  Audio quiet = Audio::zeros(44100, 1, 2);
  quiet.samples = {0.5f, -0.9f};
  Audio q = quiet;
  yw::models::prevent_clip(q, yw::models::ClipMode::rescale);  // peak * 1.01 < 1: unchanged
  EXPECT_EQ(q.samples, quiet.samples);
  Audio c = loud;
  yw::models::prevent_clip(c, yw::models::ClipMode::clamp);
  EXPECT_EQ(c.samples, (std::vector<float>{0.5f, -0.99f, 0.99f, 0.1f}));
  Audio n = loud;
  yw::models::prevent_clip(n, yw::models::ClipMode::none);
  EXPECT_EQ(n.samples, loud.samples);
  EXPECT_EQ(yw::models::parse_clip_mode("clamp", "clip_mode"), yw::models::ClipMode::clamp);
  EXPECT_THROW(yw::models::parse_clip_mode("tanh", "clip_mode"), yw::InputError);
}

TEST(BatchedSeparator, ConcurrentSongsShareForwardBatches) {
  auto owned = std::make_unique<FirModel>();
  FirModel* model = owned.get();
  yw::models::SeparatorOptions opt;
  opt.batch_max = 6;
  opt.batch_delay_ms = 5000;   // long: the first batch waits until all three songs are in
  opt.segment_seconds = 0.05;  // 2205 samples, stride 1653
  auto sep = yw::models::make_batched_separator(std::move(owned), opt, "fir");
  // Two segments each (3000 samples): only a batch mixing songs can hold six.
  std::vector<Audio> songs;
  for (unsigned i = 0; i < 3; ++i)
    songs.push_back(random_song(44100, 2, 3000, 20 + i));
  std::vector<std::vector<Stem>> got(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 3; ++i)
    threads.emplace_back([&, i] { got[i] = sep->separate(songs[i]); });
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(model->batches.size(), 1u);
  EXPECT_EQ(model->batches[0], 6);
  ApplyConfig cfg;
  cfg.segment_seconds = opt.segment_seconds;
  for (size_t i = 0; i < 3; ++i) {
    FirModel alone;
    const Audio* one[] = {&songs[i]};
    EXPECT_LT(max_diff(got[i], yw::models::apply_model(alone, one, cfg)[0]), 1e-6f);
  }
}

TEST(BatchedSeparator, ModelFailureReachesEveryWaitingSong) {
  class Broken : public GainModel {
   public:
    Broken() : GainModel(2) {}
    void forward(const float*, int, int64_t, float*) override { YW_THROW("boom"); }
  };
  yw::models::SeparatorOptions opt;
  opt.segment_seconds = 0.05;
  auto sep = yw::models::make_batched_separator(std::make_unique<Broken>(), opt, "broken");
  const Audio song = random_song(44100, 2, 3000, 1);
  EXPECT_THROW(sep->separate(song), yw::Error);
  EXPECT_THROW(sep->separate(song), yw::Error);  // the runner survives a failure
}

// A sticky CUDA error (libtorch's words for an illegal address) is not retried in halves: one
// forward, the song fails back retryable naming the error, and the device is marked unhealthy.
TEST(BatchedSeparator, StickyDeviceErrorFailsBackWithoutHalving) {
  class Faulty : public GainModel {
   public:
    Faulty() : GainModel(2) {}
    void forward(const float*, int, int64_t, float*) override {
      ++calls;
      YW_THROW("CUDA error: an illegal memory access was encountered");
    }
    std::atomic<int> calls{0};
  };
  yw::DeviceHealth::global().reset();
  auto owned = std::make_unique<Faulty>();
  Faulty* model = owned.get();
  yw::models::SeparatorOptions opt;
  opt.segment_seconds = 0.05;
  auto sep = yw::models::make_batched_separator(std::move(owned), opt, "faulty");
  const Audio song = random_song(44100, 2, 3000, 1);
  try {
    sep->separate(song);
    ADD_FAILURE() << "the fault was not reported";
  } catch (const yw::Error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("illegal memory access"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model->calls.load(), 1) << "no retry in halves on a poisoned context";
  ASSERT_TRUE(yw::DeviceHealth::global().problem().has_value());
  yw::DeviceHealth::global().reset();
}

TEST(BatchedSeparator, OutOfMemoryHalvesTheBatchAndEverySongCompletes) {
  // Refuses any forward of more than two segments, as a GPU out of memory would.
  class Small : public FirModel {
   public:
    void forward(const float* in, int batch, int64_t length, float* out) override {
      if (batch > 2) YW_THROW("CUDA out of memory ({} segments)", batch);
      FirModel::forward(in, batch, length, out);
    }
  };
  auto owned = std::make_unique<Small>();
  Small* model = owned.get();
  yw::models::SeparatorOptions opt;
  opt.batch_max = 6;
  opt.batch_delay_ms = 5000;
  opt.segment_seconds = 0.05;
  std::vector<int> observed;
  opt.on_batch = [&](int segments, double seconds) {
    observed.push_back(segments);
    EXPECT_GE(seconds, 0.0);
  };
  auto sep = yw::models::make_batched_separator(std::move(owned), opt, "small");
  std::vector<Audio> songs;
  for (unsigned i = 0; i < 3; ++i)
    songs.push_back(random_song(44100, 2, 3000, 40 + i));
  std::vector<std::vector<Stem>> got(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 3; ++i)
    threads.emplace_back([&, i] { got[i] = sep->separate(songs[i]); });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(observed, std::vector<int>{6}) << "one batch of six was asked for";
  for (const int b : model->batches)
    EXPECT_LE(b, 2) << "only halves reached the model";
  ApplyConfig cfg;
  cfg.segment_seconds = opt.segment_seconds;
  for (size_t i = 0; i < 3; ++i) {
    FirModel alone;
    const Audio* one[] = {&songs[i]};
    EXPECT_LT(max_diff(got[i], yw::models::apply_model(alone, one, cfg)[0]), 1e-6f) << i;
  }
}

TEST(BatchedSeparator, ASegmentThatFailsAloneFailsOnlyItsSong) {
  // Fails any forward that holds an all-zero segment: only the silent song's segments are.
  class Picky : public FirModel {
   public:
    void forward(const float* in, int batch, int64_t length, float* out) override {
      for (int b = 0; b < batch; ++b) {
        const float* seg = in + static_cast<int64_t>(b) * 2 * length;
        if (std::all_of(seg, seg + 2 * length, [](float v) { return v == 0.0f; }))
          YW_THROW("cannot separate silence");
      }
      FirModel::forward(in, batch, length, out);
    }
  };
  yw::models::SeparatorOptions opt;
  opt.batch_max = 6;
  opt.batch_delay_ms = 5000;
  opt.segment_seconds = 0.05;
  auto sep = yw::models::make_batched_separator(std::make_unique<Picky>(), opt, "picky");
  std::vector<Audio> songs = {random_song(44100, 2, 3000, 60), Audio::zeros(44100, 2, 3000),
                              random_song(44100, 2, 3000, 62)};
  std::vector<std::string> outcome(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      try {
        sep->separate(songs[i]);
        outcome[i] = "ok";
      } catch (const yw::Error& e) {
        outcome[i] = e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(outcome[0], "ok");
  EXPECT_NE(outcome[1].find("cannot separate silence"), std::string::npos) << outcome[1];
  EXPECT_EQ(outcome[2], "ok");
}

TEST(BuiltinSeparator, NeverLoadsTorch) {
  yw::models::SeparatorOptions opt;  // no model: the built-in separator on the CPU
  auto sep = yw::models::open_separator(opt);
  EXPECT_EQ(sep->name(), "hpss");
  const Audio mix = random_song(44100, 2, 20000, 4);
  const auto stems = sep->separate(mix);
  ASSERT_EQ(stems.size(), 2u);
  EXPECT_EQ(stems[0].name, "harmonic");
  EXPECT_EQ(stems[1].name, "percussive");
  for (int c = 0; c < 2; ++c)
    for (int64_t i = 0; i < mix.frames; ++i)
      ASSERT_NEAR(stems[0].audio.channel(c)[i] + stems[1].audio.channel(c)[i], mix.channel(c)[i],
                  1e-4f);
  EXPECT_FALSE(yw::models::torch_runtime_loaded());
  // Not merely unused: libtorch is not mapped into this process at all.
  EXPECT_EQ(::dlopen("libtorch_cpu.so.1.13", RTLD_NOW | RTLD_NOLOAD), nullptr);
  EXPECT_EQ(::dlopen("libc10.so", RTLD_NOW | RTLD_NOLOAD), nullptr);
}

TEST(Separator, MissingModelIsAConfigError) {
  yw::models::SeparatorOptions opt;
  opt.model_path = "/nonexistent/model.pt";
  try {
    yw::models::open_separator(opt);
    FAIL() << "expected ConfigError";
  } catch (const yw::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.pt"), std::string::npos) << e.what();
  }
}

}  // namespace
