#pragma once
// The Demucs apply procedure (shifts = 0) over any segment model, in plain C++.
// ref: demucs/apply.py apply_model (split=True, overlap=0.25, transition_power=1) and the mix
// normalisation of demucs/separate.py / api.Separator.separate_tensor.
//
// Per song: the mix is converted to the model's channels (mono duplicated, mono model averaged,
// extra channels dropped), resampled to the model's rate, normalised by the mean and (unbiased)
// standard deviation of its channel average, cut into segments of `segment` samples starting
// every stride = floor(0.75 * segment) samples; a segment that runs past the end is centre-padded
// (real neighbours on the left, zeros past the end) and its output centre-trimmed. Outputs are
// summed with triangular weights (1..segment/2, then down; divided by the maximum) and divided by
// the summed weights, de-normalised, and resampled back to the mix's rate and length.
//
// Memory: a song at the model's rate and channel count holds its stems (accumulated in place)
// and one weight per sample; otherwise also its converted mix and model-rate accumulators, freed
// stem by stem as they are resampled back. Segments are cut one batch at a time, never all at
// once, so the forward buffers are bounded by the batch, not the song.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "yw/models/separator.hpp"

namespace yw::models {

struct ModelInfo {
  std::vector<std::string> sources;
  int sample_rate = 44100;
  int channels = 2;
  int64_t segment_samples = 0;  // > 0: the model accepts only this length
};

// A model that maps a batch of segments to stems. Implementations: the TorchScript runner
// (libyw_torch_runner.so) and plain C++ models in tests.
class SegmentModel {
 public:
  virtual ~SegmentModel() = default;
  virtual const ModelInfo& info() const = 0;
  // in: [batch, channels, length] float32, contiguous, host memory.
  // out: [batch, sources, channels, length], same layout. Called by one thread at a time.
  // Throws yw::Error when the model fails.
  virtual void forward(const float* in, int batch, int64_t length, float* out) = 0;
};

struct ApplyConfig {
  double overlap = 0.25;
  double segment_seconds = 7.8;  // used when the model has no segment_samples
  int batch_max = 8;             // segments per forward call
};

// The segment length used for a model under a configuration (at the model's rate).
int64_t segment_length(const ModelInfo& info, const ApplyConfig& cfg);

// One song in flight: hands out its segments and takes their outputs back in any order.
class SongApply {
 public:
  // Converts the mix when its rate or channels differ from the model's and measures its mean
  // and deviation. `info` and `mix` must outlive this object (their samples are read, not
  // copied, when no conversion is needed). Throws yw::InputError for an empty mix or a channel
  // layout the model cannot take (fewer channels than the model, but not mono).
  SongApply(const ModelInfo& info, const ApplyConfig& cfg, const Audio& mix);

  int64_t segment_count() const { return segments_; }
  int64_t segment() const { return segment_; }
  bool has_next() const { return next_ < segments_; }
  int64_t segments_left() const { return segments_ - next_; }
  // Writes the next segment ([channels, segment] floats) to dst and returns its index.
  int64_t fill_next(float* dst);
  // Adds segment `index`'s model output ([sources, channels, segment] floats).
  void accumulate(int64_t index, const float* out);
  bool complete() const { return done_ == segments_; }
  double progress() const {
    return segments_ ? static_cast<double>(done_) / static_cast<double>(segments_) : 1.0;
  }
  // The stems at the mix's rate and length; call once, when complete().
  std::vector<Stem> finish();

 private:
  const ModelInfo& info_;
  int in_rate_;
  int64_t in_frames_;
  int64_t length_;  // model-rate samples
  int64_t segment_, stride_, segments_;
  int64_t next_ = 0, done_ = 0;
  double mean_ = 0.0, scale_ = 1.0;
  // The model-rate mix, un-normalised (segments are normalised as they are cut): the caller's
  // own samples when no conversion is needed, else converted_.
  std::vector<const float*> mix_;  // per model channel
  std::vector<float> converted_;   // [channels, length_] when converted
  // Weighted sums of segment outputs per source, [channels, length_] each. At the mix's own
  // rate they become the stems in place, so a song costs its stems and nothing more.
  std::vector<std::vector<float>> acc_;
  std::vector<float> weight_sum_;  // [length_]
  std::vector<float> weight_;      // [segment_]
};

// Separates several songs, each forward batch holding up to batch_max segments taken round-robin
// from all songs still in progress. Returns one stem list per song, in order.
// `progress`, when given, is called with (song index, fraction).
std::vector<std::vector<Stem>> apply_model(
    SegmentModel& model, std::span<const Audio* const> songs, const ApplyConfig& cfg,
    const std::function<void(size_t, double)>& progress = {});

// A thread-safe Separator over `model`: one runner thread owns the model, and each forward batch
// takes segments round-robin from every song in flight (SeparatorOptions: batch_max,
// batch_delay_ms, segment_seconds). open_separator uses it for TorchScript models.
std::unique_ptr<Separator> make_batched_separator(std::unique_ptr<SegmentModel> model,
                                                  const SeparatorOptions& options,
                                                  std::string name);

}  // namespace yw::models
