#pragma once
// Audio input: open a file, read its format facts, stream its samples in bounded memory.
//
// Backends: libsndfile for lossless files (WAV, AIFF, FLAC, ...); FFmpeg's libavformat/libavcodec
// for lossy streams (Vorbis, Opus, MP3: FFmpeg's decoders are the ones fpcalc uses; libsndfile is
// the fallback when FFmpeg refuses one) and for what libsndfile cannot read (M4A/AAC, ALAC, ...).
// The choice is made once, at open, and reported in AudioInfo::backend. Float and 24/32-bit
// sources are read at full precision; float samples above full scale stay above it in
// read_float and saturate in read_int16, never wrap.
//
// Units: a "frame" is one sample per channel; rates are Hz; read_* fill interleaved buffers
// (frame-major: L R L R ...). Samples keep the file's own rate and channel count: resampling and
// mixing are the caller's business (the fingerprint path has its own fpcalc-exact resampler).
//
// Errors: every function that takes a path throws yw::InputError when the file can never be
// decoded (missing, unreadable, empty, truncated header, unknown format, zero channels, absurd
// sizes, corrupt stream); the message starts with the path and says what is wrong. Other failures
// (out of memory) are yw::Error.
//
// Thread-safety: an AudioReader is used by one thread at a time; different readers are
// independent.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace yw {

// What a file is, as far as the header says (before decoding it all).
struct AudioInfo {
  std::string container;    // "wav", "aiff", "flac", "ogg", "mp3", "mp4", "caf", ... (lowercase)
  std::string codec;        // "pcm_s16le", "pcm_s24le", "pcm_f32le", "flac", "vorbis", "opus",
                            // "mp3", "aac", "alac", ... (FFmpeg's codec names where they exist)
  std::string backend;      // "sndfile" or "ffmpeg"
  int sample_rate = 0;      // Hz, > 0
  int channels = 0;         // > 0
  int bits_per_sample = 0;  // stored bits for PCM/FLAC/ALAC; 0 for lossy codecs
  // Frames per channel the header promises; -1 when the container does not say (some Ogg/MP3
  // streams). The decoded count can differ slightly for lossy codecs (encoder delay/padding).
  std::int64_t frames = -1;
  double duration_seconds =
      0.0;                    // container duration; frames / sample_rate when known, else estimate
  double bitrate_kbps = 0.0;  // overall (file size based for lossy), 0 when unknown
};

// A streaming decoder. Memory use is bounded by the backend's own buffers plus one decoded
// packet, whatever the file length.
class AudioReader {
 public:
  // Opens `path` and reads its header. Throws yw::InputError (see above).
  static std::unique_ptr<AudioReader> open(const std::filesystem::path& path);
  virtual ~AudioReader() = default;
  AudioReader(const AudioReader&) = delete;
  AudioReader& operator=(const AudioReader&) = delete;

  const AudioInfo& info() const noexcept { return info_; }
  const std::filesystem::path& path() const noexcept { return path_; }

  // Reads up to `max_frames` frames into `out` (room for max_frames * channels samples),
  // interleaved. Returns the frames read; 0 only at the end of the stream. Float samples are
  // in [-1, 1) for integer sources (int16 x / 32768). Throws yw::InputError on a corrupt stream.
  virtual std::size_t read_float(float* out, std::size_t max_frames) = 0;
  // The same as 16-bit integers. For 16-bit PCM/FLAC sources these are the stored samples,
  // bit for bit; wider or float sources are converted with rounding and clipping.
  virtual std::size_t read_int16(std::int16_t* out, std::size_t max_frames) = 0;

 protected:
  explicit AudioReader(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
  AudioInfo info_;
};

// Header facts only; cheaper than open() + reading (no decoding). Throws yw::InputError.
AudioInfo probe_audio(const std::filesystem::path& path);

// A whole (or the first `max_seconds` of a) file decoded to interleaved float. For short clips
// and tests; long files should be streamed with AudioReader. `max_seconds` <= 0 means all.
struct DecodedAudio {
  AudioInfo info;
  std::vector<float> samples;  // interleaved, frames() * info.channels values
  std::int64_t frames() const noexcept {
    return info.channels > 0 ? static_cast<std::int64_t>(samples.size()) / info.channels : 0;
  }
};
DecodedAudio decode_audio(const std::filesystem::path& path, double max_seconds = 0.0);

}  // namespace yw
