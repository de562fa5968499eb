#pragma once
// Chromaprint fingerprints (AcoustID), identical to Debian fpcalc 1.5.1 `-algorithm 2` (TEST2),
// written from docs/chromaprint.md. The CPU twin; the CUDA twin is
// yw/kernels/cuda/fingerprint_cuda.hpp.
//
// Input of the core: int16 mono samples at 11025 Hz (what fpcalc feeds the library; use
// fpcalc_signal or fingerprint_file to get there). Output: 32-bit items, one per 1365 samples;
// N samples give max(0, floor((N - 4096) / 1365) - 18) items.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "yw/kernels/audio.hpp"
#include "yw/kernels/chromaprint_tables.hpp"

namespace yw {

inline constexpr int kChromaprintAlgorithm = 2;  // fpcalc -algorithm 2 = TEST2 (header byte 1)
inline constexpr int kChromaprintFrameSize = 4096;
inline constexpr int kChromaprintHop = 1365;
inline constexpr int kChromaprintMinSamples = 30031;  // fewer give no item ("empty fingerprint")
inline constexpr std::uint32_t kChromaprintSilenceItem = 627964279;

// The streaming core (framing, Hamming window, FFT via FFTW, chroma, chroma filter, normaliser,
// integral image, 16 classifiers, Gray code). Memory is O(1) in the stream length apart from the
// items themselves. Not thread-safe; one instance per stream (instances may run concurrently).
class FingerprinterCpu {
 public:
  FingerprinterCpu();
  ~FingerprinterCpu();
  FingerprinterCpu(const FingerprinterCpu&) = delete;
  FingerprinterCpu& operator=(const FingerprinterCpu&) = delete;

  // Appends samples (int16 mono 11025 Hz); items become available as soon as their 30031-sample
  // window is complete.
  void feed(std::span<const std::int16_t> samples);
  const std::vector<std::uint32_t>& items() const noexcept;
  // Forgets everything; the next feed starts a new stream.
  void reset();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// One-shot core on a whole signal.
std::vector<std::uint32_t> fingerprint_cpu(std::span<const std::int16_t> samples);
// The core on several signals (the CPU counterpart of fingerprint_batch_cuda): out[i] are the
// items of signals[i].
std::vector<std::vector<std::uint32_t>> fingerprint_batch_cpu(
    const std::vector<std::span<const std::int16_t>>& signals);

// Chromaprint's compressed form, URL-safe base64 without padding ("AQ..." for TEST2).
std::string compress_fingerprint(std::span<const std::uint32_t> items,
                                 int algorithm = kChromaprintAlgorithm);
// The inverse, for tests and for comparing stored fingerprints. Throws yw::InputError when the
// string is not a well-formed compressed fingerprint. `algorithm` receives the header's
// algorithm number (1-based, as fpcalc -algorithm), when not null.
std::vector<std::uint32_t> decompress_fingerprint(std::string_view text, int* algorithm = nullptr);

// fpcalc on one file: decode and convert (FpcalcDecoder: FFmpeg + libswresample), stop after
// `length_seconds` of converted audio (fpcalc -length; <= 0 = whole file), fingerprint.
// Streams: memory stays bounded whatever the file length.
struct FileFingerprint {
  AudioInfo info;
  double duration_seconds = 0.0;  // container duration, what fpcalc prints
  std::vector<std::uint32_t> items;
  std::string fingerprint;  // compressed; empty when there are no items
};
// Throws yw::InputError naming the file when it cannot be decoded; returns no items (and an
// empty string) when the used audio is shorter than kChromaprintMinSamples.
FileFingerprint fingerprint_file(const std::filesystem::path& path, double length_seconds = 120.0);

// fpcalc's front end alone: the int16 mono 11025 Hz signal fpcalc would feed Chromaprint for
// this file and length (for batching signals of many files through one core call, e.g.
// fingerprint_batch_cuda). Holds the whole used signal: 2 bytes per 1/11025 s.
struct FpcalcSignal {
  AudioInfo info;
  double duration_seconds = 0.0;  // container duration, what fpcalc prints
  std::vector<std::int16_t> samples;
};
// Throws yw::InputError naming the file when it cannot be decoded.
FpcalcSignal fpcalc_signal(const std::filesystem::path& path, double length_seconds = 120.0);

}  // namespace yw
