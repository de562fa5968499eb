#pragma once
// Stem separation behind a plain C++ interface (design.md §3). No torch header is reachable from
// here: TorchScript models run in libyw_torch_runner.so, opened with dlopen the first time a
// model is used, so the fingerprint, metadata and built-in-separator paths never load libtorch.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "yw/kernels/device.hpp"

namespace yw::models {

// Planar float audio in host memory: channel c is samples[c * frames, (c + 1) * frames).
struct Audio {
  int sample_rate = 0;  // Hz
  int channels = 0;
  int64_t frames = 0;  // samples per channel
  std::vector<float> samples;

  float* channel(int c) { return samples.data() + static_cast<int64_t>(c) * frames; }
  const float* channel(int c) const { return samples.data() + static_cast<int64_t>(c) * frames; }
  double duration_seconds() const {
    return sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0.0;
  }
  static Audio zeros(int sample_rate, int channels, int64_t frames);
  // From interleaved (frame-major) samples, as yw::AudioReader delivers them.
  static Audio from_interleaved(const float* interleaved, int channels, int64_t frames,
                                int sample_rate);
};

struct Stem {
  std::string name;
  Audio audio;
};

// Called with the fraction done in [0, 1]; may be called from another thread than the caller's.
using ProgressFn = std::function<void(double)>;

// Per-song options with the meaning of Demucs' apply_model / CLI (apply.hpp has the procedure).
// The built-in HPSS separator is deterministic and works at the mix's rate: it ignores them.
struct SeparateOptions {
  int shifts = 0;                // random time shifts averaged (Demucs' CLI default is 1)
  uint64_t seed = 0;             // seeds the shifts, so a job is reproducible
  double overlap = 0.25;         // between consecutive chunks, [0, 1)
  double segment_seconds = 0.0;  // chunk length; 0 = the model's window, never longer
  bool model_rate = false;       // stems at the model's rate instead of the mix's
};

class Separator {
 public:
  virtual ~Separator() = default;
  // "hpss" for the built-in separator, else the model file's stem.
  virtual const std::string& name() const = 0;
  virtual const std::vector<std::string>& sources() const = 0;
  // Separates one song. Thread-safe: jobs call it concurrently, and a model separator fills its
  // forward batches with segments of every song in flight. The stems come back at the mix's
  // sample rate and length; the built-in separator keeps the mix's channels, a model returns
  // its own channel count (a mono mix is duplicated into a stereo model, as Demucs does).
  // Throws yw::InputError for audio that cannot be separated (no samples, more channels than
  // supported) or options out of range, yw::Error otherwise.
  virtual std::vector<Stem> separate(const Audio& mix, const SeparateOptions& options,
                                     const ProgressFn& progress) = 0;
  std::vector<Stem> separate(const Audio& mix, const ProgressFn& progress = {}) {
    return separate(mix, SeparateOptions{}, progress);
  }
};

// Demucs' output conventions (demucs/audio.py prevent_clip), applied to each stem on its own
// before it is written: rescale divides the stem by max(1.01 * peak, 1), clamp limits samples
// to [-0.99, 0.99], none leaves them (a FLAC or integer WAV then hard-clips at +-1).
enum class ClipMode { rescale, clamp, none };
// "rescale", "clamp" or "none"; throws yw::InputError naming `field` otherwise.
ClipMode parse_clip_mode(std::string_view text, std::string_view field);
void prevent_clip(Audio& stem, ClipMode mode);

// Told about every forward batch a model separator runs: its size in segments and the seconds
// the forward took (metrics: batch sizes, device busy time). Called on the runner thread.
using BatchObserver = std::function<void(int segments, double seconds)>;

struct SeparatorOptions {
  std::string model_path;        // empty: the built-in HPSS separator; .json: a bag (bag.hpp)
  Device device;                 // resolved (not auto)
  int threads = 0;               // CPU threads for libtorch; 0 = hardware concurrency
  int batch_max = 8;             // segments per forward call
  int batch_delay_ms = 25;       // how long a partial batch waits for segments of other songs
  double segment_seconds = 7.8;  // for models without segment_samples
  BatchObserver on_batch;        // optional
};

// Opens the built-in separator, loads a TorchScript model (checking its contract), or a bag of
// them: a .json manifest {"models": ["a.pt", ...], "weights": [[per source], ...]} whose members
// run on the same batches and are combined per source with the weights, as Demucs' BagOfModels.
// Throws yw::ConfigError when the model cannot be used (missing or corrupt file, a broken
// contract, a device the model cannot run on, a build without torch); the message says why.
std::unique_ptr<Separator> open_separator(const SeparatorOptions& options);

// Decodes a whole file (yw::AudioReader: WAV, FLAC, MP3, Ogg, M4A, ...) into planar floats at
// its own rate and channel count. Throws yw::InputError naming the file when it cannot be decoded
// or holds no samples.
Audio load_audio(const std::filesystem::path& path);

// True once libtorch has been loaded into this process (for tests and the startup log).
bool torch_runtime_loaded();

}  // namespace yw::models
