// ref: demucs/apply.py apply_model + TensorChunk.padded + center_trim (shifts = 0), and the
// mix normalisation of demucs/separate.py.
#include "yw/models/apply.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

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

int64_t segment_length(const ModelInfo& info, const ApplyConfig& cfg) {
  if (info.segment_samples > 0) return info.segment_samples;
  const auto seg = static_cast<int64_t>(cfg.segment_seconds * info.sample_rate);
  YW_CHECK(seg >= 4, "apply: segment of {} s is too short at {} Hz", cfg.segment_seconds,
           info.sample_rate);
  return seg;
}

SongApply::SongApply(const ModelInfo& info, const ApplyConfig& cfg, const Audio& mix)
    : info_(info), in_rate_(mix.sample_rate), in_frames_(mix.frames) {
  YW_CHECK_INPUT(mix.frames > 0 && mix.channels > 0 && mix.sample_rate > 0,
                 "audio: no samples to separate");
  YW_CHECK(cfg.overlap >= 0.0 && cfg.overlap < 1.0, "apply: overlap must be in [0, 1), got {}",
           cfg.overlap);
  const int channels = info.channels;
  YW_CHECK_INPUT(mix.channels == 1 || mix.channels >= channels || channels == 1,
                 "audio: {} channels cannot feed a {}-channel model (only mono is duplicated)",
                 mix.channels, channels);

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

  // ref = channel average; mean and unbiased std over time, in double for long songs.
  double sum = 0.0, sum2 = 0.0;
  for (int64_t i = 0; i < length_; ++i) {
    double r = 0.0;
    for (int c = 0; c < channels; ++c)
      r += mix_[static_cast<size_t>(c)][i];
    r /= channels;
    sum += r;
    sum2 += r * r;
  }
  mean_ = sum / static_cast<double>(length_);
  const double var =
      length_ > 1 ? std::max(0.0, (sum2 - sum * mean_) / static_cast<double>(length_ - 1)) : 0.0;
  scale_ = std::sqrt(var) + 1e-8;

  segment_ = segment_length(info, cfg);
  stride_ = std::max<int64_t>(
      1, static_cast<int64_t>((1.0 - cfg.overlap) * static_cast<double>(segment_)));
  segments_ = (length_ + stride_ - 1) / stride_;
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
  weight_sum_.assign(static_cast<size_t>(length_), 0.0f);
}

int64_t SongApply::fill_next(float* dst) {
  YW_CHECK(has_next(), "apply: no segment left");
  const int64_t index = next_++;
  const int64_t offset = index * stride_;
  const int64_t chunk = std::min(segment_, length_ - offset);
  const int64_t start = offset - (segment_ - chunk) / 2;
  for (int c = 0; c < info_.channels; ++c) {
    const float* src = mix_[static_cast<size_t>(c)];
    float* d = dst + c * segment_;
    for (int64_t k = 0; k < segment_; ++k) {
      const int64_t s = start + k;
      d[k] = (s >= 0 && s < length_) ? static_cast<float>((src[s] - mean_) / scale_) : 0.0f;
    }
  }
  return index;
}

void SongApply::accumulate(int64_t index, const float* out) {
  const int64_t offset = index * stride_;
  const int64_t chunk = std::min(segment_, length_ - offset);
  const int64_t trim = (segment_ - chunk) / 2;
  const auto sources = static_cast<int64_t>(info_.sources.size());
  for (int64_t s = 0; s < sources; ++s) {
    for (int c = 0; c < info_.channels; ++c) {
      const float* o = out + (s * info_.channels + c) * segment_ + trim;
      float* a = &acc_[static_cast<size_t>(s)][static_cast<size_t>(c * length_ + offset)];
      for (int64_t k = 0; k < chunk; ++k)
        a[k] += weight_[static_cast<size_t>(k)] * o[k];
    }
  }
  for (int64_t k = 0; k < chunk; ++k)
    weight_sum_[static_cast<size_t>(offset + k)] += weight_[static_cast<size_t>(k)];
  ++done_;
}

std::vector<Stem> SongApply::finish() {
  YW_CHECK(complete(), "apply: {} of {} segments still missing", segments_ - done_, segments_);
  converted_ = {};
  mix_.clear();
  const int channels = info_.channels;
  std::vector<Stem> stems;
  for (size_t s = 0; s < info_.sources.size(); ++s) {
    std::vector<float>& a = acc_[s];
    for (int c = 0; c < channels; ++c) {
      float* row = &a[static_cast<size_t>(c * length_)];
      for (int64_t i = 0; i < length_; ++i)
        row[i] = static_cast<float>(row[i] / weight_sum_[static_cast<size_t>(i)] * scale_ + mean_);
    }
    Stem stem{info_.sources[s], {}};
    if (in_rate_ == info_.sample_rate) {
      stem.audio.sample_rate = in_rate_;
      stem.audio.channels = channels;
      stem.audio.frames = in_frames_;
      stem.audio.samples = std::move(a);  // length_ == in_frames_ at the same rate
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
    states.push_back(std::make_unique<SongApply>(info, cfg, *song));
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
