#pragma once
// The Demucs apply procedure over any segment model, in plain C++.
// ref: demucs/apply.py apply_model (split=True, shifts, overlap, segment, transition_power=1),
// TensorChunk.padded + center_trim, and the mix normalisation of api.Separator.separate_tensor.
//
// Per song: the mix is converted to the model's channels (mono duplicated, mono model averaged,
// extra channels dropped), resampled to the model's rate, normalised by the mean and (unbiased)
// standard deviation (+ 1e-8) of its channel average, all in float32 as Demucs computes them
// (SegmentModel::mix_stats), and cut into chunks of `segment` samples starting every
// stride = int((1 - overlap) * segment) samples. Each chunk is centre-padded to the model's
// window (its one traced length, or the configured segment for any-length models) with real
// neighbours where the song has them and zeros past its ends, and the output is centre-trimmed
// back to the chunk. Outputs are summed with triangular weights (1..segment/2, then down, over
// their maximum), divided by the summed weights, de-normalised, and resampled back to the mix's
// rate and length unless the model's rate is asked for.
//
// Shifts (shifts >= 1): as Demucs, the normalised mix is padded with max_shift = int(0.5 * rate)
// zeros on each side; each shift takes a random offset in [0, max_shift] (mt19937_64 seeded with
// `seed`, so a job is reproducible), separates from there, and the outputs, moved back, are
// averaged. shifts = 0 is the deterministic procedure, bit for bit Demucs' --shifts 0 on CPU when
// the statistics come from libtorch (the TorchScript runner).
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

// What a mix is normalised by: the mean of its channel average and that average's unbiased
// standard deviation plus 1e-8, both float32 (Demucs: ref = wav.mean(0); ref.mean(),
// ref.std() + 1e-8).
struct MixStats {
  float mean = 0.0f;
  float scale = 1.0f;
};

// The statistics computed in plain C++ (double sums rounded to float): within an ulp or two of
// libtorch's float32 reductions. `channels` are `length` samples each at the model's rate.
MixStats mix_stats_cpu(std::span<const float* const> channels, int64_t length);

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
  // The normalisation statistics of a mix (see MixStats). The TorchScript runner computes them
  // with the libtorch reductions Demucs calls, so its normalised input equals Demucs' bit for
  // bit; the default is mix_stats_cpu. Called from any thread, concurrently with forward.
  virtual MixStats mix_stats(std::span<const float* const> channels, int64_t length) const {
    return mix_stats_cpu(channels, length);
  }
};

struct ApplyConfig {
  // Per separator: the model window (what every forward gets) and the batch.
  double segment_seconds = 7.8;  // the window of a model without segment_samples
  int batch_max = 8;             // segments per forward call
  // Per song, with Demucs' meaning (SeparateOptions).
  double overlap = 0.25;           // [0, 1)
  int shifts = 0;                  // random shifts averaged; 0 = deterministic
  uint64_t seed = 0;               // seeds the shifts' offsets
  double chunk_seconds = 0.0;      // Demucs' --segment: 0 = the window; else at most the window
  bool model_rate_output = false;  // stems at the model's rate instead of the mix's
};

// The model window under a configuration (samples at the model's rate): what forward gets.
int64_t segment_length(const ModelInfo& info, const ApplyConfig& cfg);

// One song in flight: hands out its segments and takes their outputs back in any order.
class SongApply {
 public:
  // Converts the mix when its rate or channels differ from the model's and measures its mean
  // and deviation (model.mix_stats). `model` and `mix` must outlive this object (the mix's
  // samples are read, not copied, when no conversion is needed). Throws yw::InputError for an
  // empty mix, a channel layout the model cannot take (fewer channels than the model, but not
  // mono) or options out of range (overlap, shifts, a segment longer than the window).
  SongApply(const SegmentModel& model, const ApplyConfig& cfg, const Audio& mix);

  int64_t segment_count() const { return segments_; }
  int64_t segment() const { return segment_; }
  int64_t window() const { return window_; }
  bool has_next() const { return next_ < segments_; }
  int64_t segments_left() const { return segments_ - next_; }
  // Writes the next segment ([channels, window] floats) to dst and returns its index.
  int64_t fill_next(float* dst);
  // Adds segment `index`'s model output ([sources, channels, window] floats).
  void accumulate(int64_t index, const float* out);
  bool complete() const { return done_ == segments_; }
  double progress() const {
    return segments_ ? static_cast<double>(done_) / static_cast<double>(segments_) : 1.0;
  }
  // The stems at the mix's rate and length (or the model's, when asked); call once, when
  // complete().
  std::vector<Stem> finish();

 private:
  const ModelInfo& info_;
  int in_rate_;
  int64_t in_frames_;
  bool model_rate_output_;
  int64_t length_;  // model-rate samples
  int64_t window_, segment_, stride_, segments_;
  int64_t next_ = 0, done_ = 0;
  float mean_ = 0.0f, scale_ = 1.0f;
  // One entry per shift (one with delay 0 when shifts = 0): the song is separated as if it
  // started `delay` samples late, delay = max_shift - offset, and `first` is the global index
  // of its first segment.
  struct Shift {
    int64_t delay, length, first, count;
  };
  std::vector<Shift> shifts_;
  bool averaged_ = false;  // shifts >= 1: per-sample weights divided at accumulation
  const Shift& shift_of(int64_t index) const;
  // The summed chunk weights at position p of a shift's timeline, in chunk order (Demucs'
  // sum_weight, the same for every shift).
  float weight_sum_at(int64_t p) const;
  // The model-rate mix, un-normalised (segments are normalised as they are cut): the caller's
  // own samples when no conversion is needed, else converted_.
  std::vector<const float*> mix_;  // per model channel
  std::vector<float> converted_;   // [channels, length_] when converted
  // Weighted sums of segment outputs per source, [channels, length_] each. At the mix's own
  // rate they become the stems in place, so a song costs its stems and nothing more.
  std::vector<std::vector<float>> acc_;
  std::vector<float> weight_sum_;  // [length_], shifts = 0 only
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
