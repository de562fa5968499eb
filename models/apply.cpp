// ref: demucs/apply.py apply_model + TensorChunk.padded + center_trim (shifts, overlap, segment),
// and the mix normalisation of demucs/api.py (Separator.separate_tensor).
#include "yw/models/apply.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "yw/common/error.hpp"
#include "yw/kernels/resample.hpp"

namespace yw::models {

Audio Audio::zeros(int sample_rate, int channels, int64_t frames) {
  Audio a;
  a.sample_rate = sample_rate;
  a.channels = channels;
  a.frames = frames;
  a.samples.assign(static_cast<size_t>(channels * frames), 0.0f);
  return a;
}

Audio Audio::from_interleaved(const float* interleaved, int channels, int64_t frames,
                              int sample_rate) {
  Audio a = zeros(sample_rate, channels, frames);
  for (int64_t i = 0; i < frames; ++i)
    for (int c = 0; c < channels; ++c)
      a.samples[static_cast<size_t>(c * frames + i)] = interleaved[i * channels + c];
  return a;
}

MixStats mix_stats_cpu(std::span<const float* const> channels, int64_t length) {
  const auto n = static_cast<int64_t>(channels.size());
  YW_CHECK(n > 0 && length > 0, "mix_stats: no samples");
  const auto ref = [&](int64_t i) {
    float r = 0.0f;
    for (const float* c : channels)
      r += c[i];
    return r / static_cast<float>(n);
  };
  double sum = 0.0;
  for (int64_t i = 0; i < length; ++i)
    sum += ref(i);
  const auto mean = static_cast<float>(sum / static_cast<double>(length));
  double sq = 0.0;
  for (int64_t i = 0; i < length; ++i) {
    const double d = static_cast<double>(ref(i)) - mean;
    sq += d * d;
  }
  const auto std =
      length > 1 ? static_cast<float>(std::sqrt(sq / static_cast<double>(length - 1))) : 0.0f;
  return {mean, std + 1e-8f};
}

int64_t segment_length(const ModelInfo& info, const ApplyConfig& cfg) {
  if (info.segment_samples > 0) return info.segment_samples;
  const auto seg = static_cast<int64_t>(cfg.segment_seconds * info.sample_rate);
  YW_CHECK(seg >= 4, "apply: segment of {} s is too short at {} Hz", cfg.segment_seconds,
           info.sample_rate);
  return seg;
}

SongApply::SongApply(const SegmentModel& model, const ApplyConfig& cfg, const Audio& mix)
    : info_(model.info()),
      in_rate_(mix.sample_rate),
      in_frames_(mix.frames),
      model_rate_output_(cfg.model_rate_output) {
  const ModelInfo& info = info_;
  YW_CHECK_INPUT(mix.frames > 0 && mix.channels > 0 && mix.sample_rate > 0,
                 "audio: no samples to separate");
  YW_CHECK_INPUT(cfg.overlap >= 0.0 && cfg.overlap < 1.0,
                 "overlap: must be at least 0 and below 1, got {}", cfg.overlap);
  YW_CHECK_INPUT(cfg.shifts >= 0 && cfg.shifts <= 100, "shifts: must be 0 to 100, got {}",
                 cfg.shifts);
  const int channels = info.channels;
  YW_CHECK_INPUT(mix.channels == 1 || mix.channels >= channels || channels == 1,
                 "audio: {} channels cannot feed a {}-channel model (only mono is duplicated)",
                 mix.channels, channels);

  // Demucs' --segment: chunks of at most the model's window, each padded to the window.
  window_ = segment_length(info, cfg);
  segment_ = window_;
  if (cfg.chunk_seconds > 0.0) {
    segment_ = static_cast<int64_t>(cfg.chunk_seconds * info.sample_rate);
    YW_CHECK_INPUT(segment_ >= 4 && segment_ <= window_,
                   "segment: {} s is not within this model's 4 samples to {:.3f} s ({} samples at "
                   "{} Hz)",
                   cfg.chunk_seconds, static_cast<double>(window_) / info.sample_rate, window_,
                   info.sample_rate);
  }

  // Channel conversion at the input rate (demucs.audio.convert_audio_channels), then resampling.
  length_ = resampled_length(mix.frames, mix.sample_rate, info.sample_rate);
  const bool same_rate = mix.sample_rate == info.sample_rate;
  if (same_rate && (mix.channels == channels || (mix.channels == 1 && channels > 1) ||
                    (mix.channels > channels && channels > 1))) {
    for (int c = 0; c < channels; ++c)
      mix_.push_back(mix.channel(mix.channels == 1 ? 0 : c));
  } else {
    converted_.assign(static_cast<size_t>(channels * length_), 0.0f);
    std::vector<float> mono;
    if (channels == 1 && mix.channels > 1) {
      mono.assign(static_cast<size_t>(mix.frames), 0.0f);
      for (int c = 0; c < mix.channels; ++c)
        for (int64_t i = 0; i < mix.frames; ++i)
          mono[static_cast<size_t>(i)] += mix.channel(c)[i] / static_cast<float>(mix.channels);
    }
    for (int c = 0; c < channels; ++c) {
      float* dst = &converted_[static_cast<size_t>(c * length_)];
      const float* src = !mono.empty() ? mono.data() : mix.channel(mix.channels == 1 ? 0 : c);
      resample_cpu(src, mix.frames, mix.sample_rate, info.sample_rate, dst, length_);
      mix_.push_back(dst);
    }
  }

  const MixStats stats = model.mix_stats(mix_, length_);
  mean_ = stats.mean;
  scale_ = stats.scale;

  // Python's int((1 - overlap) * segment), as apply_model computes the stride.
  stride_ = std::max<int64_t>(
      1, static_cast<int64_t>((1.0 - cfg.overlap) * static_cast<double>(segment_)));
  if (cfg.shifts == 0) {
    shifts_.push_back({0, length_, 0, (length_ + stride_ - 1) / stride_});
  } else {
    averaged_ = true;
    const auto max_shift = static_cast<int64_t>(0.5 * info.sample_rate);
    std::mt19937_64 rng(cfg.seed);
    int64_t first = 0;
    for (int k = 0; k < cfg.shifts; ++k) {
      const auto offset = static_cast<int64_t>(rng() % static_cast<uint64_t>(max_shift + 1));
      const int64_t delay = max_shift - offset;
      const int64_t len = length_ + delay;
      const int64_t count = (len + stride_ - 1) / stride_;
      shifts_.push_back({delay, len, first, count});
      first += count;
    }
  }
  segments_ = shifts_.back().first + shifts_.back().count;
  weight_.resize(static_cast<size_t>(segment_));
  const int64_t half = segment_ / 2;
  const double wmax = static_cast<double>(std::max(half, segment_ - half));
  for (int64_t k = 0; k < segment_; ++k) {
    const int64_t w = k < half ? k + 1 : segment_ - k;
    weight_[static_cast<size_t>(k)] = static_cast<float>(static_cast<double>(w) / wmax);
  }
  acc_.resize(info.sources.size());
  for (auto& a : acc_)
    a.assign(static_cast<size_t>(channels * length_), 0.0f);
  if (!averaged_) weight_sum_.assign(static_cast<size_t>(length_), 0.0f);
}

const SongApply::Shift& SongApply::shift_of(int64_t index) const {
  for (const auto& sh : shifts_)
    if (index < sh.first + sh.count) return sh;
  YW_THROW("apply: segment {} out of range", index);
}

float SongApply::weight_sum_at(int64_t p) const {
  // Chunks j with j * stride <= p < j * stride + segment (p lies within the shift's timeline,
  // so no chunk is cut short before p), in increasing j as apply_model adds them.
  const int64_t j_last = p / stride_;
  const int64_t j_first = p < segment_ ? 0 : (p - segment_) / stride_ + 1;
  float sum = 0.0f;
  for (int64_t j = j_first; j <= j_last; ++j)
    sum += weight_[static_cast<size_t>(p - j * stride_)];
  return sum;
}

int64_t SongApply::fill_next(float* dst) {
  YW_CHECK(has_next(), "apply: no segment left");
  const int64_t index = next_++;
  const Shift& sh = shift_of(index);
  const int64_t offset = (index - sh.first) * stride_;
  const int64_t chunk = std::min(segment_, sh.length - offset);
  // The window centred on the chunk, in the mix's own samples (a shift delays the song).
  const int64_t start = offset - (window_ - chunk) / 2 - sh.delay;
  for (int c = 0; c < info_.channels; ++c) {
    const float* src = mix_[static_cast<size_t>(c)];
    float* d = dst + c * window_;
    for (int64_t k = 0; k < window_; ++k) {
      const int64_t s = start + k;
      d[k] = (s >= 0 && s < length_) ? (src[s] - mean_) / scale_ : 0.0f;
    }
  }
  return index;
}

void SongApply::accumulate(int64_t index, const float* out) {
  const Shift& sh = shift_of(index);
  const int64_t offset = (index - sh.first) * stride_;
  const int64_t chunk = std::min(segment_, sh.length - offset);
  const int64_t trim = (window_ - chunk) / 2;
  // The part of the chunk that lands on the song (a shifted song's first `delay` samples are
  // the padding Demucs drops).
  const int64_t skip = std::max<int64_t>(0, sh.delay - offset);
  if (skip >= chunk) {
    ++done_;
    return;
  }
  const int64_t dst0 = offset + skip - sh.delay;
  std::vector<float> w(weight_.begin() + skip, weight_.begin() + chunk);
  if (averaged_)
    for (int64_t k = skip; k < chunk; ++k)
      w[static_cast<size_t>(k - skip)] /= weight_sum_at(offset + k);
  const auto n = static_cast<int64_t>(w.size());
  const auto sources = static_cast<int64_t>(info_.sources.size());
  for (int64_t s = 0; s < sources; ++s) {
    for (int c = 0; c < info_.channels; ++c) {
      const float* o = out + (s * info_.channels + c) * window_ + trim + skip;
      float* a = &acc_[static_cast<size_t>(s)][static_cast<size_t>(c * length_ + dst0)];
      for (int64_t k = 0; k < n; ++k)
        a[k] += w[static_cast<size_t>(k)] * o[k];
    }
  }
  if (!averaged_)
    for (int64_t k = 0; k < n; ++k)
      weight_sum_[static_cast<size_t>(dst0 + k)] += w[static_cast<size_t>(k)];
  ++done_;
}

std::vector<Stem> SongApply::finish() {
  YW_CHECK(complete(), "apply: {} of {} segments still missing", segments_ - done_, segments_);
  converted_ = {};
  mix_.clear();
  const int channels = info_.channels;
  const auto shifts = static_cast<float>(shifts_.size());
  const bool at_model_rate = model_rate_output_ || in_rate_ == info_.sample_rate;
  std::vector<Stem> stems;
  for (size_t s = 0; s < info_.sources.size(); ++s) {
    std::vector<float>& a = acc_[s];
    // float32 throughout, in Demucs' order: out /= sum_weight (or /= shifts), then
    // out *= std + 1e-8, out += mean.
    for (int c = 0; c < channels; ++c) {
      float* row = &a[static_cast<size_t>(c * length_)];
      for (int64_t i = 0; i < length_; ++i) {
        float v = averaged_ ? row[i] / shifts : row[i] / weight_sum_[static_cast<size_t>(i)];
        v = v * scale_;
        row[i] = v + mean_;
      }
    }
    Stem stem{info_.sources[s], {}};
    if (at_model_rate) {
      stem.audio.sample_rate = info_.sample_rate;
      stem.audio.channels = channels;
      stem.audio.frames = length_;
      stem.audio.samples = std::move(a);
    } else {
      stem.audio = Audio::zeros(in_rate_, channels, in_frames_);
      for (int c = 0; c < channels; ++c)
        resample_cpu(&a[static_cast<size_t>(c * length_)], length_, info_.sample_rate, in_rate_,
                     stem.audio.channel(c), in_frames_);
      a = {};
    }
    stems.push_back(std::move(stem));
  }
  acc_.clear();
  weight_sum_ = {};
  return stems;
}

std::vector<std::vector<Stem>> apply_model(SegmentModel& model, std::span<const Audio* const> songs,
                                           const ApplyConfig& cfg,
                                           const std::function<void(size_t, double)>& progress) {
  YW_CHECK(cfg.batch_max >= 1, "apply: batch_max must be >= 1, got {}", cfg.batch_max);
  const ModelInfo& info = model.info();
  std::vector<std::unique_ptr<SongApply>> states;
  for (const Audio* song : songs)
    states.push_back(std::make_unique<SongApply>(model, cfg, *song));
  const int64_t segment = segment_length(info, cfg);
  const int64_t in_size = info.channels * segment;
  const int64_t out_size = static_cast<int64_t>(info.sources.size()) * in_size;
  std::vector<float> in(static_cast<size_t>(cfg.batch_max * in_size));
  std::vector<float> out(static_cast<size_t>(cfg.batch_max * out_size));
  std::vector<std::pair<size_t, int64_t>> batch;  // (song, segment index)

  size_t cursor = 0;
  for (;;) {
    batch.clear();
    // Round-robin over songs with segments left, so every song in flight advances each batch.
    for (size_t tried = 0; tried < states.size() * static_cast<size_t>(cfg.batch_max) &&
                           static_cast<int>(batch.size()) < cfg.batch_max;
         ++tried) {
      const size_t s = cursor++ % states.size();
      if (!states[s]->has_next()) continue;
      const int64_t index = states[s]->fill_next(
          &in[static_cast<size_t>(static_cast<int64_t>(batch.size()) * in_size)]);
      batch.emplace_back(s, index);
    }
    if (batch.empty()) break;
    model.forward(in.data(), static_cast<int>(batch.size()), segment, out.data());
    for (size_t b = 0; b < batch.size(); ++b) {
      auto& st = *states[batch[b].first];
      st.accumulate(batch[b].second, &out[b * static_cast<size_t>(out_size)]);
      if (progress) progress(batch[b].first, st.progress());
    }
  }
  std::vector<std::vector<Stem>> result;
  for (auto& st : states)
    result.push_back(st->finish());
  return result;
}

}  // namespace yw::models
