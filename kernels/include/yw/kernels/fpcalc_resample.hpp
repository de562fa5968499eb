#pragma once
// fpcalc's front end. FpcalcDecoder (below) is what the fingerprint path uses: FFmpeg and
// libswresample themselves, configured as fpcalc configures them, so identical by construction.
//
// FpcalcResampler is a hand-written reproduction of one fpcalc path only: libswresample's S16
// path (docs/chromaprint.md §1.3), which fpcalc takes for 16-bit sources with at most two
// channels (16-bit WAV/FLAC, raw s16): interleaved int16 -> int16 mono at 11025 Hz, bit for bit.
// It is not on the fingerprint path (no measurement here showed it faster than swr; the CUDA twin
// tests and the unit tests use it as the spec's executable form).
//
// Settings reproduced: filter_size 16, phase_shift 8, linear_interp 1, cutoff 0.8, Kaiser beta 9,
// exact_rational, no dither; each channel is resampled first and the channels are mixed after
// (stereo: floor((L + R + 1) / 2)). More than two channels are mixed with equal weights, which is
// NOT verified against swr's default matrix.
//
// Streaming: feed() any block sizes (the output does not depend on how the input is split);
// flush() once at the end emits swr's tail (right-edge reflection) and ends the stream. Debian
// fpcalc never flushes: its output is what feed() alone gives.
// Memory: O(filter length + block size), whatever the stream length.
// Thread-safety: one instance per stream; instances are independent.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "yw/kernels/audio.hpp"

namespace yw {

inline constexpr int kFpcalcSampleRate = 11025;

// fpcalc's whole front end on one file: FFmpeg decodes it with the decoder's own sample format
// and libswresample converts it to int16 mono 11025 Hz with fpcalc's options, calling both
// libraries as Debian fpcalc 1.5.1 does (kernels/cpu/audio_ffmpeg.cpp says how), so the samples
// are the ones fpcalc feeds Chromaprint, for every format, sample type and channel layout FFmpeg
// decodes. Streams: memory is one decoded frame plus swr's look-ahead.
// Errors: yw::InputError naming the file when it cannot be opened or decoded at all. A decode
// error after the start ends the stream there, as it ends fpcalc's read: read() returns false
// and stop_reason() says why (empty after a clean end of file).
class FpcalcDecoder {
 public:
  explicit FpcalcDecoder(const std::filesystem::path& path);
  ~FpcalcDecoder();
  FpcalcDecoder(const FpcalcDecoder&) = delete;
  FpcalcDecoder& operator=(const FpcalcDecoder&) = delete;

  // The stream as opened (backend "ffmpeg"; rate and channels are the decoder's).
  const AudioInfo& info() const noexcept;
  // What fpcalc prints as the duration: the stream's duration in whole milliseconds (else the
  // container's), in seconds; 0 when unknown.
  double duration_seconds() const noexcept;
  // Appends the next converted block (possibly empty) to `out`; false at the end of the stream.
  bool read(std::vector<std::int16_t>& out);
  const std::string& stop_reason() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class FpcalcResampler {
 public:
  // in_rate in Hz (1 ... 1 536 000), channels >= 1. Throws yw::InputError when out of range.
  FpcalcResampler(int in_rate, int channels);
  ~FpcalcResampler();
  FpcalcResampler(FpcalcResampler&&) noexcept;
  FpcalcResampler& operator=(FpcalcResampler&&) noexcept;

  // Converts `frames` interleaved frames; appends the mono 11025 Hz samples that are complete to
  // `out` (the resampler keeps up to one filter length of look-ahead back).
  void feed(const std::int16_t* in, std::size_t frames, std::vector<std::int16_t>& out);
  // Ends the stream: appends the remaining samples. feed() must not be called afterwards.
  void flush(std::vector<std::int16_t>& out);

  // Filter facts, for tests: phases P, taps L, and the int16 bank (P + 1 rows of L taps).
  int phase_count() const;
  int filter_length() const;
  const std::vector<std::int16_t>& filter_bank() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace yw
