#pragma once
// TorchScript separators built in C++ (torch::jit::Module::define) and saved, since no pretrained
// weights can be downloaded here. Plain interface: only torch_models.cpp includes libtorch.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace yw::test {

struct TorchModelSpec {
  std::vector<std::string> sources{"drums", "bass", "other", "vocals"};
  int sample_rate = 44100;
  int channels = 2;
  int64_t segment_samples = 0;  // > 0: forward refuses any other length (like a traced export)
};

// Source s = gains[s] * mix (pointwise).
void save_gain_model(const std::string& path, const TorchModelSpec& spec,
                     const std::vector<float>& gains);

// A convolutional encoder/decoder: conv1d (kernel 8, stride 4) layers of the given widths, then
// transposed convolutions back to sources x channels; random weights (seeded). widths
// {64, 128, 256, 512, 1024} gives about 11 M parameters. Returns the parameter count.
int64_t save_conv_model(const std::string& path, const TorchModelSpec& spec,
                        const std::vector<int>& widths, uint64_t seed);

// device_fault: a valid model whose forward, past the runner's probe (11025 samples), raises
// libtorch's message for a sticky CUDA error, as a model hitting an illegal address would.
// declared_wrong_shape declares segment_samples 4410 (so the runner does not probe it at load)
// and returns 3 sources where it promises 4.
enum class BrokenKind {
  wrong_rank,
  missing_samplerate,
  wrong_source_count,
  sources_not_strings,
  device_fault,
  declared_wrong_shape
};
void save_broken_model(const std::string& path, BrokenKind kind);

// Loads `path` with libtorch directly (not through the worker's runner) and runs one forward on
// [1, channels, length] (channel-major `mix`), returning [sources, channels, length].
std::vector<float> torch_forward_once(const std::string& path, const std::vector<float>& mix,
                                      int channels, int64_t length);

// Demucs' own procedure for one song with shifts = 0, written with the torch operations that
// demucs/api.py (Separator.separate_tensor) and demucs/apply.py (apply_model, TensorChunk.padded,
// center_trim) use, in their order: normalise by ref = mix.mean(0), cut chunks of `segment`
// every int((1 - overlap) * segment), pad each to `window` with its real neighbours, run the
// model at `path` one chunk per call, weight, sum, divide by the summed weights, de-normalise.
// `mix` is [channels, length] at the model's rate; returns [sources, channels, length].
std::vector<float> demucs_reference(const std::string& path, const std::vector<float>& mix,
                                    int channels, int64_t length, int64_t segment, int64_t window,
                                    double overlap);

// The normalisation statistics as Demucs computes them: {ref.mean(), ref.std() + 1e-8}.
std::pair<float, float> demucs_mix_stats(const std::vector<float>& mix, int channels,
                                         int64_t length);

// What libtorch's process-wide CPU allocator does with a freed block of `bytes` (filled with a
// pattern first): whether it is still the default one, and whether the next request of the same
// size gets that block back with the pattern in it (a cache) or fresh zero pages.
struct CpuAllocatorReuse {
  bool default_allocator = false;
  bool same_block = false;
  bool pattern_kept = false;
};
CpuAllocatorReuse probe_cpu_allocator(int64_t bytes);

}  // namespace yw::test
